/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lab's mrapps/jobcount.go: every map leaves a file "mr-worker-jobcount-<pid>-<n>"
 * behind, so reduce can count the map calls and the test can check each map task ran
 * exactly once (a coordinator must not hand out a task twice without cause). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "emit.h"
#include "marker.h"
#include "mrkv/app.h"
#include "random-util.h"

#define JOBCOUNT_PREFIX "mr-worker-jobcount"

/* Per process, as the lab's package variable; atomic in case a host maps on threads. */
static unsigned count;

static int jobcount_map(const mrkv_host *host, mrkv_emitter *out, const char *filename, const char *contents,
                        size_t size) {
        char name[64];
        uint32_t ms;
        int r;

        snprintf(name, sizeof(name), JOBCOUNT_PREFIX "-%d-%u", (int) getpid(),
                 __atomic_fetch_add(&count, 1, __ATOMIC_RELAXED));
        r = marker_create(name);
        if (r < 0)
                return r;

        r = random_below(3000, &ms);
        if (r < 0)
                return r;
        sleep_msec(2000 + ms);

        return emit_string(host, out, "a", "x");
}

static int jobcount_reduce(const mrkv_host *host, mrkv_emitter *out, const char *key, size_t key_len,
                           mrkv_values *values) {
        struct dirent *de;
        int64_t n = 0;
        DIR *d;

        d = opendir(".");
        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (strncmp(de->d_name, JOBCOUNT_PREFIX, strlen(JOBCOUNT_PREFIX)) == 0)
                        n++;
        closedir(d);

        return emit_number(host, out, key, key_len, n);
}

MRKV_APP_DEFINE("jobcount", "test app: counts how many times map ran (lab jobcount.go)", jobcount_map,
                jobcount_reduce)
