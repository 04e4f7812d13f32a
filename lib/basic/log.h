/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

/* Logging, by default to stderr ("console"), with sd-daemon "<N>" priority prefixes when
 * stderr is connected to journald, which reads them; $MRKV_LOG_PREFIX=1 or 0 forces the
 * prefixes on or off. The other targets, as org.freedesktop.LogControl1 names them:
 * "journal" sends each message with sd_journal_send() and its PRIORITY, CODE_FILE,
 * CODE_LINE, CODE_FUNC, SYSLOG_IDENTIFIER and ERRNO fields (to stderr when the journal
 * does not take it); "auto" is "journal" when stderr is the journal (unless
 * $MRKV_LOG_PREFIX asks for stderr), else "console"; "null" drops everything. */

typedef enum LogTarget {
        LOG_TARGET_CONSOLE,
        LOG_TARGET_JOURNAL,
        LOG_TARGET_AUTO,
        LOG_TARGET_NULL,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -EINVAL,
} LogTarget;

/* The longest message; longer ones are cut. */
#define LOG_MESSAGE_MAX 2048

void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);
void log_set_ident(const char *ident);
/* A LogTarget, or -EOPNOTSUPP for a target of systemd's not implemented here ("kmsg",
 * "syslog", ...), -EINVAL for anything else. */
int log_target_from_string(const char *s);
const char *log_target_to_string(LogTarget target);
void log_set_target(LogTarget target);
LogTarget log_get_target(void);
/* stderr is the journal stream systemd connected: $JOURNAL_STREAM names fd 2's device and
 * inode (a child with a redirected stderr inherits the variable but not the stream). */
bool log_stderr_is_journal(void);
/* The value of a --log-level option: sets the level, or logs why it is invalid and
 * returns -EINVAL. */
int log_set_max_level_from_option(const char *value);

/* For getopt_long() with ":" at the head of its option string ("+:h"): logs what was wrong with
 * the option it answered ':' (a missing argument) or '?' (unknown) for, and returns
 * -EINVAL. */
int log_option_error(int c, char *const argv[]);

/* Returns -abs(error) so callers can write "return log_error_errno(r, ...)". %m prints strerror(error). */
int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...)
        _printf_(6, 7);

#define log_full_errno(level, error, ...)                                                       \
        ({                                                                                      \
                int _level_ = (level), _e_ = (error);                                           \
                _level_ <= log_get_max_level()                                                  \
                        ? log_internal(_level_, _e_, __FILE__, __LINE__, __func__, __VA_ARGS__) \
                        : -abs(_e_);                                                            \
        })

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")
