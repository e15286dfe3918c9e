/* c_check.h: the checks of the pure-C tests (c_smoke.c, c_manage.c). CHECK counts a failure and goes on;
 * REQUIRE stops the test. Both print the library's last error. A test returns `failures != 0`. */
#ifndef HLSRELAY_TESTS_C_CHECK_H
#define HLSRELAY_TESTS_C_CHECK_H

#include <hlsrelay/hlsrelay.h>

#include <stdio.h>
#include <stdlib.h>

static int failures = 0;

#define CHECK(cond)                                                                                         \
    do {                                                                                                    \
        if (!(cond)) {                                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: '%s')\n", __FILE__, __LINE__, #cond,      \
                    hlsrelay_last_error());                                                                 \
            ++failures;                                                                                     \
        }                                                                                                   \
    } while (0)

#define REQUIRE(cond)                                                                                       \
    do {                                                                                                    \
        if (!(cond)) {                                                                                      \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s (last error: '%s')\n", __FILE__, __LINE__, #cond,    \
                    hlsrelay_last_error());                                                                 \
            exit(1);                                                                                        \
        }                                                                                                   \
    } while (0)

#endif
