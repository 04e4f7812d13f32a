/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/wait.h>

#include "macro.h"
#include "streaming.h"

#define READ_CHUNK (64U * 1024U)

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

/* Starts /bin/sh -c command with pipes on its stdin and stdout (ours non-blocking). */
static int spawn_command(const char *command, pid_t *ret_pid, int *ret_stdin, int *ret_stdout) {
        _cleanup_free_ char **env = command_environ();
        _cleanup_close_ int in_r = -EBADF, in_w = -EBADF, out_r = -EBADF, out_w = -EBADF;
        int in[2], out[2], r;
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attr;
        sigset_t none, pipe;

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

        /* The worker ignores SIGPIPE; the command gets the defaults and no blocked signals. */
        sigemptyset(&none);
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        r = posix_spawn_file_actions_init(&actions);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&actions);
                return -r;
        }
        r = posix_spawn_file_actions_adddup2(&actions, in_r, STDIN_FILENO);
        if (r == 0)
                r = posix_spawn_file_actions_adddup2(&actions, out_w, STDOUT_FILENO);
        if (r == 0)
                r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
        if (r == 0)
                r = posix_spawnattr_setsigdefault(&attr, &pipe);
        if (r == 0)
                r = posix_spawnattr_setsigmask(&attr, &none);
        if (r == 0)
                r = posix_spawn(ret_pid, "/bin/sh", &actions, &attr,
                                (char *const[]) { (char *) "sh", (char *) "-c", (char *) command, NULL }, env);
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;

        *ret_stdin = TAKE_FD(in_w);
        *ret_stdout = TAKE_FD(out_r);
        return 0;
}

static int wait_command(pid_t pid, int *ret_status) {
        while (waitpid(pid, ret_status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return 0;
}

int streaming_run(const char *what, const char *command, StreamProduce produce, StreamConsume consume,
                  void *userdata, char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        int in = -EBADF, out = -EBADF, status, r;
        const char *pending = NULL;
        size_t pending_size = 0;
        pid_t pid;

        buf = malloc(READ_CHUNK);
        if (!buf)
                return -ENOMEM;
        r = spawn_command(command, &pid, &in, &out);
        if (r < 0) {
                errno = -r;
                asprintf_or_null(ret_error, "cannot start the %s: %m", what);
                return r;
        }

        /* Until the command closes its stdout: feed its stdin while it takes it, read what it
         * writes as it comes. */
        while (out >= 0) {
                struct pollfd p[2] = {
                        { .fd = out, .events = POLLIN },
                        { .fd = in, .events = POLLOUT },
                };

                if (poll(p, in >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
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
        if (r < 0)
                (void) kill(pid, SIGKILL);
        int k = wait_command(pid, &status);
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

int streaming_map(const char *command, const char *text, size_t size, size_t line_max, MapOutput *out,
                  char **ret_error) {
        MapStream s = { .text = text, .size = size, .line_max = line_max, .out = out, .error = ret_error };
        int r;

        r = streaming_run("mapper", command, map_produce, map_consume, &s, ret_error);
        /* A last line without its newline counts. */
        if (r >= 0 && s.line_size > 0)
                r = map_line(&s, s.line, s.line_size);
        free(s.line);
        return r;
}
