/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#include "macro.h"
#include "record.h"
#include "test-state-util.h"

static char base[PATH_MAX];

char *test_dir_new(void) {
        char *p;

        /* mkdtemp(): each test runs in a child forked from the same state. */
        ck_assert(base[0]);
        ck_assert_int_ge(asprintf(&p, "%s/dXXXXXX", base), 0);
        ck_assert_ptr_nonnull(mkdtemp(p));
        return p;
}

int test_dir_open(const char *path) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        return fd;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

int test_run(Suite *suite) {
        const char *tmp = getenv("TMPDIR");
        SRunner *sr;
        int failed;

        snprintf(base, sizeof(base), "%s/mrkv-test-state-XXXXXX", tmp ?: "/tmp");
        if (!mkdtemp(base)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }

        sr = srunner_create(suite);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        if (srunner_ntests_run(sr) == 0)
                failed = -1;
        srunner_free(sr);

        (void) nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return failed < 0 ? 99 : failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

bool test_file_exists(int dir_fd, const char *name) {
        return faccessat(dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

uint64_t test_file_size(int dir_fd, const char *name) {
        struct stat st;

        ck_assert_msg(fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, "stat %s: %m", name);
        return (uint64_t) st.st_size;
}

void test_file_read(int dir_fd, const char *name, uint8_t **ret, size_t *ret_size) {
        uint64_t size = test_file_size(dir_fd, name);
        uint8_t *p = malloc(size + 1);
        int fd;

        ck_assert_ptr_nonnull(p);
        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pread(fd, p, size, 0), (ssize_t) size);
        close(fd);
        *ret = p;
        *ret_size = size;
}

size_t test_records_end(const uint8_t *data, size_t size) {
        size_t end = RECORD_FILE_HEADER_SIZE;

        ck_assert_uint_ge(size, end);
        for (int64_t n; (n = record_parse(data + end, size - end, 0, NULL)) > 0;)
                end += (size_t) n;
        return end;
}

void test_file_write(int dir_fd, const char *name, const void *data, size_t size) {
        int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, size), (ssize_t) size);
        close(fd);
}

void test_dir_copy(int from_fd, int to_fd) {
        DIR *d = fdopendir(fcntl(from_fd, F_DUPFD_CLOEXEC, 3));
        struct dirent *de;

        ck_assert_ptr_nonnull(d);
        rewinddir(d);
        while ((de = readdir(d))) {
                uint8_t *data;
                size_t size;

                if (de->d_type != DT_REG)
                        continue;
                test_file_read(from_fd, de->d_name, &data, &size);
                test_file_write(to_fd, de->d_name, data, size);
                free(data);
        }
        closedir(d);
}

size_t test_count_files(int dir_fd, const char *prefix, const char *suffix) {
        DIR *d = fdopendir(fcntl(dir_fd, F_DUPFD_CLOEXEC, 3));
        struct dirent *de;
        size_t n = 0;

        ck_assert_ptr_nonnull(d);
        rewinddir(d);
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name), lp = strlen(prefix), ls = strlen(suffix);

                if (l >= lp + ls && strncmp(de->d_name, prefix, lp) == 0 && streq(de->d_name + l - ls, suffix))
                        n++;
        }
        closedir(d);
        return n;
}

int model_apply(uint64_t seqnum, uint32_t type, const void *payload, size_t size, void *userdata) {
        Model *m = userdata;
        uint32_t kv[2];

        ck_assert_uint_eq(type, MODEL_SET);
        ck_assert_uint_eq(size, sizeof(kv));
        memcpy(kv, payload, sizeof(kv));
        ck_assert_uint_lt(le32toh(kv[0]), MODEL_KEYS);
        m->value[le32toh(kv[0])] = le32toh(kv[1]);
        m->records++;
        m->last_seqnum = seqnum;
        return 0;
}

void model_set(Model *m, uint32_t key, uint32_t value, uint8_t ret_payload[8]) {
        uint32_t kv[2] = { htole32(key), htole32(value) };

        m->value[key] = value;
        memcpy(ret_payload, kv, sizeof(kv));
}

void model_append(Wal *w, Model *m, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                uint8_t payload[8];
                uint64_t seqnum;

                model_set(m, (uint32_t) (wal_last_seqnum(w) % MODEL_KEYS), (uint32_t) wal_last_seqnum(w) + 1000,
                          payload);
                ck_assert_int_eq(wal_append(w, MODEL_SET, payload, sizeof(payload), &seqnum), 0);
                m->records++;
                m->last_seqnum = seqnum;
        }
}

void model_assert_values_eq(const Model *a, const Model *b) {
        for (unsigned k = 0; k < MODEL_KEYS; k++)
                ck_assert_msg(a->value[k] == b->value[k], "key %u: %u != %u", k, a->value[k], b->value[k]);
}
