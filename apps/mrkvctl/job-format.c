/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How mrkvctl shows a MapReduce job: parsing the coordinator's Job object and every
 * human-readable form of it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job-format.h"
#include "macro.h"

static int get_string(json_object *o, const char *key, bool mandatory, const char **ret) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !v) {
                *ret = NULL;
                return mandatory ? -EBADMSG : 0;
        }
        /* An embedded NUL would silently cut what is shown. */
        if (!json_object_is_type(v, json_type_string) ||
            strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v))
                return -EBADMSG;
        *ret = json_object_get_string(v);
        return 0;
}

static int get_uint(json_object *o, const char *key, bool mandatory, uint64_t *ret) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !v) {
                *ret = 0;
                return mandatory ? -EBADMSG : 0;
        }
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
                return -EBADMSG;
        *ret = json_object_get_uint64(v);
        return 0;
}

/* A boolean the coordinator may leave out (older ones do): -1 then, else 0 or 1. */
static int get_tristate(json_object *o, const char *key, int *ret) {
        json_object *v;

        *ret = -1;
        if (!json_object_object_get_ex(o, key, &v) || !v)
                return 0;
        if (!json_object_is_type(v, json_type_boolean))
                return -EBADMSG;
        *ret = json_object_get_boolean(v);
        return 0;
}

/* A list the coordinator may leave out (null or missing): *ret NULL then. */
static int get_string_array(json_object *o, const char *key, json_object **ret) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !v) {
                *ret = NULL;
                return 0;
        }
        if (!json_object_is_type(v, json_type_array))
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *e = json_object_array_get_idx(v, i);
                if (!json_object_is_type(e, json_type_string) ||
                    strlen(json_object_get_string(e)) != (size_t) json_object_get_string_len(e))
                        return -EBADMSG;
        }
        *ret = v;
        return 0;
}

/* The counters, an object of non-negative integers the coordinator may leave out. */
static int get_counters(json_object *o, json_object **ret) {
        json_object *v;

        *ret = NULL;
        if (!json_object_object_get_ex(o, "counters", &v) || !v)
                return 0;
        if (!json_object_is_type(v, json_type_object))
                return -EBADMSG;
        json_object_object_foreach(v, name, c)
                if (!json_object_is_type(c, json_type_int) || json_object_get_int64(c) < 0 || name[0] == '\0')
                        return -EBADMSG;
        *ret = v;
        return 0;
}

int job_info_parse(json_object *o, JobInfo *ret) {
        JobInfo j = {};
        json_object *v;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;

        if ((r = get_string(o, "id", true, &j.id)) < 0 ||
            (r = get_string(o, "app", false, &j.app)) < 0 ||
            (r = get_string(o, "state", true, &j.state)) < 0 ||
            (r = get_string(o, "workdir", true, &j.workdir)) < 0 ||
            (r = get_string(o, "error", false, &j.error)) < 0 ||
            (r = get_string(o, "waiting", false, &j.waiting)) < 0 ||
            (r = get_string_array(o, "files", &j.files)) < 0 ||
            (r = get_string_array(o, "outputs", &j.outputs)) < 0 ||
            (r = get_uint(o, "nreduce", true, &j.nreduce)) < 0 ||
            (r = get_uint(o, "map_done", true, &j.map_done)) < 0 ||
            (r = get_uint(o, "map_total", true, &j.map_total)) < 0 ||
            (r = get_uint(o, "reduce_done", true, &j.reduce_done)) < 0 ||
            (r = get_uint(o, "reduce_total", true, &j.reduce_total)) < 0 ||
            (r = get_uint(o, "submit_time", true, &j.submit_time)) < 0 ||
            (r = get_uint(o, "start_time", false, &j.start_time)) < 0 ||
            (r = get_uint(o, "finish_time", false, &j.finish_time)) < 0)
                return r;
        if ((r = get_string(o, "mapper", false, &j.mapper)) < 0 ||
            (r = get_string(o, "reducer", false, &j.reducer)) < 0 ||
            (r = get_counters(o, &j.counters)) < 0)
                return r;
        j.has_split_size = json_object_object_get_ex(o, "split_size", &v) && v;
        if (j.has_split_size && (r = get_uint(o, "split_size", true, &j.split_size)) < 0)
                return r;
        if ((r = get_tristate(o, "backup_tasks", &j.backup_tasks)) < 0 ||
            (r = get_tristate(o, "combine", &j.combine)) < 0)
                return r;
        j.has_owner = json_object_object_get_ex(o, "owner_uid", NULL);
        if (j.has_owner && (r = get_uint(o, "owner_uid", true, &j.owner_uid)) < 0)
                return r;

        /* json-c reads "1" as an int and "1.0" as a double: both are a float to Varlink. */
        if (!json_object_object_get_ex(o, "progress", &v) ||
            !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
                return -EBADMSG;
        j.progress = json_object_get_double(v);

        if (j.map_done > j.map_total || j.reduce_done > j.reduce_total)
                return -EBADMSG;

        *ret = j;
        return 0;
}

bool job_state_is_final(const char *state) {
        return streq(state, "done") || streq(state, "failed") || streq(state, "cancelled");
}

char *format_duration(uint64_t usec, char *buf, size_t size) {
        uint64_t s = usec / USEC_PER_SEC;

        if (usec < 60 * USEC_PER_SEC)
                snprintf(buf, size, "%" PRIu64 ".%" PRIu64 "s", s, usec / (USEC_PER_SEC / 10) % 10);
        else if (s < 3600)
                snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
        else
                snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
        return buf;
}

char *format_elapsed(uint64_t usec, char *buf, size_t size) {
        uint64_t s = usec / USEC_PER_SEC;

        if (s < 3600)
                snprintf(buf, size, "%" PRIu64 ":%02" PRIu64, s / 60, s % 60);
        else
                snprintf(buf, size, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600, s / 60 % 60, s % 60);
        return buf;
}

char *format_timestamp(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "-");
        return buf;
}

unsigned job_percent(const JobInfo *j) {
        uint64_t total = j->map_total + j->reduce_total;

        /* From the counts rather than the float, so that 100% means every task is done. */
        if (total > 0)
                return (unsigned) ((j->map_done + j->reduce_done) * 100 / total);
        if (j->progress <= 0)
                return 0;
        return j->progress >= 1 ? 100 : (unsigned) (j->progress * 100);
}

int job_format_progress_line(const JobInfo *j, uint64_t elapsed_usec, char **ret) {
        char e[32];

        if (asprintf(ret,
                     "job %s: %s, map %" PRIu64 "/%" PRIu64 ", reduce %" PRIu64 "/%" PRIu64 ", %u%%, %s",
                     j->id, j->state, j->map_done, j->map_total, j->reduce_done, j->reduce_total,
                     job_percent(j), format_elapsed(elapsed_usec, e, sizeof(e))) < 0)
                return -ENOMEM;
        return 0;
}

#define BAR_MIN 10U
#define BAR_MAX 40U

int job_format_progress_bar(const JobInfo *j, uint64_t elapsed_usec, unsigned columns, char **ret) {
        _cleanup_free_ char *head = NULL, *tail = NULL, *bar = NULL;
        size_t fixed, width;
        unsigned percent = job_percent(j);
        char e[32], *s;

        if (columns == 0)
                columns = 80;
        /* The state padded to the longest one ("cancelled"), so the bar does not jump
         * sideways when the job goes from mapping to reducing. */
        if (asprintf(&head, "job %s %-9s", j->id, j->state) < 0 ||
            asprintf(&tail, "%3u%%  map %" PRIu64 "/%" PRIu64 "  reduce %" PRIu64 "/%" PRIu64 "  %s",
                     percent, j->map_done, j->map_total, j->reduce_done, j->reduce_total,
                     format_elapsed(elapsed_usec, e, sizeof(e))) < 0)
                return -ENOMEM;

        /* head, two spaces, "[bar]", two spaces, tail; one column spare so the cursor
         * never moves to the next line. */
        fixed = strlen(head) + strlen(tail) + 6;
        width = fixed + BAR_MIN < columns ? MIN((size_t) BAR_MAX, columns - 1 - fixed) : 0;
        if (width > 0) {
                size_t filled = width * percent / 100;

                bar = malloc(width + 1);
                if (!bar)
                        return -ENOMEM;
                memset(bar, '#', filled);
                memset(bar + filled, '.', width - filled);
                bar[width] = '\0';
                if (asprintf(&s, "%s  [%s]  %s", head, bar, tail) < 0)
                        return -ENOMEM;
        } else {
                if (asprintf(&s, "%s  %s", head, tail) < 0)
                        return -ENOMEM;
                if (strlen(s) > columns - 1)
                        s[columns - 1] = '\0';
        }
        *ret = s;
        return 0;
}

/* job_info_parse() checked that every element is a string. */
static const char *array_string(json_object *a, size_t i) {
        return json_object_get_string(json_object_array_get_idx(a, i));
}

/* How long the job ran: from its start, or from its submission if no worker took it. */
static uint64_t job_run_time(const JobInfo *j) {
        uint64_t from = j->start_time ?: j->submit_time;
        return j->finish_time > from ? j->finish_time - from : 0;
}

void job_print_summary(FILE *f, const JobInfo *j) {
        char d[32];

        format_duration(job_run_time(j), d, sizeof(d));
        if (streq(j->state, "done")) {
                fprintf(f, "Job %s done in %s (%" PRIu64 " maps, %" PRIu64 " reduces). Output files:\n",
                        j->id, d, j->map_total, j->reduce_total);
                for (size_t i = 0; j->outputs && i < json_object_array_length(j->outputs); i++)
                        fprintf(f, "  %s\n", array_string(j->outputs, i));
        } else if (streq(j->state, "failed"))
                fprintf(f, "Job %s failed after %s: %s\n", j->id, d, j->error ?: "no reason given");
        else if (streq(j->state, "cancelled"))
                fprintf(f, "Job %s cancelled after %s.\n", j->id, d);
        else
                fprintf(f, "Job %s is %s.\n", j->id, j->state);
}

static void print_list(FILE *f, const char *label, json_object *a) {
        size_t n;

        if (!a) {
                fprintf(f, "%10s (not kept)\n", label);
                return;
        }
        n = json_object_array_length(a);
        if (n == 0) {
                fprintf(f, "%10s -\n", label);
                return;
        }
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%10s %s\n", i == 0 ? label : "", array_string(a, i));
}

char *format_bytes(uint64_t bytes, char *buf, size_t size) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        unsigned u = 0;

        while (u + 1 < ELEMENTSOF(units) && bytes >= 1024 && bytes % 1024 == 0) {
                bytes /= 1024;
                u++;
        }
        snprintf(buf, size, "%" PRIu64 " %s", bytes, units[u]);
        return buf;
}

/* "Counters:" and one "name value" line each, in the coordinator's order, names aligned. */
static void print_counters(FILE *f, json_object *counters) {
        size_t width = 0, i = 0;

        if (!counters || json_object_object_length(counters) == 0)
                return;
        json_object_object_foreach(counters, k, v0) {
                (void) v0;
                width = MAX(width, strlen(k));
        }
        json_object_object_foreach(counters, name, v)
                fprintf(f, "%10s %-*s %" PRIu64 "\n", i++ == 0 ? "Counters:" : "", (int) width, name,
                        json_object_get_uint64(v));
}

void job_print_status(FILE *f, const JobInfo *j, uint64_t now_usec) {
        char t[64], d[32];

        fprintf(f, "%10s %s\n", "Job:", j->id);
        fprintf(f, "%10s %s\n", "App:", j->app ?: "(the workers' own)");
        if (j->has_owner)
                fprintf(f, "%10s uid %" PRIu64 "\n", "Owner:", j->owner_uid);
        fprintf(f, "%10s %s\n", "State:", j->state);
        if (j->waiting)
                fprintf(f, "%10s for %s\n", "Waiting:", j->waiting);
        if (j->error)
                fprintf(f, "%10s %s\n", "Error:", j->error);
        fprintf(f, "%10s %u%% (map %" PRIu64 "/%" PRIu64 ", reduce %" PRIu64 "/%" PRIu64 ")\n", "Progress:",
                job_percent(j), j->map_done, j->map_total, j->reduce_done, j->reduce_total);
        fprintf(f, "%10s %s", "Submitted:", format_timestamp(j->submit_time, t, sizeof(t)));
        if (now_usec > j->submit_time)
                fprintf(f, " (%s ago)", format_duration(now_usec - j->submit_time, d, sizeof(d)));
        fputc('\n', f);
        if (j->start_time > 0) {
                fprintf(f, "%10s %s", "Started:", format_timestamp(j->start_time, t, sizeof(t)));
                if (j->finish_time == 0 && now_usec > j->start_time)
                        fprintf(f, " (running for %s)",
                                format_duration(now_usec - j->start_time, d, sizeof(d)));
                fputc('\n', f);
        }
        if (j->finish_time > 0)
                fprintf(f, "%10s %s (after %s)\n", "Finished:",
                        format_timestamp(j->finish_time, t, sizeof(t)),
                        format_duration(job_run_time(j), d, sizeof(d)));
        fprintf(f, "%10s %s\n", "Workdir:", j->workdir[0] ? j->workdir : "-");
        print_list(f, "Input:", j->files);
        if (j->mapper)
                fprintf(f, "%10s %s\n", "Mapper:", j->mapper);
        if (j->reducer)
                fprintf(f, "%10s %s\n", "Reducer:", j->reducer);
        if (j->has_split_size) {
                if (j->split_size > 0)
                        fprintf(f, "%10s %s\n", "Splits:", format_bytes(j->split_size, d, sizeof(d)));
                else
                        fprintf(f, "%10s one map task per file\n", "Splits:");
        }
        if (j->backup_tasks >= 0)
                fprintf(f, "%10s %s\n", "Backups:", j->backup_tasks ? "yes" : "no");
        if (j->combine == 0)
                fprintf(f, "%10s no\n", "Combiner:");
        fprintf(f, "%10s %" PRIu64 "\n", "Reduces:", j->nreduce);
        print_list(f, "Output:", j->outputs);
        print_counters(f, j->counters);
}

enum { COL_ID, COL_STATE, COL_APP, COL_PROGRESS, COL_MAPS, COL_REDUCES, COL_SUBMITTED, _COL_MAX };

static void table_cells(const JobInfo *j, char cells[_COL_MAX][64]) {
        snprintf(cells[COL_ID], 64, "%s", j->id);
        snprintf(cells[COL_STATE], 64, "%s", j->state);
        snprintf(cells[COL_APP], 64, "%s", j->app ?: "-");
        snprintf(cells[COL_PROGRESS], 64, "%u%%", job_percent(j));
        snprintf(cells[COL_MAPS], 64, "%" PRIu64 "/%" PRIu64, j->map_done, j->map_total);
        snprintf(cells[COL_REDUCES], 64, "%" PRIu64 "/%" PRIu64, j->reduce_done, j->reduce_total);
        format_timestamp(j->submit_time, cells[COL_SUBMITTED], 64);
}

static void print_row(FILE *f, char cells[_COL_MAX][64], const size_t widths[_COL_MAX]) {
        for (unsigned c = 0; c < _COL_MAX; c++)
                if (c + 1 < _COL_MAX)
                        fprintf(f, "%-*s  ", (int) widths[c], cells[c]);
                else
                        fprintf(f, "%s\n", cells[c]);
}

void job_print_table(FILE *f, const JobInfo *jobs, size_t n) {
        static const char *const header[_COL_MAX] = {
                "ID", "STATE", "APP", "PROGRESS", "MAPS", "REDUCES", "SUBMITTED",
        };
        char cells[_COL_MAX][64];
        size_t widths[_COL_MAX];

        for (unsigned c = 0; c < _COL_MAX; c++)
                widths[c] = strlen(header[c]);
        for (size_t i = 0; i < n; i++) {
                table_cells(&jobs[i], cells);
                for (unsigned c = 0; c < _COL_MAX; c++)
                        widths[c] = MAX(widths[c], strlen(cells[c]));
        }

        for (unsigned c = 0; c < _COL_MAX; c++)
                snprintf(cells[c], 64, "%s", header[c]);
        print_row(f, cells, widths);
        for (size_t i = 0; i < n; i++) {
                table_cells(&jobs[i], cells);
                print_row(f, cells, widths);
        }
}
