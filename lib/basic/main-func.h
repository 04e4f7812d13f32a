/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdlib.h>

/* The exit status of a program called wrongly: an unknown option, a bad value. */
#define EXIT_USAGE 2

/* main() around run(argc, argv), which returns a negative errno on failure (exit status
 * 1, the error already logged), or else the exit status itself: EXIT_SUCCESS,
 * EXIT_USAGE, or a status of the program's own. */
#define DEFINE_MAIN_FUNCTION(impl)                                      \
        int main(int argc, char *argv[]) {                              \
                int _r_ = impl(argc, argv);                             \
                return _r_ < 0 ? EXIT_FAILURE : _r_;                    \
        }

/* Releases a global (an arg_* of option parsing) when the program exits: func is
 * called with the variable's address. */
#define STATIC_DESTRUCTOR_REGISTER(variable, func)                              \
        __attribute__((destructor)) static void static_destructor_##variable(void) { \
                func(&(variable));                                              \
        }
