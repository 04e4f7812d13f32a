/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-event.h>

/* The service side of org.varlink.certification on mrkv's Varlink server: it hands
 * each client an id at Start, checks every later call of that client (its place in
 * the sequence, its parameters, typed, and its "more"/"oneway" flags) and answers End
 * with all_ok true only if every call was right. A wrong call is answered with
 * CertificationError (wants, got), and logged. */

typedef struct CertService CertService;

int cert_service_new(sd_event *event, CertService **ret);
CertService *cert_service_free(CertService *s);
/* Serves on a listening socket; takes the fd. */
int cert_service_listen_fd(CertService *s, int fd);
