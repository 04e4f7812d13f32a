/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lab's mrapps/nocrash.go: crash's map and reduce without the crashes, producing the
 * reference output the crash test compares against. */
#include "crashtest.h"
#include "mrkv/app.h"

MRKV_APP_DEFINE("nocrash", "test app: crash without the crashes (lab nocrash.go)", crashtest_map,
                crashtest_reduce)
