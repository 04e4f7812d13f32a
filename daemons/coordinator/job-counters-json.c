/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "job-counters-json.h"
#include "json-util.h"
#include "macro.h"

json_object *job_counters_to_json(const JobCounters *c, JobCounter first, JobCounter end) {
        _cleanup_json_ json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        for (JobCounter i = first; i < end; i++)
                if (json_object_add(o, job_counter_to_string(i), json_object_new_uint64(c->v[i])) < 0)
                        return NULL;
        return TAKE_PTR(o);
}

int job_counters_from_json(json_object *o, JobCounter first, JobCounter end, JobCounters *ret) {
        JobCounters c = *ret;

        if (!json_object_is_type(o, json_type_object))
                return -EINVAL;
        json_object_object_foreach(o, name, v) {
                int i = job_counter_from_string(name);

                if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
                        return -EINVAL;
                if (i >= (int) first && i < (int) end)
                        c.v[i] = json_object_get_uint64(v);
        }
        *ret = c;
        return 0;
}
