/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define BASE_ENV "MRKV_TEST_BASE_DIR"
#define POLL_INTERVAL_MSEC 10

bool test_wait_until(uint64_t timeout_usec, bool (*cond)(void *userdata), void *userdata) {
        uint64_t deadline = usec_add(now_usec(), timeout_usec);

        for (;;) {
                if (cond(userdata))
                        return true;
                if (now_usec() >= deadline)
                        return false;
                (void) poll(NULL, 0, POLL_INTERVAL_MSEC);
        }
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st, (void) type, (void) ftw;
        (void) remove(path);
        return 0;
}

static char *base_dir;

static void remove_base_dir(void) {
        if (getenv("MRKV_TEST_KEEP"))
                fprintf(stderr, "Keeping %s\n", base_dir);
        else
                (void) nftw(base_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* meson ends a test that runs out of time with SIGTERM to its process group. Check
 * passes it on to the running test's group, then restores this handler and raises it
 * again here: remove the directories before dying of it. */
static void on_terminate(int sig) {
        remove_base_dir();
        signal(sig, SIG_DFL);
        raise(sig);
}

int test_run_suite(Suite *s) {
        const char *tmp = getenv("TMPDIR");
        SRunner *sr;
        int failed;

        /* Socket paths are short (108 bytes): keep the directories near the root. */
        if (!tmp || tmp[0] != '/' || strlen(tmp) >= 40)
                tmp = "/tmp";
        if (asprintf(&base_dir, "%s/mrkv-test.XXXXXX", tmp) < 0)
                return 99; /* a hard error in the meson test protocol */
        if (!mkdtemp(base_dir)) {
                perror("mkdtemp");
                return 99;
        }
        setenv(BASE_ENV, base_dir, 1);
        signal(SIGTERM, on_terminate);
        signal(SIGINT, on_terminate);

        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);

        /* Tests run in forked children; whatever they left, also after a crash, goes here. */
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        remove_base_dir();
        free(base_dir);
        base_dir = NULL;
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

char *test_dir_new(void) {
        const char *base = getenv(BASE_ENV);
        char *dir = NULL;

        ck_assert_msg(base, "$" BASE_ENV " is not set: run the suite with test_run_suite()");
        ck_assert_int_ge(asprintf(&dir, "%s/t.XXXXXX", base), 0);
        ck_assert_msg(mkdtemp(dir), "mkdtemp(%s): %s", dir, strerror(errno));
        return dir;
}

const char *test_program(const char *env) {
        const char *p = getenv(env);

        ck_assert_msg(p && p[0], "$%s is not set; run this test through meson test", env);
        return p;
}

/* Whether environment entry e ("NAME=value") is for the variable named by spec
 * ("NAME=value" or "NAME"). */
static bool env_same_name(const char *e, const char *spec) {
        size_t n = strcspn(spec, "=");

        return strncmp(e, spec, n) == 0 && e[n] == '=';
}

/* The child's environment: ours with o's changes, built before the fork, so that the
 * child of a test with threads runs nothing but async-signal-safe calls until its
 * exec (a lock another thread held at the fork, in malloc or the environment, would
 * stop it there). Slot [*ret_listen_pid] is left for "LISTEN_PID=<pid>", which only
 * the child knows. */
static char **child_env(const TestSpawn *o, size_t *ret_listen_pid) {
        extern char **environ;
        size_t n = 0, k = 0;
        char **envp;

        for (char **e = environ; *e; e++)
                n++;
        for (const char *const *e = o && o->env ? o->env : NULL; e && *e; e++)
                n++;
        envp = calloc(n + 3, sizeof(char *));
        ck_assert_ptr_nonnull(envp);

        for (char **e = environ; *e; e++) {
                bool changed = false;

                for (const char *const *c = o && o->env ? o->env : NULL; c && *c && !changed; c++)
                        changed = env_same_name(*e, *c);
                if (o && o->listen_fd > STDERR_FILENO)
                        changed = changed || env_same_name(*e, "LISTEN_PID") || env_same_name(*e, "LISTEN_FDS");
                if (!changed)
                        envp[k++] = *e;
        }
        for (const char *const *c = o && o->env ? o->env : NULL; c && *c; c++)
                if (strchr(*c, '='))
                        envp[k++] = (char *) *c;
        *ret_listen_pid = SIZE_MAX;
        if (o && o->listen_fd > STDERR_FILENO) {
                envp[k++] = (char *) "LISTEN_FDS=1";
                *ret_listen_pid = k++;
        }
        return envp;
}

/* Runs in the new child: sets it up as o says and executes argv with envp. Only
 * async-signal-safe calls (see child_env()). */
static _Noreturn void child_exec(char *const argv[], const TestSpawn *o, pid_t parent, char **envp,
                                 size_t listen_pid, char *listen_pid_buf, size_t buf_size) {
        static const char failed[] = "test_spawn: execve() failed\n";
        sigset_t all;

        /* Die with the test, even when it fails or crashes before its cleanup. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(EXIT_FAILURE);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);

        if (o) {
                if (o->stdout_fd > STDERR_FILENO && dup2(o->stdout_fd, STDOUT_FILENO) < 0)
                        _exit(127);
                if (o->stderr_to_stdout && dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
                        _exit(127);
                if (o->listen_fd > STDERR_FILENO) {
                        char digits[24];
                        size_t n = 0, k;
                        unsigned long v = (unsigned long) getpid();

                        /* dup2() clears O_CLOEXEC, except when the fd is 3 already. */
                        if (o->listen_fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(o->listen_fd, 3) < 0)
                                _exit(127);
                        do
                                digits[n++] = (char) ('0' + v % 10);
                        while ((v /= 10) > 0);
                        k = strlen("LISTEN_PID=");
                        if (k + n + 1 > buf_size)
                                _exit(127);
                        memcpy(listen_pid_buf, "LISTEN_PID=", k);
                        while (n > 0)
                                listen_pid_buf[k++] = digits[--n];
                        listen_pid_buf[k] = '\0';
                        envp[listen_pid] = listen_pid_buf;
                }
        }
        execve(argv[0], argv, envp);
        (void) !write(STDERR_FILENO, failed, sizeof(failed) - 1);
        _exit(127);
}

pid_t test_spawn(char *const argv[], const TestSpawn *o) {
        pid_t parent = getpid(), pid;
        size_t listen_pid;
        char **envp = child_env(o, &listen_pid), buf[64];

        pid = fork();
        ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0)
                child_exec(argv, o, parent, envp, listen_pid, buf, sizeof(buf));
        free(envp);
        return pid;
}

bool test_exited(pid_t pid, int *ret_status) {
        int status = 0;
        pid_t r;

        do
                r = waitpid(pid, &status, WNOHANG);
        while (r < 0 && errno == EINTR);
        ck_assert_msg(r >= 0, "waitpid(%d): %s", (int) pid, strerror(errno));
        if (r == 0)
                return false;
        if (ret_status)
                *ret_status = status;
        return true;
}

typedef struct Exit {
        pid_t pid;
        int status;
} Exit;

static bool has_exited(void *userdata) {
        Exit *e = userdata;

        return test_exited(e->pid, &e->status);
}

int test_kill(pid_t *pid) {
        Exit e = { .pid = *pid };

        if (*pid <= 0)
                return 0;

        (void) kill(*pid, SIGTERM);
        if (!test_wait_until(10 * USEC_PER_SEC, has_exited, &e)) {
                fprintf(stderr, "pid %d did not exit on SIGTERM, killing it\n", (int) *pid);
                (void) kill(*pid, SIGKILL);
                while (waitpid(*pid, &e.status, 0) < 0)
                        ck_assert_int_eq(errno, EINTR);
        }
        *pid = 0;
        return e.status;
}

int test_run(char *const argv[], const TestSpawn *o, char **ret_output) {
        TestSpawn spawn = o ? *o : (TestSpawn) {};
        int fds[2], status;
        char *out = NULL;
        size_t size = 0;
        FILE *f;
        pid_t pid;

        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        spawn.stdout_fd = fds[1];
        pid = test_spawn(argv, &spawn);
        close(fds[1]);

        f = open_memstream(&out, &size);
        ck_assert_ptr_nonnull(f);
        for (;;) {
                char buf[4096];
                ssize_t n = read(fds[0], buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                fwrite(buf, 1, (size_t) n, f);
        }
        close(fds[0]);
        fclose(f);

        while (waitpid(pid, &status, 0) < 0)
                ck_assert_int_eq(errno, EINTR);

        if (ret_output)
                *ret_output = out;
        else
                free(out);
        return status;
}

bool test_socket_accepts(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;
        bool ok;

        ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ok = connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;
        close(fd);
        return ok;
}

uint64_t test_rss(pid_t pid) {
        char path[64], line[256];
        uint64_t kb = 0;
        bool found = false;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %" SCNu64 " kB", &kb) == 1) {
                        found = true;
                        break;
                }
        fclose(f);
        ck_assert_msg(found && kb > 0, "no VmRSS in %s", path);
        return kb * 1024;
}
