/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>

#include "commit.h"
#include "macro.h"
#include "mr-files.h"

void remove_attempt_output(const Job *j, const Task *t, unsigned attempt) {
        char name[MR_NAME_MAX];
        _cleanup_close_ int dfd = open(j->workdir, O_DIRECTORY | O_CLOEXEC);

        if (dfd < 0)
                return;
        if (t->kind == TASK_MAP)
                for (unsigned r = 0; r < j->nreduce; r++) {
                        mr_map_temp_name(name, j->id, t->index, attempt, r);
                        (void) unlinkat(dfd, name, 0);
                }
        else {
                mr_reduce_temp_name(name, j->id, t->index, attempt);
                (void) unlinkat(dfd, name, 0);
        }
}

int commit_attempt_output(const Job *j, const Task *t, unsigned attempt) {
        char from[MR_NAME_MAX], to[MR_NAME_MAX];
        _cleanup_close_ int dfd = open(j->workdir, O_DIRECTORY | O_CLOEXEC);

        if (dfd < 0)
                return -errno;

        if (t->kind == TASK_REDUCE) {
                mr_reduce_temp_name(from, j->id, t->index, attempt);
                mr_output_name(to, t->index);
                return renameat(dfd, from, dfd, to) < 0 ? -errno : 0;
        }

        /* Check every file first, so a map attempt is committed whole or not at all. */
        for (unsigned r = 0; r < j->nreduce; r++) {
                mr_map_temp_name(from, j->id, t->index, attempt, r);
                if (faccessat(dfd, from, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
        }
        for (unsigned r = 0; r < j->nreduce; r++) {
                mr_map_temp_name(from, j->id, t->index, attempt, r);
                mr_intermediate_name(to, t->index, r);
                if (renameat(dfd, from, dfd, to) < 0)
                        return -errno;
        }
        return 0;
}
