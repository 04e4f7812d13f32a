/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fault decisions and the per-direction message pipeline, without sockets. */
#include <check.h>
#include <stdio.h>

#include "fault.h"
#include "flow.h"
#include "macro.h"

#define MSEC USEC_PER_MSEC

static const FaultPolicy no_faults = {};

/* Builds "{"n":I}\0" for message number i; returns its length with the NUL. */
static size_t message(char *buf, size_t size, unsigned i) {
        int n = snprintf(buf, size, "{\"n\":%u}", i);
        ck_assert_int_gt(n, 0);
        return (size_t) n + 1;
}

/* Reads the message numbers in f->out, in order, consuming them. */
static unsigned take_out(Flow *f, unsigned *ret, unsigned max) {
        unsigned k = 0;
        const char *data;
        size_t size;

        while (varlink_buffer_next(&f->out, SIZE_MAX, &data, &size) > 0) {
                unsigned v;
                ck_assert_msg(sscanf(data, "{\"n\":%u}", &v) == 1, "not one of ours: %.*s", (int) size, data);
                ck_assert_uint_lt(k, max);
                ret[k++] = v;
                varlink_buffer_consume(&f->out, size + 1);
        }
        ck_assert_uint_eq(varlink_buffer_size(&f->out), 0);
        return k;
}

START_TEST(test_rng_reproducible) {
        Rng a, b, c;

        rng_init(&a, 42, 7);
        rng_init(&b, 42, 7);
        rng_init(&c, 42, 8);
        unsigned same_as_other_stream = 0;
        for (unsigned i = 0; i < 1000; i++) {
                uint64_t x = rng_next(&a);
                ck_assert_uint_eq(x, rng_next(&b));
                same_as_other_stream += x == rng_next(&c);
        }
        ck_assert_uint_eq(same_as_other_stream, 0);
}
END_TEST

START_TEST(test_rng_chance_bounds) {
        Rng r;
        unsigned hits = 0;

        rng_init(&r, 1, 0);
        for (unsigned i = 0; i < 10000; i++) {
                ck_assert(!rng_chance(&r, 0.0));
                ck_assert(rng_chance(&r, 100.0));
                hits += rng_chance(&r, 25.0);
        }
        /* Binomial(10000, 0.25) has σ ≈ 43: ±500 is over 11σ. */
        ck_assert_uint_gt(hits, 2000);
        ck_assert_uint_lt(hits, 3000);
}
END_TEST

START_TEST(test_delay_uniform_in_range) {
        FaultPolicy p = { .delay_min_usec = 3, .delay_max_usec = 6 };
        unsigned seen[7] = {};
        Rng r;

        rng_init(&r, 99, 1);
        for (unsigned i = 0; i < 4000; i++) {
                uint64_t d = fault_pick_delay(&p, &r);
                ck_assert_uint_ge(d, 3);
                ck_assert_uint_le(d, 6);
                seen[d]++;
        }
        /* Both ends are reachable and each value has roughly its quarter (σ ≈ 27). */
        for (unsigned d = 3; d <= 6; d++) {
                ck_assert_uint_gt(seen[d], 800);
                ck_assert_uint_lt(seen[d], 1200);
        }

        p = (FaultPolicy) { .delay_min_usec = 5, .delay_max_usec = 5 };
        ck_assert_uint_eq(fault_pick_delay(&p, &r), 5);
}
END_TEST

START_TEST(test_forwards_whole_messages_across_fragments) {
        FlowCounters counters = {};
        char stream[4096];
        size_t len = 0;
        unsigned got[100];
        Flow f;

        for (unsigned i = 0; i < 100; i++)
                len += message(stream + len, sizeof(stream) - len, i);

        flow_init(&f, FLOW_REQUESTS, &no_faults, &counters, 1024, 0, 0);
        /* Odd-sized pieces cut messages anywhere, as short reads do. */
        for (size_t off = 0; off < len; off += 7) {
                size_t n = MIN((size_t) 7, len - off);
                ck_assert_int_eq(flow_feed(&f, stream + off, n, 0), 0);
                /* Nothing but whole messages ever reaches the output. */
                ck_assert(varlink_buffer_size(&f.out) == 0 || f.out.data[f.out.end - 1] == '\0');
        }
        ck_assert_uint_eq(take_out(&f, got, 100), 100);
        for (unsigned i = 0; i < 100; i++)
                ck_assert_uint_eq(got[i], i);
        ck_assert_uint_eq(counters.forwarded, 100);
        ck_assert_uint_eq(counters.dropped, 0);

        /* A half message at the end of the stream is discarded, not forwarded. */
        ck_assert_int_eq(flow_feed(&f, "{\"n\":1", 6, 0), 0);
        ck_assert_uint_eq(flow_end_input(&f), 6);
        ck_assert_uint_eq(varlink_buffer_size(&f.out), 0);
        ck_assert(flow_finished(&f));
        flow_done(&f);
}
END_TEST

START_TEST(test_delays_keep_order) {
        FaultPolicy p = { .delay_min_usec = 0, .delay_max_usec = 27 * MSEC };
        FlowCounters counters = {};
        unsigned got[200], n = 0;
        uint64_t now = 1000 * MSEC;
        char buf[64];
        Flow f;

        flow_init(&f, FLOW_REQUESTS, &p, &counters, 1024, 5, 0);
        for (unsigned i = 0; i < 200; i++) {
                ck_assert_int_eq(flow_feed(&f, buf, message(buf, sizeof(buf), i), now), 0);
                now += MSEC / 2;
        }
        ck_assert_uint_gt(flow_pending_bytes(&f), 0);

        /* Walk the clock forward through the release times. */
        for (uint64_t t = flow_next_release(&f); t != UINT64_MAX; t = flow_next_release(&f)) {
                ck_assert_uint_ge(t, 1000 * MSEC);
                ck_assert_uint_le(t, now + 27 * MSEC);
                ck_assert_int_eq(flow_release(&f, t), 0);
                n += take_out(&f, got + n, 200 - n);
        }
        ck_assert_uint_eq(n, 200);
        for (unsigned i = 0; i < 200; i++)
                ck_assert_uint_eq(got[i], i);
        ck_assert_uint_eq(flow_pending_bytes(&f), 0);
        ck_assert_uint_eq(counters.forwarded, 200);
        flow_done(&f);
}
END_TEST

START_TEST(test_release_waits_for_due_time) {
        FaultPolicy p = { .delay_min_usec = 10 * MSEC, .delay_max_usec = 10 * MSEC };
        FlowCounters counters = {};
        char buf[64];
        unsigned got[1];
        Flow f;

        flow_init(&f, FLOW_REQUESTS, &p, &counters, 1024, 0, 0);
        ck_assert_int_eq(flow_feed(&f, buf, message(buf, sizeof(buf), 1), 0), 0);
        ck_assert_uint_eq(flow_next_release(&f), 10 * MSEC);
        ck_assert_int_eq(flow_release(&f, 10 * MSEC - 1), 0);
        ck_assert_uint_eq(varlink_buffer_size(&f.out), 0);
        ck_assert_uint_eq(counters.forwarded, 0);

        /* The source closing does not lose what is held back. */
        ck_assert_uint_eq(flow_end_input(&f), 0);
        ck_assert(!flow_finished(&f));
        ck_assert_int_eq(flow_release(&f, 10 * MSEC), 0);
        ck_assert_uint_eq(take_out(&f, got, 1), 1);
        ck_assert_uint_eq(got[0], 1);
        ck_assert(flow_finished(&f));
        flow_done(&f);
}
END_TEST

START_TEST(test_replies_are_never_delayed) {
        FaultPolicy p = { .delay_min_usec = 50 * MSEC, .delay_max_usec = 50 * MSEC };
        FlowCounters counters = {};
        char buf[64];
        unsigned got[1];
        Flow f;

        flow_init(&f, FLOW_REPLIES, &p, &counters, 1024, 0, 0);
        ck_assert_int_eq(flow_feed(&f, buf, message(buf, sizeof(buf), 3), 0), 0);
        ck_assert_uint_eq(take_out(&f, got, 1), 1);
        ck_assert_uint_eq(flow_next_release(&f), UINT64_MAX);
        flow_done(&f);
}
END_TEST

static unsigned run_drops(FlowKind kind, const FaultPolicy *p, uint64_t seed, bool pattern[], unsigned n,
                          FlowCounters *counters) {
        unsigned got[1000], k;
        char buf[64];
        Flow f;

        ck_assert_uint_le(n, 1000);
        flow_init(&f, kind, p, counters, 1024, seed, 3);
        for (unsigned i = 0; i < n; i++)
                ck_assert_int_eq(flow_feed(&f, buf, message(buf, sizeof(buf), i), 0), 0);
        k = take_out(&f, got, n);
        for (unsigned i = 0; i < n; i++)
                pattern[i] = false;
        for (unsigned i = 0; i < k; i++) {
                ck_assert(i == 0 || got[i] > got[i - 1]); /* survivors keep their order */
                pattern[got[i]] = true;
        }
        flow_done(&f);
        return k;
}

START_TEST(test_drops_follow_policy_and_seed) {
        FaultPolicy half_requests = { .drop_request_percent = 50 };
        FaultPolicy all_replies = { .drop_reply_percent = 100 };
        bool a[400], b[400], c[400];
        FlowCounters counters = {};
        unsigned k;

        k = run_drops(FLOW_REQUESTS, &half_requests, 7, a, 400, &counters);
        ck_assert_uint_gt(k, 120);
        ck_assert_uint_lt(k, 280);
        ck_assert_uint_eq(counters.forwarded, k);
        ck_assert_uint_eq(counters.dropped, 400 - k);

        /* The same seed drops the same messages; another seed does not. */
        counters = (FlowCounters) {};
        ck_assert_uint_eq(run_drops(FLOW_REQUESTS, &half_requests, 7, b, 400, &counters), k);
        ck_assert_mem_eq(a, b, sizeof(a));
        run_drops(FLOW_REQUESTS, &half_requests, 8, c, 400, &counters);
        ck_assert(memcmp(a, c, sizeof(a)) != 0);

        /* Each policy applies to its own direction only. */
        counters = (FlowCounters) {};
        ck_assert_uint_eq(run_drops(FLOW_REQUESTS, &all_replies, 7, a, 100, &counters), 100);
        ck_assert_uint_eq(run_drops(FLOW_REPLIES, &all_replies, 7, a, 100, &counters), 0);
        ck_assert_uint_eq(run_drops(FLOW_REPLIES, &half_requests, 7, a, 100, &counters), 100);
}
END_TEST

START_TEST(test_oversized_message) {
        FlowCounters counters = {};
        char big[300];
        Flow f;

        flow_init(&f, FLOW_REQUESTS, &no_faults, &counters, 256, 0, 0);
        memset(big, 'x', sizeof(big));
        /* Refused as soon as the unfinished message passes the limit, before its end arrives. */
        ck_assert_int_eq(flow_feed(&f, big, 200, 0), 0);
        ck_assert_int_eq(flow_feed(&f, big, 100, 0), -EMSGSIZE);
        flow_done(&f);

        /* A complete message over the limit too. */
        flow_init(&f, FLOW_REQUESTS, &no_faults, &counters, 256, 0, 0);
        big[299] = '\0';
        ck_assert_int_eq(flow_feed(&f, big, 300, 0), -EMSGSIZE);
        flow_done(&f);

        /* Exactly at the limit is fine. */
        flow_init(&f, FLOW_REQUESTS, &no_faults, &counters, 256, 0, 0);
        big[256] = '\0';
        ck_assert_int_eq(flow_feed(&f, big, 257, 0), 0);
        ck_assert_uint_eq(varlink_buffer_size(&f.out), 257);
        ck_assert_uint_eq(counters.forwarded, 1);
        flow_done(&f);
}
END_TEST

static Suite *flow_suite(void) {
        Suite *s = suite_create("faultproxy-flow");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_rng_reproducible);
        tcase_add_test(tc, test_rng_chance_bounds);
        tcase_add_test(tc, test_delay_uniform_in_range);
        tcase_add_test(tc, test_forwards_whole_messages_across_fragments);
        tcase_add_test(tc, test_delays_keep_order);
        tcase_add_test(tc, test_release_waits_for_due_time);
        tcase_add_test(tc, test_replies_are_never_delayed);
        tcase_add_test(tc, test_drops_follow_policy_and_seed);
        tcase_add_test(tc, test_oversized_message);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(flow_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
