/*
 * fuzz_inflate.c - libFuzzer target for decoding hostile request bodies
 * (lib/web/decompress.c: vg__decode_body, what vg_decompress runs on a
 * worker), without a server.
 *
 * Input: byte 0 picks a coding among those this build decodes (gzip,
 * deflate, br, zstd), bytes 1-2 a limit (0 to 256 KiB in steps of 4), the
 * rest is the body as sent, any bytes.
 *
 * What must hold:
 *  - the only answers are 0, -E2BIG and -EBADMSG (no -ENOMEM, no crash,
 *    no leak); on failure nothing is returned;
 *  - on 0 the output is at most the limit, NUL-terminated, and decoding
 *    again with the limit set to its length gives the same bytes, while
 *    one byte less answers -E2BIG: the limit is exact;
 *  - on -E2BIG, a limit of 1 MiB either decodes more than the first limit
 *    or fails too: the breach was real;
 *  - the rest of the input, encoded by the coding's own encoder, decodes
 *    back to itself under a limit of its length, and to -E2BIG under one
 *    byte less.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef HAVE_BROTLI
#include <brotli/encode.h>
#endif
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#include "web/decompress.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BIG_LIMIT (1u << 20)

/* The codings this build decodes, found through the same names the
 * middleware reads. */
static int built[VG__DECODE_COUNT];
static size_t nbuilt;

static void find_codings(void)
{
    static const char *const names[] = {"gzip", "deflate", "br", "zstd"};
    size_t i;

    if (nbuilt > 0)
        return;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        int c = vg__decode_coding_of(names[i], strlen(names[i]));
        if (c >= 0)
            built[nbuilt++] = c;
    }
    CHECK(nbuilt >= 2); /* gzip and deflate always */
}

/* The input encoded with `coding`'s encoder; NULL if there is none here. */
static char *encode(int coding, const uint8_t *in, size_t len, size_t *out_len)
{
    char *out = NULL;

    if (coding == VG__DECODE_GZIP || coding == VG__DECODE_DEFLATE) {
        z_stream z;
        uLong cap;

        memset(&z, 0, sizeof z);
        CHECK(deflateInit2(&z, 6, Z_DEFLATED,
                           coding == VG__DECODE_GZIP ? 15 + 16 : 15, 8,
                           Z_DEFAULT_STRATEGY) == Z_OK);
        cap = deflateBound(&z, (uLong)len);
        out = malloc(cap);
        CHECK(out != NULL);
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)len;
        z.next_out = (Bytef *)out;
        z.avail_out = (uInt)cap;
        CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
        *out_len = z.total_out;
        deflateEnd(&z);
    }
#ifdef HAVE_BROTLI
    if (coding == VG__DECODE_BR) {
        size_t cap = BrotliEncoderMaxCompressedSize(len);
        out = malloc(cap ? cap : 16);
        CHECK(out != NULL);
        *out_len = cap;
        CHECK(BrotliEncoderCompress(1, 18, BROTLI_MODE_GENERIC, len, in,
                                    out_len, (uint8_t *)out));
    }
#endif
#ifdef HAVE_ZSTD
    if (coding == VG__DECODE_ZSTD) {
        size_t cap = ZSTD_compressBound(len);
        out = malloc(cap);
        CHECK(out != NULL);
        *out_len = ZSTD_compress(out, cap, in, len, 1);
        CHECK(!ZSTD_isError(*out_len));
    }
#endif
    return out;
}

static void check_round_trip(int coding, const uint8_t *in, size_t len)
{
    size_t n, got;
    char *enc = encode(coding, in, len, &n), *out;

    if (enc == NULL)
        return;
    CHECK(vg__decode_body(coding, enc, n, len, &out, &got) == 0);
    CHECK(got == len && memcmp(out, in, len) == 0 && out[len] == '\0');
    free(out);
    if (len > 0) {
        CHECK(vg__decode_body(coding, enc, n, len - 1, &out, &got) == -E2BIG);
        CHECK(out == NULL);
    }
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int coding, rc;
    size_t limit, len, got, again_len;
    const char *body;
    char *out, *again;

    find_codings();
    if (size < 3)
        return 0;
    coding = built[data[0] % nbuilt];
    limit = ((size_t)data[1] << 8 | data[2]) * 4;
    body = (const char *)data + 3;
    len = size - 3;

    rc = vg__decode_body(coding, body, len, limit, &out, &got);
    CHECK(rc == 0 || rc == -E2BIG || rc == -EBADMSG);
    if (rc != 0)
        CHECK(out == NULL);
    if (rc == 0) {
        CHECK(got <= limit && out[got] == '\0');
        CHECK(vg__decode_body(coding, body, len, got, &again, &again_len) == 0);
        CHECK(again_len == got && memcmp(again, out, got) == 0);
        free(again);
        if (got > 0) {
            CHECK(vg__decode_body(coding, body, len, got - 1, &again,
                                  &again_len) == -E2BIG);
            CHECK(again == NULL);
        }
        free(out);
    } else if (rc == -E2BIG && limit < BIG_LIMIT) {
        rc = vg__decode_body(coding, body, len, BIG_LIMIT, &again, &again_len);
        CHECK(rc == 0 || rc == -E2BIG || rc == -EBADMSG);
        if (rc == 0) {
            CHECK(again_len > limit);
            free(again);
        }
    }
    check_round_trip(coding, (const uint8_t *)body, len);
    return 0;
}
