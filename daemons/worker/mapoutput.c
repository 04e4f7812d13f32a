/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>

#include "app-host.h"
#include "intermediate.h"
#include "macro.h"
#include "mapoutput.h"
#include "merge.h"
#include "output.h"

/* Read buffers of a merge share the budget, within these bounds each. */
#define RUN_BUFFER_MIN (4U * 1024U)
#define RUN_BUFFER_MAX (64U * 1024U)

/* The values a combiner gets: one group in memory, or the groups of one key in the runs
 * being merged. */
struct mrkv_values {
        const Group *group;
        GroupIter it;
        GroupMerge *merge;
        const unsigned *members;
        unsigned n_members, current;
        uint64_t n; /* values handed out */
        int error;
};

struct mrkv_emitter {
        const char *key;
        size_t key_len;
        Group *out;
};

static int combine_next_value(mrkv_values *v, const char **value, size_t *value_len) {
        if (v->group) {
                if (group_next_value(v->group, &v->it, value, value_len) == 0)
                        return 0;
                v->n++;
                return 1;
        }
        while (v->current < v->n_members) {
                int r = group_reader_next_value(&v->merge->readers[v->members[v->current]], value, value_len);
                if (r > 0) {
                        v->n++;
                        return 1;
                }
                if (r < 0) {
                        v->error = r;
                        v->n_members = 0;
                        return r;
                }
                v->current++;
        }
        return v->error;
}

/* A word count's "1"s of a key are one run in memory and in a spilled run: one call for all. */
static int combine_next_run(mrkv_values *v, const char **value, size_t *value_len, uint64_t *repeat) {
        int r = v->group ? group_next_repeat(v->group, &v->it, value, value_len, repeat)
                         : group_merge_take_run(v->merge, v->members, v->n_members, &v->current, repeat, value,
                                                value_len);

        if (r < 0) {
                v->error = r;
                v->n_members = 0;
                return r;
        }
        if (r == 0)
                return v->error;
        v->n += *repeat;
        return 1;
}

static int combine_emit(mrkv_emitter *e, const char *key, size_t key_len, const char *value, size_t value_len) {
        if (!app_emit_valid(key, key_len, value, value_len))
                return -EINVAL;
        /* A combiner combines values of its key; another key would break the order. */
        if (!app_combine_key_valid(key, key_len, e->key, e->key_len))
                return -EINVAL;
        return group_append(e->out, app_bytes(value, value_len), value_len);
}

static const mrkv_host combine_host = {
        .abi_version = MRKV_APP_ABI_VERSION,
        .struct_size = sizeof(mrkv_host),
        .emit = combine_emit,
        .next_value = combine_next_value,
        .next_run = combine_next_run,
};

static int fail(MapOutput *m, int r, const char *what) {
        free(m->error);
        errno = -r;
        asprintf_or_null(&m->error, "%s: %m", what);
        return r;
}

/* Runs the combiner over v, into m->combined. */
static int combine(MapOutput *m, const char *key, size_t key_len, mrkv_values *v) {
        mrkv_emitter e = { .key = key, .key_len = key_len, .out = &m->combined };
        int r;

        m->combined.values_size = m->combined.n_values = m->combined.last_run = 0;
        r = m->combine(&combine_host, &e, key, key_len, v);
        if (r >= 0)
                r = v->error;
        if (r < 0) {
                free(m->error);
                errno = -r;
                asprintf_or_null(&m->error, "combine failed: %m");
                return r;
        }
        m->counters->combine_input_records += v->n;
        m->counters->combine_output_records += m->combined.n_values;
        return 0;
}

/* Bytes of the values of a group, as emitted. */
static uint64_t group_value_bytes(const Group *group) {
        const char *value;
        size_t pos = 0, len;
        uint32_t repeat;
        uint64_t n = 0;

        while (group_next_run(group, &pos, &repeat, &value, &len) > 0)
                n += (uint64_t) repeat * len;
        return n;
}

/* Writes a group; returns the bytes of its values, as emitted. */
static uint64_t write_group(OutputFile *f, const char *key, size_t key_len, const Group *values) {
        uint8_t hdr[VARINT_MAX];
        const char *value;
        size_t pos = 0, len;
        uint32_t repeat;
        uint64_t n = 0;

        (void) output_file_write(f, hdr, varint_encode(hdr, key_len));
        (void) output_file_write(f, key, key_len);
        (void) output_file_write(f, hdr, varint_encode(hdr, values->n_values));
        while (group_next_run(values, &pos, &repeat, &value, &len) > 0) {
                (void) output_file_write(f, hdr, varint_encode(hdr, repeat));
                (void) output_file_write(f, hdr, varint_encode(hdr, len));
                (void) output_file_write(f, value, len);
                n += (uint64_t) repeat * len;
        }
        return n;
}

/* Writes a group from memory, combined when there is a combiner; returns the values written.
 * Each group of the map's output passes here once: it is counted here. */
static int write_memory_group(MapOutput *m, OutputFile *f, const Group *group, uint64_t *ret_written) {
        uint64_t bytes;
        int r;

        m->counters->map_output_records += group->n_values;
        m->counters->map_output_bytes += (uint64_t) group->key_len * group->n_values;

        /* One value repeated is as small as a combiner could make it in this format (a run):
         * a word count's "1"s are left as they are. */
        if (m->combine && group->last_run > 1) {
                r = combine(m, group->key, group->key_len, &(mrkv_values) { .group = group });
                if (r < 0)
                        return r;
                m->counters->map_output_bytes += group_value_bytes(group);
                (void) write_group(f, group->key, group->key_len, &m->combined);
                *ret_written = m->combined.n_values;
                return 0;
        }
        bytes = write_group(f, group->key, group->key_len, group);
        m->counters->map_output_bytes += bytes;
        *ret_written = group->n_values;
        return 0;
}

static uint32_t partition_of(const MapOutput *m, const char *key, size_t key_len) {
        return (fnv1a32(key, key_len) & 0x7fffffff) % m->nreduce;
}

/* The map's output file being written: the partitions in order, and where each starts. */
typedef struct MapFile {
        OutputFile out;
        const char *name;
        uint64_t *offsets;  /* nreduce + 1: where each partition starts, then where the index does */
        unsigned partition; /* the partition being written */
} MapFile;

static int map_file_open(MapOutput *m, MapFile *f, const char *name) {
        int r;

        *f = (MapFile) { .out = { .fd = -EBADF }, .name = name };
        f->offsets = calloc((size_t) m->nreduce + 1, sizeof(uint64_t));
        if (!f->offsets)
                return fail(m, -ENOMEM, "cannot write the map output");
        r = output_file_open(&f->out, m->dir_fd, name);
        if (r < 0) {
                f->offsets = mfree(f->offsets);
                free(m->error);
                errno = -r;
                asprintf_or_null(&m->error, "cannot create %s: %m", name);
        }
        return r;
}

/* Moves on to partition p (>= the current one): those passed over are empty. */
static void map_file_partition(MapFile *f, unsigned p) {
        while (f->partition < p)
                f->offsets[++f->partition] = f->out.offset;
}

/* Ends the file with its index when r >= 0, and closes it; returns r or the first write error. */
static int map_file_close(MapOutput *m, MapFile *f, int r) {
        _cleanup_free_ uint8_t *trailer = NULL;
        int k;

        if (r >= 0) {
                map_file_partition(f, m->nreduce);
                trailer = malloc(intermediate_trailer_size(m->nreduce));
                if (!trailer)
                        r = fail(m, -ENOMEM, "cannot write the map output");
                else {
                        /* Partition p ends where p + 1 starts. */
                        intermediate_trailer_encode(trailer, f->offsets + 1, m->nreduce);
                        (void) output_file_write(&f->out, trailer, intermediate_trailer_size(m->nreduce));
                }
        }
        f->offsets = mfree(f->offsets);
        k = output_file_close(&f->out);
        if (k < 0 && r >= 0) {
                free(m->error);
                errno = -k;
                asprintf_or_null(&m->error, "cannot write %s: %m", f->name);
                return k;
        }
        return r;
}

/* The groups in memory ordered by (partition, key): partition p's are
 * (*ret_ordered)[ends[p - 1] .. ends[p]) (from 0 for p = 0). */
static int order_groups(MapOutput *m, const Group ***ret_ordered, size_t **ret_ends) {
        _cleanup_free_ const Group **sorted = NULL, **ordered = NULL;
        _cleanup_free_ uint32_t *parts = NULL;
        _cleanup_free_ size_t *starts = NULL;
        const Groups *g = m->groups;
        int r;

        r = groups_sorted(g, &sorted);
        if (r < 0)
                return fail(m, r, "cannot sort the map output");
        ordered = malloc(MAX(g->n_groups, (size_t) 1) * sizeof(Group *));
        parts = malloc(MAX(g->n_groups, (size_t) 1) * sizeof(uint32_t));
        starts = calloc(m->nreduce + 1, sizeof(size_t));
        if (!ordered || !parts || !starts)
                return fail(m, -ENOMEM, "cannot write the map output");

        /* A counting sort by partition keeps the key order within each. */
        for (size_t i = 0; i < g->n_groups; i++) {
                parts[i] = partition_of(m, sorted[i]->key, sorted[i]->key_len);
                starts[parts[i] + 1]++;
        }
        for (unsigned p = 0; p < m->nreduce; p++)
                starts[p + 1] += starts[p];
        /* Placing a group moves its partition's start on: they end as the ends. */
        for (size_t i = 0; i < g->n_groups; i++)
                ordered[starts[parts[i]]++] = sorted[i];

        *ret_ordered = TAKE_PTR(ordered);
        *ret_ends = TAKE_PTR(starts);
        return 0;
}

/* Without runs: the groups in (partition, key) order into the map's file. */
static int write_partitions(MapOutput *m, const char *name) {
        _cleanup_free_ const Group **ordered = NULL;
        _cleanup_free_ size_t *ends = NULL;
        uint64_t written = 0;
        MapFile f;
        size_t i = 0;
        int r;

        r = order_groups(m, &ordered, &ends);
        if (r < 0)
                return r;
        r = map_file_open(m, &f, name);
        if (r < 0)
                return r;
        for (unsigned p = 0; p < m->nreduce && r >= 0; p++) {
                map_file_partition(&f, p);
                for (; i < ends[p] && r >= 0; i++)
                        r = write_memory_group(m, &f.out, ordered[i], &written);
        }
        return map_file_close(m, &f, r);
}

/* A new file for a run, unlinked at once: it lives as long as its fd. */
static int run_create(MapOutput *m, OutputFile *f) {
        int r = output_file_open_readable(f, m->dir_fd, m->run_name);

        if (r < 0)
                return fail(m, r, "cannot create a spill file in the job's directory");
        if (unlinkat(m->dir_fd, m->run_name, 0) < 0) {
                r = -errno;
                (void) output_file_close(f);
                return fail(m, r, "cannot unlink a spill file");
        }
        return 0;
}

static int run_finish(MapOutput *m, OutputFile *f, int r, int *ret_fd) {
        if (r < 0) {
                (void) output_file_close(f);
                return r;
        }
        r = output_file_detach(f);
        if (r < 0)
                return fail(m, r, "cannot write a spill file in the job's directory");
        *ret_fd = r;
        return 0;
}

static int runs_add(MapOutput *m, int fd);

/* Writes the groups in memory as a run, ordered by (partition, key), and empties them. */
static int spill(MapOutput *m) {
        _cleanup_free_ const Group **ordered = NULL;
        _cleanup_free_ size_t *ends = NULL;
        Groups *g = m->groups;
        OutputFile f;
        uint64_t written = 0;
        int r, fd;

        r = order_groups(m, &ordered, &ends);
        if (r < 0)
                return r;

        r = run_create(m, &f);
        if (r < 0)
                return r;
        for (size_t i = 0; i < g->n_groups && r >= 0; i++) {
                r = write_memory_group(m, &f, ordered[i], &written);
                m->counters->spilled_records += written;
        }
        r = run_finish(m, &f, r, &fd);
        if (r < 0)
                return r;
        /* Its memory goes back, not only its groups: what a reset keeps would count
         * against the budget and make the next runs small. */
        groups_done(g);
        return runs_add(m, fd);
}

static int map_output_full(void *userdata) {
        return spill(userdata);
}

void map_output_init(MapOutput *m, size_t budget) {
        groups_set_budget(m->groups, budget, map_output_full, m);
}

/* Writes the groups of one key, from the members of the merge positioned at it, to f. */
static int merge_group(MapOutput *m, GroupMerge *merge, const unsigned *members, unsigned n_members,
                       const char *key, size_t key_len, OutputFile *f, uint64_t *ret_written) {
        uint8_t hdr[VARINT_MAX];
        uint64_t total = 0;
        int r;

        /* A key of one run only was combined, if at all, when that run was written. */
        if (m->combine && n_members > 1) {
                mrkv_values v = { .merge = merge, .members = members, .n_members = n_members };

                r = combine(m, key, key_len, &v);
                if (r < 0)
                        return r;
                (void) write_group(f, key, key_len, &m->combined);
                *ret_written = m->combined.n_values;
                return 0;
        }

        /* Without a combiner the runs are copied as they are, in run order. */
        for (unsigned i = 0; i < n_members; i++)
                total += merge->readers[members[i]].values_left;
        (void) output_file_write(f, hdr, varint_encode(hdr, key_len));
        (void) output_file_write(f, key, key_len);
        (void) output_file_write(f, hdr, varint_encode(hdr, total));
        for (unsigned i = 0; i < n_members; i++) {
                GroupReader *reader = &merge->readers[members[i]];
                const char *value;
                uint64_t repeat;
                size_t len;

                while ((r = group_reader_take_run(reader, &repeat, &value, &len)) > 0) {
                        (void) output_file_write(f, hdr, varint_encode(hdr, repeat));
                        (void) output_file_write(f, hdr, varint_encode(hdr, len));
                        (void) output_file_write(f, value, len);
                }
                if (r < 0)
                        return fail(m, r, "cannot read a spill file");
        }
        *ret_written = total;
        return 0;
}

/* Merges the runs fds[0..n) (taking them) into one new run (name NULL; *ret_fd), or into
 * the map's file name. */
static int merge_runs(MapOutput *m, int *fds, unsigned n, const char *name, int *ret_fd) {
        _cleanup_free_ unsigned *members = NULL;
        _cleanup_free_ char *key = NULL;
        size_t key_allocated = 0, buffer_size;
        GroupMerge merge = {};
        MapFile file = { .out = { .fd = -EBADF } };
        OutputFile run = { .fd = -EBADF }, *out = name ? &file.out : &run;
        uint64_t written = 0;
        int r = 0;

        merge.readers = calloc(n, sizeof(GroupReader));
        merge.partitions = calloc(n, sizeof(uint32_t));
        merge.heap = calloc(n, sizeof(unsigned));
        members = calloc(n, sizeof(unsigned));
        if (!merge.readers || !merge.partitions || !merge.heap || !members) {
                r = fail(m, -ENOMEM, "cannot merge the spill files");
                goto finish;
        }
        for (unsigned i = 0; i < n; i++)
                merge.readers[i].fd = -EBADF;

        buffer_size = m->groups->budget > 0 ? MIN(MAX(m->groups->budget / 2 / n, RUN_BUFFER_MIN), RUN_BUFFER_MAX)
                                            : RUN_BUFFER_MAX;
        for (unsigned i = 0; i < n; i++) {
                r = group_reader_open_fd(&merge.readers[i], TAKE_FD(fds[i]), buffer_size);
                if (r >= 0)
                        r = group_reader_next_key(&merge.readers[i]);
                if (r < 0) {
                        fail(m, r, "cannot read a spill file");
                        goto finish;
                }
                if (r > 0) {
                        merge.partitions[i] = partition_of(m, merge.readers[i].key, merge.readers[i].key_len);
                        group_merge_push(&merge, i);
                }
        }

        r = name ? map_file_open(m, &file, name) : run_create(m, &run);
        if (r < 0)
                goto finish;

        while (merge.n_heap > 0) {
                unsigned top = merge.heap[0], n_members = 0;
                size_t key_len = merge.readers[top].key_len;

                /* The runs come out by partition: their boundaries go into the index. */
                if (name)
                        map_file_partition(&file, merge.partitions[top]);

                /* Reading values moves the readers' buffers: keep the key apart. */
                if (key_len + 1 > key_allocated) {
                        char *k = realloc(key, key_len + 1);
                        if (!k) {
                                r = fail(m, -ENOMEM, "cannot merge the spill files");
                                goto finish;
                        }
                        key = k;
                        key_allocated = key_len + 1;
                }
                memcpy(key, merge.readers[top].key, key_len);

                while (merge.n_heap > 0 && group_merge_same_key(&merge, merge.heap[0], key, key_len))
                        members[n_members++] = group_merge_pop(&merge);

                r = merge_group(m, &merge, members, n_members, key, key_len, out, &written);
                if (r < 0)
                        goto finish;
                if (!name)
                        m->counters->spilled_records += written;

                for (unsigned i = 0; i < n_members; i++) {
                        GroupReader *reader = &merge.readers[members[i]];

                        r = group_reader_next_key(reader);
                        if (r < 0) {
                                fail(m, r, "cannot read a spill file");
                                goto finish;
                        }
                        if (r > 0) {
                                merge.partitions[members[i]] = partition_of(m, reader->key, reader->key_len);
                                group_merge_push(&merge, members[i]);
                        }
                }
        }

        if (name)
                r = map_file_close(m, &file, 0);
        else
                r = run_finish(m, &run, 0, ret_fd);

finish:
        if (file.out.fd >= 0)
                (void) map_file_close(m, &file, r);
        if (run.fd >= 0)
                (void) output_file_close(&run);
        for (unsigned i = 0; i < n; i++) {
                closep(&fds[i]);
                fds[i] = -EBADF;
                if (merge.readers)
                        group_reader_close(&merge.readers[i]);
        }
        free(merge.readers);
        free(merge.partitions);
        free(merge.heap);
        return r;
}

/* Merges the MAP_MERGE_FAN_IN runs from first on into one in their place: a key's values
 * keep the order they were emitted in. */
static int merge_runs_at(MapOutput *m, size_t first) {
        int fd = -EBADF, r; /* set when merge_runs() succeeds; gcc -O3 cannot tell */

        r = merge_runs(m, m->runs + first, MAP_MERGE_FAN_IN, NULL, &fd);
        if (r < 0)
                return r;
        m->runs[first] = fd;
        memmove(m->runs + first + 1, m->runs + first + MAP_MERGE_FAN_IN,
                (m->n_runs - first - MAP_MERGE_FAN_IN) * sizeof(int));
        m->n_runs -= MAP_MERGE_FAN_IN - 1;
        return 0;
}

/* Keeps a new run. Beyond MAP_MERGE_FAN_IN runs, the newest are merged into one, so a
 * task holds that many files at most, and each byte is merged again only about once per
 * MAP_MERGE_FAN_IN-fold growth of the output. */
static int runs_add(MapOutput *m, int fd) {
        int *runs = reallocarray(m->runs, m->n_runs + 1, sizeof(int));

        if (!runs) {
                closep(&fd);
                return fail(m, -ENOMEM, "cannot keep a spill file");
        }
        m->runs = runs;
        m->runs[m->n_runs++] = fd;
        if (m->n_runs > MAP_MERGE_FAN_IN)
                return merge_runs_at(m, m->n_runs - MAP_MERGE_FAN_IN);
        return 0;
}

int map_output_write(MapOutput *m, const char *name) {
        int r;

        if (m->n_runs == 0)
                return write_partitions(m, name);

        if (m->groups->n_groups > 0) {
                r = spill(m);
                if (r < 0)
                        return r;
        }
        /* The memory of the groups goes back before the merge takes its buffers. */
        groups_done(m->groups);

        r = merge_runs(m, m->runs, (unsigned) m->n_runs, name, NULL);
        m->n_runs = 0;
        return r;
}

void map_output_done(MapOutput *m) {
        /* The groups outlive m: they must not call back into it. */
        groups_set_budget(m->groups, m->groups->budget, NULL, NULL);
        for (size_t i = 0; i < m->n_runs; i++)
                closep(&m->runs[i]);
        m->runs = mfree(m->runs);
        m->n_runs = 0;
        m->error = mfree(m->error);
        m->combined.values = mfree(m->combined.values);
        m->combined = (Group) {};
}
