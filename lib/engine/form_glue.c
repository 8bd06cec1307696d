/* form_glue.c - form bodies decoded by libmicrohttpd's PostProcessor.
 *
 * Why here and not in lib/model/form.c: the PostProcessor is libmicrohttpd
 * API (it even reads the Content-Type from the connection), and only
 * lib/engine/ calls libmicrohttpd. This file owns the decoder's life: made
 * at the first piece of body, fed each piece as mhd_glue.c receives it,
 * destroyed when the body is complete (or when the request ends first).
 * Whatever it decodes goes through one callback into the model
 * (vg__form_feed), so the fields live with the request and the public
 * getters never touch libmicrohttpd.
 *
 * We never parse multipart ourselves: what the PostProcessor refuses
 * (no boundary, a boundary too long for its buffer, a name longer than
 * the buffer, an unterminated body) makes the form undecodable, and
 * vg_request_form then fails with EBADMSG. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "engine/form_glue.h"
#include "model/form.h"
#include "model/request.h"
#include "model/upload.h"
#include "pipeline/limits.h"
#include "app.h"
#include "core/log.h"

/* The PostProcessor's working buffer: a multipart part's headers and an
 * urlencoded name must fit in it (MHD refuses boundaries longer than half
 * of it). Per request being decoded, not per field. */
#define VG__FORM_BUFFER (16 * 1024)

/* Whether the Content-Type's media type is exactly `type` (case-insensitive),
 * followed by its end or parameters. libmicrohttpd compares only a prefix;
 * requiring the delimiter keeps "application/x-www-form-urlencodedX" a
 * non-form for both of us. */
static bool vg__media_is(const char *ctype, const char *type)
{
    size_t n = strlen(type);

    if (strncasecmp(ctype, type, n) != 0)
        return false;
    return ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ' ||
           ctype[n] == '\t';
}

bool vg__form_glue_streams(const vg_request *req)
{
    return req->limits != NULL && req->limits->uploads == 1;
}

/* A failure to store is the server's, not the body's: the answer will be
 * 500 (mhd_glue.c). */
static void vg__form_store_failed(vg_request *req, int rc)
{
    req->store_failed = true;
    vg__logf(&req->app->log, VG_LOG_ERROR,
             "%s %s: cannot store an upload in %s: %s", req->method,
             req->path ? req->path : "", req->limits->upload_dir,
             strerror(-rc));
}

/* Writes a piece of a file part to its temporary file (lib/model/upload.c),
 * starting the file at its first piece. */
static int vg__form_store(vg_request *req, const char *key,
                          const char *filename, const char *content_type,
                          const char *data, uint64_t off, size_t size)
{
    int rc = 0;

    if (off == 0)
        rc = vg__upload_begin(req, req->limits->upload_dir, key, filename,
                              content_type);
    if (rc == 0 && size > 0)
        rc = vg__upload_write(req, data, size);
    if (rc != 0)
        vg__form_store_failed(req, rc);
    return rc;
}

/* The PostProcessor's callback: one piece of one field. File parts (those
 * with a filename) are not form fields. */
static enum MHD_Result vg__form_piece(void *cls, enum MHD_ValueKind kind,
                                      const char *key, const char *filename,
                                      const char *content_type,
                                      const char *transfer_encoding,
                                      const char *data, uint64_t off,
                                      size_t size)
{
    vg_request *req = cls;
    int rc;

    (void)kind;
    (void)content_type;
    (void)transfer_encoding;
    if (filename != NULL) {
        rc = vg__form_count_file(req, off, size);
        if (rc == 0 && vg__form_glue_streams(req))
            rc = vg__form_store(req, key, filename, content_type, data, off,
                                size);
    } else
        rc = vg__form_feed(req, key != NULL ? key : "", data, off, size);
    if (rc == 0)
        return MHD_YES;
    /* A form limit breached is the body's fault, as with the body limit:
     * mhd_glue.c answers 413 at once. */
    if (rc == -E2BIG)
        req->body_too_large = true;
    vg__form_fail(req, rc);
    return MHD_NO;
}

/* Decides once, from the head, whether the body is a form; if so gives
 * the request its (empty) form and a decoder. */
static void vg__form_glue_start(vg_request *req, struct MHD_Connection *conn)
{
    const char *ctype;

    req->form_started = true;
    ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ctype == NULL ||
        (!vg__media_is(ctype, MHD_HTTP_POST_ENCODING_FORM_URLENCODED) &&
         !vg__media_is(ctype, MHD_HTTP_POST_ENCODING_MULTIPART_FORMDATA)))
        return;
    req->form_urlencoded =
        vg__media_is(ctype, MHD_HTTP_POST_ENCODING_FORM_URLENCODED);
    if (vg__form_begin(req) != 0)
        return; /* no memory: the body is then "not a form" (ENOENT) */
    req->pp = MHD_create_post_processor(conn, VG__FORM_BUFFER,
                                        vg__form_piece, req);
    if (req->pp == NULL)
        vg__form_fail(req, -EBADMSG); /* no or absurd boundary */
}

void vg__form_glue_feed(vg_request *req, struct MHD_Connection *conn,
                        const char *data, size_t len)
{
    if (!req->form_started)
        vg__form_glue_start(req, conn);
    if (req->pp == NULL)
        return;
    if (MHD_post_process(req->pp, data, len) != MHD_YES) {
        /* Malformed, or the callback refused: stop decoding, but keep
         * reading the body (the handler may still want it raw). */
        vg__form_fail(req, -EBADMSG);
        vg__form_glue_discard(req);
    }
}

void vg__form_glue_finish(vg_request *req, struct MHD_Connection *conn)
{
    struct MHD_PostProcessor *pp;
    int rc;

    if (!req->form_started)
        vg__form_glue_start(req, conn);
    pp = req->pp;
    req->pp = NULL;
    /* Destroying flushes a last urlencoded value and tells whether the
     * body ended where a form may end. */
    /* libmicrohttpd 0.9.75 takes a bare name ("a=1&flag&b=2") except as
     * the last pair, where destroying then reports an error: ending the
     * body with one more '&' closes that pair like any other (an empty
     * pair is skipped), so "a=1&flag" gives flag = "". */
    if (pp != NULL && req->form_urlencoded &&
        MHD_post_process(pp, "&", 1) != MHD_YES)
        vg__form_fail(req, -EBADMSG);
    if (pp != NULL && MHD_destroy_post_processor(pp) != MHD_YES)
        vg__form_fail(req, -EBADMSG);
    /* The last gathered bytes of the last file are written only now. */
    if (req->uploads != NULL && (rc = vg__uploads_done(req)) != 0)
        vg__form_store_failed(req, rc);
}

void vg__form_glue_drop(vg_request *req)
{
    struct MHD_PostProcessor *pp = req->pp;

    req->pp = NULL;
    if (pp != NULL)
        (void)MHD_destroy_post_processor(pp);
}

void vg__form_glue_discard(vg_request *req)
{
    vg__form_glue_drop(req);
    /* Before dispatch nobody else holds the files: they vanish now rather
     * than when the request is freed. */
    vg__uploads_free(req->uploads);
    req->uploads = req->upload_last = NULL;
}
