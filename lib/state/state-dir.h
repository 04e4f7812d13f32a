/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "macro.h"

/* A daemon's state directory, held open and locked for the life of the process. Every
 * file in it is opened relative to its descriptor, without following symlinks; new files
 * are written under a temporary name (".NAME.tmp", created O_EXCL) and renamed into
 * place, and the directory is synced after the rename. The lock is an open file
 * description lock on the file "lock", which holds the pid of its owner: a second
 * process is refused with -EBUSY, while a child forked to write a snapshot shares the
 * lock of its parent. */

typedef struct StateDir StateDir;

/* Creates the directory (0700) if it does not exist and locks it. When another process
 * holds the lock, logs which one and returns -EBUSY; its pid is then in *ret_holder if
 * the lock file names one (else 0). ret_holder may be NULL. */
int state_dir_open(const char *path, StateDir **ret, pid_t *ret_holder);
/* A daemon killed while its snapshot writer runs leaves the writer holding the lock (it
 * shares its parent's) for the moment it takes to die of PR_SET_PDEATHSIG. Called before
 * state_dir_open(), this waits for that (at most 10 s): as long as the lock is held but
 * the pid in the lock file, the daemon's, is gone. */
void state_dir_wait_orphaned_lock(const char *path);
StateDir *state_dir_free(StateDir *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(StateDir *, state_dir_free);

int state_dir_fd(const StateDir *d);
const char *state_dir_path(const StateDir *d);

/* fsync() of a directory: makes creations, renames and removals in it durable. */
int state_dir_fsync(int dir_fd);

/* ".NAME.tmp", the temporary name under which NAME is written. */
char *state_tmp_name(const char *name);
/* Creates dir_fd/tmp_name for writing: O_EXCL, O_NOFOLLOW, mode 0600. Returns the fd. */
int state_file_create(int dir_fd, const char *tmp_name);
/* Renames tmp_name to name in dir_fd, then syncs the directory if sync_dir. The caller has
 * synced the file's data before, if it must survive a crash. */
int state_file_commit(int dir_fd, const char *tmp_name, const char *name, bool sync_dir);
/* Removes the temporary files a crash left behind. Returns how many. */
int state_dir_remove_tmp(int dir_fd);
/* The same for the files whose NAME starts with prefix only. */
int state_dir_remove_tmp_prefix(int dir_fd, const char *prefix);
/* The names in dir_fd that start with prefix and end with suffix, sorted. */
int state_dir_list(int dir_fd, const char *prefix, const char *suffix, char ***ret);
