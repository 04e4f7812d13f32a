/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "mrkv/app.h"

/* The map and reduce of the lab's crash.go and nocrash.go, which differ only in whether
 * they crash: map emits ("a", filename), ("b", len(filename)), ("c", len(contents)),
 * ("d", "xyzzy"); reduce emits its values sorted and joined by spaces. */

int crashtest_map(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                  size_t size);
int crashtest_reduce(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                     mrkv_values *values);
