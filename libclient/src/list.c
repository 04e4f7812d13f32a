/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Listing keys a page at a time: each page is one List call through the clerk, asked for
 * with startAfter set to the last key of the page before. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "clerk-internal.h"
#include "json-util.h"
#include "macro.h"
#include "mrkv/kv.h"
#include "org.mrkv.KV.varlink.h"

struct mrkv_list {
        mrkv_clerk *clerk; /* borrowed */
        char *prefix;
        char *start_after; /* the last key returned; NULL before the first */
        unsigned flags;
        unsigned page_size;

        json_object *page; /* the entries of the current page */
        size_t next;       /* index of the next entry to return in page */
        bool more;         /* the server has keys after the current page */

        mrkv_entry entry;
};

_public_ int mrkv_list_new(mrkv_clerk *c, const char *prefix, const char *start_after, unsigned flags,
                           mrkv_list **ret) {
        mrkv_list *l;

        if (!c || !ret || (flags & ~MRKV_LIST_VALUES))
                return -EINVAL;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->clerk = c;
        l->flags = flags;
        l->more = true;
        if ((prefix && !(l->prefix = strdup(prefix))) || (start_after && !(l->start_after = strdup(start_after)))) {
                mrkv_list_free(l);
                return -ENOMEM;
        }
        *ret = l;
        return 0;
}

_public_ mrkv_list *mrkv_list_free(mrkv_list *l) {
        if (!l)
                return NULL;
        json_object_put(l->page);
        free(l->prefix);
        free(l->start_after);
        free(l);
        return NULL;
}

_public_ int mrkv_list_set_page_size(mrkv_list *l, unsigned n) {
        if (!l)
                return -EINVAL;
        l->page_size = n;
        return 0;
}

static int list_fetch(mrkv_list *l) {
        _cleanup_json_ json_object *parameters = NULL, *reply = NULL;
        _cleanup_free_ char *error = NULL;
        struct {
                json_object *entries;
                bool more;
        } p = {};
        static const VarlinkField fields[] = {
                { "entries", VARLINK_ARRAY, offsetof(typeof(p), entries), true },
                { "more", VARLINK_BOOL, offsetof(typeof(p), more), true },
                {},
        };
        const char *bad_field = NULL;
        bool unanswered;
        int r;

        parameters = json_object_new_object();
        if (!parameters)
                return -ENOMEM;
        r = 0;
        if (l->prefix)
                r = json_object_add(parameters, "prefix", json_object_new_string(l->prefix));
        if (r >= 0 && l->start_after)
                r = json_object_add(parameters, "startAfter", json_object_new_string(l->start_after));
        if (r >= 0 && l->page_size > 0)
                r = json_object_add(parameters, "limit", json_object_new_uint64(l->page_size));
        if (r >= 0 && (l->flags & MRKV_LIST_VALUES))
                r = json_object_add(parameters, "values", json_object_new_boolean(true));
        if (r < 0)
                return r;

        /* A List changes nothing: a resent one is answered as the first would be. */
        r = clerk_call(l->clerk, KV_METHOD_LIST, parameters, &reply, &error, &unanswered);
        if (r < 0)
                return r;
        if (error)
                return generic_error_to_errno(error);
        if (varlink_dispatch(reply, fields, &p, &bad_field) < 0)
                return -EBADMSG;
        /* A page that says more follows must move on, or the listing would never end. */
        if (p.more && json_object_array_length(p.entries) == 0)
                return -EBADMSG;

        json_object_put(l->page);
        l->page = json_object_get(p.entries);
        l->next = 0;
        l->more = p.more;
        return 0;
}

_public_ int mrkv_list_next(mrkv_list *l, const mrkv_entry **ret) {
        struct {
                const char *key, *value;
                uint64_t version, lease;
        } p = {};
        static const VarlinkField fields[] = {
                { "key", VARLINK_STRING, offsetof(typeof(p), key), true },
                { "version", VARLINK_UINT64, offsetof(typeof(p), version), true },
                { "value", VARLINK_STRING, offsetof(typeof(p), value), false },
                { "lease", VARLINK_UINT64, offsetof(typeof(p), lease), false },
                {},
        };
        const char *bad_field = NULL;
        char *key;
        int r;

        if (!l || !ret)
                return -EINVAL;

        if (!l->page || l->next >= json_object_array_length(l->page)) {
                if (!l->more)
                        return 0;
                r = list_fetch(l);
                if (r < 0)
                        return r;
                if (json_object_array_length(l->page) == 0)
                        return 0;
        }

        if (varlink_dispatch(json_object_array_get_idx(l->page, l->next), fields, &p, &bad_field) < 0)
                return -EBADMSG;
        /* Keys come in order, after the last: anything else would loop or skip. */
        if (l->start_after && strcmp(p.key, l->start_after) <= 0)
                return -EBADMSG;
        key = strdup(p.key);
        if (!key)
                return -ENOMEM;
        free(l->start_after);
        l->start_after = key;
        l->next++;

        l->entry = (mrkv_entry) {
                .key = p.key,
                .value = p.value,
                .version = p.version,
                .lease = p.lease,
        };
        *ret = &l->entry;
        return 1;
}
