/* decompress.h - decoding a request body's Content-Encoding in memory,
 * bounded: what vg_decompress (lib/web/decompress.c) runs on a worker and
 * tests/fuzz/fuzz_inflate.c feeds hostile bodies to. */
#ifndef VG_DECOMPRESS_H
#define VG_DECOMPRESS_H

#include <stddef.h>

/* The content codings a request body may be decoded from. */
typedef enum {
    VG__DECODE_GZIP = 0, /* RFC 1952 members (x-gzip too) */
    VG__DECODE_DEFLATE,  /* RFC 1950 zlib data; raw RFC 1951 accepted too */
    VG__DECODE_BR,       /* RFC 7932, when built with brotli */
    VG__DECODE_ZSTD,     /* RFC 8878, when built with zstd */
    VG__DECODE_COUNT
} vg__decode_coding;

/* The coding named by one Content-Encoding list member (`len` bytes,
 * case-insensitive), or -1 if this build cannot decode it. */
int vg__decode_coding_of(const char *name, size_t len);

/*
 * Decodes `len` bytes of `in` encoded with `coding` into a new malloc'd
 * buffer `*out` of `*out_len` bytes followed by a NUL. Never holds more
 * than `limit` + 1 bytes of output (plus the decoder's own window: 32 KiB
 * for zlib, at most 16 MiB for brotli, 8 MiB for zstd), however far the
 * data would inflate. Returns 0; -E2BIG if the decoded body is longer than
 * `limit`; -EBADMSG if the data is corrupt, truncated or followed by
 * anything but another gzip member or zstd frame; -ENOMEM. On failure
 * `*out` is NULL. Any thread.
 */
int vg__decode_body(vg__decode_coding coding, const char *in, size_t len,
                    size_t limit, char **out, size_t *out_len);

#endif
