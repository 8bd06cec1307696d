/* stream.c - a response body produced incrementally, from any thread.
 *
 * Producers append to a bounded buffer (vg_stream_write returns -EAGAIN when
 * it is full, so a client that stops reading cannot make memory grow).
 * libmicrohttpd pulls from it through vg__stream_read on its own thread;
 * when the buffer is empty the connection is parked: suspended and handed
 * to the watcher, so that it costs no thread and a vanished client is still
 * noticed. The next write (or the end) wins the resume through the same
 * arbitration as a handler's result (lib/engine/mhd_glue.c), reached through the
 * request's engine interface (vg__engine_ops).
 *
 * Lock order: stream lock, then the request's lock and the watcher's. No
 * code takes the stream lock while holding either of those.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/request.h"
#include "model/result.h"
#include "model/stream.h"

#define VG__STREAM_LIMIT (64 * 1024)

struct vg_stream {
    pthread_mutex_t lock;
    atomic_uint refs;      /* the producer's handle, the result or response */
    vg_request *req;       /* referenced: its token and connection */
    char *buf;
    size_t off, len, cap;  /* unsent bytes are buf[off..len) */
    size_t limit;
    bool ended;            /* vg_stream_end was called */
    bool closed;           /* the client or the response is gone */
    bool parked;           /* the reader suspended the connection */
    bool reading;          /* libmicrohttpd has started taking bytes */
    bool coded;            /* coder is set: bytes are coded on their way in */
    vg__stream_coder coder;
};

static void vg__stream_unref(vg_stream *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    vg__request_unref(s->req);
    if (s->coded)
        s->coder.free(s->coder.ctx);
    free(s->buf);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Cancellations made by the library (client gone, deadline, shutdown) end
 * the stream; a manual cancel is the producer's own signal and does not. */
static bool vg__stream_broken(const vg_stream *s)
{
    vg_cancel_reason why = vg_token_reason(s->req->token);
    return s->closed || (why != VG_CANCEL_NONE && why != VG_CANCEL_MANUAL);
}

vg_result *vg_stream_new(vg_request *req, const char *content_type,
                         vg_stream **out)
{
    vg_stream *s;
    vg_result *res;

    if (out != NULL)
        *out = NULL;
    if (req == NULL || out == NULL || !req->running || req->inline_) {
        errno = EINVAL;
        return NULL;
    }
    s = calloc(1, sizeof *s);
    res = s ? vg_status(200) : NULL;
    if (res != NULL && content_type != NULL)
        res = vg_result_set_header(res, "Content-Type", content_type);
    if (res == NULL) {
        free(s);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->refs, 2); /* the producer's handle and the result's */
    vg__request_ref(req);
    s->req = req;
    s->limit = VG__STREAM_LIMIT;
    res->stream = s;
    *out = s;
    return res;
}

int vg_stream_set_limit(vg_stream *s, size_t bytes)
{
    if (s == NULL || bytes == 0)
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    s->limit = bytes;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

size_t vg_stream_buffered(vg_stream *s)
{
    size_t n;

    if (s == NULL)
        return 0;
    pthread_mutex_lock(&s->lock);
    n = s->len - s->off;
    pthread_mutex_unlock(&s->lock);
    return n;
}

vg_token *vg_stream_token(vg_stream *s)
{
    return s ? s->req->token : NULL;
}

/* Makes room for `n` more bytes; the caller holds the lock. */
static int vg__stream_reserve(vg_stream *s, size_t n)
{
    size_t cap;
    char *grown;

    if (s->off > 0 && s->off == s->len)
        s->off = s->len = 0;
    if (s->len + n <= s->cap)
        return 0;
    if (s->off > 0) { /* slide the unsent tail to the front first */
        memmove(s->buf, s->buf + s->off, s->len - s->off);
        s->len -= s->off;
        s->off = 0;
        if (s->len + n <= s->cap)
            return 0;
    }
    cap = s->cap ? s->cap : 4096;
    while (cap < s->len + n)
        cap *= 2;
    grown = realloc(s->buf, cap);
    if (grown == NULL)
        return -ENOMEM;
    s->buf = grown;
    s->cap = cap;
    return 0;
}

/* Appends n bytes to the unsent ones; the caller holds the lock. */
static int vg__stream_put(vg_stream *s, const char *p, size_t n)
{
    int rc;

    if (n == 0)
        return 0; /* p may be NULL then */
    rc = vg__stream_reserve(s, n);
    if (rc == 0) {
        memcpy(s->buf + s->len, p, n);
        s->len += n;
    }
    return rc;
}

/* Codes a piece and appends what comes out; the caller holds the lock. A
 * failure leaves the coder's state ahead of the bytes queued, so the
 * stream is closed: the client must not decode a body with a hole. */
static int vg__stream_put_coded(vg_stream *s, const char *p, size_t n, int mode)
{
    const char *out = NULL;
    size_t outlen = 0;
    int rc = s->coder.encode(s->coder.ctx, p, n, mode, &out, &outlen);

    if (rc == 0)
        rc = vg__stream_put(s, out, outlen);
    if (rc != 0)
        s->closed = true;
    return rc;
}

/* Codes what the producer queued before the coder came (its thread may
 * have started writing before the handler returned: nothing has been
 * sent, the response does not exist yet), then the end if it came too.
 * The caller holds the lock; on failure nothing has changed. */
static int vg__stream_code_pending(vg_stream *s, const vg__stream_coder *c)
{
    const char *out = NULL, *tail = NULL;
    size_t outlen = 0, taillen = 0, n = s->len - s->off;
    char *copy = NULL;
    int rc = 0;

    if (n > 0) {
        rc = c->encode(c->ctx, s->buf + s->off, n, VG__CODE_FLUSH, &out, &outlen);
        /* The coder's buffer is reused by its next call: keep a copy. */
        if (rc == 0 && s->ended && (copy = malloc(outlen ? outlen : 1)) == NULL)
            rc = -ENOMEM;
        if (copy != NULL) {
            memcpy(copy, out, outlen);
            out = copy;
        }
    }
    if (rc == 0 && s->ended)
        rc = c->encode(c->ctx, NULL, 0, VG__CODE_END, &tail, &taillen);
    if (rc == 0) {
        s->off = s->len = 0;
        rc = vg__stream_put(s, out, outlen);
        if (rc == 0)
            rc = vg__stream_put(s, tail, taillen);
    }
    free(copy);
    return rc;
}

int vg__stream_set_coder(vg_stream *s, const vg__stream_coder *c)
{
    int rc = -EBUSY;

    if (s == NULL || c == NULL || c->encode == NULL || c->free == NULL)
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    if (!s->reading && !s->coded && !s->closed) {
        rc = vg__stream_code_pending(s, c);
        if (rc == 0) {
            s->coder = *c;
            s->coded = true;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Takes the parked flag: whoever clears it resumes the connection. */
static bool vg__stream_unpark(vg_stream *s)
{
    bool was = s->parked;
    s->parked = false;
    return was;
}

/* Appends pieces atomically: either all of them or none. */
static int vg__stream_append(vg_stream *s, const char *const *parts,
                             const size_t *lens, size_t nparts)
{
    size_t total = 0, i;
    bool wake;
    int rc;

    for (i = 0; i < nparts; i++)
        total += lens[i];
    pthread_mutex_lock(&s->lock);
    if (s->ended || vg__stream_broken(s)) {
        s->closed = true;
        pthread_mutex_unlock(&s->lock);
        return -EPIPE;
    }
    /* A write larger than the limit is taken when nothing is pending, or it
     * could never be taken at all. */
    if (s->len - s->off > 0 && s->len - s->off + total > s->limit) {
        pthread_mutex_unlock(&s->lock);
        return -EAGAIN;
    }
    /* Coded, the limit above is checked against what was written: the
     * coder's output for it is not known before it runs, and for any
     * compressible body it is no larger. */
    if (s->coded) {
        for (i = 0, rc = 0; i < nparts && rc == 0; i++)
            rc = vg__stream_put_coded(s, parts[i], lens[i],
                                      i + 1 < nparts ? VG__CODE_MORE
                                                     : VG__CODE_FLUSH);
    } else {
        rc = vg__stream_reserve(s, total);
        for (i = 0; i < nparts && rc == 0; i++)
            rc = vg__stream_put(s, parts[i], lens[i]);
    }
    wake = rc == 0 && total > 0 && vg__stream_unpark(s);
    pthread_mutex_unlock(&s->lock);
    if (wake)
        s->req->engine->wake(s->req);
    return rc;
}

int vg_stream_write(vg_stream *s, const void *data, size_t len)
{
    const char *part = data;

    if (s == NULL || (data == NULL && len > 0))
        return -EINVAL;
    return vg__stream_append(s, &part, &len, 1);
}

int vg_stream_printf(vg_stream *s, const char *fmt, ...)
{
    va_list ap;
    char *text = NULL;
    int n, rc;

    if (s == NULL || fmt == NULL)
        return -EINVAL;
    va_start(ap, fmt);
    n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    rc = vg_stream_write(s, text, (size_t)n);
    free(text);
    return rc;
}

void vg_stream_end(vg_stream *s)
{
    bool wake;

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    /* The coding's end (a gzip trailer, say) goes out before the end. */
    if (s->coded && !s->ended && !vg__stream_broken(s))
        (void)vg__stream_put_coded(s, NULL, 0, VG__CODE_END);
    s->ended = true;
    wake = vg__stream_unpark(s);
    pthread_mutex_unlock(&s->lock);
    if (wake)
        s->req->engine->wake(s->req);
    vg__stream_unref(s);
}

ssize_t vg__stream_read(vg_stream *s, char *buf, size_t max)
{
    size_t n;

    pthread_mutex_lock(&s->lock);
    s->reading = true;
    s->parked = false; /* we run, so we are not parked */
    if (vg__stream_broken(s)) {
        s->closed = true;
        pthread_mutex_unlock(&s->lock);
        return VG__STREAM_ERROR;
    }
    n = s->len - s->off;
    if (n > 0) {
        if (n > max)
            n = max;
        memcpy(buf, s->buf + s->off, n);
        s->off += n;
        pthread_mutex_unlock(&s->lock);
        s->req->bytes_out += n; /* read only on this thread, at completion */
        return (ssize_t)n;
    }
    if (s->ended) {
        pthread_mutex_unlock(&s->lock);
        return VG__STREAM_END;
    }
    /* Park under the lock, so that a writer either came before (and we saw
     * its bytes) or comes after and sees `parked`. */
    if (s->req->engine->park(s->req) == 0)
        s->parked = true;
    else
        s->closed = true; /* shutting down: the next read reports it */
    pthread_mutex_unlock(&s->lock);
    return VG__STREAM_PARKED;
}

void vg__stream_release(vg_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->closed = true;
    pthread_mutex_unlock(&s->lock);
    vg__stream_unref(s);
}

void vg__stream_abandon(vg_stream *s)
{
    vg__stream_release(s);
}

/* ---- Server-Sent Events ---- */

vg_result *vg_sse_new(vg_request *req, vg_stream **out)
{
    vg_result *res = vg_stream_new(req, "text/event-stream", out);

    res = vg_result_set_header(res, "Cache-Control", "no-cache");
    if (res == NULL && out != NULL && *out != NULL) {
        /* The result (and its reference) is gone: drop the handle too. */
        vg_stream_end(*out);
        *out = NULL;
    }
    return res;
}

/* A field value may not hold a line break: it would end the field. */
static bool vg__sse_field_ok(const char *v)
{
    return v == NULL || strpbrk(v, "\r\n") == NULL;
}

/* Appends "name: value\n" at `w`; returns the new end. */
static char *vg__sse_field(char *w, const char *name, const char *v, size_t n)
{
    size_t nl = strlen(name);

    memcpy(w, name, nl);
    w += nl;
    *w++ = ':';
    *w++ = ' ';
    memcpy(w, v, n);
    w += n;
    *w++ = '\n';
    return w;
}

int vg_sse_event(vg_stream *s, const char *event, const char *data,
                 const char *id)
{
    size_t lines = 1, cap;
    const char *p, *nl;
    char *text, *w;
    int rc;

    if (s == NULL || data == NULL || !vg__sse_field_ok(event) ||
        !vg__sse_field_ok(id))
        return -EINVAL;
    for (p = data; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    /* Every line of data becomes its own "data:" field (8 bytes of framing
     * each); the event ends with a blank line. */
    cap = strlen(data) + lines * 8 + 2 + (event ? strlen(event) + 9 : 0) +
          (id ? strlen(id) + 6 : 0);
    text = malloc(cap);
    if (text == NULL)
        return -ENOMEM;
    w = text;
    if (event != NULL)
        w = vg__sse_field(w, "event", event, strlen(event));
    if (id != NULL)
        w = vg__sse_field(w, "id", id, strlen(id));
    for (p = data;; p = nl + 1) {
        nl = strchr(p, '\n');
        w = vg__sse_field(w, "data", p, nl ? (size_t)(nl - p) : strlen(p));
        if (nl == NULL)
            break;
    }
    *w++ = '\n';
    rc = vg_stream_write(s, text, (size_t)(w - text));
    free(text);
    return rc;
}

int vg_sse_comment(vg_stream *s, const char *text)
{
    const char *parts[3];
    size_t lens[3];

    if (s == NULL || text == NULL || !vg__sse_field_ok(text))
        return -EINVAL;
    parts[0] = ": ";
    lens[0] = 2;
    parts[1] = text;
    lens[1] = strlen(text);
    parts[2] = "\n\n";
    lens[2] = 2;
    return vg__stream_append(s, parts, lens, 3);
}

int vg_sse_retry(vg_stream *s, unsigned ms)
{
    char line[32];
    int n = snprintf(line, sizeof line, "retry: %u\n\n", ms);
    return vg_stream_write(s, line, (size_t)n);
}
