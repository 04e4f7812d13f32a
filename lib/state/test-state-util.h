/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wal.h"

/* Shared by the Check programs of lib/state: temporary directories, files, and a model
 * state (an array of counters) that records change, to compare loads against. */

/* A fresh directory under the program's base directory, removed when the program ends. */
char *test_dir_new(void);
int test_dir_open(const char *path);
/* Creates the base directory, runs the suite, removes the base directory. */
int test_run(Suite *suite);

bool test_file_exists(int dir_fd, const char *name);
uint64_t test_file_size(int dir_fd, const char *name);
void test_file_read(int dir_fd, const char *name, uint8_t **ret, size_t *ret_size);
void test_file_write(int dir_fd, const char *name, const void *data, size_t size);
/* The end of the last whole record of a log segment's bytes: where the zero-filled space
 * ahead of the records (always mode) begins, or the end of the file. */
size_t test_records_end(const uint8_t *data, size_t size);
/* Copies every regular file of one directory into another. */
void test_dir_copy(int from_fd, int to_fd);
/* Number of names with the prefix and suffix. */
size_t test_count_files(int dir_fd, const char *prefix, const char *suffix);
/* Polls cond every millisecond, up to 30 s. */
#define test_wait_for(cond)                                                     \
        ({                                                                      \
                bool _ok_ = false;                                              \
                for (int _i_ = 0; _i_ < 30000; _i_++) {                         \
                        if (cond) {                                             \
                                _ok_ = true;                                    \
                                break;                                          \
                        }                                                       \
                        usleep(1000);                                           \
                }                                                               \
                _ok_;                                                           \
        })

#define MODEL_KEYS 64
#define MODEL_SET 1U    /* payload: le32 key, le32 value */

typedef struct Model {
        uint32_t value[MODEL_KEYS];
        uint64_t records;
        uint64_t last_seqnum;
} Model;

/* A state_record_cb applying MODEL_SET records to a Model. */
int model_apply(uint64_t seqnum, uint32_t type, const void *payload, size_t size, void *userdata);
void model_set(Model *m, uint32_t key, uint32_t value, uint8_t ret_payload[8]);
/* Appends n MODEL_SET records to the log and applies them to the model. */
void model_append(Wal *w, Model *m, unsigned n);
void model_assert_values_eq(const Model *a, const Model *b);
