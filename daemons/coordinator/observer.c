/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "macro.h"
#include "observer.h"

int observer_subscribe(Observer **head, ObserverFunc func, void *userdata) {
        Observer *o;

        assert(head);
        assert(func);

        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->func = func;
        o->userdata = userdata;
        LIST_APPEND(observers, *head, o);
        return 0;
}

void observer_unsubscribe(Observer **head, ObserverFunc func) {
        LIST_FOREACH_SAFE(observers, o, n, *head)
                if (o->func == func) {
                        LIST_REMOVE(observers, *head, o);
                        free(o);
                }
}

void observer_notify(Observer *head, ObserverEvent event, Job *job) {
        LIST_FOREACH_SAFE(observers, o, n, head)
                o->func(event, job, o->userdata);
}

void observer_free_all(Observer **head) {
        while (*head) {
                Observer *o = *head;
                LIST_REMOVE(observers, *head, o);
                free(o);
        }
}
