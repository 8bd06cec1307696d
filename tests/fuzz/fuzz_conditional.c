/*
 * fuzz_conditional.c - libFuzzer target for the header parsers behind
 * static files and compression (lib/web/static.c): Range, entity-tag
 * lists (If-None-Match, If-Match, If-Range), HTTP dates and
 * Accept-Encoding q-values.
 *
 * The input is text, one field per line: a representation size (decimal),
 * a Range header, an entity-tag list, an entity tag, an Accept-Encoding
 * header and a coding name. Missing lines are empty.
 *
 * Checks beyond "no crash, leak or undefined behaviour":
 *  - a VG__RANGE_ONE answer lies inside the representation (first <= last
 *    < size), and a header with a ',' is never a single range;
 *  - an empty representation never gets VG__RANGE_ONE;
 *  - a list "*" matches every tag; a strong match implies a weak one; a
 *    weak tag never matches strongly; a tag that matches appears in the
 *    list (W/ aside);
 *  - q-values are -1 or within 0-1000;
 *  - a date that parses formats back to the same instant.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web/static.h"

#include "fuzz_check.h"

/* Splits the input into NUL-terminated lines (at most `n`). */
static void split(char *buf, char **lines, int n)
{
    int i = 0;
    char *p = buf;

    for (i = 0; i < n; i++) {
        char *nl;
        lines[i] = p;
        nl = p ? strchr(p, '\n') : NULL;
        if (nl != NULL) {
            *nl = '\0';
            p = nl + 1;
        } else {
            p = NULL;
        }
        if (lines[i] == NULL)
            lines[i] = "";
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *f[6];
    unsigned long long rsize, first = 0, last = 0;
    vg__range_kind k;
    time_t t;
    int q;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    split(buf, f, 6);

    rsize = strtoull(f[0], NULL, 10);
    k = vg__range_parse(f[1], rsize, &first, &last);
    CHECK(k == VG__RANGE_WHOLE || k == VG__RANGE_ONE ||
          k == VG__RANGE_UNSATISFIABLE);
    if (k == VG__RANGE_ONE) {
        CHECK(rsize > 0);
        CHECK(first <= last && last < rsize);
        CHECK(strchr(f[1], ',') == NULL);
    }

    if (f[3][0] != '\0') {
        bool strong = vg__etag_match(f[2], f[3], false);
        bool weak = vg__etag_match(f[2], f[3], true);
        const char *bare = strncmp(f[3], "W/", 2) == 0 ? f[3] + 2 : f[3];
        if (strong)
            CHECK(weak);
        if (bare != f[3])
            CHECK(!strong || strcmp(f[2], "*") == 0 ||
                  strspn(f[2], " \t") + 1 == strlen(f[2]));
        if (weak && strstr(f[2], "*") == NULL)
            CHECK(strstr(f[2], bare) != NULL);
    }
    CHECK(vg__etag_match("*", f[3], true));

    if (vg__http_date_parse(f[1], &t)) {
        char back[64], again[64];
        struct tm tm;
        time_t t2;
        gmtime_r(&t, &tm);
        strftime(back, sizeof back, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        snprintf(again, sizeof again, "%s", back);
        CHECK(vg__http_date_parse(again, &t2) && t2 == t);
    }

    q = vg__accept_q(f[4], f[5]);
    CHECK(q == -1 || (q >= 0 && q <= 1000));
    free(buf);
    return 0;
}
