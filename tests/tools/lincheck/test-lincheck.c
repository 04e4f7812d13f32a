/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the linearizability checker on hand-made and simulated histories. */
#include <check.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"
#include "macro.h"

/* Helpers that append one operation on key "k" (or on a given key). */

static void put_on(LinHistory *h, const char *key, int64_t client, int64_t call, int64_t ret, const char *value,
                uint64_t version, LinOutcome outcome) {
        ck_assert_int_eq(lin_history_add_put(h, client, key, value, version, call, ret, outcome), 0);
}

static void put(LinHistory *h, int64_t client, int64_t call, int64_t ret, const char *value, uint64_t version,
                LinOutcome outcome) {
        put_on(h, "k", client, call, ret, value, version, outcome);
}

static void get_ok_on(LinHistory *h, const char *key, int64_t client, int64_t call, int64_t ret, const char *value,
                uint64_t version) {
        ck_assert_int_eq(lin_history_add_get(h, client, key, call, ret, LIN_OUT_OK, value, version), 0);
}

static void get_ok(LinHistory *h, int64_t client, int64_t call, int64_t ret, const char *value, uint64_t version) {
        get_ok_on(h, "k", client, call, ret, value, version);
}

static void get_nokey(LinHistory *h, int64_t client, int64_t call, int64_t ret) {
        ck_assert_int_eq(lin_history_add_get(h, client, "k", call, ret, LIN_OUT_NOKEY, NULL, 0), 0);
}

static LinVerdict check_with(LinHistory *h, const LinOptions *o) {
        LinReport r;
        LinVerdict v;

        ck_assert_int_eq(lin_check(h, o, &r), 0);
        v = r.verdict;
        /* A verdict other than linearizable always explains itself. */
        if (v == LIN_LINEARIZABLE)
                ck_assert_ptr_null(r.description);
        else
                ck_assert_ptr_nonnull(r.description);
        lin_report_done(&r);
        return v;
}

static LinVerdict check_history(LinHistory *h) {
        return check_with(h, NULL);
}

static LinHistory *new_history(void) {
        LinHistory *h = lin_history_new();

        ck_assert_ptr_nonnull(h);
        return h;
}

START_TEST(test_empty) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();
        LinReport r;

        ck_assert_int_eq(lin_check(h, NULL, &r), 0);
        ck_assert_int_eq(r.verdict, LIN_LINEARIZABLE);
        ck_assert_uint_eq(r.n_ops, 0);
        ck_assert_uint_eq(r.n_partitions, 0);
        lin_report_done(&r);
}
END_TEST

START_TEST(test_sequential_legal) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        get_nokey(h, 1, 0, 1);
        put(h, 1, 2, 3, "a", 0, LIN_OUT_OK);
        get_ok(h, 2, 4, 5, "a", 1);
        put(h, 2, 6, 7, "b", 1, LIN_OUT_OK);
        put(h, 1, 8, 9, "c", 1, LIN_OUT_VERSION);
        get_ok(h, 1, 10, 11, "b", 2);
        put(h, 2, 12, 13, "", 2, LIN_OUT_OK);
        get_ok(h, 3, 14, 15, "", 3);
        ck_assert_int_eq(check_history(h), LIN_LINEARIZABLE);
}
END_TEST

START_TEST(test_sequential_two_puts_same_version) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* Both conditional on version 0, one after the other: the second must fail. */
        put(h, 1, 0, 1, "a", 0, LIN_OUT_OK);
        put(h, 2, 2, 3, "b", 0, LIN_OUT_OK);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_sequential_wrong_version) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        put(h, 1, 0, 1, "a", 0, LIN_OUT_OK);
        get_ok(h, 1, 2, 3, "a", 2);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_sequential_mismatch_reported_wrongly) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* The versions match, so VersionMismatch is not a legal answer. */
        put(h, 1, 0, 1, "a", 0, LIN_OUT_OK);
        put(h, 1, 2, 3, "b", 1, LIN_OUT_VERSION);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_concurrent_puts_one_order) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* B's put was called first and is listed first, but only A then B works. */
        put(h, 2, 0, 20, "b", 1, LIN_OUT_OK);
        put(h, 1, 1, 10, "a", 0, LIN_OUT_OK);
        get_ok(h, 3, 21, 22, "b", 2);
        ck_assert_int_eq(check_history(h), LIN_LINEARIZABLE);
}
END_TEST

START_TEST(test_concurrent_puts_wrong_final) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* Same puts, but a later get sees A's value at version 2: no order gives that. */
        put(h, 2, 0, 20, "b", 1, LIN_OUT_OK);
        put(h, 1, 1, 10, "a", 0, LIN_OUT_OK);
        get_ok(h, 3, 21, 22, "a", 2);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_concurrent_puts_both_succeed) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* Overlapping, both conditional on version 0, both OK: only one may win. */
        put(h, 1, 0, 10, "a", 0, LIN_OUT_OK);
        put(h, 2, 1, 9, "b", 0, LIN_OUT_OK);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_concurrent_puts_one_loses) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        put(h, 1, 0, 10, "a", 0, LIN_OUT_VERSION);
        put(h, 2, 1, 9, "b", 0, LIN_OUT_OK);
        get_ok(h, 3, 11, 12, "b", 1);
        ck_assert_int_eq(check_history(h), LIN_LINEARIZABLE);
}
END_TEST

START_TEST(test_stale_read_after_write) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();
        LinReport r;

        put(h, 1, 0, 1, "a", 0, LIN_OUT_OK);
        put(h, 1, 2, 3, "b", 1, LIN_OUT_OK);
        get_ok(h, 2, 4, 5, "a", 1);

        ck_assert_int_eq(lin_check(h, NULL, &r), 0);
        ck_assert_int_eq(r.verdict, LIN_ILLEGAL);
        ck_assert_str_eq(r.key, "k");
        ck_assert_uint_eq(r.key_ops, 3);
        ck_assert_uint_eq(r.longest_prefix, 2);
        ck_assert_uint_eq(r.blocking_op, 2);
        ck_assert_ptr_nonnull(strstr(r.description, "2 of its 3"));
        ck_assert_ptr_nonnull(strstr(r.description, "client 2 get"));
        lin_report_done(&r);
}
END_TEST

START_TEST(test_read_concurrent_with_write) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* The same read, overlapping the second write, may see either value. */
        put(h, 1, 0, 1, "a", 0, LIN_OUT_OK);
        put(h, 1, 2, 5, "b", 1, LIN_OUT_OK);
        get_ok(h, 2, 3, 6, "a", 1);
        get_ok(h, 3, 3, 6, "b", 2);
        ck_assert_int_eq(check_history(h), LIN_LINEARIZABLE);
}
END_TEST

START_TEST(test_reads_disagree_on_order) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* Reader 2 sees b then, strictly later, reader 3 sees a: time went backwards. */
        put(h, 1, 0, 1, "a", 0, LIN_OUT_OK);
        put(h, 1, 2, 10, "b", 1, LIN_OUT_OK);
        get_ok(h, 2, 3, 4, "b", 2);
        get_ok(h, 3, 5, 6, "a", 1);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_maybe_applied) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* B's put on version 1 succeeded, so A's maybe must have been applied. */
        put(h, 1, 0, 1, "a", 0, LIN_OUT_MAYBE);
        put(h, 2, 2, 3, "b", 1, LIN_OUT_OK);
        get_ok(h, 2, 4, 5, "b", 2);
        ck_assert_int_eq(check_history(h), LIN_LINEARIZABLE);
}
END_TEST

START_TEST(test_maybe_applied_seen) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        put(h, 1, 0, 1, "a", 0, LIN_OUT_MAYBE);
        get_ok(h, 2, 2, 3, "a", 1);
        ck_assert_int_eq(check_history(h), LIN_LINEARIZABLE);
}
END_TEST

START_TEST(test_maybe_not_applied) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* B won version 0 while A's maybe was in flight: A placed after B changes nothing. */
        put(h, 2, 0, 1, "b", 0, LIN_OUT_OK);
        put(h, 1, 0, 3, "a", 0, LIN_OUT_MAYBE);
        get_ok(h, 3, 4, 5, "b", 1);
        ck_assert_int_eq(check_history(h), LIN_LINEARIZABLE);
}
END_TEST

START_TEST(test_maybe_not_applied_but_seen) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* As above, but a reader sees A's value: A applied means B's OK was impossible. */
        put(h, 2, 0, 1, "b", 0, LIN_OUT_OK);
        put(h, 1, 0, 3, "a", 0, LIN_OUT_MAYBE);
        get_ok(h, 3, 4, 5, "a", 1);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_maybe_on_a_missing_key_must_apply) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* Nothing else wrote the key: at any point the versions match, so the put happened. */
        put(h, 1, 0, 1, "a", 0, LIN_OUT_MAYBE);
        get_nokey(h, 2, 2, 3);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_put_without_reply) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* A put whose reply was never seen may take effect long after its call. */
        put(h, 1, 0, LIN_NEVER, "a", 0, LIN_OUT_MAYBE);
        get_nokey(h, 2, 5, 6);
        get_ok(h, 2, 7, 8, "a", 1);
        /* A get without a reply says nothing, whatever it would have returned. */
        ck_assert_int_eq(lin_history_add_get(h, 3, "k", 1, LIN_NEVER, LIN_OUT_MAYBE, NULL, 0), 0);
        ck_assert_int_eq(check_history(h), LIN_LINEARIZABLE);
}
END_TEST

START_TEST(test_nokey_legal) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        get_nokey(h, 1, 0, 1);
        /* A put on a missing key with version > 0 answers NoKey (or VersionMismatch). */
        put(h, 1, 2, 3, "a", 3, LIN_OUT_NOKEY);
        put(h, 1, 4, 5, "a", 1, LIN_OUT_VERSION);
        get_nokey(h, 2, 6, 7);
        put(h, 1, 8, 9, "a", 0, LIN_OUT_OK);
        ck_assert_int_eq(check_history(h), LIN_LINEARIZABLE);
}
END_TEST

START_TEST(test_nokey_on_create) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* Version 0 on a missing key creates it; NoKey is wrong. */
        put(h, 1, 0, 1, "a", 0, LIN_OUT_NOKEY);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_nokey_after_create) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        put(h, 1, 0, 1, "a", 0, LIN_OUT_OK);
        get_nokey(h, 2, 2, 3);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_put_nokey_after_create) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        put(h, 1, 0, 1, "a", 0, LIN_OUT_OK);
        put(h, 2, 2, 3, "b", 5, LIN_OUT_NOKEY);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_nokey_concurrent_with_create) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        put(h, 1, 0, 10, "a", 0, LIN_OUT_OK);
        get_nokey(h, 2, 1, 2);
        get_ok(h, 3, 3, 4, "a", 1);
        get_nokey(h, 4, 5, 6);
        /* The first NoKey fits before the put, the last cannot follow the read of a. */
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_get_never_written) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        put(h, 1, 0, 10, "a", 0, LIN_OUT_OK);
        put(h, 2, 0, 10, "b", 1, LIN_OUT_OK);
        get_ok(h, 3, 0, 10, "ghost", 1);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_get_version_zero) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* A present key always has a version above 0. */
        get_ok(h, 1, 0, 1, "", 0);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_keys_independent) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();
        LinReport r;

        /* Per key both histories are fine; mixing their states would not be. */
        put_on(h, "x", 1, 0, 1, "a", 0, LIN_OUT_OK);
        put_on(h, "y", 2, 0, 1, "b", 0, LIN_OUT_OK);
        get_ok_on(h, "x", 3, 2, 3, "a", 1);
        get_ok_on(h, "y", 3, 4, 5, "b", 1);
        ck_assert_int_eq(lin_check(h, NULL, &r), 0);
        ck_assert_int_eq(r.verdict, LIN_LINEARIZABLE);
        ck_assert_uint_eq(r.n_partitions, 2);
        ck_assert_uint_eq(r.n_ops, 4);
        lin_report_done(&r);

        /* Now one key goes wrong; the report names it. */
        get_ok_on(h, "y", 3, 6, 7, "a", 1);
        ck_assert_int_eq(lin_check(h, NULL, &r), 0);
        ck_assert_int_eq(r.verdict, LIN_ILLEGAL);
        ck_assert_str_eq(r.key, "y");
        ck_assert_uint_eq(r.key_ops, 3);
        ck_assert_ptr_nonnull(strstr(r.description, "key \"y\""));
        lin_report_done(&r);
}
END_TEST

START_TEST(test_add_rejects_inconsistent) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* return before call */
        ck_assert_int_eq(lin_history_add_put(h, 1, "k", "a", 0, 5, 4, LIN_OUT_OK), -EINVAL);
        /* a get that returned cannot be a VersionMismatch or Maybe */
        ck_assert_int_eq(lin_history_add_get(h, 1, "k", 0, 1, LIN_OUT_VERSION, NULL, 0), -EINVAL);
        ck_assert_int_eq(lin_history_add_get(h, 1, "k", 0, 1, LIN_OUT_MAYBE, NULL, 0), -EINVAL);
        /* a get that returned ok needs its value */
        ck_assert_int_eq(lin_history_add_get(h, 1, "k", 0, 1, LIN_OUT_OK, NULL, 1), -EINVAL);
        /* no reply means no known result */
        ck_assert_int_eq(lin_history_add_put(h, 1, "k", "a", 0, 0, LIN_NEVER, LIN_OUT_OK), -EINVAL);
        ck_assert_int_eq(lin_history_add_put(h, 1, "k", NULL, 0, 0, 1, LIN_OUT_OK), -EINVAL);
        ck_assert_int_eq(lin_history_add_get(h, 1, NULL, 0, 1, LIN_OUT_NOKEY, NULL, 0), -EINVAL);
        ck_assert_uint_eq(h->n_ops, 0);
}
END_TEST

/* A simulated store and clients. Each step advances one random client: it calls an
 * operation, or the operation takes effect on the store (its linearization point),
 * or it returns. Intervals of different clients overlap, and the history is legal
 * by construction. */

typedef struct SimClient {
        int phase; /* 0 idle, 1 called, 2 took effect */
        unsigned done;
        LinKind kind;
        unsigned key;
        char value[32];
        uint64_t version;
        LinOutcome outcome;
        char out_value[32];
        uint64_t out_version;
        int64_t call;
        /* what the client last read, to race on it as a lock or counter would */
        bool seen;
        unsigned seen_key;
        uint64_t seen_version;
} SimClient;

typedef struct SimKey {
        char value[32];
        uint64_t version;
} SimKey;

static uint64_t rng_next(uint64_t *s) {
        /* xorshift64*: deterministic, so a failure replays */
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * UINT64_C(2685821657736338717);
}

static unsigned rng_below(uint64_t *s, unsigned n) {
        return (unsigned) ((rng_next(s) >> 32) % n);
}

static void simulate(LinHistory *h, uint64_t seed, unsigned n_clients, unsigned n_ops, unsigned n_keys,
                unsigned maybe_percent) {
        _cleanup_free_ SimClient *clients = calloc(n_clients, sizeof(SimClient));
        _cleanup_free_ SimKey *keys = calloc(n_keys, sizeof(SimKey));
        uint64_t rng = seed * 2 + 1;
        unsigned finished = 0;
        int64_t now = 0;

        ck_assert_ptr_nonnull(clients);
        ck_assert_ptr_nonnull(keys);

        while (finished < n_clients) {
                SimClient *c = &clients[rng_below(&rng, n_clients)];
                SimKey *k;
                char key[16];

                if (c->done == n_ops)
                        continue;
                now += 1 + rng_below(&rng, 3);

                switch (c->phase) {
                case 0:
                        c->key = rng_below(&rng, n_keys);
                        c->call = now;
                        if (c->seen && c->seen_key == c->key && rng_below(&rng, 100) < 80) {
                                c->kind = LIN_PUT;
                                c->version = c->seen_version;
                        } else if (rng_below(&rng, 100) < 10) {
                                c->kind = LIN_PUT;
                                c->version = rng_below(&rng, (unsigned) keys[c->key].version + 2);
                        } else
                                c->kind = LIN_GET;
                        snprintf(c->value, sizeof(c->value), "c%td-%u", c - clients, c->done);
                        c->phase = 1;
                        break;

                case 1:
                        k = &keys[c->key];
                        if (c->kind == LIN_GET) {
                                c->outcome = k->version > 0 ? LIN_OUT_OK : LIN_OUT_NOKEY;
                                strcpy(c->out_value, k->value);
                                c->out_version = k->version;
                                c->seen = true;
                                c->seen_key = c->key;
                                c->seen_version = k->version;
                        } else {
                                if (k->version == c->version) {
                                        strcpy(k->value, c->value);
                                        k->version++;
                                        c->outcome = LIN_OUT_OK;
                                } else if (k->version == 0 && c->version > 0)
                                        c->outcome = LIN_OUT_NOKEY;
                                else
                                        c->outcome = LIN_OUT_VERSION;
                                /* An unreliable network turns either answer into "maybe". */
                                if (rng_below(&rng, 100) < maybe_percent)
                                        c->outcome = LIN_OUT_MAYBE;
                                c->seen = false;
                        }
                        c->phase = 2;
                        break;

                case 2:
                        snprintf(key, sizeof(key), "key%u", c->key);
                        if (c->kind == LIN_GET)
                                ck_assert_int_eq(lin_history_add_get(h, c - clients, key, c->call, now, c->outcome,
                                                                 c->outcome == LIN_OUT_OK ? c->out_value : NULL,
                                                                 c->out_version),
                                                0);
                        else
                                put_on(h, key, c - clients, c->call, now, c->value, c->version, c->outcome);
                        c->phase = 0;
                        if (++c->done == n_ops)
                                finished++;
                        break;
                }
        }
}

/* Makes one read in the middle of h impossible: its value at one version lower. No
 * state ever has that pair, since every put writes a value of its own. */
static size_t corrupt_a_read(LinHistory *h) {
        for (size_t i = h->n_ops / 2; i < h->n_ops; i++) {
                LinOp *op = &h->ops[i];

                if (op->kind == LIN_GET && op->outcome == LIN_OUT_OK && op->out_version >= 2) {
                        op->out_version--;
                        return i;
                }
        }
        ck_abort_msg("no read to corrupt");
        return 0;
}

START_TEST(test_random_legal_one_key) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();
        LinOptions o = { .timeout_usec = 60 * USEC_PER_SEC };
        LinReport r;

        simulate(h, 1 + _i, 10, 200, 1, 20);
        ck_assert_uint_eq(h->n_ops, 2000);
        ck_assert_int_eq(lin_check(h, &o, &r), 0);
        ck_assert_msg(r.verdict == LIN_LINEARIZABLE, "seed %d: %s", 1 + _i, r.description);
        ck_assert_uint_eq(r.n_partitions, 1);
        lin_report_done(&r);
}
END_TEST

START_TEST(test_random_legal_many_keys) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();
        LinOptions o = { .timeout_usec = 60 * USEC_PER_SEC };
        LinReport r;

        simulate(h, 100 + _i, 10, 300, 4, 30);
        ck_assert_int_eq(lin_check(h, &o, &r), 0);
        ck_assert_msg(r.verdict == LIN_LINEARIZABLE, "seed %d: %s", 100 + _i, r.description);
        ck_assert_uint_eq(r.n_partitions, 4);
        lin_report_done(&r);
}
END_TEST

START_TEST(test_random_legal_contended) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();
        LinOptions o = { .timeout_usec = 60 * USEC_PER_SEC };
        LinReport r;

        /* Twice the clients and half the answers "maybe": a lot of backtracking. */
        simulate(h, 300 + _i, 20, 50, 1, 50);
        ck_assert_int_eq(lin_check(h, &o, &r), 0);
        ck_assert_msg(r.verdict == LIN_LINEARIZABLE, "seed %d: %s", 300 + _i, r.description);
        lin_report_done(&r);
}
END_TEST

START_TEST(test_random_corrupted) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();
        LinOptions o = { .timeout_usec = 60 * USEC_PER_SEC };
        LinReport r;

        simulate(h, 200 + _i, 10, 200, 1, 20);
        corrupt_a_read(h);
        ck_assert_int_eq(lin_check(h, &o, &r), 0);
        ck_assert_msg(r.verdict == LIN_ILLEGAL, "seed %d: %s", 200 + _i, r.description);
        ck_assert_uint_lt(r.longest_prefix, r.key_ops);
        lin_report_done(&r);
}
END_TEST

/* An independent, exhaustive checker for tiny histories: tries every order that
 * respects real time, with the model written out again from its definition. */

typedef struct BruteKey {
        const char *value;
        uint64_t version;
} BruteKey;

static bool brute_step(BruteKey *k, const LinOp *op) {
        if (op->kind == LIN_GET) {
                if (op->ret == LIN_NEVER)
                        return true;
                if (op->outcome == LIN_OUT_NOKEY)
                        return k->version == 0;
                return k->version > 0 && k->version == op->out_version && streq(k->value, op->out_value);
        }
        if (k->version == op->version) {
                if (op->outcome != LIN_OUT_OK && op->outcome != LIN_OUT_MAYBE)
                        return false;
                k->value = op->value;
                k->version++;
                return true;
        }
        return op->outcome == LIN_OUT_VERSION || op->outcome == LIN_OUT_MAYBE ||
                (op->outcome == LIN_OUT_NOKEY && k->version == 0 && op->version > 0);
}

/* Keys are "a" and "b", state per key, so this also checks the partitioning. */
static bool brute_force(const LinHistory *h, uint32_t placed, BruteKey keys[2]) {
        if (placed == (UINT32_C(1) << h->n_ops) - 1)
                return true;

        for (size_t i = 0; i < h->n_ops; i++) {
                const LinOp *op = &h->ops[i];
                BruteKey saved[2] = { keys[0], keys[1] };
                bool blocked = false;

                if (placed & (UINT32_C(1) << i))
                        continue;
                /* i may go next only if no unplaced operation returned before it was called. */
                for (size_t j = 0; j < h->n_ops && !blocked; j++)
                        blocked = !(placed & (UINT32_C(1) << j)) && h->ops[j].ret < op->call;
                if (blocked)
                        continue;

                if (brute_step(&keys[op->key[0] == 'b'], op) && brute_force(h, placed | UINT32_C(1) << i, keys))
                        return true;
                keys[0] = saved[0];
                keys[1] = saved[1];
        }
        return false;
}

static void random_tiny_history(LinHistory *h, uint64_t *rng) {
        static const char *const names[] = { "a", "b" };
        static const char *const values[] = { "", "x", "y" };
        unsigned n = 1 + rng_below(rng, 7);

        for (unsigned i = 0; i < n; i++) {
                const char *key = names[rng_below(rng, 2)];
                int64_t call = rng_below(rng, 12), ret = call + rng_below(rng, 6);

                if (rng_below(rng, 12) == 0)
                        ret = LIN_NEVER;
                if (rng_below(rng, 2) == 0) {
                        LinOutcome o = ret == LIN_NEVER ? LIN_OUT_MAYBE : rng_below(rng, 2);

                        ck_assert_int_eq(lin_history_add_get(h, i, key, call, ret, o, values[rng_below(rng, 3)],
                                                 rng_below(rng, 3)),
                                        0);
                } else {
                        LinOutcome o = ret == LIN_NEVER ? LIN_OUT_MAYBE : rng_below(rng, _LIN_OUT_MAX);

                        /* Mostly OK, so that some histories get far. */
                        if (ret != LIN_NEVER && rng_below(rng, 2) == 0)
                                o = LIN_OUT_OK;
                        put_on(h, key, i, call, ret, values[rng_below(rng, 3)], rng_below(rng, 3), o);
                }
        }
}

START_TEST(test_matches_brute_force) {
        uint64_t rng = 12345;
        unsigned legal = 0, illegal = 0;

        for (unsigned round = 0; round < 20000; round++) {
                _cleanup_(lin_history_freep) LinHistory *h = new_history();
                BruteKey keys[2] = {};
                _cleanup_free_ char *text = NULL;
                size_t size = 0;
                bool expected;
                LinVerdict v;
                FILE *f;

                random_tiny_history(h, &rng);
                expected = brute_force(h, 0, keys);
                v = check_history(h);
                if (v != (expected ? LIN_LINEARIZABLE : LIN_ILLEGAL)) {
                        f = open_memstream(&text, &size);
                        ck_assert_ptr_nonnull(f);
                        ck_assert_int_eq(lin_history_write(h, f), 0);
                        fclose(f);
                        ck_abort_msg("round %u: expected %s, got %s for\n%s", round,
                                expected ? "linearizable" : "illegal", lin_verdict_to_string(v), text);
                }
                if (expected)
                        legal++;
                else
                        illegal++;
        }
        /* Both answers must have been exercised for the comparison to mean much. */
        ck_assert_uint_gt(legal, 2000);
        ck_assert_uint_gt(illegal, 2000);
}
END_TEST

/* Many puts that change nothing and may go in any order, beside a read no order
 * explains: the search must try every subset of the puts before it can say no. */
static void hard_history(LinHistory *h) {
        for (unsigned i = 0; i < 48; i++) {
                char value[16];

                snprintf(value, sizeof(value), "v%u", i);
                put(h, i, 0, 1000, value, 7, LIN_OUT_VERSION);
        }
        get_ok(h, 100, 0, 1000, "ghost", 1);
}

START_TEST(test_timeout_unknown) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();
        LinOptions o = { .timeout_usec = 20 * USEC_PER_MSEC };
        LinReport r;

        hard_history(h);
        ck_assert_int_eq(lin_check(h, &o, &r), 0);
        ck_assert_int_eq(r.verdict, LIN_UNKNOWN);
        ck_assert_str_eq(r.key, "k");
        ck_assert_ptr_nonnull(strstr(r.description, "time limit"));
        lin_report_done(&r);
}
END_TEST

START_TEST(test_memory_limit_unknown) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();
        LinOptions o = { .max_memory = 4 << 20 };
        LinReport r;

        hard_history(h);
        ck_assert_int_eq(lin_check(h, &o, &r), 0);
        ck_assert_int_eq(r.verdict, LIN_UNKNOWN);
        ck_assert_ptr_nonnull(strstr(r.description, "memory limit"));
        ck_assert_uint_gt(r.memo_entries, 0);
        lin_report_done(&r);
}
END_TEST

START_TEST(test_hard_history_small_is_illegal) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* The same shape, small enough to finish: the answer is a definite no. */
        for (unsigned i = 0; i < 8; i++)
                put(h, i, 0, 1000, "v", 7, LIN_OUT_VERSION);
        get_ok(h, 100, 0, 1000, "ghost", 1);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

/* Deletes and lists. */

static void del(LinHistory *h, const char *key, int64_t client, int64_t call, int64_t ret, uint64_t version,
                LinOutcome outcome) {
        ck_assert_int_eq(lin_history_add_delete(h, client, key, version, call, ret, outcome), 0);
}

START_TEST(test_delete_sequential) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        put(h, 1, 0, 1, "a", 0, LIN_OUT_OK);
        del(h, "k", 1, 2, 3, 2, LIN_OUT_VERSION);
        /* A created key's version is not known once the history deletes: a get shows it. */
        get_ok(h, 1, 4, 5, "a", 1);
        del(h, "k", 1, 6, 7, 1, LIN_OUT_OK);
        get_nokey(h, 1, 8, 9);
        del(h, "k", 1, 10, 11, 1, LIN_OUT_NOKEY);
        put(h, 1, 12, 13, "b", 1, LIN_OUT_NOKEY);
        put(h, 1, 14, 15, "b", 0, LIN_OUT_OK);
        /* Deleted at 2: created again above it, here at 5 (other keys raised the floor). */
        get_ok(h, 1, 16, 17, "b", 5);
        put(h, 1, 18, 19, "c", 5, LIN_OUT_OK);
        get_ok(h, 1, 20, 21, "c", 6);
        ck_assert_int_eq(check_history(h), LIN_LINEARIZABLE);
}
END_TEST

START_TEST(test_delete_version_goes_back) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        put(h, 1, 0, 1, "a", 0, LIN_OUT_OK);
        get_ok(h, 1, 2, 3, "a", 1);
        put(h, 1, 4, 5, "b", 1, LIN_OUT_OK);
        del(h, "k", 1, 6, 7, 2, LIN_OUT_OK);
        put(h, 1, 8, 9, "c", 0, LIN_OUT_OK);
        /* Deleted at 3: version 3 again would let an old fencing token pass. */
        get_ok(h, 1, 10, 11, "c", 3);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_delete_stale_read) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        put(h, 1, 0, 1, "a", 0, LIN_OUT_OK);
        get_ok(h, 1, 2, 3, "a", 1);
        del(h, "k", 1, 4, 5, 1, LIN_OUT_OK);
        get_ok(h, 2, 6, 7, "a", 1);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_delete_unknown_version) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        /* After a delete elsewhere the created version is unknown: a delete naming 7 may
         * match it (then the key is gone), or not (VersionMismatch): both are legal, and a
         * maybe is either, decided by what follows. */
        del(h, "other", 9, 0, 1, 1, LIN_OUT_NOKEY);
        put(h, 1, 2, 3, "a", 0, LIN_OUT_OK);
        del(h, "k", 1, 4, 5, 7, LIN_OUT_MAYBE);
        get_nokey(h, 1, 6, 7);
        ck_assert_int_eq(check_history(h), LIN_LINEARIZABLE);

        _cleanup_(lin_history_freep) LinHistory *g = new_history();
        del(g, "other", 9, 0, 1, 1, LIN_OUT_NOKEY);
        put(g, 1, 2, 3, "a", 0, LIN_OUT_OK);
        del(g, "k", 1, 4, 5, 7, LIN_OUT_MAYBE);
        get_ok(g, 1, 6, 7, "a", 3);
        ck_assert_int_eq(check_history(g), LIN_LINEARIZABLE);

        /* A mismatch at 7 followed by a get that says 7 was the version: illegal. */
        _cleanup_(lin_history_freep) LinHistory *f = new_history();
        del(f, "other", 9, 0, 1, 1, LIN_OUT_NOKEY);
        put(f, 1, 2, 3, "a", 0, LIN_OUT_OK);
        get_ok(f, 1, 4, 5, "a", 7);
        del(f, "k", 1, 6, 7, 7, LIN_OUT_VERSION);
        ck_assert_int_eq(check_history(f), LIN_ILLEGAL);
}
END_TEST

START_TEST(test_list_entries) {
        _cleanup_(lin_history_freep) LinHistory *h = new_history();

        put(h, 1, 0, 1, "a", 0, LIN_OUT_OK);
        /* A list concurrent with an update may show either version; without values any
         * value matches. */
        put(h, 1, 2, 6, "b", 1, LIN_OUT_OK);
        ck_assert_int_eq(lin_history_add_list(h, 2, "k", 3, 4, NULL, 1), 0);
        ck_assert_int_eq(lin_history_add_list(h, 3, "k", 3, 5, "b", 2), 0);
        ck_assert_int_eq(check_history(h), LIN_LINEARIZABLE);
        /* After the update returned, version 1 is stale. */
        ck_assert_int_eq(lin_history_add_list(h, 2, "k", 7, 8, NULL, 1), 0);
        ck_assert_int_eq(check_history(h), LIN_ILLEGAL);
}
END_TEST

static Suite *lincheck_suite(void) {
        Suite *s = suite_create("lincheck");
        TCase *tc;

        tc = tcase_create("model");
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_sequential_legal);
        tcase_add_test(tc, test_sequential_two_puts_same_version);
        tcase_add_test(tc, test_sequential_wrong_version);
        tcase_add_test(tc, test_sequential_mismatch_reported_wrongly);
        tcase_add_test(tc, test_concurrent_puts_one_order);
        tcase_add_test(tc, test_concurrent_puts_wrong_final);
        tcase_add_test(tc, test_concurrent_puts_both_succeed);
        tcase_add_test(tc, test_concurrent_puts_one_loses);
        tcase_add_test(tc, test_stale_read_after_write);
        tcase_add_test(tc, test_read_concurrent_with_write);
        tcase_add_test(tc, test_reads_disagree_on_order);
        tcase_add_test(tc, test_maybe_applied);
        tcase_add_test(tc, test_maybe_applied_seen);
        tcase_add_test(tc, test_maybe_not_applied);
        tcase_add_test(tc, test_maybe_not_applied_but_seen);
        tcase_add_test(tc, test_maybe_on_a_missing_key_must_apply);
        tcase_add_test(tc, test_put_without_reply);
        tcase_add_test(tc, test_nokey_legal);
        tcase_add_test(tc, test_nokey_on_create);
        tcase_add_test(tc, test_nokey_after_create);
        tcase_add_test(tc, test_put_nokey_after_create);
        tcase_add_test(tc, test_nokey_concurrent_with_create);
        tcase_add_test(tc, test_get_never_written);
        tcase_add_test(tc, test_get_version_zero);
        tcase_add_test(tc, test_keys_independent);
        tcase_add_test(tc, test_add_rejects_inconsistent);
        tcase_add_test(tc, test_delete_sequential);
        tcase_add_test(tc, test_delete_version_goes_back);
        tcase_add_test(tc, test_delete_stale_read);
        tcase_add_test(tc, test_delete_unknown_version);
        tcase_add_test(tc, test_list_entries);
        suite_add_tcase(s, tc);

        tc = tcase_create("random");
        /* Generous: under sanitizers and valgrind the search runs many times slower. */
        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, test_random_legal_one_key, 0, 5);
        tcase_add_loop_test(tc, test_random_legal_many_keys, 0, 3);
        tcase_add_loop_test(tc, test_random_legal_contended, 0, 10);
        tcase_add_loop_test(tc, test_random_corrupted, 0, 5);
        tcase_add_test(tc, test_matches_brute_force);
        suite_add_tcase(s, tc);

        tc = tcase_create("limits");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_timeout_unknown);
        tcase_add_test(tc, test_memory_limit_unknown);
        tcase_add_test(tc, test_hard_history_small_is_illegal);
        suite_add_tcase(s, tc);

        return s;
}

int main(void) {
        SRunner *sr = srunner_create(lincheck_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
