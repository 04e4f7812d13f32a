/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Log targets. "test-log" checks the names and where console, null and auto write;
 * "test-log journal" checks what the journal receives, on a socket of its own at
 * /run/systemd/journal/socket in a private mount namespace (exit 77 where one cannot
 * be made). */
#include <check.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "log.h"
#include "macro.h"
#include "tests.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* stderr goes to a memfd until capture_end(), which returns what was written. */
static int capture_begin(void) {
        int fd = memfd_create("stderr", MFD_CLOEXEC), saved = dup(STDERR_FILENO);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_ge(saved, 0);
        ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
        close(fd);
        return saved;
}

static char *capture_end(int saved) {
        char *text = calloc(1, 4096);
        ssize_t n;

        ck_assert_ptr_nonnull(text);
        n = pread(STDERR_FILENO, text, 4095, 0);
        ck_assert_int_ge(n, 0);
        ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
        close(saved);
        return text;
}

/* $JOURNAL_STREAM naming fd 2 as it is now, as systemd sets it. */
static void set_journal_stream_to_stderr(void) {
        struct stat st;
        char v[64];

        ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
        snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        ck_assert_int_eq(setenv("JOURNAL_STREAM", v, 1), 0);
}

/* Logs with the target given: log_set_target() also makes the environment and fd 2 be
 * looked at again. Returns what went to stderr. */
static char *log_to(LogTarget target, int error, const char *message) {
        int saved = capture_begin(), r;

        log_set_target(target);
        errno = 42;
        r = log_full_errno(LOG_NOTICE, error, "%s", message);
        ck_assert_int_eq(r, -error);
        ck_assert_int_eq(errno, 42);
        return capture_end(saved);
}

static void check_log_to(LogTarget target, const char *expected) {
        _cleanup_free_ char *text = log_to(target, 0, "hello");
        ck_assert_str_eq(text, expected);
}

START_TEST(test_target_names) {
        ck_assert_int_eq(log_target_from_string("console"), LOG_TARGET_CONSOLE);
        ck_assert_int_eq(log_target_from_string("journal"), LOG_TARGET_JOURNAL);
        ck_assert_int_eq(log_target_from_string("auto"), LOG_TARGET_AUTO);
        ck_assert_int_eq(log_target_from_string("null"), LOG_TARGET_NULL);

        /* Targets of systemd's that are not implemented, and nonsense. */
        ck_assert_int_eq(log_target_from_string("kmsg"), -EOPNOTSUPP);
        ck_assert_int_eq(log_target_from_string("journal-or-kmsg"), -EOPNOTSUPP);
        ck_assert_int_eq(log_target_from_string("syslog"), -EOPNOTSUPP);
        ck_assert_int_eq(log_target_from_string("console-prefixed"), -EOPNOTSUPP);
        ck_assert_int_eq(log_target_from_string("bogus"), -EINVAL);
        ck_assert_int_eq(log_target_from_string("Journal"), -EINVAL);
        ck_assert_int_eq(log_target_from_string("journal "), -EINVAL);
        ck_assert_int_eq(log_target_from_string(""), -EINVAL);
        ck_assert_int_eq(log_target_from_string(NULL), -EINVAL);

        for (int t = 0; t < _LOG_TARGET_MAX; t++)
                ck_assert_int_eq(log_target_from_string(log_target_to_string(t)), t);
        ck_assert_ptr_null(log_target_to_string(_LOG_TARGET_MAX));
        ck_assert_ptr_null(log_target_to_string(_LOG_TARGET_INVALID));

        /* What a daemon starts with. */
        ck_assert_int_eq(log_get_target(), LOG_TARGET_CONSOLE);
        log_set_target(LOG_TARGET_NULL);
        ck_assert_int_eq(log_get_target(), LOG_TARGET_NULL);
}
END_TEST

START_TEST(test_stderr_is_journal) {
        int saved = capture_begin();
        struct stat st;
        char v[64];

        ck_assert_int_eq(unsetenv("JOURNAL_STREAM"), 0);
        ck_assert(!log_stderr_is_journal());
        set_journal_stream_to_stderr();
        ck_assert(log_stderr_is_journal());

        /* Another file: what a child whose stderr was redirected inherits. */
        ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
        snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino + 1);
        ck_assert_int_eq(setenv("JOURNAL_STREAM", v, 1), 0);
        ck_assert(!log_stderr_is_journal());
        snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long) st.st_dev + 1, (unsigned long long) st.st_ino);
        ck_assert_int_eq(setenv("JOURNAL_STREAM", v, 1), 0);
        ck_assert(!log_stderr_is_journal());

        /* Malformed. */
        snprintf(v, sizeof(v), "%llu:%llux", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        ck_assert_int_eq(setenv("JOURNAL_STREAM", v, 1), 0);
        ck_assert(!log_stderr_is_journal());
        snprintf(v, sizeof(v), "%llu", (unsigned long long) st.st_dev);
        ck_assert_int_eq(setenv("JOURNAL_STREAM", v, 1), 0);
        ck_assert(!log_stderr_is_journal());
        ck_assert_int_eq(setenv("JOURNAL_STREAM", "", 1), 0);
        ck_assert(!log_stderr_is_journal());

        free(capture_end(saved));
        ck_assert_int_eq(unsetenv("JOURNAL_STREAM"), 0);
}
END_TEST

START_TEST(test_console_null_auto) {
        _cleanup_free_ char *text = NULL;

        log_set_ident("test-log");
        ck_assert_int_eq(unsetenv("MRKV_LOG_PREFIX"), 0);
        ck_assert_int_eq(unsetenv("JOURNAL_STREAM"), 0);

        /* A terminal, a file: plain lines. */
        check_log_to(LOG_TARGET_CONSOLE, "test-log: hello\n");
        check_log_to(LOG_TARGET_AUTO, "test-log: hello\n");
        check_log_to(LOG_TARGET_NULL, "");
        text = log_to(LOG_TARGET_CONSOLE, EACCES, "%m is not expanded in an argument");
        ck_assert_str_eq(text, "test-log: %m is not expanded in an argument\n");
        text = mfree(text);
        text = log_to(LOG_TARGET_NULL, EACCES, "dropped");
        ck_assert_str_eq(text, "");

        /* MRKV_LOG_PREFIX forces the prefix on and off. */
        ck_assert_int_eq(setenv("MRKV_LOG_PREFIX", "1", 1), 0);
        check_log_to(LOG_TARGET_CONSOLE, "<5>test-log: hello\n");
        check_log_to(LOG_TARGET_AUTO, "<5>test-log: hello\n");
        ck_assert_int_eq(setenv("MRKV_LOG_PREFIX", "0", 1), 0);
        check_log_to(LOG_TARGET_CONSOLE, "test-log: hello\n");
        ck_assert_int_eq(unsetenv("MRKV_LOG_PREFIX"), 0);

        /* A $JOURNAL_STREAM that is not fd 2 is inherited, not ours: no prefix. */
        ck_assert_int_eq(setenv("JOURNAL_STREAM", "1:1", 1), 0);
        check_log_to(LOG_TARGET_CONSOLE, "test-log: hello\n");
        check_log_to(LOG_TARGET_AUTO, "test-log: hello\n");
        ck_assert_int_eq(unsetenv("JOURNAL_STREAM"), 0);

        log_set_ident(NULL);
        check_log_to(LOG_TARGET_CONSOLE, "hello\n");
}
END_TEST

/* stderr that is the journal stream: the console target prefixes, and MRKV_LOG_PREFIX=0
 * asks auto for the plain stream. (Where auto sends otherwise is the journal tests'.) */
START_TEST(test_console_on_journal_stream) {
        int saved = capture_begin();
        char text[256] = {};

        log_set_ident("test-log");
        set_journal_stream_to_stderr();
        ck_assert_int_eq(unsetenv("MRKV_LOG_PREFIX"), 0);
        log_set_target(LOG_TARGET_CONSOLE);
        log_warning("one");
        ck_assert_int_eq(setenv("MRKV_LOG_PREFIX", "0", 1), 0);
        log_set_target(LOG_TARGET_AUTO);
        log_warning("two");

        ck_assert_int_ge(pread(STDERR_FILENO, text, sizeof(text) - 1, 0), 0);
        free(capture_end(saved));
        ck_assert_str_eq(text, "<4>test-log: one\ntest-log: two\n");
        ck_assert_int_eq(unsetenv("JOURNAL_STREAM"), 0);
        ck_assert_int_eq(unsetenv("MRKV_LOG_PREFIX"), 0);
}
END_TEST

static int write_string(const char *path, const char *s) {
        int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

        if (fd < 0)
                return -errno;
        if (write(fd, s, strlen(s)) != (ssize_t) strlen(s))
                r = -errno;
        close(fd);
        return r;
}

/* Enters a private mount namespace (as root, or else as root of a new user namespace)
 * with a tmpfs on /run, and binds JOURNAL_SOCKET there. Returns its fd or -errno. */
static int fake_journal(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET };
        uid_t uid = getuid();
        gid_t gid = getgid();
        int fd, r;

        if (unshare(CLONE_NEWNS) < 0) {
                char map[64];

                if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                        return -errno;
                snprintf(map, sizeof(map), "0 %u 1", (unsigned) uid);
                r = write_string("/proc/self/uid_map", map);
                if (r < 0)
                        return r;
                (void) write_string("/proc/self/setgroups", "deny");
                snprintf(map, sizeof(map), "0 %u 1", (unsigned) gid);
                r = write_string("/proc/self/gid_map", map);
                if (r < 0)
                        return r;
        }
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;
        if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
                return -errno;
        if (mkdir("/run/systemd", 0755) < 0 || mkdir("/run/systemd/journal", 0755) < 0)
                return -errno;
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* The next datagram, already sent: sd_journal_sendv() returns once it is queued. NULL
 * if there is none. */
static char *receive(int fd) {
        char *buf = calloc(1, 65536);
        ssize_t n;

        ck_assert_ptr_nonnull(buf);
        n = recv(fd, buf, 65535, MSG_DONTWAIT);
        if (n < 0) {
                ck_assert_int_eq(errno, EAGAIN);
                return mfree(buf);
        }
        return buf;
}

/* The value of field in a datagram of "FIELD=value\n" lines, NULL if absent. */
static char *field(const char *datagram, const char *name) {
        size_t l = strlen(name);

        for (const char *p = datagram; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, name, l) == 0 && p[l] == '=')
                        return strndup(p + l + 1, strcspn(p + l + 1, "\n"));
        return NULL;
}

static void check_field(const char *datagram, const char *name, const char *expected) {
        _cleanup_free_ char *v = field(datagram, name);

        if (!expected)
                ck_assert_msg(!v, "%s=%s in\n%s", name, v, datagram);
        else {
                ck_assert_msg(v, "no %s in\n%s", name, datagram);
                ck_assert_str_eq(v, expected);
        }
}

static int sample_line;

/* Logs what the journal tests look for, from a function of a known name. */
static void log_sample(int error) {
        sample_line = __LINE__ + 1;
        log_full_errno(error ? LOG_ERR : LOG_INFO, error, "Failed to open %s: %m", "/x");
}

START_TEST(test_journal_fields) {
        _cleanup_close_ int fd = fake_journal();
        _cleanup_free_ char *d = NULL, *file = NULL, *text = NULL;
        char line[16];
        int saved;

        ck_assert_int_ge(fd, 0);
        log_set_ident("test-log");

        saved = capture_begin();
        log_set_target(LOG_TARGET_JOURNAL);
        log_sample(EACCES);
        text = capture_end(saved);
        ck_assert_str_eq(text, ""); /* the journal's only */

        d = receive(fd);
        ck_assert_ptr_nonnull(d);
        check_field(d, "PRIORITY", "3");
        check_field(d, "MESSAGE", "Failed to open /x: Permission denied");
        check_field(d, "SYSLOG_IDENTIFIER", "test-log");
        check_field(d, "ERRNO", "13");
        check_field(d, "CODE_FUNC", "log_sample");
        snprintf(line, sizeof(line), "%i", sample_line);
        check_field(d, "CODE_LINE", line);
        /* The path in the tree, not the one relative to the build directory. */
        file = field(d, "CODE_FILE");
        ck_assert_ptr_nonnull(file);
        ck_assert_str_eq(file, "lib/basic/test-log.c");
        d = mfree(d);

        /* No error, no ERRNO; without an identifier, the program's name. */
        log_set_ident(NULL);
        log_sample(0);
        d = receive(fd);
        ck_assert_ptr_nonnull(d);
        check_field(d, "PRIORITY", "6");
        check_field(d, "ERRNO", NULL);
        check_field(d, "SYSLOG_IDENTIFIER", program_invocation_short_name);
        d = mfree(d);
        ck_assert_ptr_null(receive(fd));

        /* Under the level, nothing at all. */
        log_set_max_level(LOG_NOTICE);
        log_sample(0);
        ck_assert_ptr_null(receive(fd));
        log_set_max_level(LOG_INFO);
}
END_TEST

START_TEST(test_journal_auto_and_fallback) {
        _cleanup_close_ int fd = fake_journal();
        _cleanup_free_ char *d = NULL, *text = NULL;
        int saved;

        ck_assert_int_ge(fd, 0);
        log_set_ident("test-log");
        ck_assert_int_eq(unsetenv("MRKV_LOG_PREFIX"), 0);

        /* auto: the journal when stderr is the journal stream... */
        saved = capture_begin();
        set_journal_stream_to_stderr();
        log_set_target(LOG_TARGET_AUTO);
        log_notice("to the journal");
        text = capture_end(saved);
        ck_assert_str_eq(text, "");
        d = receive(fd);
        ck_assert_ptr_nonnull(d);
        check_field(d, "MESSAGE", "to the journal");
        d = mfree(d);
        text = mfree(text);

        /* ...but for a $JOURNAL_STREAM that is not fd 2 (inherited), stderr... */
        text = log_to(LOG_TARGET_AUTO, 0, "to stderr");
        ck_assert_str_eq(text, "test-log: to stderr\n");
        ck_assert_ptr_null(receive(fd));
        text = mfree(text);

        /* ...as for console and for MRKV_LOG_PREFIX; null reaches neither. */
        ck_assert_int_eq(unsetenv("JOURNAL_STREAM"), 0);
        text = log_to(LOG_TARGET_CONSOLE, 0, "console");
        ck_assert_str_eq(text, "test-log: console\n");
        text = mfree(text);
        ck_assert_int_eq(setenv("MRKV_LOG_PREFIX", "1", 1), 0);
        text = log_to(LOG_TARGET_AUTO, 0, "prefixed");
        ck_assert_str_eq(text, "<5>test-log: prefixed\n");
        text = mfree(text);
        ck_assert_int_eq(unsetenv("MRKV_LOG_PREFIX"), 0);
        text = log_to(LOG_TARGET_NULL, 0, "nowhere");
        ck_assert_str_eq(text, "");
        text = mfree(text);
        ck_assert_ptr_null(receive(fd));

        /* A journal that does not listen: stderr has the messages. */
        ck_assert_int_eq(unlink(JOURNAL_SOCKET), 0);
        text = log_to(LOG_TARGET_JOURNAL, EACCES, "lost?");
        ck_assert_str_eq(text, "test-log: lost?\n");
}
END_TEST

/* Whether fake_journal() works here, tried in a child. */
static bool can_fake_journal(void) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return false;
        if (pid == 0)
                _exit(fake_journal() >= 0 ? 0 : 1);
        return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char *argv[]) {
        bool journal = argc > 1 && streq(argv[1], "journal");
        Suite *s;
        TCase *tc;

        if (journal && !can_fake_journal()) {
                printf("SKIP: no private mount namespace for a journal socket of our own\n");
                return 77;
        }

        s = suite_create("log");
        if (journal) {
                tc = tcase_create("journal");
                tcase_add_test(tc, test_journal_fields);
                tcase_add_test(tc, test_journal_auto_and_fallback);
        } else {
                tc = tcase_create("targets");
                tcase_add_test(tc, test_target_names);
                tcase_add_test(tc, test_stderr_is_journal);
                tcase_add_test(tc, test_console_null_auto);
                tcase_add_test(tc, test_console_on_journal_stream);
        }
        suite_add_tcase(s, tc);
        /* Each test in a process of its own: they change the environment, fd 2 and
         * (journal) the mount namespace. */
        return tests_run(s, CK_FORK);
}
