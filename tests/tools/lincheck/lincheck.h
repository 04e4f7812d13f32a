/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A linearizability checker for mrkv's versioned key/value model (MIT 6.5840 kvsrv1),
 * with the algorithm of porcupine (Wing & Gong, with Lowe's memoization): histories
 * are split by key, and each key's operations are searched for a sequential order that
 * respects real time and the model.
 *
 * Model, per key: state (value, version); a missing key is ("", 0).
 *   get -> ok(value, version): legal iff version > 0 and both equal the state.
 *   get -> nokey:              legal iff the state's version is 0.
 *   put(value, version), when version == state version: ok or maybe; state becomes
 *                               (value, version + 1).
 *   put(value, version), otherwise: version or maybe, or nokey when the state's version
 *                               is 0 and version > 0; state unchanged.
 *   delete(version), when the key exists at version: ok or maybe; the key is missing,
 *                               deleted at version + 1.
 *   delete(version), otherwise: nokey (missing key) or version, or maybe; unchanged.
 *   list -> ok(version[, value]): an entry of a List page, a get of that key that
 *                               returned its version (and value, when asked for).
 * So "maybe" is decided by the state at the point where the put is linearized.
 *
 * Versions never go back: a key created again starts above the version it was deleted
 * at, but where exactly depends on the deletions of all keys (mrkv's deletion floor).
 * So in a history with deletes a created key's version is unknown, above its last
 * deletion, until an operation shows it (a get that returns it, a put or delete that
 * names it and succeeds); a put or delete that names a version not yet known is tried
 * both as matching and as not. Without deletes a key is created at version 1. */

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

/* The return time of an operation whose reply was never seen (a crashed client, a
 * test that gave up): it may take effect at any point after its call. */
#define LIN_NEVER INT64_MAX

typedef enum LinKind {
        LIN_GET,
        LIN_PUT,
        LIN_DELETE,
        LIN_LIST,
} LinKind;

typedef enum LinOutcome {
        LIN_OUT_OK,
        LIN_OUT_NOKEY,
        LIN_OUT_VERSION, /* VersionMismatch */
        LIN_OUT_MAYBE,
        _LIN_OUT_MAX,
} LinOutcome;

typedef struct LinOp {
        int64_t client;
        LinKind kind;
        char *key;
        char *value;      /* put: the value written */
        uint64_t version; /* put, delete: the version it is conditional on */
        LinOutcome outcome;
        char *out_value;      /* get that returned ok; list: NULL unless values were asked for */
        uint64_t out_version; /* get that returned ok, list */
        int64_t call, ret;    /* nanoseconds on one clock; ret may be LIN_NEVER */
        unsigned line;        /* line in the file it was parsed from, 0 if none */
} LinOp;

typedef struct LinHistory {
        LinOp *ops;
        size_t n_ops, allocated;
        /* Recording clients are usually threads; appends take this lock. */
        pthread_mutex_t lock;
} LinHistory;

LinHistory *lin_history_new(void);
LinHistory *lin_history_free(LinHistory *h);

static inline void lin_history_freep(LinHistory **h) {
        if (*h)
                *h = lin_history_free(*h);
}

/* Appends a copy of op (strings are duplicated). Safe to call from several threads.
 * Returns 0, -EINVAL for an inconsistent op, or -ENOMEM. */
int lin_history_add(LinHistory *h, const LinOp *op);
int lin_history_add_get(LinHistory *h, int64_t client, const char *key, int64_t call, int64_t ret,
                LinOutcome outcome, const char *out_value, uint64_t out_version);
int lin_history_add_put(LinHistory *h, int64_t client, const char *key, const char *value, uint64_t version,
                int64_t call, int64_t ret, LinOutcome outcome);
int lin_history_add_delete(LinHistory *h, int64_t client, const char *key, uint64_t version, int64_t call,
                           int64_t ret, LinOutcome outcome);
/* One entry of a List page: key at out_version (with out_value, or NULL). */
int lin_history_add_list(LinHistory *h, int64_t client, const char *key, int64_t call, int64_t ret,
                         const char *out_value, uint64_t out_version);

/* JSON Lines, one operation per line:
 *   {"client":1,"op":"get"|"put"|"delete"|"list","key":"k","value":"v","version":3,"call":123,
 *    "return":456,"result":"ok"|"nokey"|"version"|"maybe","out_value":"v","out_version":3}
 * "value"/"version" are required for put, "version" for delete, "out_value"/"out_version"
 * for a get that returned ok, "out_version" for a list entry (result ok, a return). A missing or null "return" means no reply was seen; such a put must
 * have result "maybe" (or none). Blank lines are skipped, unknown fields ignored.
 * On a bad line returns -EBADMSG and, if ret_error, a message naming the line. */
int lin_history_parse(LinHistory *h, FILE *f, char **ret_error);
/* Reads a file ("-" for stdin). Returns -errno from open with a message too. */
int lin_history_load(const char *path, LinHistory **ret, char **ret_error);

/* Writes the format above, one line per operation, in the history's order. */
int lin_history_write(const LinHistory *h, FILE *f);
int lin_history_save(const LinHistory *h, const char *path);

/* CLOCK_MONOTONIC in nanoseconds, the clock for call and return times. */
int64_t lin_now_ns(void);

const char *lin_outcome_to_string(LinOutcome o);
int lin_outcome_from_string(const char *s); /* a LinOutcome or -EINVAL */

typedef enum LinVerdict {
        LIN_LINEARIZABLE,
        LIN_ILLEGAL,
        LIN_UNKNOWN, /* the time or memory limit was hit first */
} LinVerdict;

typedef struct LinOptions {
        uint64_t timeout_usec; /* for the whole check; 0: none */
        uint64_t max_memory;   /* bytes of search memo per key; 0: none */
} LinOptions;

typedef struct LinReport {
        LinVerdict verdict;
        size_t n_ops;        /* operations checked (gets without a reply constrain nothing and are dropped) */
        size_t n_partitions; /* distinct keys */
        uint64_t usec;       /* time the check took */
        uint64_t memo_entries;

        /* LIN_ILLEGAL: the first key found not linearizable. */
        char *key;
        size_t key_ops;        /* operations on that key */
        size_t longest_prefix; /* most of them ever placed in a legal order */
        /* Index in the history of an operation that could not be placed after that
         * order; (size_t) -1 if none was recorded. A hint, not a unique culprit. */
        size_t blocking_op;

        /* One line for LIN_ILLEGAL and LIN_UNKNOWN, NULL for LIN_LINEARIZABLE. */
        char *description;
} LinReport;

void lin_report_done(LinReport *r);

const char *lin_verdict_to_string(LinVerdict v);

/* Checks h (not modified; callers must have stopped appending). options may be NULL.
 * Returns 0 with *ret filled (release with lin_report_done()), or -ENOMEM. */
int lin_check(const LinHistory *h, const LinOptions *options, LinReport *ret);
