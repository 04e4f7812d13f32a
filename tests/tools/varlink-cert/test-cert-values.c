/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The certification sequence and the typed comparison both sides of mrkv-varlink-cert
 * check with. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert-values.h"

static bool equal_text(const char *got, const char *wants) {
        json_object *g = json_tokener_parse(got), *w = json_tokener_parse(wants);
        bool r;

        ck_assert_ptr_nonnull(g);
        ck_assert_ptr_nonnull(w);
        r = cert_json_equal(g, w);
        json_object_put(g);
        json_object_put(w);
        return r;
}

START_TEST(test_scalars) {
        ck_assert(equal_text("{\"b\":true}", "{\"b\":true}"));
        ck_assert(!equal_text("{\"b\":false}", "{\"b\":true}"));
        ck_assert(!equal_text("{\"b\":1}", "{\"b\":true}"));
        ck_assert(equal_text("{\"s\":\"ping\"}", "{\"s\":\"ping\"}"));
        ck_assert(!equal_text("{\"s\":\"ping\\u0000\"}", "{\"s\":\"ping\"}"));
        ck_assert(!equal_text("{\"s\":\"pong\"}", "{\"s\":\"ping\"}"));
        ck_assert(equal_text("{\"i\":-1}", "{\"i\":-1}"));
        ck_assert(!equal_text("{\"i\":18446744073709551615}", "{\"i\":9223372036854775807}"));
}
END_TEST

START_TEST(test_numbers_are_typed) {
        /* An int is only an int; a float may come as any number of its value, as the
         * reference sends 1.0. */
        ck_assert(equal_text("{\"i\":1}", "{\"i\":1}"));
        ck_assert(!equal_text("{\"i\":1.0}", "{\"i\":1}"));
        ck_assert(!equal_text("{\"i\":\"1\"}", "{\"i\":1}"));
        ck_assert(equal_text("{\"f\":1}", "{\"f\":1.0}"));
        ck_assert(equal_text("{\"f\":1.0}", "{\"f\":1.0}"));
        ck_assert(equal_text("{\"f\":3.141592653589793}", "{\"f\":3.141592653589793}"));
        ck_assert(equal_text("{\"f\":3.1415926535897931}", "{\"f\":3.141592653589793}"));
        ck_assert(!equal_text("{\"f\":3.14159265358979}", "{\"f\":3.141592653589793}"));
        ck_assert(!equal_text("{\"f\":\"1.0\"}", "{\"f\":1.0}"));
}
END_TEST

START_TEST(test_objects_and_arrays) {
        ck_assert(equal_text("{\"b\":1,\"a\":2}", "{\"a\":2,\"b\":1}"));
        ck_assert(!equal_text("{\"a\":2}", "{\"a\":2,\"b\":1}"));
        ck_assert(!equal_text("{\"a\":2,\"b\":1,\"c\":3}", "{\"a\":2,\"b\":1}"));
        /* A null field is an absent optional one, on either side. */
        ck_assert(equal_text("{\"a\":2}", "{\"a\":2,\"n\":null}"));
        ck_assert(equal_text("{\"a\":2,\"n\":null}", "{\"a\":2}"));
        ck_assert(!equal_text("{\"a\":2,\"n\":0}", "{\"a\":2,\"n\":null}"));
        /* Arrays keep their order, and their nulls. */
        ck_assert(equal_text("{\"a\":[null,{},1]}", "{\"a\":[null,{},1]}"));
        ck_assert(!equal_text("{\"a\":[{},null,1]}", "{\"a\":[null,{},1]}"));
        ck_assert(!equal_text("{\"a\":[null,{}]}", "{\"a\":[null,{},1]}"));
        ck_assert(!equal_text("{\"a\":{}}", "{\"a\":[]}"));
}
END_TEST

START_TEST(test_sequence_chains) {
        /* Each call of the sequence carries what the previous call returned. */
        for (CertStepId id = CERT_TEST01; id < CERT_TEST10; id++) {
                json_object *reply = cert_json(cert_steps[id].reply);
                json_object *call = cert_call_parameters(id + 1, "x"), *id_field;

                ck_assert_ptr_nonnull(reply);
                ck_assert_ptr_nonnull(call);
                ck_assert(json_object_object_get_ex(call, "client_id", &id_field));
                ck_assert_str_eq(json_object_get_string(id_field), "x");
                json_object_object_del(call, "client_id");
                ck_assert_msg(cert_json_equal(call, reply), "%s does not take what %s returned",
                              cert_steps[id + 1].method, cert_steps[id].method);
                json_object_put(reply);
                json_object_put(call);
        }

        json_object *last = cert_call_parameters(CERT_TEST11, "x"), *replies;
        ck_assert(json_object_object_get_ex(last, "last_more_replies", &replies));
        ck_assert_uint_eq(json_object_array_length(replies), CERT_N_MORE);
        for (unsigned i = 1; i <= CERT_N_MORE; i++) {
                json_object *more = cert_more_reply(i), *s;
                ck_assert(json_object_object_get_ex(more, "string", &s));
                ck_assert(cert_json_equal(json_object_array_get_idx(replies, i - 1), s));
                json_object_put(more);
        }
        json_object_put(last);

        ck_assert_uint_eq(cert_steps[CERT_TEST10].flags, CERT_MORE);
        ck_assert_uint_eq(cert_steps[CERT_TEST11].flags, CERT_ONEWAY);
        for (CertStepId id = CERT_START; id < _CERT_STEP_MAX; id++)
                ck_assert(strncmp(cert_steps[id].method, CERT_INTERFACE ".", strlen(CERT_INTERFACE) + 1) == 0);
}
END_TEST

START_TEST(test_interface_description) {
        /* Every method of the sequence is declared by the embedded description. */
        ck_assert(strstr(cert_interface_description, "\ninterface " CERT_INTERFACE "\n"));
        for (CertStepId id = CERT_START; id < _CERT_STEP_MAX; id++) {
                char line[128];
                snprintf(line, sizeof(line), "\nmethod %s(", strrchr(cert_steps[id].method, '.') + 1);
                ck_assert_msg(strstr(cert_interface_description, line), "%s is not declared",
                              cert_steps[id].method);
        }
        ck_assert(strstr(cert_interface_description, "\nerror ClientIdError ()"));
        ck_assert(strstr(cert_interface_description,
                         "\nerror CertificationError (wants: object, got: object)"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("varlink-cert-values");
        TCase *tc = tcase_create("values");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_scalars);
        tcase_add_test(tc, test_numbers_are_typed);
        tcase_add_test(tc, test_objects_and_arrays);
        tcase_add_test(tc, test_sequence_chains);
        tcase_add_test(tc, test_interface_description);
        suite_add_tcase(s, tc);

        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
