/* tls_glue.c - client certificates (mTLS) through libmicrohttpd's GnuTLS
 * session.
 *
 * libmicrohttpd 0.9.75, given MHD_OPTION_HTTPS_MEM_TRUST, only *requests*
 * a certificate (GNUTLS_CERT_REQUEST) and loads the CAs into the session's
 * credentials; it never checks what the client sent. So before a request
 * is dispatched the certificate chain the client presented is verified
 * here against those CAs (gnutls_certificate_verify_peers: signatures up
 * to a trusted CA, validity dates, and the TLS client-authentication
 * purpose when the certificate states its purposes). The verdict is kept
 * for the connection: a TLS connection's peer cannot change (libmicrohttpd
 * closes on a renegotiation attempt).
 *
 * libmicrohttpd never enables session tickets either: vg__tls_glue_started
 * does, on each new session, with the key lib/web/tls.c made. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "app.h"
#include "core/log.h"
#include "engine/engine.h"
#include "engine/tls_glue.h"
#include "model/request.h"

struct vg__tls_peer {
    bool verified;
    char *subject;              /* RFC 4514 DN, malloc'd; NULL unless verified */
    char fingerprint[65];       /* SHA-256 of the DER certificate, hex */
};

void vg__tls_peer_free(vg__tls_peer *p)
{
    if (p == NULL)
        return;
    free(p->subject);
    free(p);
}

/* Subject and fingerprint of the client's own certificate (the chain's
 * first). Returns 0 or a GnuTLS error. */
static int vg__peer_describe(vg__tls_peer *p, const gnutls_datum_t *der)
{
    gnutls_x509_crt_t crt;
    gnutls_datum_t dn = {NULL, 0};
    unsigned char md[32];
    size_t mdlen = sizeof md, i;
    int rc;

    if ((rc = gnutls_x509_crt_init(&crt)) < 0)
        return rc;
    rc = gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER);
    if (rc >= 0)
        rc = gnutls_x509_crt_get_dn3(crt, &dn, 0);
    if (rc >= 0)
        rc = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, md, &mdlen);
    if (rc >= 0 && (p->subject = strdup((const char *)dn.data)) == NULL)
        rc = GNUTLS_E_MEMORY_ERROR;
    for (i = 0; rc >= 0 && i < mdlen && i < 32; i++)
        snprintf(p->fingerprint + 2 * i, 3, "%02x", md[i]);
    gnutls_free(dn.data);
    gnutls_x509_crt_deinit(crt);
    return rc;
}

/* Why a certificate did not verify, for the log. */
static void vg__log_refusal(vg_app *app, gnutls_session_t s, unsigned status,
                            int rc)
{
    gnutls_datum_t why = {NULL, 0};

    if (rc < 0) {
        vg__logf(&app->log, VG_LOG_INFO, "TLS: client certificate not verified: %s",
                 gnutls_strerror(rc));
        return;
    }
    if (gnutls_certificate_verification_status_print(
            status, gnutls_certificate_type_get(s), &why, 0) < 0)
        why.data = NULL;
    vg__logf(&app->log, VG_LOG_INFO, "TLS: client certificate refused: %s",
             why.data ? (const char *)why.data : "not trusted");
    gnutls_free(why.data);
}

/* The verdict on the connection's client certificate; NULL on ENOMEM. */
static vg__tls_peer *vg__peer_check(vg_app *app, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t s = ci ? (gnutls_session_t)ci->tls_session : NULL;
    gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID,
                                     (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0};
    const gnutls_datum_t *chain;
    unsigned n = 0, status = 0;
    vg__tls_peer *p = calloc(1, sizeof *p);
    int rc;

    if (p == NULL || s == NULL)
        return p; /* not verified */
    chain = gnutls_certificate_get_peers(s, &n);
    if (chain == NULL || n == 0)
        return p; /* the client sent none */
    rc = gnutls_certificate_verify_peers(s, &purpose, 1, &status);
    if (rc < 0 || status != 0) {
        vg__log_refusal(app, s, status, rc);
        return p;
    }
    rc = vg__peer_describe(p, &chain[0]);
    if (rc < 0) {
        vg__logf(&app->log, VG_LOG_WARN, "TLS: client certificate unreadable: %s",
                 gnutls_strerror(rc));
        free(p->subject);
        p->subject = NULL;
        return p;
    }
    p->verified = true;
    return p;
}

bool vg__tls_glue_check(vg_request *req, struct MHD_Connection *conn)
{
    vg_app *app = req->app;
    vg__conn *c = req->conn_ctx;
    vg__tls_peer *p = c != NULL ? c->tls_peer : NULL;
    bool own = false, ok;

    if (p == NULL) {
        p = vg__peer_check(app, conn);
        if (c != NULL)
            c->tls_peer = p;
        else
            own = true; /* no place to keep it: checked per request */
    }
    if (p != NULL && p->verified) {
        req->tls_subject = vg__request_strndup(req, p->subject, strlen(p->subject));
        req->tls_fingerprint = vg__request_strndup(req, p->fingerprint,
                                                   strlen(p->fingerprint));
    }
    ok = app->tls_client_mode != VG_TLS_CLIENT_REQUIRED ||
         (req->tls_subject != NULL && req->tls_fingerprint != NULL);
    if (own)
        vg__tls_peer_free(p);
    return ok;
}

void vg__tls_glue_started(vg_app *app, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci;

    if (app->tls_ticket_key == NULL || app->tls_trust_pem != NULL)
        return;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL || ci->tls_session == NULL)
        return;
    if (gnutls_session_ticket_enable_server(ci->tls_session,
                                            app->tls_ticket_key) < 0)
        vg__logf(&app->log, VG_LOG_WARN,
                 "TLS: cannot enable session tickets on a connection");
}
