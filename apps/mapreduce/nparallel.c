/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "marker.h"
#include "nparallel.h"
#include "random-util.h"

/* Parses the pid of "<prefix><digits>"; anything else is not a worker's marker. */
static pid_t marker_pid(const char *name, const char *prefix, size_t prefix_len) {
        unsigned long v = 0;

        if (strncmp(name, prefix, prefix_len) != 0 || name[prefix_len] == '\0')
                return 0;
        for (const char *p = name + prefix_len; *p; p++) {
                if (*p < '0' || *p > '9')
                        return 0;
                v = v * 10 + (unsigned long) (*p - '0');
                if (v > 0x7fffffffUL)
                        return 0;
        }
        return (pid_t) v;
}

int nparallel(const char *phase) {
        char prefix[64], mine[96];
        struct dirent *de;
        int n = 0, r = 0, prefix_len;
        DIR *d;

        prefix_len = snprintf(prefix, sizeof(prefix), "mr-worker-%s-", phase);
        if (prefix_len < 0 || (size_t) prefix_len >= sizeof(prefix))
                return -EINVAL;
        snprintf(mine, sizeof(mine), "%s%d", prefix, (int) getpid());

        r = marker_create(mine);
        if (r < 0) {
                (void) unlink(mine);
                return r;
        }

        d = opendir(".");
        if (!d) {
                r = -errno;
                (void) unlink(mine);
                return r;
        }
        while ((de = readdir(d))) {
                pid_t pid = marker_pid(de->d_name, prefix, (size_t) prefix_len);

                /* kill(0, 0) would probe our own process group: never a worker's pid. */
                if (pid > 0 && kill(pid, 0) == 0)
                        n++;
        }
        closedir(d);

        sleep_msec(1000);

        if (unlink(mine) < 0)
                return -errno;
        return n;
}
