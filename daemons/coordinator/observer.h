/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "job.h"
#include "list.h"

/* Who is told when the coordinator's model changes: the Varlink watchers (GetJob with
 * "more"), the D-Bus plane and the service manager's status line each subscribe a
 * callback. Callbacks run in the order they subscribed. */

typedef enum ObserverEvent {
        EVENT_JOB_ADDED,
        EVENT_JOB_CHANGED,     /* state or progress */
        EVENT_JOB_REMOVED,     /* just before an ended job is forgotten */
        EVENT_WORKERS_CHANGED, /* a worker connected or went away; job is NULL */
} ObserverEvent;

typedef void (*ObserverFunc)(ObserverEvent event, Job *job, void *userdata);

typedef struct Observer Observer;
struct Observer {
        ObserverFunc func;
        void *userdata;
        LIST_FIELDS(Observer, observers);
};

int observer_subscribe(Observer **head, ObserverFunc func, void *userdata);
/* Removes the subscriptions of func, whatever their userdata. */
void observer_unsubscribe(Observer **head, ObserverFunc func);
void observer_notify(Observer *head, ObserverEvent event, Job *job);
void observer_free_all(Observer **head);
