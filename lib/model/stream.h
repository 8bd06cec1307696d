/* stream.h - the inside of a vg_stream: a bounded buffer between producer
 * threads and libmicrohttpd's content reader, which parks the connection
 * (suspends it) while the buffer is empty. */
#ifndef VG_STREAM_H
#define VG_STREAM_H

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

#endif
