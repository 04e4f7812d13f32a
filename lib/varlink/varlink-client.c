/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "address.h"
#include "io-util.h"
#include "macro.h"
#include "time-util.h"
#include "varlink-client.h"

#define READ_CHUNK (64U * 1024U)

struct VarlinkClient {
        int fd;
        VarlinkBuffer in, out;
        json_object *last; /* the last reply, owning the error name handed out */
};

int varlink_client_new_fd(int fd, VarlinkClient **ret) {
        VarlinkClient *c;

        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                return -errno;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = fd;
        *ret = c;
        return 0;
}

int varlink_client_connect(const char *address, VarlinkClient **ret) {
        Address a;
        int fd, r;

        r = address_parse(address, &a);
        if (r < 0)
                return r;
        fd = address_connect(&a, true);
        address_done(&a);
        if (fd < 0)
                return fd;
        r = varlink_client_new_fd(fd, ret);
        if (r < 0)
                close(fd);
        return r;
}

VarlinkClient *varlink_client_free(VarlinkClient *c) {
        if (!c)
                return NULL;
        closep(&c->fd);
        varlink_buffer_done(&c->in);
        varlink_buffer_done(&c->out);
        json_object_put(c->last);
        free(c);
        return NULL;
}

int varlink_client_get_fd(VarlinkClient *c) {
        return c->fd;
}

int varlink_client_queue(VarlinkClient *c, const char *method, json_object *parameters, unsigned flags) {
        _cleanup_json_ json_object *m = NULL;
        size_t before = varlink_buffer_size(&c->out);
        int r;

        r = json_build_object(&m,
                              "method", json_object_new_string(method),
                              "parameters",
                              parameters ? json_object_get(parameters) : json_object_new_object(),
                              NULL);
        if (r >= 0 && (flags & VARLINK_CLIENT_MORE))
                r = json_object_add(m, "more", json_object_new_boolean(true));
        if (r >= 0 && (flags & VARLINK_CLIENT_ONEWAY))
                r = json_object_add(m, "oneway", json_object_new_boolean(true));
        if (r < 0)
                return r;

        r = varlink_buffer_append_message(&c->out, m);
        if (r < 0)
                return r;
        if (before > 0 && varlink_buffer_size(&c->out) > VARLINK_CLIENT_QUEUE_MAX) {
                /* Back to what was queued before. */
                c->out.end = c->out.start + before;
                return -ENOBUFS;
        }
        return 0;
}

int varlink_client_flush(VarlinkClient *c, uint64_t timeout_usec) {
        uint64_t deadline = usec_add(now_usec(), timeout_usec);
        int r;

        while (varlink_buffer_size(&c->out) > 0) {
                ssize_t n = send(c->fd, c->out.data + c->out.start, varlink_buffer_size(&c->out),
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return errno == EPIPE ? -ECONNRESET : -errno;
                        r = fd_wait_until(c->fd, POLLOUT, deadline);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                return -ETIMEDOUT;
                        continue;
                }
                varlink_buffer_consume(&c->out, (size_t) n);
        }
        return 0;
}

int varlink_client_send(VarlinkClient *c, const char *method, json_object *parameters, unsigned flags,
                        uint64_t timeout_usec) {
        int r;

        r = varlink_client_queue(c, method, parameters, flags);
        if (r < 0)
                return r;
        return varlink_client_flush(c, timeout_usec);
}

int varlink_client_read(VarlinkClient *c, uint64_t timeout_usec, json_object **ret_parameters,
                        const char **ret_error, bool *ret_continues) {
        uint64_t deadline = usec_add(now_usec(), timeout_usec);
        json_object *m = NULL, *v;
        const char *data;
        size_t size;
        int r;

        for (;;) {
                r = varlink_buffer_next(&c->in, VARLINK_DEFAULT_MAX_MESSAGE, &data, &size);
                if (r < 0)
                        return -EBADMSG;
                if (r > 0)
                        break;

                char *p = varlink_buffer_reserve(&c->in, READ_CHUNK);
                if (!p)
                        return -ENOMEM;
                ssize_t n = recv(c->fd, p, READ_CHUNK, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return errno == ECONNRESET || errno == EPIPE ? -ECONNRESET : -errno;
                        r = fd_wait_until(c->fd, POLLIN, deadline);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                return -ETIMEDOUT;
                        continue;
                }
                if (n == 0)
                        return -ECONNRESET;
                c->in.end += (size_t) n;
        }

        r = varlink_message_parse(data, size, &m);
        varlink_buffer_consume(&c->in, size + 1);
        if (r < 0)
                return r;

        json_object_put(c->last);
        c->last = m;

        const char *error = NULL;
        if (json_object_object_get_ex(m, "error", &v) && v) {
                if (!json_object_is_type(v, json_type_string))
                        return -EBADMSG;
                error = json_object_get_string(v);
        }
        if (!json_object_object_get_ex(m, "parameters", &v) || !v)
                v = NULL;
        else if (!json_object_is_type(v, json_type_object))
                return -EBADMSG;

        if (ret_parameters)
                *ret_parameters = v ? json_object_get(v) : json_object_new_object();
        if (ret_error)
                *ret_error = error;
        if (ret_continues) {
                json_object *cont;
                *ret_continues = json_object_object_get_ex(m, "continues", &cont) &&
                                 json_object_is_type(cont, json_type_boolean) && json_object_get_boolean(cont);
        }
        return 0;
}

int varlink_client_call(VarlinkClient *c, const char *method, json_object *parameters, uint64_t timeout_usec,
                        json_object **ret_parameters, const char **ret_error) {
        uint64_t deadline = usec_add(now_usec(), timeout_usec);
        uint64_t now;
        int r;

        r = varlink_client_send(c, method, parameters, 0, timeout_usec);
        if (r < 0)
                return r;
        now = now_usec();
        return varlink_client_read(c, deadline == UINT64_MAX ? UINT64_MAX : (deadline > now ? deadline - now : 0),
                                   ret_parameters, ret_error, NULL);
}
