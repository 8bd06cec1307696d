/* fuzz_check.h - the fuzz targets' assertion: a broken property aborts, so
 * libFuzzer saves the input, and tests/fuzz/run tells "CHECK FAILED" from
 * a crash by the "check failed" line. */
#ifndef VG_FUZZ_CHECK_H
#define VG_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

#endif
