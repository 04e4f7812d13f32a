/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lincheck-intern.h"
#include "lincheck-memo.h"
#include "lincheck.h"
#include "macro.h"

#define NONE UINT32_MAX

/* The value of a missing key: never compared, since a get only returns a value
 * when the version is above 0. */
#define NO_VALUE UINT32_MAX

/* How many search steps between two looks at the clock. */
#define CLOCK_EVERY 1024

/* A key's state. A key created after deletes (anywhere in the history) has a version
 * not known until an operation shows it: not pinned, only above lo. */
typedef struct State {
        uint64_t version; /* existing and pinned: its version; else 0 */
        uint64_t lo;      /* the key's last deletion: every version it had is at most this */
        uint32_t value;
        bool exists, pinned;
} State;

/* A list entry without its value matches any. */
#define ANY_VALUE (UINT32_MAX - 1)

/* An operation reduced to integers, for a cheap model step. */
typedef struct ModelOp {
        uint64_t version; /* put: expected; get ok: returned */
        uint32_t value;   /* put: written; get ok: returned */
        LinKind kind;
        LinOutcome outcome;
        int64_t call;
        size_t index; /* in the history */
} ModelOp;


/* One call or return event in porcupine's doubly linked list. */
typedef struct Entry {
        int64_t time;
        uint32_t op;    /* in the partition */
        uint32_t match; /* call: the entry of its return; return: NONE */
        uint32_t prev, next;
} Entry;

typedef struct Frame {
        uint32_t entry; /* the call linearized */
        unsigned variant; /* of model_step() */
        State state;    /* the state before it */
} Frame;

typedef enum SearchResult {
        SEARCH_OK,
        SEARCH_ILLEGAL,
        SEARCH_TIMEOUT,
        SEARCH_MEMORY,
} SearchResult;

typedef struct Search {
        const ModelOp *ops;
        size_t n;
        bool deletes;        /* the history has deletes: created versions are not known */
        int64_t deadline_ns; /* 0: none */
        uint64_t max_memory;

        /* out */
        size_t longest;
        uint32_t blocking; /* partition op, or NONE */
        uint64_t memo_entries;
} Search;

/* The state after op, if op is legal in s. A put or delete that names a version of a key
 * whose version is not pinned has two variants: 0 (it matches) and 1 (it does not). */
static bool model_step(State s, const ModelOp *op, unsigned variant, bool deletes, State *ret) {
        bool match;

        *ret = s;

        if (op->kind == LIN_GET || op->kind == LIN_LIST) {
                if (variant > 0)
                        return false;
                if (op->outcome == LIN_OUT_NOKEY)
                        return !s.exists;
                /* ok; gets without a reply are dropped before the search */
                if (!s.exists || op->version == 0 || (op->value != ANY_VALUE && op->value != s.value))
                        return false;
                if (s.pinned)
                        return op->version == s.version;
                if (op->version <= s.lo)
                        return false;
                ret->pinned = true;
                ret->version = op->version;
                return true;
        }

        if (s.exists && !s.pinned && op->version > 0) {
                /* Matches if the unknown version is op's, which must then be above lo. */
                if (variant > 1 || (variant == 0 && op->version <= s.lo))
                        return false;
                match = variant == 0;
        } else {
                if (variant > 0)
                        return false;
                match = s.exists ? s.pinned && op->version == s.version
                                 : op->kind == LIN_PUT && op->version == 0;
        }

        if (match) {
                if (op->outcome != LIN_OUT_OK && op->outcome != LIN_OUT_MAYBE)
                        return false;
                if (op->kind == LIN_DELETE)
                        *ret = (State) { .lo = op->version + 1, .value = NO_VALUE };
                else if (!s.exists)
                        /* Without deletes in the history, nothing raised the floor: 1. */
                        *ret = (State) {
                                .exists = true,
                                .pinned = !deletes,
                                .version = deletes ? 0 : s.lo + 1,
                                .lo = s.lo,
                                .value = op->value,
                        };
                else
                        *ret = (State) {
                                .exists = true,
                                .pinned = true,
                                .version = op->version + 1,
                                .lo = s.lo,
                                .value = op->value,
                        };
                return true;
        }
        switch (op->outcome) {
        case LIN_OUT_VERSION:
                return s.exists || op->kind == LIN_PUT;
        case LIN_OUT_MAYBE:
                return true;
        case LIN_OUT_NOKEY:
                return !s.exists && (op->kind == LIN_DELETE || op->version > 0);
        default:
                return false;
        }
}

/* The state as the memo keeps it: one word for what is known of the version. */
static uint64_t state_word(State s) {
        if (!s.exists)
                return s.lo | UINT64_C(1) << 62;
        if (!s.pinned)
                return s.lo | UINT64_C(1) << 63;
        return s.version;
}

static uint64_t mix64(uint64_t x) {
        /* splitmix64's finalizer */
        x ^= x >> 30;
        x *= UINT64_C(0xbf58476d1ce4e5b9);
        x ^= x >> 27;
        x *= UINT64_C(0x94d049bb133111eb);
        x ^= x >> 31;
        return x;
}

/* Zobrist hashing: the hash of a set of operations is the XOR of one random word
 * per member, so adding or removing one costs O(1) instead of hashing the bitset. */
static uint64_t op_key(uint32_t op) {
        return mix64((uint64_t) op * UINT64_C(0x9e3779b97f4a7c15) + UINT64_C(0x6a09e667f3bcc909));
}

static uint64_t config_hash(uint64_t set_hash, State s) {
        return mix64(set_hash ^ mix64(state_word(s) * UINT64_C(0x9e3779b97f4a7c15) + s.value));
}

static int64_t now_ns(void) {
        return lin_now_ns();
}

static int memo_add(Memo *memo, const OpSet *set, uint64_t set_hash, State s) {
        return memo_insert(memo, config_hash(set_hash, s), state_word(s), s.value, set);
}

typedef struct Event {
        int64_t time;
        uint32_t op;
        bool is_call;
} Event;

static int event_compare(const void *a, const void *b) {
        const Event *x = a, *y = b;

        if (x->time != y->time)
                return x->time < y->time ? -1 : 1;
        /* At the same instant a call comes first: the two operations are then taken
         * as concurrent, which never rejects a history that has a legal order. */
        if (x->is_call != y->is_call)
                return x->is_call ? -1 : 1;
        return x->op < y->op ? -1 : x->op > y->op;
}

/* Builds the list: entry 0 is the head, 2n + 1 the tail, events in between. */
static int make_entries(const LinHistory *h, const ModelOp *ops, size_t n, Entry **ret) {
        _cleanup_free_ Event *events = NULL;
        _cleanup_free_ uint32_t *ret_pos = NULL;
        _cleanup_free_ Entry *entries = NULL;

        events = calloc(2 * n, sizeof(Event));
        ret_pos = calloc(n, sizeof(uint32_t));
        entries = calloc(2 * n + 2, sizeof(Entry));
        if (!events || !ret_pos || !entries)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                const LinOp *op = &h->ops[ops[i].index];

                events[2 * i] = (Event) { .time = op->call, .op = (uint32_t) i, .is_call = true };
                events[2 * i + 1] = (Event) { .time = op->ret, .op = (uint32_t) i, .is_call = false };
        }
        qsort(events, 2 * n, sizeof(Event), event_compare);

        for (size_t i = 0; i < 2 * n; i++)
                if (!events[i].is_call)
                        ret_pos[events[i].op] = (uint32_t) i + 1;

        for (size_t i = 0; i < 2 * n + 2; i++)
                entries[i] = (Entry) {
                        .prev = i == 0 ? NONE : (uint32_t) i - 1,
                        .next = i == 2 * n + 1 ? NONE : (uint32_t) i + 1,
                        .match = NONE,
                        .op = NONE,
                };
        for (size_t i = 0; i < 2 * n; i++) {
                Entry *e = &entries[i + 1];

                e->time = events[i].time;
                e->op = events[i].op;
                if (events[i].is_call)
                        e->match = ret_pos[events[i].op];
        }

        *ret = TAKE_PTR(entries);
        return 0;
}

/* Takes a linearized call and its return out of the list. */
static void lift(Entry *entries, uint32_t call) {
        Entry *c = &entries[call], *r = &entries[c->match];

        entries[c->prev].next = c->next;
        entries[c->next].prev = c->prev;
        entries[r->prev].next = r->next;
        entries[r->next].prev = r->prev;
}

/* Undoes lift(), in the reverse order. */
static void unlift(Entry *entries, uint32_t call) {
        Entry *c = &entries[call], *r = &entries[c->match];

        entries[r->prev].next = c->match;
        entries[r->next].prev = c->match;
        entries[c->prev].next = call;
        entries[c->next].prev = call;
}

/* Wing & Gong's search with Lowe's memo, as in porcupine's checkSingle(). */
static int search(const LinHistory *h, Search *s, SearchResult *ret) {
        _cleanup_free_ Entry *entries = NULL;
        _cleanup_free_ Frame *stack = NULL;
        _cleanup_(opset_done) OpSet set = {};
        State state = { .value = NO_VALUE };
        uint64_t set_hash = 0, steps = 0;
        unsigned variant = 0;
        uint32_t head = 0, tail, cur;
        size_t depth = 0, blocking_depth = SIZE_MAX;
        Memo memo;
        int r;

        s->longest = 0;
        s->blocking = NONE;
        s->memo_entries = 0;
        if (s->n == 0) {
                *ret = SEARCH_OK;
                return 0;
        }

        r = make_entries(h, s->ops, s->n, &entries);
        if (r < 0)
                return r;
        tail = (uint32_t) (2 * s->n + 1);
        stack = calloc(s->n, sizeof(Frame));
        if (!stack)
                return -ENOMEM;
        r = opset_init(&set, s->n);
        if (r < 0)
                return r;
        memo_init(&memo, s->max_memory);

        cur = entries[head].next;
        while (entries[head].next != tail) {
                Entry *e = &entries[cur];

                if (s->deadline_ns > 0 && ++steps % CLOCK_EVERY == 0 && now_ns() >= s->deadline_ns) {
                        *ret = SEARCH_TIMEOUT;
                        goto finish;
                }

                if (e->match != NONE) {
                        uint64_t next_hash = set_hash ^ op_key(e->op);
                        State next;

                        for (; variant < 2; variant++) {
                                if (!model_step(state, &s->ops[e->op], variant, s->deletes, &next))
                                        continue;
                                opset_add(&set, e->op);
                                r = memo_add(&memo, &set, next_hash, next);
                                if (r == -ENOSPC) {
                                        *ret = SEARCH_MEMORY;
                                        r = 0;
                                        goto finish;
                                }
                                if (r < 0)
                                        goto finish;
                                if (r > 0)
                                        break;
                                opset_remove(&set, e->op);
                        }
                        if (variant < 2) {
                                stack[depth++] = (Frame) { .entry = cur, .variant = variant, .state = state };
                                state = next;
                                set_hash = next_hash;
                                lift(entries, cur);
                                cur = entries[head].next;
                                variant = 0;
                                if (depth > s->longest)
                                        s->longest = depth;
                                continue;
                        }
                        variant = 0;
                        cur = e->next;
                        continue;
                }

                /* A return whose call could not be placed: every order with the
                 * operations linearized so far fails, so undo the last one. */
                if (depth == s->longest && blocking_depth != depth) {
                        s->blocking = e->op;
                        blocking_depth = depth;
                }
                if (depth == 0) {
                        *ret = SEARCH_ILLEGAL;
                        goto finish;
                }
                depth--;
                state = stack[depth].state;
                cur = stack[depth].entry;
                opset_remove(&set, entries[cur].op);
                set_hash ^= op_key(entries[cur].op);
                unlift(entries, cur);
                /* Its other variant, if any, before the operations after it. */
                variant = stack[depth].variant + 1;
        }
        *ret = SEARCH_OK;
        r = 0;

finish:
        s->memo_entries = memo.n_entries;
        memo_done(&memo);
        return r < 0 ? r : 0;
}

typedef struct Partition {
        uint32_t key;
        size_t n, start;
} Partition;

static int model_op_compare(const void *a, const void *b) {
        const ModelOp *x = a, *y = b;

        if (x->call != y->call)
                return x->call < y->call ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

static int partition_compare(const void *a, const void *b) {
        const Partition *x = a, *y = b;

        /* Small keys first: they finish fast, so an illegal one is found before a
         * big one uses up the time limit. */
        if (x->n != y->n)
                return x->n < y->n ? -1 : 1;
        return x->key < y->key ? -1 : x->key > y->key;
}

/* A short, printable rendering of a string for a one-line report. */
static void quote(FILE *f, const char *s) {
        size_t n = strlen(s);

        fputc('"', f);
        for (size_t i = 0; i < MIN(n, (size_t) 40); i++) {
                unsigned char c = s[i];

                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c < 0x20 || c == 0x7f)
                        fprintf(f, "\\x%02x", c);
                else
                        fputc(c, f);
        }
        fputs(n > 40 ? "\"..." : "\"", f);
}

static void describe_op(FILE *f, const LinOp *op) {
        fprintf(f, "client %" PRIi64 " ", op->client);
        if (op->kind == LIN_PUT) {
                fputs("put(", f);
                quote(f, op->value);
                fprintf(f, ", %" PRIu64 ")", op->version);
        } else if (op->kind == LIN_DELETE)
                fprintf(f, "delete(%" PRIu64 ")", op->version);
        else
                fputs(op->kind == LIN_LIST ? "list" : "get", f);
        fprintf(f, " -> %s", lin_outcome_to_string(op->outcome));
        if ((op->kind == LIN_GET || op->kind == LIN_LIST) && op->outcome == LIN_OUT_OK) {
                fputc('(', f);
                if (op->out_value)
                        quote(f, op->out_value);
                else
                        fputs("any", f);
                fprintf(f, ", %" PRIu64 ")", op->out_version);
        }
        fprintf(f, " [call %" PRIi64 ", return ", op->call);
        if (op->ret == LIN_NEVER)
                fputs("never]", f);
        else
                fprintf(f, "%" PRIi64 "]", op->ret);
        if (op->line > 0)
                fprintf(f, " (line %u)", op->line);
}

static int describe(const LinHistory *h, const LinOptions *o, const LinReport *rep, SearchResult result,
                const char *key, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;

        switch (result) {
        case SEARCH_ILLEGAL:
                fputs("key ", f);
                quote(f, key);
                fprintf(f, ": at most %zu of its %zu operations linearize", rep->longest_prefix, rep->key_ops);
                if (rep->blocking_op != (size_t) -1) {
                        fputs("; then no order places ", f);
                        describe_op(f, &h->ops[rep->blocking_op]);
                }
                break;
        case SEARCH_TIMEOUT:
                fprintf(f, "time limit of %.3f s reached on key ", (double) o->timeout_usec / 1e6);
                quote(f, key);
                fprintf(f, " (%zu operations)", rep->key_ops);
                break;
        case SEARCH_MEMORY:
                fprintf(f, "memory limit of %" PRIu64 " MiB reached on key ", o->max_memory >> 20);
                quote(f, key);
                fprintf(f, " (%zu operations)", rep->key_ops);
                break;
        default:
                assert(false);
        }

        if (fclose(f) != 0 || !buf)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

void lin_report_done(LinReport *r) {
        if (!r)
                return;
        free(r->key);
        free(r->description);
        *r = (LinReport) { .blocking_op = (size_t) -1 };
}

const char *lin_verdict_to_string(LinVerdict v) {
        switch (v) {
        case LIN_LINEARIZABLE:
                return "linearizable";
        case LIN_ILLEGAL:
                return "not linearizable";
        case LIN_UNKNOWN:
                return "unknown";
        }
        return NULL;
}

int lin_check(const LinHistory *h, const LinOptions *options, LinReport *ret) {
        static const LinOptions no_options = {};
        const LinOptions *o = options ?: &no_options;
        _cleanup_free_ ModelOp *ops = NULL;
        _cleanup_free_ uint32_t *key_of = NULL;
        _cleanup_free_ Partition *parts = NULL;
        _cleanup_free_ uint32_t *part_of_key = NULL;
        Interner keys, values;
        LinReport rep = { .verdict = LIN_LINEARIZABLE, .blocking_op = (size_t) -1 };
        int64_t start = now_ns();
        size_t n = 0, n_parts = 0;
        bool deletes = false;
        int r;

        assert(h);
        assert(ret);

        interner_init(&keys);
        interner_init(&values);

        key_of = calloc(MAX(h->n_ops, (size_t) 1), sizeof(uint32_t));
        ops = calloc(MAX(h->n_ops, (size_t) 1), sizeof(ModelOp));
        if (!key_of || !ops) {
                r = -ENOMEM;
                goto finish;
        }

        /* Count the operations of each key, then place them in key order. */
        for (size_t i = 0; i < h->n_ops; i++) {
                const LinOp *op = &h->ops[i];

                /* A get never answered returns nothing to check. */
                if (op->kind == LIN_GET && op->ret == LIN_NEVER) {
                        key_of[i] = NONE;
                        continue;
                }
                r = interner_intern(&keys, op->key, &key_of[i]);
                if (r < 0)
                        goto finish;
                n++;
        }
        if (n > NONE / 2 - 1) {
                r = -E2BIG;
                goto finish;
        }

        n_parts = keys.n;
        parts = calloc(MAX(n_parts, (size_t) 1), sizeof(Partition));
        part_of_key = calloc(MAX(n_parts, (size_t) 1), sizeof(uint32_t));
        if (!parts || !part_of_key) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t k = 0; k < n_parts; k++)
                parts[k].key = (uint32_t) k;
        for (size_t i = 0; i < h->n_ops; i++)
                if (key_of[i] != NONE)
                        parts[key_of[i]].n++;
        for (size_t k = 0, start_at = 0; k < n_parts; k++) {
                parts[k].start = start_at;
                start_at += parts[k].n;
                parts[k].n = 0;
        }
        for (size_t i = 0; i < h->n_ops; i++) {
                const LinOp *op = &h->ops[i];
                Partition *p;
                ModelOp *m;

                if (key_of[i] == NONE)
                        continue;
                p = &parts[key_of[i]];
                m = &ops[p->start + p->n++];
                *m = (ModelOp) {
                        .kind = op->kind,
                        .outcome = op->outcome,
                        .call = op->call,
                        .index = i,
                        .value = NO_VALUE,
                };
                if (op->kind == LIN_PUT) {
                        m->version = op->version;
                        r = interner_intern(&values, op->value, &m->value);
                } else if (op->kind == LIN_DELETE) {
                        m->version = op->version;
                        r = 0;
                } else if (op->kind == LIN_LIST && !op->out_value) {
                        m->version = op->out_version;
                        m->value = ANY_VALUE;
                        r = 0;
                } else if (op->outcome == LIN_OUT_OK) {
                        m->version = op->out_version;
                        r = interner_intern(&values, op->out_value, &m->value);
                } else
                        r = 0;
                if (r < 0)
                        goto finish;
        }
        /* Number each key's operations by call time, which keeps memo entries short. */
        for (size_t k = 0; k < n_parts; k++)
                qsort(ops + parts[k].start, parts[k].n, sizeof(ModelOp), model_op_compare);
        qsort(parts, n_parts, sizeof(Partition), partition_compare);

        for (size_t i = 0; i < h->n_ops; i++)
                if (h->ops[i].kind == LIN_DELETE)
                        deletes = true;
        rep.n_ops = n;
        rep.n_partitions = n_parts;
        r = 0;

        for (size_t k = 0; k < n_parts; k++) {
                Search s = {
                        .ops = ops + parts[k].start,
                        .n = parts[k].n,
                        .deletes = deletes,
                        .max_memory = o->max_memory,
                        .deadline_ns = o->timeout_usec > 0 ? start + (int64_t) o->timeout_usec * 1000 : 0,
                };
                SearchResult result;

                r = search(h, &s, &result);
                if (r < 0)
                        goto finish;
                rep.memo_entries += s.memo_entries;
                if (result == SEARCH_OK)
                        continue;

                rep.key = strdup(interner_string(&keys, parts[k].key));
                if (!rep.key) {
                        r = -ENOMEM;
                        goto finish;
                }
                rep.key_ops = s.n;
                if (result == SEARCH_ILLEGAL) {
                        rep.verdict = LIN_ILLEGAL;
                        rep.longest_prefix = s.longest;
                        if (s.blocking != NONE)
                                rep.blocking_op = s.ops[s.blocking].index;
                } else
                        rep.verdict = LIN_UNKNOWN;
                r = describe(h, o, &rep, result, rep.key, &rep.description);
                if (r < 0)
                        goto finish;
                /* A time or memory limit ends the whole check: the deadline is
                 * shared, and what ran out for one key would for the next. */
                break;
        }

        rep.usec = (uint64_t) (now_ns() - start) / 1000;
        *ret = rep;
        rep = (LinReport) {};

finish:
        lin_report_done(&rep);
        interner_done(&keys);
        interner_done(&values);
        return r;
}
