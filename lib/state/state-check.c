/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "snapshot.h"
#include "state-check.h"
#include "state-dir.h"
#include "wal.h"

static int print_log(const char *path, int r, const WalCheckReport *report, bool repair,
                     const StateCheckWords *words) {
        if (!report->file) {
                printf("%s: the log is clean: %" PRIu64 " records after the snapshot, the last is record %" PRIu64
                       ".\n",
                       path, report->records, report->last_seqnum);
                return 0;
        }

        printf("%s/%s: %s at byte offset %" PRIu64 "; %" PRIu64 " valid records before it, the last is record %" PRIu64
               ".\n",
               path, report->file, report->torn ? "torn tail" : "damaged", report->offset, report->records,
               report->last_seqnum);
        if (repair) {
                if (r < 0)
                        return r;
                printf("%s/%s: cut at byte offset %" PRIu64 ", %" PRIu64 " records kept; the cut bytes are in %s/%s.\n",
                       path, report->file, report->offset, report->records, path, report->cut_file ?: "?");
                return 0;
        }
        if (report->torn) {
                printf("A torn tail is what a crash during a write leaves: the next start truncates it.\n");
                return 0;
        }
        printf("The %s refuses to start; %s cuts the log at the damage and keeps the cut bytes.\n", words->daemon,
               words->repair_option);
        return -EBADMSG;
}

int state_check(const char *path, bool repair, state_record_cb load, void *userdata, const uint64_t *items,
                const StateCheckWords *words) {
        _cleanup_(state_dir_freep) StateDir *dir = NULL;
        _cleanup_(wal_check_report_done) WalCheckReport report = {};
        uint64_t after = 0;
        int r;

        r = state_dir_open(path, &dir, NULL);
        if (r == -EBUSY)
                return log_error_errno(r, "Stop the %s that uses %s first.", words->daemon, path);
        if (r < 0)
                return log_error_errno(r, "Cannot open %s: %m", path);

        r = snapshot_load(state_dir_fd(dir), path, load, userdata, &after);
        if (r < 0) {
                printf("%s: no complete snapshot can be loaded (%s).\n", path, strerror(-r));
                return r;
        }
        if (after > 0)
                printf("%s/snap-%016" PRIx64 ".snap: %" PRIu64 " %s, covers the log up to record %" PRIu64 ".\n", path,
                       after, *items, words->items, after);
        else
                printf("%s: no snapshot.\n", path);

        r = (repair ? wal_repair : wal_check)(state_dir_fd(dir), path, after, &report);
        if (r < 0 && r != -EBADMSG)
                return log_error_errno(r, "Failed to read the log in %s: %m", path);
        return print_log(path, r, &report, repair, words);
}
