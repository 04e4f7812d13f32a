/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A well-formed shared object that is not an mrkv app: it has no mrkv_app_get(). */
__attribute__((visibility("default"))) int not_an_app(void);

int not_an_app(void) {
        return 42;
}
