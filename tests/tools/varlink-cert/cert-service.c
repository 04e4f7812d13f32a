/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/random.h>

#include "cert-service.h"
#include "cert-values.h"
#include "config.h"
#include "json-util.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "varlink-server.h"

/* Clients that never call End are forgotten, the oldest first, beyond this many. */
#define CLIENTS_MAX 64U

typedef struct CertClient CertClient;

struct CertClient {
        LIST_FIELDS(CertClient, clients);
        char id[33]; /* 128 random bits in hex */
        CertStepId next; /* the step the client is to call next */
        bool failed;
};

struct CertService {
        VarlinkServer *server;
        CertClient *clients; /* the oldest first */
        unsigned n_clients;
};

static void client_free(CertService *s, CertClient *cl) {
        LIST_REMOVE(clients, s->clients, cl);
        s->n_clients--;
        free(cl);
}

static CertClient *client_find(CertService *s, const char *id) {
        LIST_FOREACH(clients, cl, s->clients)
                if (streq(cl->id, id))
                        return cl;
        return NULL;
}

static int client_new(CertService *s, CertClient **ret) {
        uint8_t bytes[16];
        CertClient *cl;

        if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t) sizeof(bytes))
                return -EIO;

        if (s->n_clients >= CLIENTS_MAX) {
                log_info("Forgetting client %s, which never called End.", s->clients->id);
                client_free(s, s->clients);
        }

        cl = calloc(1, sizeof(*cl));
        if (!cl)
                return -ENOMEM;
        for (size_t i = 0; i < sizeof(bytes); i++)
                snprintf(cl->id + 2 * i, 3, "%02x", bytes[i]);
        cl->next = CERT_TEST01;
        LIST_APPEND(clients, s->clients, cl);
        s->n_clients++;
        *ret = cl;
        return 0;
}

/* {"method": ..., "parameters": ..., "more"/"oneway": true}: a call, as CertificationError shows it. */
static json_object *describe_call(const char *method, json_object *parameters, unsigned flags) {
        _cleanup_json_ json_object *o = NULL;
        int r;

        r = json_build_object(&o,
                              "method", json_object_new_string(method),
                              "parameters",
                              parameters ? json_object_get(parameters) : json_object_new_object(),
                              NULL);
        if (r >= 0 && (flags & CERT_MORE))
                r = json_object_add(o, "more", json_object_new_boolean(true));
        if (r >= 0 && (flags & CERT_ONEWAY))
                r = json_object_add(o, "oneway", json_object_new_boolean(true));
        if (r < 0)
                return NULL;
        return TAKE_PTR(o);
}

static unsigned cert_flags(VarlinkCallFlags flags) {
        return ((flags & VARLINK_CALL_MORE) ? CERT_MORE : 0) |
               ((flags & VARLINK_CALL_ONEWAY) ? CERT_ONEWAY : 0);
}

/* Answers a wrong call with CertificationError; a oneway call gets no answer, so the
 * log is where its failure shows. */
static int reply_certification_error(VarlinkConn *c, CertClient *cl, const char *wants_method,
                                     json_object *wants_parameters, unsigned wants_flags, CertStepId got_step,
                                     json_object *got_parameters, VarlinkCallFlags got_flags) {
        json_object *wants, *got;

        if (cl)
                cl->failed = true;

        wants = describe_call(wants_method, wants_parameters, wants_flags);
        got = describe_call(cert_steps[got_step].method, got_parameters, cert_flags(got_flags));
        log_warning("Client %s failed %s: wants %s, got %s", cl ? cl->id : "(new)",
                    cert_steps[got_step].method,
                    json_object_to_json_string_ext(wants, JSON_C_TO_STRING_PLAIN),
                    json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN));
        /* If either could not be built, the error is not sent and the connection closes. */
        return varlink_conn_errorb(c, CERT_ERROR_CERTIFICATION, "wants", wants, "got", got, NULL);
}

static int method_start(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, void *userdata) {
        CertService *s = userdata;
        _cleanup_json_ json_object *wants = cert_call_parameters(CERT_START, NULL);
        CertClient *cl;
        int r;

        if (!wants)
                return -ENOMEM;
        if (cert_flags(flags) != cert_steps[CERT_START].flags ||
            !cert_json_equal(parameters ?: wants, wants))
                return reply_certification_error(c, NULL, cert_steps[CERT_START].method, wants,
                                                 cert_steps[CERT_START].flags, CERT_START, parameters, flags);

        r = client_new(s, &cl);
        if (r < 0)
                return r;
        log_debug("Client %s started.", cl->id);

        return varlink_conn_replyb(c, "client_id", json_object_new_string(cl->id), NULL);
}

static int reply_step(VarlinkConn *c, CertService *s, CertClient *cl, CertStepId id) {
        json_object *reply;
        int r;

        switch (id) {
        case CERT_TEST10:
                for (unsigned i = 1; i <= CERT_N_MORE; i++) {
                        reply = cert_more_reply(i);
                        if (!reply)
                                return -ENOMEM;
                        r = i < CERT_N_MORE ? varlink_conn_notify(c, reply) : varlink_conn_reply(c, reply);
                        if (r < 0)
                                return r;
                }
                return 0;

        case CERT_TEST11:
                return varlink_conn_reply(c, NULL); /* oneway: nothing is sent */

        case CERT_END: {
                bool all_ok = !cl->failed && cl->next == CERT_END;

                log_info("Client %s %s the certification.", cl->id, all_ok ? "passed" : "failed");
                client_free(s, cl);
                return varlink_conn_replyb(c, "all_ok", json_object_new_boolean(all_ok), NULL);
        }

        default:
                reply = cert_json(cert_steps[id].reply);
                if (!reply)
                        return -ENOMEM;
                return varlink_conn_reply(c, reply);
        }
}

/* Test01 … Test11 and End: the client_id must be known, the call the one the client
 * is at (End may come at any time, and tells whether all went well), and the call
 * exactly what the sequence says. */
static int method_step(VarlinkConn *c, json_object *parameters, VarlinkCallFlags flags, CertService *s,
                       CertStepId id) {
        _cleanup_json_ json_object *wants = NULL;
        json_object *v;
        CertClient *cl;

        if (!parameters || !json_object_object_get_ex(parameters, "client_id", &v) ||
            !json_object_is_type(v, json_type_string))
                return varlink_conn_error_invalid_parameter(c, "client_id");
        cl = client_find(s, json_object_get_string(v));
        if (!cl)
                return varlink_conn_error(c, CERT_ERROR_CLIENT_ID, NULL);

        if (id != CERT_END && id != cl->next) {
                _cleanup_json_ json_object *expected = cert_call_parameters(cl->next, cl->id);
                if (!expected)
                        return -ENOMEM;
                return reply_certification_error(c, cl, cert_steps[cl->next].method, expected,
                                                 cert_steps[cl->next].flags, id, parameters, flags);
        }

        wants = cert_call_parameters(id, cl->id);
        if (!wants)
                return -ENOMEM;
        if (cert_flags(flags) != cert_steps[id].flags || !cert_json_equal(parameters, wants))
                return reply_certification_error(c, cl, cert_steps[id].method, wants, cert_steps[id].flags, id,
                                                 parameters, flags);

        if (id != CERT_END)
                cl->next = id + 1;
        return reply_step(c, s, cl, id);
}

/* The server hands a method no name: one small function per method. */
#define DEFINE_STEP_METHOD(name, id)                                                                  \
        static int method_##name(VarlinkConn *c, json_object *p, VarlinkCallFlags f, void *userdata) { \
                return method_step(c, p, f, userdata, id);                                            \
        }
DEFINE_STEP_METHOD(test01, CERT_TEST01 + 0)
DEFINE_STEP_METHOD(test02, CERT_TEST01 + 1)
DEFINE_STEP_METHOD(test03, CERT_TEST01 + 2)
DEFINE_STEP_METHOD(test04, CERT_TEST01 + 3)
DEFINE_STEP_METHOD(test05, CERT_TEST01 + 4)
DEFINE_STEP_METHOD(test06, CERT_TEST01 + 5)
DEFINE_STEP_METHOD(test07, CERT_TEST01 + 6)
DEFINE_STEP_METHOD(test08, CERT_TEST01 + 7)
DEFINE_STEP_METHOD(test09, CERT_TEST01 + 8)
DEFINE_STEP_METHOD(test10, CERT_TEST10)
DEFINE_STEP_METHOD(test11, CERT_TEST11)
DEFINE_STEP_METHOD(end, CERT_END)

int cert_service_new(sd_event *event, CertService **ret) {
        static const VarlinkServerInfo info = {
                .vendor = "mrkv",
                .product = "mrkv-varlink-cert",
                .version = PACKAGE_VERSION,
                .url = "https://github.com/mrkv/mrkv",
        };
        static const VarlinkMethod methods[_CERT_STEP_MAX] = {
                [CERT_START] = method_start,
                [CERT_TEST01 + 0] = method_test01,
                [CERT_TEST01 + 1] = method_test02,
                [CERT_TEST01 + 2] = method_test03,
                [CERT_TEST01 + 3] = method_test04,
                [CERT_TEST01 + 4] = method_test05,
                [CERT_TEST01 + 5] = method_test06,
                [CERT_TEST01 + 6] = method_test07,
                [CERT_TEST01 + 7] = method_test08,
                [CERT_TEST01 + 8] = method_test09,
                [CERT_TEST10] = method_test10,
                [CERT_TEST11] = method_test11,
                [CERT_END] = method_end,
        };
        CertService *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        r = varlink_server_new(event, &info, s, &s->server);
        if (r >= 0)
                r = varlink_server_add_interface(s->server, cert_interface_description);
        for (size_t i = 0; r >= 0 && i < _CERT_STEP_MAX; i++)
                r = varlink_server_bind(s->server, cert_steps[i].method, methods[i]);
        if (r < 0) {
                cert_service_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

CertService *cert_service_free(CertService *s) {
        if (!s)
                return NULL;
        varlink_server_free(s->server);
        while (s->clients)
                client_free(s, s->clients);
        free(s);
        return NULL;
}

int cert_service_listen_fd(CertService *s, int fd) {
        return varlink_server_listen_fd(s->server, fd);
}
