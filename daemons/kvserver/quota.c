/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "quota.h"

typedef struct Account {
        uint32_t uid;
        uint64_t keys, bytes;
} Account;

struct Quota {
        QuotaLimits limits;
        Account *accounts;      /* sorted by uid: few uids write, lookups are per Put */
        size_t n_accounts, allocated;
        uint64_t refused;
};

int quota_new(const QuotaLimits *limits, Quota **ret) {
        Quota *q;

        assert(limits);
        assert(ret);

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->limits = *limits;
        *ret = q;
        return 0;
}

Quota *quota_free(Quota *q) {
        if (!q)
                return NULL;
        free(q->accounts);
        return mfree(q);
}

/* The index of uid's account, or where it would be inserted. */
static size_t account_index(const Quota *q, uint32_t uid) {
        size_t lo = 0, hi = q->n_accounts;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (q->accounts[mid].uid < uid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static const Account *account_find(const Quota *q, uint32_t uid) {
        size_t i = account_index(q, uid);

        return i < q->n_accounts && q->accounts[i].uid == uid ? &q->accounts[i] : NULL;
}

static bool over(uint64_t used, int64_t add, uint64_t max) {
        return max > 0 && add > 0 && used + (uint64_t) add > max;
}

int quota_check(const Quota *q, uint32_t uid, int64_t keys, int64_t bytes) {
        const Account *a;

        assert(q);

        if (uid == 0)
                return 0;
        a = account_find(q, uid);
        if (over(a ? a->keys : 0, keys, q->limits.keys) || over(a ? a->bytes : 0, bytes, q->limits.bytes))
                return -EDQUOT;
        return 0;
}

static uint64_t add_clamped(uint64_t v, int64_t d) {
        if (d < 0)
                return (uint64_t) -d > v ? 0 : v - (uint64_t) -d;
        return v + (uint64_t) d;
}

int quota_charge(Quota *q, uint32_t uid, int64_t keys, int64_t bytes) {
        size_t i;

        assert(q);

        i = account_index(q, uid);
        if (i == q->n_accounts || q->accounts[i].uid != uid) {
                if (q->n_accounts == q->allocated) {
                        size_t a = MAX(q->allocated * 2, (size_t) 8);
                        Account *p = reallocarray(q->accounts, a, sizeof(Account));
                        if (!p)
                                return -ENOMEM;
                        q->accounts = p;
                        q->allocated = a;
                }
                memmove(q->accounts + i + 1, q->accounts + i, (q->n_accounts - i) * sizeof(Account));
                q->accounts[i] = (Account) { .uid = uid };
                q->n_accounts++;
        }
        q->accounts[i].keys = add_clamped(q->accounts[i].keys, keys);
        q->accounts[i].bytes = add_clamped(q->accounts[i].bytes, bytes);
        return 0;
}

static int64_t i64(uint64_t v) {
        return v > INT64_MAX ? INT64_MAX : (int64_t) v;
}

int quota_check_move(const Quota *q, const QuotaMove *m) {
        if (m->existed && m->old_uid == m->uid)
                return quota_check(q, m->uid, 0, i64(m->bytes) - i64(m->old_bytes));
        return quota_check(q, m->uid, 1, i64(m->bytes));
}

int quota_prepare_move(Quota *q, const QuotaMove *m) {
        return quota_charge(q, m->uid, 0, 0);
}

void quota_move(Quota *q, const QuotaMove *m, bool undo) {
        int sign = undo ? -1 : 1;

        /* Neither allocates: the writer's account was prepared, the old owner's exists. */
        if (m->existed && m->old_uid == m->uid) {
                /* Most Puts: one account, whose key count stays. */
                (void) quota_charge(q, m->uid, 0, sign * (i64(m->bytes) - i64(m->old_bytes)));
                return;
        }
        (void) quota_charge(q, m->uid, sign, sign * i64(m->bytes));
        if (m->existed)
                (void) quota_charge(q, m->old_uid, -sign, -sign * i64(m->old_bytes));
}

void quota_get(const Quota *q, uint32_t uid, uint64_t *ret_keys, uint64_t *ret_bytes) {
        const Account *a = account_find(q, uid);

        if (ret_keys)
                *ret_keys = a ? a->keys : 0;
        if (ret_bytes)
                *ret_bytes = a ? a->bytes : 0;
}

const QuotaLimits *quota_limits(const Quota *q) {
        return &q->limits;
}

size_t quota_n_uids(const Quota *q) {
        size_t n = 0;

        for (size_t i = 0; i < q->n_accounts; i++)
                n += q->accounts[i].keys > 0;
        return n;
}

uint64_t quota_refused(const Quota *q) {
        return q->refused;
}

void quota_count_refused(Quota *q) {
        q->refused++;
}
