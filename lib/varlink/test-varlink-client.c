/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The blocking Varlink client (lib/varlink/varlink-client.c) against a peer played by the
 * test on the other end of a socket pair: calls queued and sent in one write, their
 * replies read in call order, a reply that never comes, a peer that closes between two
 * replies, and the bound on what is queued. */
#include <check.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io-util.h"
#include "macro.h"
#include "tests.h"
#include "time-util.h"
#include "varlink-client.h"

/* A deadline for what must happen; no test asserts how long anything takes. */
#define PATIENCE (30 * USEC_PER_SEC)
/* How long a reply that never comes is waited for. */
#define SHORT_WAIT (50 * USEC_PER_MSEC)

/* A client on one end of a socket pair; the test plays the server on *ret_peer. */
static VarlinkClient *client_pair(int *ret_peer) {
        VarlinkClient *c = NULL;
        int fds[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        ck_assert_int_eq(varlink_client_new_fd(fds[0], &c), 0);
        *ret_peer = fds[1];
        return c;
}

/* What one recv() on the peer's end gets, once something is there: the calls the client
 * wrote so far, as one string with NULs between them. */
static size_t peer_recv(int peer, char *buf, size_t size) {
        ssize_t n;

        ck_assert_int_eq(fd_wait_until(peer, POLLIN, usec_add(now_usec(), PATIENCE)), 1);
        n = recv(peer, buf, size, MSG_DONTWAIT);
        ck_assert_int_gt(n, 0);
        return (size_t) n;
}

/* Whether the client wrote something the peer has not read. */
static bool peer_has_input(int peer) {
        struct pollfd p = { .fd = peer, .events = POLLIN };

        ck_assert_int_ge(poll(&p, 1, 0), 0);
        return p.revents & POLLIN;
}

static void peer_send(int peer, const char *message) {
        size_t n = strlen(message) + 1; /* with its NUL */

        ck_assert_int_eq(send(peer, message, n, MSG_NOSIGNAL), (ssize_t) n);
}

/* Reads a reply that must succeed and hold {"n": n}. */
static void expect_reply(VarlinkClient *c, int64_t n) {
        _cleanup_json_ json_object *reply = NULL;
        const char *error = "unset";
        json_object *v;

        ck_assert_int_eq(varlink_client_read(c, PATIENCE, &reply, &error, NULL), 0);
        ck_assert_ptr_null(error);
        ck_assert(json_object_object_get_ex(reply, "n", &v));
        ck_assert_int_eq(json_object_get_int64(v), n);
}

START_TEST(test_pipelined_in_order) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_json_ json_object *one = json_object_new_object(), *reply = NULL;
        _cleanup_close_ int peer = -EBADF;
        const char *error = NULL;
        char buf[4096];
        size_t n;

        c = client_pair(&peer);
        ck_assert_int_eq(json_object_object_add(one, "n", json_object_new_int64(1)), 0);

        /* Queued, nothing written yet. */
        ck_assert_int_eq(varlink_client_queue(c, "org.example.First", one, 0), 0);
        ck_assert(!peer_has_input(peer));

        /* The send writes both, in one write: one recv() gets them whole, in order. */
        ck_assert_int_eq(varlink_client_send(c, "org.example.Second", NULL, 0, PATIENCE), 0);
        n = peer_recv(peer, buf, sizeof(buf));
        ck_assert_uint_eq(n, strlen(buf) + 1 + strlen(buf + strlen(buf) + 1) + 1);
        ck_assert_str_eq(buf, "{\"method\":\"org.example.First\",\"parameters\":{\"n\":1}}");
        ck_assert_str_eq(buf + strlen(buf) + 1, "{\"method\":\"org.example.Second\",\"parameters\":{}}");

        /* The replies, arriving together, are read one at a time in call order; an error
         * reply is one too. */
        char replies[] = "{\"parameters\":{\"n\":1}}\0{\"error\":\"org.example.Failed\",\"parameters\":{}}\0"
                         "{\"parameters\":{\"n\":3}}";
        ck_assert_int_eq(send(peer, replies, sizeof(replies), MSG_NOSIGNAL), (ssize_t) sizeof(replies));
        expect_reply(c, 1);
        ck_assert_int_eq(varlink_client_read(c, PATIENCE, &reply, &error, NULL), 0);
        ck_assert_str_eq(error, "org.example.Failed");
        expect_reply(c, 3);

        /* A flush with nothing queued writes nothing. */
        ck_assert_int_eq(varlink_client_flush(c, PATIENCE), 0);
        ck_assert(!peer_has_input(peer));
}
END_TEST

/* Two calls pipelined, First and Second, taken off the peer's socket unanswered. */
static void send_two(VarlinkClient *c, int peer) {
        char buf[4096];

        ck_assert_int_eq(varlink_client_queue(c, "org.example.First", NULL, 0), 0);
        ck_assert_int_eq(varlink_client_send(c, "org.example.Second", NULL, 0, PATIENCE), 0);
        (void) peer_recv(peer, buf, sizeof(buf));
}

START_TEST(test_reply_never_comes) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_json_ json_object *reply = NULL;
        _cleanup_close_ int peer = -EBADF;

        c = client_pair(&peer);
        send_two(c, peer);

        /* The first is answered, the second not: its read times out, and so does a call's. */
        peer_send(peer, "{\"parameters\":{\"n\":1}}");
        expect_reply(c, 1);
        ck_assert_int_eq(varlink_client_read(c, SHORT_WAIT, &reply, NULL, NULL), -ETIMEDOUT);
        ck_assert_int_eq(varlink_client_call(c, "org.example.Third", NULL, SHORT_WAIT, &reply, NULL), -ETIMEDOUT);

        /* Half a reply is no reply either. */
        ck_assert_int_eq(send(peer, "{\"parameters\":", 14, MSG_NOSIGNAL), 14);
        ck_assert_int_eq(varlink_client_read(c, SHORT_WAIT, &reply, NULL, NULL), -ETIMEDOUT);
        peer_send(peer, "{\"n\":2}}");
        expect_reply(c, 2);
}
END_TEST

START_TEST(test_closed_between_replies) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_json_ json_object *reply = NULL;
        int peer;

        c = client_pair(&peer);
        send_two(c, peer);

        /* The peer answers the first and goes away: the first reply is read, the second
         * read finds the connection closed, and so does a send after it. */
        peer_send(peer, "{\"parameters\":{\"n\":1}}");
        ck_assert_int_eq(close(peer), 0);
        expect_reply(c, 1);
        ck_assert_int_eq(varlink_client_read(c, PATIENCE, &reply, NULL, NULL), -ECONNRESET);
        ck_assert_int_eq(varlink_client_send(c, "org.example.Third", NULL, 0, PATIENCE), -ECONNRESET);
}
END_TEST

START_TEST(test_queue_bound) {
        _cleanup_(varlink_client_freep) VarlinkClient *c = NULL;
        _cleanup_json_ json_object *big = json_object_new_object();
        _cleanup_free_ char *s = NULL;
        _cleanup_close_ int peer = -EBADF;
        size_t half = VARLINK_CLIENT_QUEUE_MAX / 2;

        c = client_pair(&peer);
        s = malloc(half + 1);
        ck_assert_ptr_nonnull(s);
        memset(s, 'x', half);
        s[half] = '\0';
        ck_assert_int_eq(json_object_object_add(big, "s", json_object_new_string(s)), 0);

        /* One call of any size is queued, two halves fit, a third is refused and leaves
         * the two as they were. */
        ck_assert_int_eq(varlink_client_queue(c, "org.example.Big", big, 0), 0);
        ck_assert_int_eq(varlink_client_queue(c, "org.example.Small", NULL, 0), 0);
        ck_assert_int_eq(varlink_client_queue(c, "org.example.Big", big, 0), -ENOBUFS);

        /* What is queued goes out whole, both calls and no third, as the peer reads it. */
        const char *small = "{\"method\":\"org.example.Small\",\"parameters\":{}}";
        size_t expected = strlen("{\"method\":\"org.example.Big\",\"parameters\":{\"s\":\"\"}}") + half + 1 +
                          strlen(small) + 1;
        _cleanup_free_ char *buf = malloc(expected + 1);
        size_t got = 0;
        int r;

        ck_assert_ptr_nonnull(buf);
        do {
                r = varlink_client_flush(c, 0);
                ck_assert(r == 0 || r == -ETIMEDOUT);
                ssize_t n = recv(peer, buf + got, expected + 1 - got, MSG_DONTWAIT);
                if (n > 0)
                        got += (size_t) n;
                else
                        ck_assert(n < 0 && errno == EAGAIN && r == 0);
        } while (r < 0 || got < expected);
        ck_assert_uint_eq(got, expected);
        ck_assert_int_eq(recv(peer, buf, 1, MSG_DONTWAIT), -1);
        ck_assert_str_eq(buf + expected - strlen(small) - 1, small);
}
END_TEST

static Suite *client_suite(void) {
        Suite *s = suite_create("varlink-client");
        TCase *tc = tcase_create("pipelined");

        tcase_add_test(tc, test_pipelined_in_order);
        tcase_add_test(tc, test_reply_never_comes);
        tcase_add_test(tc, test_closed_between_replies);
        tcase_add_test(tc, test_queue_bound);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return tests_run(client_suite(), CK_FORK_GETENV);
}
