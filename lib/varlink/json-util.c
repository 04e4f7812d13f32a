/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "json-util.h"

/* The key is a string literal: json-c neither copies it nor looks for an earlier member of
 * that name. */
#define LITERAL_KEY (JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT)

int json_object_add(json_object *o, const char *key, json_object *value) {
        assert(o);
        assert(key);

        if (!value)
                return -ENOMEM;
        if (json_object_object_add(o, key, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

int json_array_append(json_object *a, json_object *value) {
        assert(a);

        if (!value)
                return -ENOMEM;
        if (json_object_array_add(a, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return 0;
}

int json_build_object_va(json_object **ret, va_list ap) {
        _cleanup_json_ json_object *o = NULL;
        const char *key;
        int r = 0;

        assert(ret);

        o = json_object_new_object();
        if (!o)
                r = -ENOMEM;

        /* After a failure the remaining pairs are still walked: their values are ours. */
        while ((key = va_arg(ap, const char *))) {
                json_object *value = va_arg(ap, json_object *);

                if (r < 0 || !value) {
                        json_object_put(value);
                        r = -ENOMEM;
                        continue;
                }
                if (json_object_object_add_ex(o, key, value, LITERAL_KEY) < 0) {
                        json_object_put(value);
                        r = -ENOMEM;
                }
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}

int json_build_object(json_object **ret, ...) {
        va_list ap;
        int r;

        va_start(ap, ret);
        r = json_build_object_va(ret, ap);
        va_end(ap);
        return r;
}
