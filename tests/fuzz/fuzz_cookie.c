/*
 * fuzz_cookie.c - libFuzzer target for cookie parsing and signed-cookie
 * verification (lib/web/cookie.c), without a server.
 *
 * Input: the whole input is the value of a Cookie header (one field, or
 * several joined with ';'), any bytes, NULs included.
 *
 * What must hold:
 *  - vg__cookie_parse keeps at most one pair per ';'-separated piece, in
 *    order, each inside the buffer, with a name that is a token and a value
 *    of cookie-octets (the same judgement vg_result_set_cookie makes, which
 *    must accept every kept pair and write exactly "name=value");
 *  - re-parsing "name=value" of a kept pair gives back that pair;
 *  - a piece holding a NUL is never kept;
 *  - no value read from the input verifies as a signed cookie, under any
 *    name, unless it is one the key signed; signing a kept value and
 *    verifying it gives the value back, and flipping any byte of the signed
 *    text makes it fail.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <volga.h>
#include "web/cookie.h"

#include "fuzz_check.h"

static vg_cookie_keys *keys;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    keys = vg_cookie_keys_new("fuzzing key, thirty-two bytes!!!", 32);
    CHECK(keys != NULL);
    return 0;
}

/* Signs `value` for `name`, checks the round trip and that every altered
 * byte breaks it. */
static void check_signing(const char *name, const char *value)
{
    vg_result *res = vg_result_set_signed_cookie(vg_text(""), keys, name, value,
                                                 0, NULL);
    const char *line;
    char *raw;
    size_t len, n, i;

    CHECK(res != NULL);
    line = vg_result_header(res, "Set-Cookie");
    CHECK(line != NULL && strncmp(line, name, strlen(name)) == 0);
    raw = strdup(line + strlen(name) + 1);
    CHECK(raw != NULL);
    vg_result_free(res);
    CHECK(vg__cookie_verify(keys, name, raw, &len) == 0);
    CHECK(len == strlen(value) && memcmp(raw, value, len) == 0);
    n = strlen(raw);
    for (i = 0; i < n; i++) {
        char was = raw[i];
        raw[i] = was == 'A' ? 'B' : 'A';
        CHECK(vg__cookie_verify(keys, name, raw, &len) != 0);
        raw[i] = was;
    }
    free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *again;
    vg__cookie_pair *pairs, one;
    size_t max = 1, n, i, len, semis = 0;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    for (i = 0; i < size; i++)
        semis += data[i] == ';';
    max = semis + 1;
    pairs = malloc(max * sizeof *pairs);
    CHECK(pairs != NULL);
    n = vg__cookie_parse(buf, size, pairs, max);
    CHECK(n <= max);
    for (i = 0; i < n; i++) {
        vg_result *res;
        const char *line;

        CHECK(pairs[i].name >= buf && pairs[i].name < buf + size);
        CHECK(pairs[i].value >= buf && pairs[i].value <= buf + size);
        CHECK(i == 0 || pairs[i].name > pairs[i - 1].value);
        {
            /* The piece it came from, in the original bytes, has no NUL. */
            size_t off = (size_t)(pairs[i].name - buf), end = off;
            while (end < size && data[end] != ';')
                end++;
            CHECK(memchr(data + off, 0, end - off) == NULL);
        }
        CHECK(vg__cookie_name_ok(pairs[i].name));
        CHECK(vg__cookie_value_ok(pairs[i].value));
        res = vg_result_set_cookie(vg_text(""), pairs[i].name, pairs[i].value,
                                   NULL);
        CHECK(res != NULL);
        line = vg_result_header(res, "Set-Cookie");
        len = strlen(pairs[i].name);
        CHECK(strncmp(line, pairs[i].name, len) == 0 && line[len] == '=' &&
              strcmp(line + len + 1, pairs[i].value) == 0);
        again = strdup(line);
        CHECK(again != NULL);
        CHECK(vg__cookie_parse(again, strlen(again), &one, 1) == 1);
        CHECK(strcmp(one.name, pairs[i].name) == 0 &&
              strcmp(one.value, pairs[i].value) == 0);
        free(again);
        vg_result_free(res);
        /* Nothing the fuzzer writes carries our MAC. */
        CHECK(vg__cookie_verify(keys, pairs[i].name, pairs[i].value, &len) != 0);
    }
    if (n > 0 && strlen(pairs[0].value) < 256)
        check_signing(pairs[0].name, pairs[0].value);
    free(pairs);
    free(buf);
    return 0;
}
