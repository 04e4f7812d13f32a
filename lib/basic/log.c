/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"

static int max_level = LOG_INFO;
static LogTarget target = LOG_TARGET_CONSOLE;
static const char *ident = NULL;

/* Decided on the first message after each log_set_target(): the environment and fd 2
 * of a daemon do not change while it runs. */
static LogTarget resolved = _LOG_TARGET_INVALID;
static bool use_prefix;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",  [LOG_ERR] = "err",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

static const char *const target_names[_LOG_TARGET_MAX] = {
        [LOG_TARGET_CONSOLE] = "console",
        [LOG_TARGET_JOURNAL] = "journal",
        [LOG_TARGET_AUTO] = "auto",
        [LOG_TARGET_NULL] = "null",
};

/* systemd's other targets: valid names, but not implemented here. */
static const char *const unsupported_target_names[] = {
        "kmsg", "journal-or-kmsg", "syslog", "syslog-or-kmsg", "console-prefixed",
};

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_ident(const char *s) {
        ident = s;
}

int log_level_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (streq(s, level_names[i]))
                        return (int) i;
        /* Also accept the numeric form, as systemd does. */
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < 0 || level >= (int) ELEMENTSOF(level_names))
                return NULL;
        return level_names[level];
}

int log_option_error(int c, char *const argv[]) {
        if (c == ':')
                return log_error_errno(EINVAL, "Option '%s' needs an argument.", argv[optind - 1]);
        if (optopt != 0)
                return log_error_errno(EINVAL, "Unknown option '-%c'.", optopt);
        return log_error_errno(EINVAL, "Unknown option '%s'.", argv[optind - 1]);
}

int log_set_max_level_from_option(const char *value) {
        int level = log_level_from_string(value);
        if (level < 0)
                return log_error_errno(EINVAL, "Invalid value for --log-level: '%s' "
                                               "(debug, info, notice, warning, err).", value);
        log_set_max_level(level);
        return 0;
}

int log_target_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(target_names); i++)
                if (streq(s, target_names[i]))
                        return (int) i;
        for (size_t i = 0; i < ELEMENTSOF(unsupported_target_names); i++)
                if (streq(s, unsupported_target_names[i]))
                        return -EOPNOTSUPP;
        return -EINVAL;
}

const char *log_target_to_string(LogTarget t) {
        if (t < 0 || t >= _LOG_TARGET_MAX)
                return NULL;
        return target_names[t];
}

void log_set_target(LogTarget t) {
        assert(t >= 0 && t < _LOG_TARGET_MAX);
        target = t;
        resolved = _LOG_TARGET_INVALID;
}

LogTarget log_get_target(void) {
        return target;
}

bool log_stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        int n = 0;

        /* "DEVICE:INODE" of the stream systemd connected; a child whose stderr was
         * redirected inherits the variable, so it must name fd 2 itself. */
        if (!e || sscanf(e, "%llu:%llu%n", &dev, &ino, &n) != 2 || e[n] != '\0')
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
}

/* sd_journal_send() drops a message silently when journald does not listen: find out
 * first, as systemd's log_open() does, so that stderr gets the messages instead. */
static bool journal_listens(void) {
        static const struct sockaddr_un sa = {
                .sun_family = AF_UNIX,
                .sun_path = "/run/systemd/journal/socket",
        };
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        return fd >= 0 && connect(fd, (const struct sockaddr *) &sa, sizeof(sa)) >= 0;
}

static LogTarget resolve_target(void) {
        const char *e;

        if (resolved >= 0)
                return resolved;

        e = getenv("MRKV_LOG_PREFIX");
        /* journald parses the prefix when stderr is connected to it. */
        use_prefix = e ? streq(e, "1") : log_stderr_is_journal();

        resolved = target;
        if (target == LOG_TARGET_AUTO)
                /* MRKV_LOG_PREFIX asks for stderr in a given form, also under journald. */
                resolved = !e && log_stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_CONSOLE;
        if (resolved == LOG_TARGET_JOURNAL && !journal_listens())
                resolved = LOG_TARGET_CONSOLE;
        return resolved;
}

static void write_console(int level, const char *message) {
        if (use_prefix)
                fprintf(stderr, "<%d>%s%s%s\n", level, ident ?: "", ident ? ": " : "", message);
        else
                fprintf(stderr, "%s%s%s\n", ident ?: "", ident ? ": " : "", message);
}

/* The path from the top of the tree: __FILE__ is relative to the build directory. */
static const char *source_path(const char *file) {
        while (file) {
                if (strncmp(file, "../", 3) == 0)
                        file += 3;
                else if (strncmp(file, "./", 2) == 0)
                        file += 2;
                else
                        break;
        }
        return file;
}

static int write_journal(int level, int error, const char *file, int line, const char *func,
                         const char *message) {
        /* On the stack: a message about running out of memory must not need memory. */
        char priority[32], message_field[sizeof("MESSAGE=") + LOG_MESSAGE_MAX], file_field[256], line_field[32],
                func_field[128], ident_field[128], errno_field[32];
        struct iovec iov[7];
        size_t n = 0;

#define ADD_FIELD(field, ...)                                                          \
        do {                                                                           \
                int _l_ = snprintf(field, sizeof(field), __VA_ARGS__);                 \
                iov[n++] = (struct iovec) { field, MIN((size_t) _l_, sizeof(field) - 1) }; \
        } while (false)

        ADD_FIELD(priority, "PRIORITY=%i", level);
        ADD_FIELD(message_field, "MESSAGE=%s", message);
        if (file)
                ADD_FIELD(file_field, "CODE_FILE=%s", source_path(file));
        if (line > 0)
                ADD_FIELD(line_field, "CODE_LINE=%i", line);
        if (func)
                ADD_FIELD(func_field, "CODE_FUNC=%s", func);
        ADD_FIELD(ident_field, "SYSLOG_IDENTIFIER=%s", ident ?: program_invocation_short_name);
        if (error != 0)
                ADD_FIELD(errno_field, "ERRNO=%i", abs(error));
#undef ADD_FIELD

        assert(n <= ELEMENTSOF(iov));
        return sd_journal_sendv(iov, (int) n);
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        char buf[LOG_MESSAGE_MAX];
        va_list ap;
        int saved = errno;
        LogTarget t = resolve_target();

        if (t == LOG_TARGET_NULL)
                return -abs(error);

        if (error != 0)
                errno = abs(error);
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        /* A message the journal refused still goes somewhere. */
        if (t != LOG_TARGET_JOURNAL || write_journal(level, error, file, line, func, buf) < 0)
                write_console(level, buf);

        errno = saved;
        return -abs(error);
}
