/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lock verb: runs a command while holding a distributed lock, like flock(1), and
 * stops it if the lock is lost, like etcdctl lock. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mrkv/lock.h>

#include "log.h"
#include "macro.h"
#include "mrkvctl.h"
#include "parse-util.h"
#include "time-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(mrkv_clerk *, mrkv_clerk_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(mrkv_lock *, mrkv_lock_free);

/* How long a command whose lock was lost has between SIGTERM and SIGKILL. */
#define KILL_AFTER_USEC (5 * USEC_PER_SEC)

static volatile sig_atomic_t child_pid = 0;

/* SIGTERM and SIGHUP are meant for the whole job: pass them on, and stay alive to
 * release the lock once the command has gone. */
static void forward_signal(int sig) {
        pid_t pid = child_pid;

        if (pid > 0)
                (void) kill(pid, sig);
}

/* Waits for pid; if the lock is lost first, stops pid (SIGTERM, then SIGKILL) and
 * returns -ENOLCK once it has gone. Otherwise its wait status. */
static int wait_command(pid_t pid, const char *name, mrkv_lock *lock, int *ret_status) {
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        bool lost = false;
        uint64_t kill_at = UINT64_MAX;

        for (;;) {
                struct pollfd p[] = {
                        { .fd = pidfd, .events = POLLIN },
                        { .fd = lost ? -1 : mrkv_lock_get_fd(lock), .events = POLLIN },
                };
                int timeout_ms = -1;

                /* Without pidfd_open() (Linux < 5.3) it just waits, as it did before leases. */
                pid_t w = waitpid(pid, ret_status, pidfd < 0 ? 0 : WNOHANG);
                if (w == pid)
                        return lost ? -ENOLCK : 0;
                if (w < 0 && errno != EINTR)
                        return log_error_errno(errno, "Failed to wait for the command: %m");
                if (pidfd < 0)
                        continue;

                if (kill_at != UINT64_MAX) {
                        uint64_t n = now_usec();
                        if (n >= kill_at) {
                                (void) kill(pid, SIGKILL);
                                kill_at = UINT64_MAX;
                        } else
                                timeout_ms = (int) ((kill_at - n + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                }
                if (poll(p, ELEMENTSOF(p), timeout_ms) < 0 && errno != EINTR)
                        return log_error_errno(errno, "Failed to wait for the command: %m");
                if (!lost && p[1].revents) {
                        lost = true;
                        log_error("lock %s: lost while the command ran (its lease was not renewed in time, or the "
                                  "key changed); stopping the command",
                                  name);
                        (void) kill(pid, SIGTERM);
                        kill_at = usec_add(now_usec(), KILL_AFTER_USEC);
                }
        }
}

static int run_command(char *argv[], const char *name, mrkv_lock *lock) {
        static const int ignored[] = { SIGINT, SIGQUIT }, forwarded[] = { SIGTERM, SIGHUP };
        struct sigaction ign = { .sa_handler = SIG_IGN }, fwd = { .sa_handler = forward_signal };
        struct sigaction saved[ELEMENTSOF(ignored) + ELEMENTSOF(forwarded)];
        _cleanup_free_ char **env = NULL;
        _cleanup_free_ char *token = NULL, *lock_name = NULL;
        sigset_t block, old;
        int status = 0, r;
        size_t n = 0;
        pid_t pid;

        /* The command's environment, made here: the child of a process with threads (the
         * lock's) should not allocate before it execs. */
        if (asprintf(&token, "MRKV_LOCK_TOKEN=%" PRIu64, mrkv_lock_get_token(lock)) < 0 ||
            asprintf(&lock_name, "MRKV_LOCK_NAME=%s", name) < 0)
                return log_oom();
        while (environ[n])
                n++;
        env = calloc(n + 3, sizeof(char *));
        if (!env)
                return log_oom();
        n = 0;
        for (char **e = environ; *e; e++)
                if (strncmp(*e, "MRKV_LOCK_TOKEN=", 16) != 0 && strncmp(*e, "MRKV_LOCK_NAME=", 15) != 0)
                        env[n++] = *e;
        env[n++] = token;
        env[n++] = lock_name;

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
                r = -errno;
                sigprocmask(SIG_SETMASK, &old, NULL);
                return log_error_errno(r, "Failed to fork: %m");
        }
        if (pid == 0) {
                /* The command gets the signal dispositions and mask mrkvctl was started with. */
                for (size_t i = 0; i < ELEMENTSOF(saved); i++)
                        sigaction(i < ELEMENTSOF(ignored) ? ignored[i] : forwarded[i - ELEMENTSOF(ignored)],
                                  &saved[i], NULL);
                sigprocmask(SIG_SETMASK, &old, NULL);
                execvpe(argv[0], argv, env);
                int e = errno;
                log_error_errno(e, "Failed to run %s: %m", argv[0]);
                _exit(e == ENOENT ? 127 : 126);
        }

        child_pid = pid;
        sigprocmask(SIG_SETMASK, &old, NULL);

        r = wait_command(pid, name, lock, &status);
        child_pid = 0;

        for (size_t i = 0; i < ELEMENTSOF(saved); i++)
                sigaction(i < ELEMENTSOF(ignored) ? ignored[i] : forwarded[i - ELEMENTSOF(ignored)], &saved[i],
                          NULL);

        if (r < 0)
                return r;
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return EXIT_FAIL;
}

int verb_lock(Context *ctx, int argc, char *argv[]) {
        enum { ARG_TTL = ARG_VERB_FIRST };
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "wait", required_argument, NULL, 'w' },
                { "ttl", required_argument, NULL, ARG_TTL },
                {},
        };
        _cleanup_(mrkv_clerk_freep) mrkv_clerk *clerk = NULL;
        _cleanup_(mrkv_lock_freep) mrkv_lock *lock = NULL;
        uint64_t wait_usec = UINT64_MAX, ttl_usec = 0;
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
                if (c == ARG_TTL) {
                        if (parse_timeout(optarg, &ttl_usec) < 0 || ttl_usec == UINT64_MAX) {
                                log_error("Invalid --ttl: %s (a positive number of seconds)", optarg);
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
        if (r >= 0 && ttl_usec > 0)
                r = mrkv_lock_set_ttl(lock, ttl_usec);
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

        status = run_command(command, name, lock);

        r = mrkv_lock_release(lock);
        if (status == -ENOLCK)
                /* Released or not, nothing more to say: the loss was told. */
                return EXIT_LOCK_LOST;
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
