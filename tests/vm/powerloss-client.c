/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * powerloss-client: the client of test-powerloss.sh's VM, built on the host against
 * the packaged libmrkv (libmrkv-dev) and run in the guest by powerloss-guest.sh.
 *
 *   powerloss-client ADDRESS KEYS CLIENTS state|run
 *
 * state: for each key key1..keyKEYS prints "STATE <key> <version> ok|bad ." (ok: the
 * value is the one put at that version, see value_for()), then "LOADED .". run: the
 * same, then CLIENTS threads, each with a clerk of its own and the keys N, N + CLIENTS,
 * ... of its own, do conditional puts to them in turn at the version they hold, for
 * ever, and print "ACK <key> <version> ." for every put the server acknowledged, after
 * its reply and before the next put of that key. Anything unexpected is an "ERROR
 * <text> ." line. Every line is one write(2) to standard output (the host's serial
 * port), so lines of several threads never mix, and the host can tell a line a power
 * loss cut short by its missing " .".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mrkv/kv.h>

#define USEC_PER_SEC UINT64_C(1000000)
/* Generous: under TCG a put waits for an fdatasync through qemu to the host's disk. */
#define ATTEMPT_TIMEOUT (60 * USEC_PER_SEC)
#define DEADLINE (600 * USEC_PER_SEC)
/* Makes a log record about 150 bytes, so that snapshots come every few dozen puts. */
#define PADDING "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789"

static const char *arg_address;
static unsigned arg_keys, arg_clients;

static void report(const char *fmt, ...) {
        char line[512];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(line, sizeof line - 3, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t) n > sizeof line - 4)
                n = sizeof line - 4;
        memcpy(line + n, " .\n", 3);
        /* One write, so that it is one line on the serial port, whole or cut short. */
        if (write(STDOUT_FILENO, line, n + 3) != n + 3)
                fprintf(stderr, "powerloss-client: report: %m\n");
}

/* The value put at VERSION of key KEY: a value read back tells the version it was put at. */
static void value_for(unsigned key, uint64_t version, char *buf, size_t size) {
        snprintf(buf, size, "key%u.v%" PRIu64 "." PADDING, key, version);
}

static int clerk_new(mrkv_clerk **ret) {
        mrkv_clerk *c;
        int r;

        r = mrkv_clerk_new(arg_address, &c);
        if (r < 0)
                return r;
        if (mrkv_clerk_set_attempt_timeout(c, ATTEMPT_TIMEOUT) < 0 || mrkv_clerk_set_deadline(c, DEADLINE) < 0) {
                mrkv_clerk_free(c);
                return -EINVAL;
        }
        *ret = c;
        return 0;
}

/* key_state: the version of key KEY (0 when it is missing), and whether its value is
 * the one put at that version. */
static int key_state(mrkv_clerk *c, unsigned key, uint64_t *ret_version, int *ret_ok) {
        char name[32], expected[256], *value = NULL;
        uint64_t version = 0;
        int r;

        snprintf(name, sizeof name, "key%u", key);
        r = mrkv_clerk_get(c, name, &value, &version);
        if (r == MRKV_ERR_NO_KEY) {
                *ret_version = 0;
                *ret_ok = 1;
                return 0;
        }
        if (r != MRKV_OK)
                return r < 0 ? r : -EPROTO;
        value_for(key, version, expected, sizeof expected);
        *ret_ok = strcmp(value, expected) == 0;
        if (!*ret_ok)
                fprintf(stderr, "powerloss-client: key%u at version %" PRIu64 " holds '%s'\n", key, version, value);
        free(value);
        *ret_version = version;
        return 0;
}

static uint64_t *versions;

static void *client_run(void *userdata) {
        unsigned first = (unsigned) (uintptr_t) userdata;
        mrkv_clerk *c;
        int r;

        r = clerk_new(&c);
        if (r < 0) {
                report("ERROR client %u: %s", first, strerror(-r));
                return NULL;
        }
        for (;;)
                for (unsigned key = first; key <= arg_keys; key += arg_clients) {
                        uint64_t cur = versions[key];
                        char name[32], value[256];
                        int ok;

                        snprintf(name, sizeof name, "key%u", key);
                        value_for(key, cur + 1, value, sizeof value);
                        r = mrkv_clerk_put(c, name, value, cur);
                        if (r == MRKV_OK) {
                                versions[key] = cur + 1;
                                report("ACK %s %" PRIu64, name, cur + 1);
                                continue;
                        }
                        report("ERROR put %s at version %" PRIu64 ": %s", name, cur, mrkv_result_to_string(r));
                        /* Learn where the key is, and go on from there. */
                        if (key_state(c, key, &cur, &ok) >= 0)
                                versions[key] = cur;
                }
        return NULL;
}

int main(int argc, char *argv[]) {
        mrkv_clerk *c;
        int r, run;

        if (argc != 5 || (strcmp(argv[4], "state") != 0 && strcmp(argv[4], "run") != 0)) {
                fprintf(stderr, "Usage: %s ADDRESS KEYS CLIENTS state|run\n", argv[0]);
                return 2;
        }
        arg_address = argv[1];
        arg_keys = (unsigned) strtoul(argv[2], NULL, 10);
        arg_clients = (unsigned) strtoul(argv[3], NULL, 10);
        run = strcmp(argv[4], "run") == 0;
        if (arg_keys < 1 || arg_keys > 1000 || arg_clients < 1 || arg_clients > arg_keys) {
                fprintf(stderr, "powerloss-client: 1 <= CLIENTS <= KEYS <= 1000\n");
                return 2;
        }
        versions = calloc(arg_keys + 1, sizeof *versions);
        if (!versions)
                return 1;

        r = clerk_new(&c);
        if (r < 0) {
                report("ERROR clerk: %s", strerror(-r));
                return 1;
        }
        for (unsigned key = 1; key <= arg_keys; key++) {
                int ok;

                r = key_state(c, key, &versions[key], &ok);
                if (r < 0) {
                        report("ERROR get key%u: %s", key, mrkv_result_to_string(r));
                        return 1;
                }
                report("STATE key%u %" PRIu64 " %s", key, versions[key], ok ? "ok" : "bad");
        }
        mrkv_clerk_free(c);
        report("LOADED");
        if (!run)
                return 0;

        for (unsigned i = 1; i <= arg_clients; i++) {
                pthread_t t;

                r = -pthread_create(&t, NULL, client_run, (void *) (uintptr_t) i);
                if (r < 0) {
                        report("ERROR thread: %s", strerror(-r));
                        return 1;
                }
        }
        pause();
        return 0;
}
