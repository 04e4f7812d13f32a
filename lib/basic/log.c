/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int max_level = LOG_INFO;
static int use_prefix = -1;
static const char *ident = NULL;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",  [LOG_ERR] = "err",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
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

int log_set_max_level_from_option(const char *value) {
        int level = log_level_from_string(value);
        if (level < 0)
                return log_error_errno(EINVAL, "Invalid value for --log-level: '%s' "
                                               "(debug, info, notice, warning, err).", value);
        log_set_max_level(level);
        return 0;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        if (error != 0)
                errno = abs(error);
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (use_prefix < 0) {
                const char *e = getenv("MRKV_LOG_PREFIX");
                /* systemd sets JOURNAL_STREAM when stderr goes to journald, which parses the prefix. */
                use_prefix = e ? streq(e, "1") : getenv("JOURNAL_STREAM") != NULL;
        }

        if (use_prefix)
                fprintf(stderr, "<%d>%s%s%s\n", level, ident ?: "", ident ? ": " : "", buf);
        else
                fprintf(stderr, "%s%s%s\n", ident ?: "", ident ? ": " : "", buf);

        errno = saved;
        return -abs(error);
}
