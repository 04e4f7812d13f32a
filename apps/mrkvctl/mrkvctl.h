/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include <mrkv/kv.h>

#include "varlink-client.h"

/* Exit codes, part of the command-line interface (listed in --help). */
enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,
        EXIT_USAGE = 2,
        EXIT_NO_KEY = 3,
        EXIT_NO_JOB = 3, /* the same "no such thing" as a missing key */
        EXIT_VERSION = 4,
        EXIT_MAYBE = 5,
        EXIT_STORAGE = 6,
        EXIT_QUOTA = 7,
        EXIT_LOCK_LOST = 8, /* lock: the lock was lost while COMMAND ran; COMMAND was stopped */
        EXIT_NO_LEASE = 9,
};

/* What the options common to every verb set. */
typedef struct Context {
        const char *address;   /* --connect; NULL: the service's default address */
        uint64_t timeout_usec; /* the deadline per call; UINT64_MAX: none */
        bool json;
} Context;

#define DEFAULT_TIMEOUT_USEC (UINT64_C(30) * 1000000U)

/* A verb runs with argv[0] its own name and returns the exit code. */
typedef struct Verb {
        const char *name;
        const char *synopsis; /* for --help, after the verb's name */
        const char *summary;
        int (*run)(Context *ctx, int argc, char *argv[]);
} Verb;

/* The options every verb accepts, also after the verb ("mrkvctl get KEY --json"). A
 * verb's getopt_long() table starts with COMMON_OPTIONS, its short options with
 * COMMON_SHORT_OPTIONS, and it hands each option to context_parse_common_option() first. */
enum {
        ARG_JSON = 0x100,
        ARG_VERB_FIRST, /* verbs number their own long-only options from here */
};
#define COMMON_SHORT_OPTIONS "hc:t:"
#define COMMON_OPTIONS                                                    \
        { "help", no_argument, NULL, 'h' },                               \
        { "connect", required_argument, NULL, 'c' },                      \
        { "timeout", required_argument, NULL, 't' },                      \
        { "json", no_argument, NULL, ARG_JSON }

/* Returns 1 if c was a common option (applied; --help prints the help and exits), 0 if
 * it is not one, -1 on a bad value or an unknown option (a message is printed). */
int context_parse_common_option(Context *ctx, int c, const char *arg);
/* For a verb without options of its own: parses the common options and checks that one
 * argument follows (named argument in the message), or none if argument is NULL.
 * Returns the index of the argument (argc for none), or -1 after a message. */
int context_parse_verb_arguments(Context *ctx, int argc, char *argv[], const char *argument);

/* A clerk for ctx's address and deadline; prints the error itself. */
int context_open_clerk(const Context *ctx, mrkv_clerk **ret);

/* Maps a clerk result or error to an exit code, printing a message for failures
 * of operation what on subject (a key or lock name). */
int exit_code_of_result(const mrkv_clerk *c, int r, const char *what, const char *subject);

/* Connects to the coordinator at --connect, else $MRKV_COORDINATOR_ADDRESS, else the
 * default socket; prints the error itself. */
int context_connect_coordinator(const Context *ctx, VarlinkClient **ret);
/* The same without a message: -errno. */
int context_connect_coordinator_quiet(const Context *ctx, VarlinkClient **ret);

void help(void);

/* The verbs, one group per file. */
int verb_get(Context *ctx, int argc, char *argv[]);
int verb_put(Context *ctx, int argc, char *argv[]);
int verb_del(Context *ctx, int argc, char *argv[]);
int verb_ls(Context *ctx, int argc, char *argv[]);
int verb_watch(Context *ctx, int argc, char *argv[]);
int verb_lease(Context *ctx, int argc, char *argv[]);
int verb_lock(Context *ctx, int argc, char *argv[]);
int verb_submit(Context *ctx, int argc, char *argv[]);
int verb_jobs(Context *ctx, int argc, char *argv[]);
int verb_status(Context *ctx, int argc, char *argv[]);
int verb_cancel(Context *ctx, int argc, char *argv[]);
