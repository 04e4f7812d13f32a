/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io-util.h"
#include "macro.h"
#include "streaming.h"
#include "time-util.h"

#define READ_CHUNK (64U * 1024U)
/* How long a command stopped at its deadline has between SIGTERM and SIGKILL. */
#define STREAMING_KILL_GRACE (2 * USEC_PER_SEC)

extern char **environ;

/* The worker's environment without what systemd gave the worker itself: a command must
 * not speak for the service (readiness, status, watchdog). */
static char **command_environ(void) {
        static const char *const drop[] = { "NOTIFY_SOCKET=", "WATCHDOG_PID=", "WATCHDOG_USEC=", "LISTEN_FDS=",
                                            "LISTEN_PID=", "LISTEN_FDNAMES=" };
        size_t n = 0, k = 0;
        char **env;

        while (environ[n])
                n++;
        env = calloc(n + 1, sizeof(char *));
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                bool keep = true;

                for (size_t j = 0; j < ELEMENTSOF(drop) && keep; j++)
                        keep = strncmp(environ[i], drop[j], strlen(drop[j])) != 0;
                if (keep)
                        env[k++] = environ[i];
        }
        return env;
}

/* Starts /bin/sh -c command with pipes on its stdin and stdout (ours non-blocking), in a
 * process group of its own (whose id is its pid), killed if the worker dies. */
static int spawn_command(const char *command, pid_t *ret_pid, int *ret_stdin, int *ret_stdout) {
        _cleanup_free_ char **env = command_environ();
        _cleanup_close_ int in_r = -EBADF, in_w = -EBADF, out_r = -EBADF, out_w = -EBADF;
        char *const argv[] = { (char *) "sh", (char *) "-c", (char *) command, NULL };
        pid_t parent = getpid(), pid;
        int in[2], out[2];

        if (!env)
                return -ENOMEM;
        if (pipe2(in, O_CLOEXEC) < 0)
                return -errno;
        in_r = in[0], in_w = in[1];
        if (pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        out_r = out[0], out_w = out[1];
        if (fcntl(in_w, F_SETFL, O_NONBLOCK) < 0 || fcntl(out_r, F_SETFL, O_NONBLOCK) < 0)
                return -errno;

        /* fork(), not posix_spawn(): the child needs setpgid() and PR_SET_PDEATHSIG, and
         * calls only system calls until execve(). */
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                sigset_t none;

                if (setpgid(0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(127);
                if (dup2(in_r, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0)
                        _exit(127);
                /* The worker ignores SIGPIPE; the command gets the default and no blocked
                 * signals. */
                sigemptyset(&none);
                (void) signal(SIGPIPE, SIG_DFL);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
                execve("/bin/sh", argv, env);
                _exit(127);
        }
        /* Also here: the group exists before anything signals it. */
        (void) setpgid(pid, pid);

        *ret_pid = pid;
        *ret_stdin = TAKE_FD(in_w);
        *ret_stdout = TAKE_FD(out_r);
        return 0;
}

/* Waits until the command exits, leaving it a zombie (its pid, and so its group's id,
 * stays taken): 1, or 0 at deadline. pidfd, if there is one, polls for it. */
static int wait_exit(pid_t pid, int pidfd, uint64_t deadline) {
        for (;;) {
                siginfo_t info = {};

                if (waitid(P_PID, (id_t) pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR)
                        return -errno;
                if (info.si_pid == pid)
                        return 1;
                if (now_usec() >= deadline)
                        return 0;
                if (pidfd >= 0) {
                        int r = fd_wait_until(pidfd, POLLIN, deadline);
                        if (r < 0)
                                return r;
                } else
                        (void) usleep((useconds_t) MIN(deadline - now_usec(), 10 * USEC_PER_MSEC));
        }
}

/* The worker's children but the command: processes the command left behind, which came
 * to the worker (a child subreaper) when their parent died. At most max of them. */
static size_t orphans(pid_t command, pid_t *ret, size_t max) {
        DIR *d = opendir("/proc/self/task");
        struct dirent *de;
        size_t n = 0;

        if (!d)
                return 0;
        while (n < max && (de = readdir(d))) {
                char path[sizeof("/proc/self/task//children") + sizeof(de->d_name)];
                FILE *f;
                int pid;

                if (de->d_name[0] == '.')
                        continue;
                (void) snprintf(path, sizeof(path), "/proc/self/task/%s/children", de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                while (n < max && fscanf(f, "%d", &pid) == 1)
                        if (pid != command)
                                ret[n++] = pid;
                fclose(f);
        }
        closedir(d);
        return n;
}

/* Sends sig to the command's process group and to what it left behind. */
static void signal_command(pid_t pid, int sig) {
        pid_t left[64];
        size_t n = orphans(pid, left, ELEMENTSOF(left));

        (void) kill(-pid, sig);
        for (size_t i = 0; i < n; i++)
                (void) kill(left[i], sig);
}

/* Ends an attempt's command: waits for it until deadline, then SIGTERM to its processes
 * and, STREAMING_KILL_GRACE later, SIGKILL (at once with kill). Once it has exited,
 * whatever is left of its group, and every process it left behind, is killed and reaped,
 * so nothing of an attempt outlives it. Returns the command's wait status in *ret_status,
 * and whether it had to be stopped (*ret_stopped), or -errno. */
static int command_end(pid_t pid, uint64_t deadline, bool kill_now, int *ret_status, bool *ret_stopped) {
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        bool stopped = false;
        int r;

        if (kill_now) {
                signal_command(pid, SIGKILL);
                deadline = UINT64_MAX;
        }
        r = wait_exit(pid, pidfd, deadline);
        if (r == 0) {
                stopped = true;
                signal_command(pid, SIGTERM);
                r = wait_exit(pid, pidfd, usec_add(now_usec(), STREAMING_KILL_GRACE));
                if (r == 0) {
                        signal_command(pid, SIGKILL);
                        r = wait_exit(pid, pidfd, UINT64_MAX);
                }
        }
        if (r < 0)
                return r;

        /* Its group's id is still its own while it is a zombie. */
        (void) kill(-pid, SIGKILL);
        while (waitpid(pid, ret_status, 0) < 0)
                if (errno != EINTR)
                        return -errno;

        /* What it left behind: killed, and reaped as it dies, until nothing is left (a
         * process killed may leave its own children to the worker). */
        for (;;) {
                pid_t left[64];
                size_t n = orphans(0, left, ELEMENTSOF(left)), killed = 0;

                for (size_t i = 0; i < n; i++)
                        if (kill(left[i], SIGKILL) >= 0)
                                killed++;
                /* None left, or none this worker may kill: nothing to wait for. */
                if (killed == 0)
                        break;
                if (waitpid(-1, NULL, 0) < 0 && errno != EINTR)
                        break;
        }
        *ret_stopped = stopped;
        return 0;
}

int streaming_run(const char *what, const char *command, uint64_t deadline, StreamProduce produce,
                  StreamConsume consume, void *userdata, char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        int in = -EBADF, out = -EBADF, status = 0, r;
        const char *pending = NULL;
        size_t pending_size = 0;
        bool late = false, stopped = false;
        pid_t pid = 0;

        buf = malloc(READ_CHUNK);
        if (!buf)
                return -ENOMEM;
        /* What the command leaves behind comes to the worker, which kills it at the end. */
        (void) prctl(PR_SET_CHILD_SUBREAPER, 1);
        r = spawn_command(command, &pid, &in, &out);
        if (r < 0) {
                errno = -r;
                asprintf_or_null(ret_error, "cannot start the %s: %m", what);
                return r;
        }

        /* Until the command closes its stdout, or the deadline: feed its stdin while it
         * takes it, read what it writes as it comes. */
        while (out >= 0) {
                struct pollfd p[2] = {
                        { .fd = out, .events = POLLIN },
                        { .fd = in, .events = POLLOUT },
                };
                int n = poll(p, in >= 0 ? 2 : 1, poll_timeout(deadline));

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if (n == 0) {
                        /* The deadline, with its stdout still open (maybe only by what it
                         * left behind): command_end() stops it. */
                        late = true;
                        break;
                }

                if (p[0].revents) {
                        ssize_t k = read(out, buf, READ_CHUNK);

                        if (k < 0 && errno != EAGAIN && errno != EINTR) {
                                r = -errno;
                                break;
                        }
                        if (k == 0) {
                                closep(&out);
                                out = -EBADF;
                        } else if (k > 0) {
                                r = consume(userdata, buf, (size_t) k);
                                if (r < 0)
                                        break;
                        }
                }

                if (in >= 0 && p[1].revents) {
                        if (pending_size == 0) {
                                r = produce(userdata, &pending, &pending_size);
                                if (r < 0)
                                        break;
                                if (r == 0) {
                                        closep(&in); /* the end of its input */
                                        in = -EBADF;
                                        continue;
                                }
                        }
                        ssize_t k = write(in, pending, pending_size);
                        if (k < 0 && errno == EPIPE) {
                                /* It stopped reading; whether that is a failure, its exit says. */
                                closep(&in);
                                in = -EBADF;
                        } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
                                r = -errno;
                                break;
                        } else if (k > 0) {
                                pending += k;
                                pending_size -= (size_t) k;
                        }
                }
                r = 0;
        }

        closep(&in);
        closep(&out);
        int k = command_end(pid, deadline, r < 0, &status, &stopped);
        if (r < 0) {
                if (!*ret_error) {
                        errno = -r;
                        asprintf_or_null(ret_error, "%s failed: %m", what);
                }
                return r;
        }
        if (k < 0) {
                errno = -k;
                asprintf_or_null(ret_error, "cannot wait for the %s: %m", what);
                return k;
        }
        if (late || stopped) {
                asprintf_or_null(ret_error, "%s '%s' was still running at the task's time-out; it and its "
                                 "processes were killed", what, command);
                return -ETIME;
        }
        if (WIFSIGNALED(status)) {
                asprintf_or_null(ret_error, "%s '%s' was killed by signal %d (%s)", what, command, WTERMSIG(status),
                                 strsignal(WTERMSIG(status)));
                return -ECHILD;
        }
        if (WEXITSTATUS(status) != 0) {
                asprintf_or_null(ret_error, "%s '%s' exited with status %d", what, command, WEXITSTATUS(status));
                return -ECHILD;
        }
        return 0;
}

/* The mapper's side: its input is the split's text; its output, lines parsed into pairs. */
typedef struct MapStream {
        const char *text;
        size_t size;
        bool fed;
        MapOutput *out;
        char *line; /* a line not yet complete */
        size_t line_size, line_allocated;
        size_t line_max;
        uint64_t line_number;
        char **error;
} MapStream;

static int map_produce(void *userdata, const char **ret_data, size_t *ret_size) {
        MapStream *s = userdata;

        if (s->fed || s->size == 0)
                return 0;
        s->fed = true;
        *ret_data = s->text;
        *ret_size = s->size;
        return 1;
}

/* One line of the mapper's output, without its newline: key TAB value. */
static int map_line(MapStream *s, const char *line, size_t size) {
        const char *tab = memchr(line, '\t', size);
        const char *why = NULL;

        s->line_number++;
        if (memchr(line, '\0', size))
                why = "holds a NUL byte";
        else if (!tab)
                why = "has no TAB between key and value";
        else if (memchr(tab + 1, '\t', size - (size_t) (tab + 1 - line)))
                why = "has more than one TAB: a key or value with a TAB cannot be carried";
        if (why) {
                free(*s->error);
                asprintf_or_null(s->error, "mapper output line %" PRIu64 " %s: '%.*s'", s->line_number, why,
                                 (int) MIN(size, (size_t) 80), line);
                return -EBADMSG;
        }
        return map_output_add(s->out, line, (size_t) (tab - line), tab + 1, size - (size_t) (tab + 1 - line));
}

static int map_consume(void *userdata, const char *data, size_t size) {
        MapStream *s = userdata;
        const char *end = data + size;
        int r;

        while (data < end) {
                const char *nl = memchr(data, '\n', (size_t) (end - data));
                size_t n = (size_t) ((nl ?: end) - data);

                if (!nl || s->line_size > 0) {
                        /* Keep a part of a line, or complete one kept. */
                        if (n > s->line_max - s->line_size) {
                                free(*s->error);
                                asprintf_or_null(s->error, "mapper output line %" PRIu64 " is longer than %zu bytes",
                                                 s->line_number + 1, s->line_max);
                                return -EFBIG;
                        }
                        if (s->line_size + n > s->line_allocated) {
                                size_t a = MAX(s->line_allocated * 2, s->line_size + n);
                                char *p = realloc(s->line, a);
                                if (!p)
                                        return -ENOMEM;
                                s->line = p;
                                s->line_allocated = a;
                        }
                        memcpy(s->line + s->line_size, data, n);
                        s->line_size += n;
                        if (!nl)
                                return 0;
                        r = map_line(s, s->line, s->line_size);
                        s->line_size = 0;
                } else
                        r = map_line(s, data, n);
                if (r < 0)
                        return r;
                data = nl + 1;
        }
        return 0;
}

int streaming_map(const char *command, uint64_t deadline, const char *text, size_t size, size_t line_max,
                  MapOutput *out, char **ret_error) {
        MapStream s = { .text = text, .size = size, .line_max = line_max, .out = out, .error = ret_error };
        int r;

        r = streaming_run("mapper", command, deadline, map_produce, map_consume, &s, ret_error);
        /* A last line without its newline counts. */
        if (r >= 0 && s.line_size > 0)
                r = map_line(&s, s.line, s.line_size);
        free(s.line);
        return r;
}
