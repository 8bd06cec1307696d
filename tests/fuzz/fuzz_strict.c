/*
 * fuzz_strict.c - libFuzzer target for lib/model/http_strict.c, the checks libvolga
 * makes above libmicrohttpd's parser (issue 15).
 *
 * Each input is parsed as a request head by the model of libmicrohttpd
 * 0.9.75's in-place parser (mhd_head_model.h), which leaves the strings
 * where libmicrohttpd would and knows what the bytes held. When
 * libmicrohttpd would hand the head to libvolga, the checks run as
 * lib/engine/mhd_glue.c runs them, and must refuse (400, or 501 for an over-long
 * method, which is checked first) every head that held an
 * obs-fold, a NUL (other than one standing where a CR could, before an LF:
 * README "Conformance") or an empty name libmicrohttpd took for the end.
 * The input is also given whole to each pure check, whose verdicts must
 * agree with the bytes (no accepted target with a space or a control
 * byte, no accepted Host with '@', '/' or ','). Memory errors and
 * undefined behaviour are the sanitizers'.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/http_strict.h"
#include "mhd_head_model.h"

#include "fuzz_check.h"

static void check_pure(const char *d, size_t n)
{
    vg__strict_verdict v;
    vg__strict_absolute a;
    char *z;
    size_t i;

    v = vg__strict_target(d, n);
    if (v.status == 0)
        for (i = 0; i < n; i++)
            CHECK((unsigned char)d[i] > 0x20 && (unsigned char)d[i] < 0x7f);
    else
        CHECK(v.status == 400 && v.detail[strlen(v.detail) - 1] != '\n');
    v = vg__strict_host(d, n);
    if (v.status == 0)
        CHECK(n > 0 && !memchr(d, '@', n) && !memchr(d, '/', n) &&
              !memchr(d, ',', n) && !memchr(d, ' ', n));
    v = vg__strict_field_name(d, n);
    if (v.status == 0)
        CHECK(n > 0 && !memchr(d, ':', n) && !memchr(d, ' ', n));
    v = vg__strict_field_value(d, n);
    if (v.status == 0)
        CHECK(!memchr(d, '\0', n) && !memchr(d, '\r', n) && !memchr(d, '\n', n));
    v = vg__strict_method(d, n, 0);
    CHECK(v.status == 0 || v.status == 400 || (v.status == 501 && n > 32));
    z = strndup(d, n);
    if (z != NULL && vg__strict_absolute_form(z, &a)) {
        CHECK(a.authority_len > 0 && a.rest == a.authority + a.authority_len);
        CHECK(a.rest[0] == '\0' || a.rest[0] == '/' || a.rest[0] == '?' ||
              a.rest[0] == '#');
    }
    free(z);
}

static void check_head(const char *d, size_t n)
{
    model_head m;
    vg__strict s;
    vg__strict_verdict v;
    size_t i;

    if (model_parse(&m, d, n) != 1) {
        model_free(&m);
        return;
    }
    v = vg__strict_method(m.method, strlen(m.method), 0);
    if (v.status == 0)
        v = vg__strict_target(m.uri, m.uri_len);
    if (v.status == 0) {
        vg__strict_begin(&s, m.method, m.uri, m.uri_len, m.version);
        for (i = 0; i < m.n; i++)
            vg__strict_field(&s, m.names[i], m.values[i]);
        v = vg__strict_end(&s, vg__strict_is_http11(m.version), m.head_end);
    }
    if (m.folded || m.nul || m.empty_name_end)
        CHECK(v.status == 400 || v.status == 501);
    if (v.status != 0)
        CHECK(v.detail != NULL && v.detail[0] != '\0' &&
              v.detail[strlen(v.detail) - 1] != '\n');
    model_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_pure((const char *)data, size);
    check_head((const char *)data, size);
    return 0;
}
