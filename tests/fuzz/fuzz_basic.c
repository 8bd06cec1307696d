/*
 * fuzz_basic.c - libFuzzer target for Basic credentials decoding
 * (vg__basic_decode in lib/web/auth.c), without a server.
 *
 * Input: the first byte picks the mode, the rest is data.
 *  - even: the data (cut at a NUL, as a header value would be) is an
 *    Authorization field value, decoded as it is;
 *  - odd: the data is raw credentials, which are base64-encoded here with
 *    nettle into "Basic <b64>" and then decoded.
 *
 * What must hold:
 *  - the result is 0, -ENOENT or -EINVAL, nothing else (no -ENOMEM here);
 *  - -ENOENT exactly when the field does not start with "basic" (any case)
 *    followed by a space or the end;
 *  - on 0 the user has no ':', neither string holds a control character,
 *    and base64 of "user:password" is the field's token (the field minus
 *    the scheme and spaces), so nothing was dropped or invented;
 *  - raw credentials (odd mode) decode to themselves exactly when they hold
 *    a ':' and no control character (NUL included), else -EINVAL.
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
#include <strings.h>

#include <nettle/base64.h>

#include "web/auth.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_ctl(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return true;
    return false;
}

static void check_decoded(const char *field, int rc, const char *user,
                          const char *password)
{
    bool basic = strncasecmp(field, "basic", 5) == 0 &&
                 (field[5] == ' ' || field[5] == '\0');
    const char *tok = field + 5;
    size_t ulen, plen, tlen, rawlen;
    char *raw, *enc;

    CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL);
    CHECK((rc == -ENOENT) == !basic);
    if (rc != 0)
        return;
    ulen = strlen(user);
    plen = strlen(password);
    CHECK(strchr(user, ':') == NULL);
    CHECK(!has_ctl(user, ulen) && !has_ctl(password, plen));
    while (*tok == ' ')
        tok++;
    tlen = strlen(tok);
    while (tlen > 0 && tok[tlen - 1] == ' ')
        tlen--;
    rawlen = ulen + 1 + plen;
    raw = malloc(rawlen + 1);
    enc = malloc(BASE64_ENCODE_RAW_LENGTH(rawlen) + 1);
    CHECK(raw != NULL && enc != NULL);
    sprintf(raw, "%s:%s", user, password);
    base64_encode_raw(enc, rawlen, (const uint8_t *)raw);
    CHECK(BASE64_ENCODE_RAW_LENGTH(rawlen) == tlen);
    CHECK(memcmp(enc, tok, tlen) == 0);
    free(raw);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *field, *buf;
    const char *user = NULL, *password = NULL;
    int rc;

    if (size == 0)
        return 0;
    if ((data[0] & 1) == 0) {
        field = strndup((const char *)data + 1, size - 1);
        CHECK(field != NULL);
        rc = vg__basic_decode(field, &buf, &user, &password);
        check_decoded(field, rc, user, password);
        if (rc != 0)
            CHECK(buf == NULL);
        free(buf);
        free(field);
        return 0;
    } else {
        const char *raw = (const char *)data + 1;
        size_t n = size - 1;
        bool ok = memchr(raw, ':', n) != NULL && !has_ctl(raw, n);

        field = malloc(BASE64_ENCODE_RAW_LENGTH(n) + 8);
        CHECK(field != NULL);
        strcpy(field, "Basic ");
        base64_encode_raw(field + 6, n, (const uint8_t *)raw);
        field[6 + BASE64_ENCODE_RAW_LENGTH(n)] = '\0';
        rc = vg__basic_decode(field, &buf, &user, &password);
        CHECK(rc == (ok ? 0 : -EINVAL));
        if (rc == 0) {
            size_t ulen = strlen(user);
            CHECK(ulen + 1 + strlen(password) == n);
            CHECK(memcmp(raw, user, ulen) == 0 && raw[ulen] == ':' &&
                  memcmp(raw + ulen + 1, password, n - ulen - 1) == 0);
            check_decoded(field, rc, user, password);
        }
        free(buf);
        free(field);
    }
    return 0;
}
