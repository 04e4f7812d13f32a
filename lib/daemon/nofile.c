/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>

#include "log.h"
#include "macro.h"
#include "nofile.h"

int nofile_raise(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur >= rl.rlim_max)
                return 0;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        return 0;
}

unsigned nofile_connections_max(rlim_t nofile, unsigned wanted) {
        rlim_t fit;

        if (nofile == RLIM_INFINITY)
                fit = UINT_MAX;
        else if (nofile <= 2 * NOFILE_RESERVE)
                fit = NOFILE_RESERVE; /* keep serving a few under a tiny limit: they may still fit */
        else
                fit = MIN(nofile - NOFILE_RESERVE, (rlim_t) UINT_MAX);
        return wanted == 0 ? (unsigned) fit : MIN(wanted, (unsigned) fit);
}

unsigned nofile_fit_connections(unsigned max_connections) {
        struct rlimit rl;
        unsigned max;
        int r;

        r = nofile_raise();
        if (r < 0)
                log_debug_errno(r, "Failed to raise RLIMIT_NOFILE, ignoring: %m");
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return max_connections;

        max = nofile_connections_max(rl.rlim_cur, max_connections);
        if (max < max_connections)
                log_notice("RLIMIT_NOFILE is %llu: serving at most %u connections, not %u.",
                           (unsigned long long) rl.rlim_cur, max, max_connections);
        else if (max_connections == 0)
                log_debug("RLIMIT_NOFILE is %llu: serving at most %u connections.",
                          (unsigned long long) rl.rlim_cur, max);
        return max;
}
