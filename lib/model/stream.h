/* stream.h - the inside of a vg_stream: a bounded buffer between producer
 * threads and libmicrohttpd's content reader, which parks the connection
 * (suspends it) while the buffer is empty. */
#ifndef VG_STREAM_H
#define VG_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "volga.h"

/* What vg__stream_read reports besides a byte count. */
#define VG__STREAM_PARKED 0     /* nothing to send: the connection is parked */
#define VG__STREAM_END (-1)     /* the body is complete */
#define VG__STREAM_ERROR (-2)   /* the stream broke: close the connection */

/* Fills `buf` with up to `max` buffered bytes for libmicrohttpd; with none,
 * parks the connection until a write, the end, or the client leaving.
 * libmicrohttpd's thread for the connection. */
ssize_t vg__stream_read(vg_stream *s, char *buf, size_t max);

/* The response holding the stream is gone: writes fail from now on, and
 * the response's reference is dropped. libmicrohttpd's thread. */
void vg__stream_release(vg_stream *s);

/* Marks a stream whose result was never sent as closed and drops the
 * result's reference. */
void vg__stream_abandon(vg_stream *s);

/* An encoder for a stream's bytes, installed by a middleware that codes
 * the body (lib/web/compress.c). encode() runs under the stream's lock on
 * the writer's thread: it codes in[0..len) and points *out at the coded
 * bytes (the coder's own memory, valid until its next call), with mode
 * VG__CODE_MORE (more of the same write follows), VG__CODE_FLUSH (a write
 * ends: everything so far must be decodable now) or VG__CODE_END (the
 * stream's end). Returns 0 or -errno. free() releases ctx. */
#define VG__CODE_MORE 0
#define VG__CODE_FLUSH 1
#define VG__CODE_END 2
typedef struct {
    int (*encode)(void *ctx, const char *in, size_t len, int mode,
                  const char **out, size_t *outlen);
    void (*free)(void *ctx);
    void *ctx;
} vg__stream_coder;

/* Codes every byte of `s` with `c`, taken over on success (freed with the
 * stream): those the producer has queued already (nothing is sent before
 * the handler's chain returns) and all that follow. Only before
 * libmicrohttpd has started reading the stream: otherwise -EBUSY. On any
 * error the stream stays as it was and the caller keeps c. Any thread. */
int vg__stream_set_coder(vg_stream *s, const vg__stream_coder *c);

#endif
