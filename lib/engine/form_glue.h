/* form_glue.h - libmicrohttpd's PostProcessor, fed with a request's body as
 * it arrives, storing what it decodes in the request's form
 * (lib/model/form.c). Every function runs on libmicrohttpd's thread for
 * the request's connection. */
#ifndef VG_FORM_GLUE_H
#define VG_FORM_GLUE_H

#include <stdbool.h>
#include <stddef.h>

#include "volga.h"

struct MHD_Connection;

/* Whether the request's route streams file parts to disk (vg_map_uploads):
 * the raw body is then not kept. */
bool vg__form_glue_streams(const vg_request *req);

/* Feeds a piece of the body (the first piece also decides, from the
 * Content-Type, whether the body is a form at all). */
void vg__form_glue_feed(vg_request *req, struct MHD_Connection *conn,
                        const char *data, size_t len);
/* The body is complete: ends decoding and judges the form whole (an
 * unterminated multipart body is malformed); writes the uploads' last
 * bytes, setting req->store_failed if that fails. */
void vg__form_glue_finish(vg_request *req, struct MHD_Connection *conn);
/* The request ended, maybe in the middle of its body: drops the decoder. */
void vg__form_glue_drop(vg_request *req);

/* Drops the decoder and the request's uploads (closed: unsaved files
 * vanish). Only before dispatch, while no handler can hold them. */
void vg__form_glue_discard(vg_request *req);

#endif
