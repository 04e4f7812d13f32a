/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "lincheck.h"
#include "json-util.h"
#include "macro.h"

static const char *const outcome_names[_LIN_OUT_MAX] = {
        [LIN_OUT_OK] = "ok",
        [LIN_OUT_NOKEY] = "nokey",
        [LIN_OUT_VERSION] = "version",
        [LIN_OUT_MAYBE] = "maybe",
};

const char *lin_outcome_to_string(LinOutcome o) {
        if ((unsigned) o >= _LIN_OUT_MAX)
                return NULL;
        return outcome_names[o];
}

int lin_outcome_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(outcome_names); i++)
                if (streq(s, outcome_names[i]))
                        return (int) i;
        return -EINVAL;
}

int64_t lin_now_ns(void) {
        struct timespec ts;

        /* Cannot fail for CLOCK_MONOTONIC with a valid pointer. */
        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                abort();
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

LinHistory *lin_history_new(void) {
        LinHistory *h = calloc(1, sizeof(LinHistory));

        if (!h)
                return NULL;
        pthread_mutex_init(&h->lock, NULL);
        return h;
}

static void op_done(LinOp *op) {
        free(op->key);
        free(op->value);
        free(op->out_value);
}

LinHistory *lin_history_free(LinHistory *h) {
        if (!h)
                return NULL;
        for (size_t i = 0; i < h->n_ops; i++)
                op_done(&h->ops[i]);
        free(h->ops);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
}

/* Why op cannot be part of a history, or NULL if it can. */
static const char *op_invalid(const LinOp *op) {
        if (!op->key)
                return "no key";
        if (op->kind != LIN_GET && op->kind != LIN_PUT && op->kind != LIN_DELETE && op->kind != LIN_LIST)
                return "unknown operation kind";
        if (op->kind == LIN_LIST && (op->ret == LIN_NEVER || op->outcome != LIN_OUT_OK))
                return "a list entry must have a return and result \"ok\"";
        if ((unsigned) op->outcome >= _LIN_OUT_MAX)
                return "unknown result";
        if (op->ret < op->call)
                return "return before call";
        if (op->ret == LIN_NEVER) {
                if (op->outcome != LIN_OUT_MAYBE)
                        return "an operation without a return must have result \"maybe\"";
        } else if (op->kind == LIN_GET && op->outcome != LIN_OUT_OK && op->outcome != LIN_OUT_NOKEY)
                return "a get that returned must have result \"ok\" or \"nokey\"";
        if (op->kind == LIN_PUT && !op->value)
                return "a put needs a value";
        if (op->kind == LIN_GET && op->outcome == LIN_OUT_OK && op->ret != LIN_NEVER && !op->out_value)
                return "a get that returned ok needs out_value";
        return NULL;
}

static int history_append(LinHistory *h, const LinOp *op) {
        LinOp copy = {
                .client = op->client,
                .kind = op->kind,
                .version = op->version,
                .outcome = op->outcome,
                .out_version = op->out_version,
                .call = op->call,
                .ret = op->ret,
                .line = op->line,
        };

        copy.key = strdup(op->key);
        if (op->value)
                copy.value = strdup(op->value);
        if (op->out_value)
                copy.out_value = strdup(op->out_value);
        if (!copy.key || (op->value && !copy.value) || (op->out_value && !copy.out_value)) {
                op_done(&copy);
                return -ENOMEM;
        }

        pthread_mutex_lock(&h->lock);
        if (h->n_ops == h->allocated) {
                size_t n = MAX(h->allocated * 2, (size_t) 64);
                LinOp *ops = reallocarray(h->ops, n, sizeof(LinOp));

                if (!ops) {
                        pthread_mutex_unlock(&h->lock);
                        op_done(&copy);
                        return -ENOMEM;
                }
                h->ops = ops;
                h->allocated = n;
        }
        h->ops[h->n_ops++] = copy;
        pthread_mutex_unlock(&h->lock);
        return 0;
}

int lin_history_add(LinHistory *h, const LinOp *op) {
        assert(h);
        assert(op);

        if (op_invalid(op))
                return -EINVAL;
        return history_append(h, op);
}

int lin_history_add_get(LinHistory *h, int64_t client, const char *key, int64_t call, int64_t ret,
                LinOutcome outcome, const char *out_value, uint64_t out_version) {
        LinOp op = {
                .client = client,
                .kind = LIN_GET,
                .key = (char *) key,
                .outcome = outcome,
                .out_value = (char *) out_value,
                .out_version = out_version,
                .call = call,
                .ret = ret,
        };

        return lin_history_add(h, &op);
}

int lin_history_add_delete(LinHistory *h, int64_t client, const char *key, uint64_t version, int64_t call,
                           int64_t ret, LinOutcome outcome) {
        LinOp op = {
                .client = client,
                .kind = LIN_DELETE,
                .key = (char *) key,
                .version = version,
                .outcome = outcome,
                .call = call,
                .ret = ret,
        };

        return lin_history_add(h, &op);
}

int lin_history_add_list(LinHistory *h, int64_t client, const char *key, int64_t call, int64_t ret,
                         const char *out_value, uint64_t out_version) {
        LinOp op = {
                .client = client,
                .kind = LIN_LIST,
                .key = (char *) key,
                .outcome = LIN_OUT_OK,
                .out_value = (char *) out_value,
                .out_version = out_version,
                .call = call,
                .ret = ret,
        };

        return lin_history_add(h, &op);
}

int lin_history_add_put(LinHistory *h, int64_t client, const char *key, const char *value, uint64_t version,
                int64_t call, int64_t ret, LinOutcome outcome) {
        LinOp op = {
                .client = client,
                .kind = LIN_PUT,
                .key = (char *) key,
                .value = (char *) value,
                .version = version,
                .outcome = outcome,
                .call = call,
                .ret = ret,
        };

        return lin_history_add(h, &op);
}

_printf_(3, 4) static int parse_error(char **ret_error, unsigned line, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        if (!ret_error)
                return -EBADMSG;

        va_start(ap, format);
        r = vasprintf(&msg, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        free(*ret_error);
        if (asprintf(ret_error, "line %u: %s", line, msg) < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return -EBADMSG;
}

/* Fetches an integer field; returns 1 if present, 0 if absent (or null when
 * null_ok), -EBADMSG with a message otherwise. */
static int get_int(json_object *o, const char *field, bool null_ok, int64_t min, int64_t *ret, unsigned line,
                char **ret_error) {
        json_object *v;

        if (!json_object_object_get_ex(o, field, &v) || (null_ok && !v))
                return 0;
        if (!json_object_is_type(v, json_type_int))
                return parse_error(ret_error, line, "\"%s\" must be an integer", field);
        errno = 0;
        *ret = json_object_get_int64(v);
        /* json-c clamps values out of range and says so in errno. */
        if (errno != 0 || *ret < min)
                return parse_error(ret_error, line, "\"%s\" is out of range", field);
        return 1;
}

static int get_string(json_object *o, const char *field, const char **ret, unsigned line, char **ret_error) {
        json_object *v;

        if (!json_object_object_get_ex(o, field, &v))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return parse_error(ret_error, line, "\"%s\" must be a string", field);
        *ret = json_object_get_string(v);
        return 1;
}

static int parse_op(json_object *o, unsigned line, LinOp *op, char **ret_error) {
        const char *kind = NULL, *result = NULL, *key = NULL, *value = NULL, *out_value = NULL;
        int64_t client = 0, version = 0, out_version = 0, call = 0, ret = LIN_NEVER;
        const char *invalid;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return parse_error(ret_error, line, "not a JSON object");

        r = get_int(o, "client", false, INT64_MIN, &client, line, ret_error);
        if (r < 0)
                return r;
        if (r == 0)
                return parse_error(ret_error, line, "missing \"client\"");

        r = get_string(o, "op", &kind, line, ret_error);
        if (r < 0)
                return r;
        if (r == 0)
                return parse_error(ret_error, line, "missing \"op\"");
        if (streq(kind, "get"))
                op->kind = LIN_GET;
        else if (streq(kind, "put"))
                op->kind = LIN_PUT;
        else if (streq(kind, "delete"))
                op->kind = LIN_DELETE;
        else if (streq(kind, "list"))
                op->kind = LIN_LIST;
        else
                return parse_error(ret_error, line,
                                   "\"op\" must be \"get\", \"put\", \"delete\" or \"list\", not \"%s\"", kind);

        r = get_string(o, "key", &key, line, ret_error);
        if (r < 0)
                return r;
        if (r == 0)
                return parse_error(ret_error, line, "missing \"key\"");

        r = get_int(o, "call", false, INT64_MIN, &call, line, ret_error);
        if (r < 0)
                return r;
        if (r == 0)
                return parse_error(ret_error, line, "missing \"call\"");
        r = get_int(o, "return", true, INT64_MIN, &ret, line, ret_error);
        if (r < 0)
                return r;
        if (ret < call)
                return parse_error(ret_error, line, "\"return\" is before \"call\"");

        r = get_string(o, "result", &result, line, ret_error);
        if (r < 0)
                return r;
        if (r == 0) {
                if (ret != LIN_NEVER)
                        return parse_error(ret_error, line, "missing \"result\"");
                op->outcome = LIN_OUT_MAYBE;
        } else {
                r = lin_outcome_from_string(result);
                if (r < 0)
                        return parse_error(ret_error, line,
                                        "\"result\" must be \"ok\", \"nokey\", \"version\" or \"maybe\", not \"%s\"",
                                        result);
                op->outcome = r;
        }

        if (op->kind == LIN_PUT) {
                r = get_string(o, "value", &value, line, ret_error);
                if (r < 0)
                        return r;
                if (r == 0)
                        return parse_error(ret_error, line, "a put needs \"value\"");
                r = get_int(o, "version", false, 0, &version, line, ret_error);
                if (r < 0)
                        return r;
                if (r == 0)
                        return parse_error(ret_error, line, "a put needs \"version\"");
        } else if (op->kind == LIN_DELETE) {
                r = get_int(o, "version", false, 0, &version, line, ret_error);
                if (r < 0)
                        return r;
                if (r == 0)
                        return parse_error(ret_error, line, "a delete needs \"version\"");
        } else if (op->outcome == LIN_OUT_OK) {
                r = get_string(o, "out_value", &out_value, line, ret_error);
                if (r < 0)
                        return r;
                if (r == 0 && op->kind == LIN_GET)
                        return parse_error(ret_error, line, "a get with result \"ok\" needs \"out_value\"");
                r = get_int(o, "out_version", false, 0, &out_version, line, ret_error);
                if (r < 0)
                        return r;
                if (r == 0)
                        return parse_error(ret_error, line, "a %s with result \"ok\" needs \"out_version\"", kind);
        }

        op->client = client;
        op->key = (char *) key;
        op->value = (char *) value;
        op->version = (uint64_t) version;
        op->out_value = (char *) out_value;
        op->out_version = (uint64_t) out_version;
        op->call = call;
        op->ret = ret;
        op->line = line;

        invalid = op_invalid(op);
        if (invalid)
                return parse_error(ret_error, line, "%s", invalid);
        return 0;
}

static bool is_blank(const char *s) {
        return s[strspn(s, " \t\r\n")] == '\0';
}

static void tokener_freep(json_tokener **t) {
        if (*t)
                json_tokener_free(*t);
}

int lin_history_parse(LinHistory *h, FILE *f, char **ret_error) {
        _cleanup_(tokener_freep) json_tokener *tok = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t allocated = 0;
        unsigned line = 0;
        ssize_t n;

        assert(h);
        assert(f);

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;

        while ((n = getline(&buf, &allocated, f)) >= 0) {
                _cleanup_json_ json_object *o = NULL;
                enum json_tokener_error e;
                LinOp op = {};
                int r;

                line++;
                if ((size_t) n != strlen(buf))
                        return parse_error(ret_error, line, "contains a NUL byte");
                if (is_blank(buf))
                        continue;

                json_tokener_reset(tok);
                o = json_tokener_parse_ex(tok, buf, (int) n);
                e = json_tokener_get_error(tok);
                if (e == json_tokener_continue)
                        return parse_error(ret_error, line, "incomplete JSON");
                if (e != json_tokener_success)
                        return parse_error(ret_error, line, "invalid JSON: %s", json_tokener_error_desc(e));
                if (!is_blank(buf + json_tokener_get_parse_end(tok)))
                        return parse_error(ret_error, line, "more than one JSON value");

                r = parse_op(o, line, &op, ret_error);
                if (r < 0)
                        return r;
                r = history_append(h, &op);
                if (r < 0)
                        return r;
        }
        if (ferror(f))
                return -EIO;
        return 0;
}

int lin_history_load(const char *path, LinHistory **ret, char **ret_error) {
        _cleanup_(lin_history_freep) LinHistory *h = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        bool use_stdin = streq(path, "-");
        int r;

        assert(ret);

        h = lin_history_new();
        if (!h)
                return -ENOMEM;

        if (!use_stdin) {
                f = fopen(path, "re");
                if (!f) {
                        r = negative_errno();
                        if (ret_error && asprintf(ret_error, "cannot open %s: %s", path, strerror(-r)) < 0)
                                *ret_error = NULL;
                        return r;
                }
        }

        r = lin_history_parse(h, use_stdin ? stdin : f, ret_error);
        if (r == -EIO && ret_error && asprintf(ret_error, "cannot read %s", path) < 0)
                *ret_error = NULL;
        if (r < 0)
                return r;

        *ret = TAKE_PTR(h);
        return 0;
}

static const char *lin_kind_to_string(LinKind k) {
        static const char *const names[] = {
                [LIN_GET] = "get",
                [LIN_PUT] = "put",
                [LIN_DELETE] = "delete",
                [LIN_LIST] = "list",
        };

        return names[k];
}

static int op_to_json(const LinOp *op, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        int r;

        r = json_build_object(&o,
                              "client", json_object_new_int64(op->client),
                              "op", json_object_new_string(lin_kind_to_string(op->kind)),
                              "key", json_object_new_string(op->key),
                              NULL);
        if (r >= 0 && op->kind == LIN_PUT)
                r = json_object_add(o, "value", json_object_new_string(op->value));
        if (r >= 0 && (op->kind == LIN_PUT || op->kind == LIN_DELETE))
                r = json_object_add(o, "version", json_object_new_uint64(op->version));
        if (r >= 0)
                r = json_object_add(o, "call", json_object_new_int64(op->call));
        if (r >= 0 && op->ret != LIN_NEVER)
                r = json_object_add(o, "return", json_object_new_int64(op->ret));
        if (r >= 0)
                r = json_object_add(o, "result", json_object_new_string(lin_outcome_to_string(op->outcome)));
        if (r >= 0 && (op->kind == LIN_GET || op->kind == LIN_LIST) && op->outcome == LIN_OUT_OK) {
                if (op->out_value)
                        r = json_object_add(o, "out_value", json_object_new_string(op->out_value));
                if (r >= 0 && (op->out_value || op->kind == LIN_LIST))
                        r = json_object_add(o, "out_version", json_object_new_uint64(op->out_version));
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}

int lin_history_write(const LinHistory *h, FILE *f) {
        assert(h);
        assert(f);

        for (size_t i = 0; i < h->n_ops; i++) {
                _cleanup_json_ json_object *o = NULL;
                const char *s;
                int r;

                r = op_to_json(&h->ops[i], &o);
                if (r < 0)
                        return r;
                s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                if (!s)
                        return -ENOMEM;
                if (fputs(s, f) < 0 || fputc('\n', f) < 0)
                        return -EIO;
        }
        if (fflush(f) != 0)
                return negative_errno();
        return 0;
}

int lin_history_save(const LinHistory *h, const char *path) {
        _cleanup_fclose_ FILE *f = NULL;
        int r;

        f = fopen(path, "we");
        if (!f)
                return negative_errno();
        r = lin_history_write(h, f);
        if (r < 0)
                return r;
        r = fclose(TAKE_PTR(f));
        if (r != 0)
                return negative_errno();
        return 0;
}
