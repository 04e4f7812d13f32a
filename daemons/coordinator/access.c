/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "access.h"

bool access_may_control(uid_t caller, const Job *j) {
        return caller == 0 || caller == j->owner_uid;
}

bool access_worker_may_run(uid_t worker_uid, const Job *j, uid_t service_uid) {
        if (worker_uid == j->owner_uid)
                return true;
        return j->owner_uid == 0 && worker_uid == service_uid;
}

bool access_workdir_allowed(uid_t submitter, uid_t dir_owner) {
        return submitter == 0 || submitter == dir_owner;
}

bool access_default_workdir_allowed(uid_t submitter, uid_t service_uid) {
        return submitter == 0 || submitter == service_uid;
}
