/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lock verb: runs a command while holding a distributed lock, like flock(1). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mrkv/lock.h>

#include "log.h"
#include "macro.h"
#include "mrkvctl.h"
#include "parse-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(mrkv_clerk *, mrkv_clerk_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(mrkv_lock *, mrkv_lock_free);

static volatile sig_atomic_t child_pid = 0;

/* SIGTERM and SIGHUP are meant for the whole job: pass them on, and stay alive to
 * release the lock once the command has gone. */
static void forward_signal(int sig) {
        pid_t pid = child_pid;

        if (pid > 0)
                (void) kill(pid, sig);
}

static int run_command(char *argv[]) {
        static const int ignored[] = { SIGINT, SIGQUIT }, forwarded[] = { SIGTERM, SIGHUP };
        struct sigaction ign = { .sa_handler = SIG_IGN }, fwd = { .sa_handler = forward_signal };
        struct sigaction saved[ELEMENTSOF(ignored) + ELEMENTSOF(forwarded)];
        sigset_t block, old;
        int status;
        pid_t pid;

        /* Hold the forwarded signals until child_pid is set, so none is lost in between. */
        sigemptyset(&block);
        for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
                sigaddset(&block, forwarded[i]);
        sigprocmask(SIG_BLOCK, &block, &old);

        for (size_t i = 0; i < ELEMENTSOF(ignored); i++)
                sigaction(ignored[i], &ign, &saved[i]);
        sigemptyset(&fwd.sa_mask);
        fwd.sa_flags = SA_RESTART;
        for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
                sigaction(forwarded[i], &fwd, &saved[ELEMENTSOF(ignored) + i]);

        fflush(NULL);
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                sigprocmask(SIG_SETMASK, &old, NULL);
                return log_error_errno(r, "Failed to fork: %m");
        }
        if (pid == 0) {
                /* The command gets the signal dispositions and mask mrkvctl was started with. */
                for (size_t i = 0; i < ELEMENTSOF(saved); i++)
                        sigaction(i < ELEMENTSOF(ignored) ? ignored[i] : forwarded[i - ELEMENTSOF(ignored)],
                                  &saved[i], NULL);
                sigprocmask(SIG_SETMASK, &old, NULL);
                execvp(argv[0], argv);
                int e = errno;
                log_error_errno(e, "Failed to run %s: %m", argv[0]);
                _exit(e == ENOENT ? 127 : 126);
        }

        child_pid = pid;
        sigprocmask(SIG_SETMASK, &old, NULL);

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_error_errno(errno, "Failed to wait for %s: %m", argv[0]);
        child_pid = 0;

        for (size_t i = 0; i < ELEMENTSOF(saved); i++)
                sigaction(i < ELEMENTSOF(ignored) ? ignored[i] : forwarded[i - ELEMENTSOF(ignored)], &saved[i],
                          NULL);

        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return EXIT_FAIL;
}

int verb_lock(Context *ctx, int argc, char *argv[]) {
        enum { ARG_WAIT = ARG_VERB_FIRST };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "wait", required_argument, NULL, 'w' },
                {},
        };
        _cleanup_(mrkv_clerk_freep) mrkv_clerk *clerk = NULL;
        _cleanup_(mrkv_lock_freep) mrkv_lock *lock = NULL;
        uint64_t wait_usec = UINT64_MAX;
        const char *name;
        char **command;
        int c, r, status;

        /* "+": options end at NAME; everything after it belongs to the command. */
        while ((c = getopt_long(argc, argv, "+" COMMON_SHORT_OPTIONS "w:", options, NULL)) >= 0) {
                if (c == 'w') {
                        if (parse_timeout(optarg, &wait_usec) < 0) {
                                log_error("Invalid --wait: %s (a positive number of seconds, or \"infinity\")",
                                          optarg);
                                return EXIT_USAGE;
                        }
                        continue;
                }
                if (context_parse_common_option(ctx, c, optarg) <= 0)
                        return EXIT_USAGE;
        }

        if (optind >= argc) {
                log_error("lock needs a NAME and a COMMAND. See --help.");
                return EXIT_USAGE;
        }
        name = argv[optind++];
        if (optind < argc && streq(argv[optind], "--"))
                optind++;
        if (optind >= argc) {
                log_error("lock needs a COMMAND to run under the lock. See --help.");
                return EXIT_USAGE;
        }
        command = argv + optind;

        if (context_open_clerk(ctx, &clerk) < 0)
                return EXIT_FAIL;

        r = mrkv_lock_new(clerk, name, &lock);
        if (r < 0) {
                log_error_errno(r, "Failed to set up lock %s: %m", name);
                return EXIT_FAIL;
        }
        r = mrkv_lock_set_wait_timeout(lock, wait_usec);
        if (r < 0) {
                log_error_errno(r, "Failed to set the wait timeout: %m");
                return EXIT_FAIL;
        }

        r = mrkv_lock_acquire(lock);
        if (r == -ETIMEDOUT) {
                log_error("lock %s: not acquired before the timeout", name);
                return EXIT_FAIL;
        }
        if (r < 0) {
                log_error_errno(r, "lock %s: failed to acquire: %m", name);
                return EXIT_FAIL;
        }

        status = run_command(command);

        r = mrkv_lock_release(lock);
        if (r < 0) {
                if (r == -ENOLCK)
                        log_error("lock %s: was taken over while the command ran; not released", name);
                else
                        log_error_errno(r, "lock %s: failed to release (it may still be held by id %s): %m", name,
                                        mrkv_lock_get_id(lock));
                return EXIT_FAIL;
        }

        return status < 0 ? EXIT_FAIL : status;
}
