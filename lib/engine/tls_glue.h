/* tls_glue.h - the client certificate of an HTTPS connection (mTLS),
 * checked through libmicrohttpd's GnuTLS session against the CA file
 * libmicrohttpd was given (vg_app_set_tls_client_ca, lib/web/tls.c). Part
 * of the engine: every function runs on libmicrohttpd's thread for the
 * connection. */
#ifndef VG_TLS_GLUE_H
#define VG_TLS_GLUE_H

#include <stdbool.h>

#include "volga.h"

struct MHD_Connection;
struct vg__conn;
typedef struct vg__tls_peer vg__tls_peer;

/* Verifies the connection's client certificate (once per connection:
 * the result is kept in its vg__conn) and copies its subject and SHA-256
 * fingerprint into the request (req->tls_subject, req->tls_fingerprint)
 * when it verified. Returns whether the request may go on: false only when
 * the app requires a verified certificate and there is none. Called before
 * the request is dispatched, only for apps with a client CA. */
bool vg__tls_glue_check(vg_request *req, struct MHD_Connection *conn);

/* Frees what vg__tls_glue_check kept for a connection. NULL is a no-op. */
void vg__tls_peer_free(vg__tls_peer *p);

/* A new connection of `app`'s daemon: on HTTPS, turns on session tickets
 * for its GnuTLS session before the handshake starts, so that a client
 * that comes back can resume instead of running a full handshake. Not
 * when client certificates are asked for: a resumed session carries no
 * certificate to verify. The connection's event thread. */
void vg__tls_glue_started(vg_app *app, struct MHD_Connection *conn);

#endif
