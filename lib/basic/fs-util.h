/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* mkdir -p of the directories above path (not path itself), mode 0755. Returns 0 or
 * -errno. */
int mkdir_parents(const char *path);
