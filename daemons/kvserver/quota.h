/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Per-uid accounting of keys and bytes (key plus value) in the key/value store: each key
 * is charged to the uid that last wrote it. A write that would take its uid past a bound
 * is refused with -EDQUOT; a write that adds nothing to a measure (an overwrite with a
 * value no longer than the old one) is never refused on it. Root (uid 0) is counted but
 * never refused: it is the administrator, and owns what older state files hold. Knows
 * nothing of connections: the caller says which uid writes. */

typedef struct Quota Quota;

typedef struct QuotaLimits {
        uint64_t keys;          /* per uid; 0: no bound */
        uint64_t bytes;         /* per uid; 0: no bound */
} QuotaLimits;

/* Generous defaults: a bound against one user filling the server, not a budget. */
#define QUOTA_DEFAULT_KEYS 1000000U
#define QUOTA_DEFAULT_BYTES (1024ULL << 20)

int quota_new(const QuotaLimits *limits, Quota **ret);
Quota *quota_free(Quota *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(Quota *, quota_free);

/* 0, or -EDQUOT if uid may not add keys and bytes (either may be negative: freed). */
int quota_check(const Quota *q, uint32_t uid, int64_t keys, int64_t bytes);
/* Adds (or, negative, removes) keys and bytes to uid's account. 0 or -ENOMEM. */
int quota_charge(Quota *q, uint32_t uid, int64_t keys, int64_t bytes);

/* What a write moves between accounts: the key, with its bytes, from its old owner (if
 * it existed) to its writer. */
typedef struct QuotaMove {
        uint32_t uid, old_uid;
        bool existed;
        uint64_t bytes, old_bytes;
} QuotaMove;

/* 0, or -EDQUOT if the move takes its writer past a bound. */
int quota_check_move(const Quota *q, const QuotaMove *m);
/* Makes room for the writer's account: after that, quota_move() cannot fail. */
int quota_prepare_move(Quota *q, const QuotaMove *m);
/* Applies a prepared move, or with undo takes it back (a write that failed). */
void quota_move(Quota *q, const QuotaMove *m, bool undo);

/* uid's account (zeros for a uid never charged). */
void quota_get(const Quota *q, uint32_t uid, uint64_t *ret_keys, uint64_t *ret_bytes);
const QuotaLimits *quota_limits(const Quota *q);
size_t quota_n_uids(const Quota *q);          /* uids holding at least one key */
uint64_t quota_refused(const Quota *q);       /* writes refused since start */
void quota_count_refused(Quota *q);
