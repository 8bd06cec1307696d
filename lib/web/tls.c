/* tls.c - HTTPS for an app: PEM certificate chain and key from files,
 * priorities, reload from any thread or on SIGHUP, and an HSTS filter.
 *
 * libmicrohttpd asks for the certificate on every handshake through a
 * GnuTLS retrieve callback (the glue passes app->tls_cert_cb to it); the
 * callback takes the app's current key pair under a lock. A reload builds
 * a new pair and swaps the pointer: handshakes after it use the new one,
 * connections already up keep theirs. Replaced pairs are kept until
 * vg_app_free, since a handshake that took one may still be using it; a
 * reload costs a few KiB. No GnuTLS type leaves this file. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "app.h"
#include "model/request.h"
#include "core/log.h"
#include "core/thread.h"

#define VG__MAX_CHAIN 16
/* TLS 1.2 and 1.3 only, GnuTLS's normal ciphers and groups, reordered
 * and chosen by the server's order rather than the client's, for the cost
 * of a handshake:
 *  - AES-128-GCM first: TLS 1.3 runs its key schedule and transcript on
 *    the suite's hash, and AES-256-GCM (which OpenSSL and browsers list
 *    first) brings SHA-384, which nettle computes in plain C (SHA-512 was
 *    a quarter of a handshake's CPU), where SHA-256 gets the CPU's SHA
 *    extensions;
 *  - X25519 first (GnuTLS lists P-256 first): it is the key share clients
 *    send, so server precedence must not ask them for another one (a
 *    HelloRetryRequest, a round trip and a second key exchange).
 * Both are the first choices of Mozilla's recommended configurations; the
 * rest stays offered (bench/RESULTS.md "Site"). */
static const char vg__default_priorities[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"
    "-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305:+AES-256-GCM:+AES-128-CCM:"
    "+AES-256-CCM:+AES-256-CBC:+AES-128-CBC:"
    "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:"
    "+GROUP-SECP521R1:+GROUP-X448:+GROUP-FFDHE2048:+GROUP-FFDHE3072:"
    "+GROUP-FFDHE4096:+GROUP-FFDHE6144:+GROUP-FFDHE8192:%SERVER_PRECEDENCE";

typedef struct vg__keypair {
    gnutls_pcert_st pcerts[VG__MAX_CHAIN];
    unsigned npcerts;
    gnutls_privkey_t key;
    struct vg__keypair *older;  /* the pair this one replaced */
} vg__keypair;

typedef struct {
    vg_app *app;
    pthread_mutex_t lock;
    char *cert_file, *key_file;
    char *priorities;
    gnutls_datum_t ticket_key;  /* session tickets' master key */
    vg__keypair *current;       /* under lock */
    pthread_t reloader;         /* waits on app->hup_fd */
    bool reloader_started;
    atomic_bool stopping;
    char *hsts;                 /* vg_app_use_hsts's header value */
    char *trust_pem;            /* vg_app_set_tls_client_ca's CA file */
} vg__tls;

static void vg__keypair_free(vg__keypair *kp)
{
    while (kp != NULL) {
        vg__keypair *older = kp->older;
        unsigned i;
        for (i = 0; i < kp->npcerts; i++)
            gnutls_pcert_deinit(&kp->pcerts[i]);
        if (kp->key != NULL)
            gnutls_privkey_deinit(kp->key);
        free(kp);
        kp = older;
    }
}

/* A GnuTLS error as a negative errno for our callers, logged. */
static int vg__tls_fail(vg_app *app, const char *what, const char *file, int gerr)
{
    vg__logf(&app->log, VG_LOG_ERROR, "TLS: %s %s: %s", what, file,
             gnutls_strerror(gerr));
    return gerr == GNUTLS_E_FILE_ERROR ? -ENOENT : -EINVAL;
}

/* Checks that the key belongs to the certificate, as GnuTLS does when
 * credentials are built from them. */
static int vg__check_match(vg_app *app, const gnutls_datum_t *cert,
                           const gnutls_datum_t *key, const char *file)
{
    gnutls_certificate_credentials_t c;
    int rc;

    if (gnutls_certificate_allocate_credentials(&c) != 0)
        return -ENOMEM;
    rc = gnutls_certificate_set_x509_key_mem2(c, cert, key, GNUTLS_X509_FMT_PEM,
                                              NULL, 0);
    gnutls_certificate_free_credentials(c);
    return rc < 0 ? vg__tls_fail(app, "certificate and key do not go together:",
                                 file, rc)
                  : 0;
}

/* Reads and parses both files into a new pair. */
static int vg__keypair_load(vg_app *app, const char *cert_file,
                            const char *key_file, vg__keypair **out)
{
    gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
    vg__keypair *kp = calloc(1, sizeof *kp);
    int rc;

    if (kp == NULL)
        return -ENOMEM;
    if ((rc = gnutls_load_file(cert_file, &cert)) < 0) {
        rc = vg__tls_fail(app, "cannot read", cert_file, rc);
        goto out;
    }
    if ((rc = gnutls_load_file(key_file, &key)) < 0) {
        rc = vg__tls_fail(app, "cannot read", key_file, rc);
        goto out;
    }
    kp->npcerts = VG__MAX_CHAIN;
    rc = gnutls_pcert_list_import_x509_raw(kp->pcerts, &kp->npcerts, &cert,
                                           GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0) {
        kp->npcerts = 0;
        rc = vg__tls_fail(app, "no PEM certificate chain in", cert_file, rc);
        goto out;
    }
    if ((rc = gnutls_privkey_init(&kp->key)) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(kp->key, &key, GNUTLS_X509_FMT_PEM,
                                             NULL, 0)) < 0) {
        rc = vg__tls_fail(app, "no PEM private key in", key_file, rc);
        goto out;
    }
    rc = vg__check_match(app, &cert, &key, key_file);
out:
    gnutls_free(cert.data);
    if (key.data != NULL) {
        memset(key.data, 0, key.size); /* the key stays only in GnuTLS */
        gnutls_free(key.data);
    }
    if (rc != 0) {
        vg__keypair_free(kp);
        return rc;
    }
    *out = kp;
    return 0;
}

/* GnuTLS's certificate retrieve callback (gnutls_certificate_retrieve_
 * function2), run by libmicrohttpd during a handshake on an event thread.
 * The pair stays valid until vg_app_free. */
static int vg__tls_retrieve(gnutls_session_t session,
                            const gnutls_datum_t *req_ca_rdn, int nreqs,
                            const gnutls_pk_algorithm_t *pk_algos,
                            int pk_algos_length, gnutls_pcert_st **pcert,
                            unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    vg_app *app = vg__event_app;
    vg__tls *t = app ? app->tls : NULL;
    vg__keypair *kp;

    (void)session, (void)req_ca_rdn, (void)nreqs, (void)pk_algos,
        (void)pk_algos_length;
    if (t == NULL)
        return -1; /* fails the handshake: never a wrong certificate */
    pthread_mutex_lock(&t->lock);
    kp = t->current;
    pthread_mutex_unlock(&t->lock);
    *pcert = kp->pcerts;
    *pcert_length = kp->npcerts;
    *pkey = kp->key;
    return 0;
}

static void vg__tls_free(void *arg)
{
    vg__tls *t = arg;
    uint64_t one = 1;

    if (t->reloader_started) {
        atomic_store(&t->stopping, true);
        if (write(t->app->hup_fd, &one, sizeof one) < 0)
            vg__logf(&t->app->log, VG_LOG_WARN, "TLS: cannot stop the reloader");
        pthread_join(t->reloader, NULL);
    }
    if (t->app->hup_fd >= 0)
        close(t->app->hup_fd);
    if (t->ticket_key.data != NULL) {
        gnutls_memset(t->ticket_key.data, 0, t->ticket_key.size);
        gnutls_free(t->ticket_key.data);
    }
    t->app->hup_fd = -1;
    t->app->tls = NULL;
    vg__keypair_free(t->current);
    pthread_mutex_destroy(&t->lock);
    free(t->cert_file);
    free(t->key_file);
    free(t->priorities);
    free(t->hsts);
    free(t->trust_pem);
    free(t);
}

int vg_app_reload_tls(vg_app *app)
{
    vg__tls *t = app ? app->tls : NULL;
    vg__keypair *kp;
    int rc;

    if (t == NULL)
        return -EINVAL;
    rc = vg__keypair_load(app, t->cert_file, t->key_file, &kp);
    if (rc != 0)
        return rc; /* the current certificate stays */
    pthread_mutex_lock(&t->lock);
    kp->older = t->current;
    t->current = kp;
    pthread_mutex_unlock(&t->lock);
    vg__logf(&app->log, VG_LOG_INFO, "TLS: certificate reloaded from %s",
             t->cert_file);
    return 0;
}

/* "vg-tls-reload": reloads each time vg_app_run's SIGHUP handler rings. */
static void *vg__reloader_main(void *arg)
{
    vg__tls *t = arg;
    uint64_t v;

    vg__thread_name("vg-tls-reload");
    for (;;) {
        ssize_t n = read(t->app->hup_fd, &v, sizeof v);
        if (atomic_load(&t->stopping))
            break;
        if (n == (ssize_t)sizeof v)
            vg_app_reload_tls(t->app);
    }
    return NULL;
}

static int vg__tls_new(vg_app *app, const char *cert_file, const char *key_file,
                       vg__tls **out)
{
    vg__tls *t = calloc(1, sizeof *t);
    int rc;

    if (t == NULL)
        return -ENOMEM;
    t->app = app;
    pthread_mutex_init(&t->lock, NULL);
    t->cert_file = strdup(cert_file);
    t->key_file = strdup(key_file);
    t->priorities = strdup(vg__default_priorities);
    if (t->cert_file == NULL || t->key_file == NULL || t->priorities == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = vg__keypair_load(app, cert_file, key_file, &t->current);
    if (rc != 0)
        goto fail;
    /* One key for the app's lifetime; GnuTLS derives the TLS 1.3 ticket
     * keys from it and rotates them itself. */
    if (gnutls_session_ticket_key_generate(&t->ticket_key) < 0) {
        vg__logf(&app->log, VG_LOG_WARN,
                 "TLS: no session ticket key: sessions will not resume");
        t->ticket_key.data = NULL;
    }
    *out = t;
    return 0;
fail:
    free(t->cert_file);
    free(t->key_file);
    free(t->priorities);
    pthread_mutex_destroy(&t->lock);
    free(t);
    return rc;
}

static int vg__tls_configurable(vg_app *app)
{
    if (app == NULL)
        return -EINVAL;
    if (atomic_load(&app->state) != VG__APP_NEW)
        return -EBUSY;
    return 0;
}

int vg_app_set_tls(vg_app *app, const char *cert_pem_file,
                   const char *key_pem_file)
{
    vg__tls *t;
    int rc = vg__tls_configurable(app);

    if (rc != 0)
        return rc;
    if (cert_pem_file == NULL || key_pem_file == NULL || app->tls != NULL)
        return -EINVAL;
    rc = vg__tls_new(app, cert_pem_file, key_pem_file, &t);
    if (rc != 0)
        return rc;
    app->hup_fd = eventfd(0, EFD_CLOEXEC);
    if (app->hup_fd < 0 || vg__app_add_cleanup(app, vg__tls_free, t) != 0) {
        rc = app->hup_fd < 0 ? -errno : -ENOMEM;
        app->tls = t;
        vg__tls_free(t);
        return rc;
    }
    app->tls = t;
    if (pthread_create(&t->reloader, NULL, vg__reloader_main, t) == 0)
        t->reloader_started = true;
    else
        vg__logf(&app->log, VG_LOG_WARN, "TLS: no reload thread: SIGHUP ignored");
    app->tls_cert_cb = (void *)vg__tls_retrieve;
    app->tls_priorities = t->priorities;
    app->tls_ticket_key = t->ticket_key.data ? &t->ticket_key : NULL;
    return 0;
}

int vg_app_set_tls_tickets(vg_app *app, bool on)
{
    vg__tls *t;
    int rc = vg__tls_configurable(app);

    if (rc != 0)
        return rc;
    t = app->tls;
    if (t == NULL)
        return -EINVAL;
    app->tls_ticket_key = on && t->ticket_key.data ? &t->ticket_key : NULL;
    return 0;
}

int vg_app_set_tls_priorities(vg_app *app, const char *priorities)
{
    vg__tls *t;
    gnutls_priority_t p;
    const char *err = NULL;
    char *copy;
    int rc = vg__tls_configurable(app);

    if (rc != 0)
        return rc;
    t = app->tls;
    if (t == NULL || priorities == NULL)
        return -EINVAL;
    rc = gnutls_priority_init(&p, priorities, &err);
    if (rc < 0) {
        vg__logf(&app->log, VG_LOG_ERROR, "TLS: bad priorities \"%s\" at \"%s\"",
                 priorities, err ? err : "?");
        return -EINVAL;
    }
    gnutls_priority_deinit(p);
    copy = strdup(priorities);
    if (copy == NULL)
        return -ENOMEM;
    free(t->priorities);
    t->priorities = copy;
    app->tls_priorities = copy;
    return 0;
}

/* The filter behind vg_app_use_hsts: decorates every answer. */
static vg_result *vg__hsts_filter(vg_request *req, void *arg)
{
    vg_request_add_response_header(req, "Strict-Transport-Security", arg);
    return NULL;
}

int vg_app_use_hsts(vg_app *app, unsigned max_age_s, bool include_subdomains)
{
    vg__tls *t;
    char *value;
    int rc = vg__tls_configurable(app);

    if (rc != 0)
        return rc;
    t = app->tls;
    if (t == NULL || t->hsts != NULL)
        return -EINVAL;
    if (asprintf(&value, "max-age=%u%s", max_age_s,
                 include_subdomains ? "; includeSubDomains" : "") < 0)
        return -ENOMEM;
    t->hsts = value;
    return vg_app_filter(app, vg__hsts_filter, value);
}

/* Reads the CA file as NUL-terminated PEM text (libmicrohttpd takes a C
 * string) after checking that it holds at least one certificate. */
static int vg__trust_load(vg_app *app, const char *file, char **out)
{
    gnutls_datum_t pem = {NULL, 0};
    gnutls_x509_crt_t *crts = NULL;
    unsigned n = 0, i;
    int rc;

    if ((rc = gnutls_load_file(file, &pem)) < 0)
        return vg__tls_fail(app, "cannot read", file, rc);
    rc = gnutls_x509_crt_list_import2(&crts, &n, &pem, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0 || n == 0) {
        rc = vg__tls_fail(app, "no PEM CA certificate in", file,
                          rc < 0 ? rc : GNUTLS_E_NO_CERTIFICATE_FOUND);
    } else if ((*out = malloc(pem.size + 1)) == NULL) {
        rc = -ENOMEM;
    } else {
        memcpy(*out, pem.data, pem.size);
        (*out)[pem.size] = '\0';
        rc = 0;
    }
    for (i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    gnutls_free(pem.data);
    return rc;
}

int vg_app_set_tls_client_ca(vg_app *app, const char *ca_pem_file,
                             vg_tls_client_mode mode)
{
    vg__tls *t;
    char *pem = NULL;
    int rc = vg__tls_configurable(app);

    if (rc != 0)
        return rc;
    t = app->tls;
    if (t == NULL || ca_pem_file == NULL || t->trust_pem != NULL ||
        (mode != VG_TLS_CLIENT_OPTIONAL && mode != VG_TLS_CLIENT_REQUIRED))
        return -EINVAL;
    rc = vg__trust_load(app, ca_pem_file, &pem);
    if (rc != 0)
        return rc;
    t->trust_pem = pem;
    app->tls_trust_pem = pem;
    app->tls_client_mode = (int)mode;
    return 0;
}

const char *vg_request_tls_peer_subject(const vg_request *req)
{
    return req != NULL ? req->tls_subject : NULL;
}

const char *vg_request_tls_peer_fingerprint(const vg_request *req)
{
    return req != NULL ? req->tls_fingerprint : NULL;
}
