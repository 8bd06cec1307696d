/* test_tls.c - HTTPS end to end with certificates made by openssl at test
 * time: libcurl with --cacert semantics, a GnuTLS client for what curl
 * cannot do (RST mid-request), cancellation over TLS (FIN and RST),
 * certificate reload with a keep-alive connection kept, configuration
 * errors, HSTS, files over TLS, and a TLS port that survives plain HTTP,
 * garbage and stalled handshakes. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <volga.h>
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[64];
static char cert1[128], key1[128], cert2[128], key2[128], file[128];
static vg_app *app;
static unsigned short port;

/* The token of the /wait handler, and what it saw. */
static tu_latch entered, left;
static atomic_int reason;

/* ---- Certificates ---- */

static void make_files(void)
{
    int fd;

    snprintf(tmp, sizeof tmp, "/tmp/vg-tls.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(cert1, sizeof cert1, "%s/cert1.pem", tmp);
    snprintf(key1, sizeof key1, "%s/key1.pem", tmp);
    snprintf(cert2, sizeof cert2, "%s/cert2.pem", tmp);
    snprintf(key2, sizeof key2, "%s/key2.pem", tmp);
    snprintf(file, sizeof file, "%s/data.txt", tmp);
    ck_assert_msg(tu_make_cert(cert1, key1, "one"), "openssl req failed");
    ck_assert_msg(tu_make_cert(cert2, key2, "two"), "openssl req failed");
    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert(fd >= 0);
    ck_assert_int_eq(write(fd, "0123456789", 10), 10);
    close(fd);
}

/* ---- Handlers ---- */

static vg_result *h_hello(vg_request *req, void *arg)
{
    (void)req, (void)arg;
    return vg_text("hello over tls");
}

static vg_result *h_wait(vg_request *req, void *arg)
{
    vg_token *tok = vg_request_token(req);

    (void)arg;
    tu_latch_add(&entered, 1);
    vg_token_wait(tok, 20000);
    atomic_store(&reason, (int)vg_token_reason(tok));
    tu_latch_add(&left, 1);
    return vg_text("late");
}

static vg_result *h_file(vg_request *req, void *arg)
{
    (void)arg;
    return vg_file(req, file, NULL);
}

static void setup(void)
{
    make_files();
    tu_latch_init(&entered);
    tu_latch_init(&left);
    atomic_store(&reason, -1);
    app = tu_app_new();
    ck_assert_int_eq(vg_app_set_tls(app, cert1, key1), 0);
    ck_assert_int_eq(vg_app_use_hsts(app, 600, false), 0);
    ck_assert_int_eq(vg_map_get(app, "/hello", h_hello, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/wait", h_wait, NULL), 0);
    ck_assert_int_eq(vg_map_get(app, "/file", h_file, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);
}

static void teardown(void)
{
    vg_app_free(app);
    app = NULL;
    tu_latch_destroy(&entered);
    tu_latch_destroy(&left);
    tu_remove_tree(tmp);
}

/* ---- An HTTPS client ---- */

typedef struct {
    long status;
    int code;
    char body[4096];
    size_t len;
    char headers[4096];
    size_t hlen;
} https_resp;

static size_t collect_body(char *p, size_t sz, size_t n, void *arg)
{
    https_resp *r = arg;
    size_t add = sz * n, room = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, add < room ? add : room);
    r->len += add < room ? add : room;
    r->body[r->len] = '\0';
    return add;
}

static size_t collect_head(char *p, size_t sz, size_t n, void *arg)
{
    https_resp *r = arg;
    size_t add = sz * n, room = sizeof r->headers - 1 - r->hlen;
    memcpy(r->headers + r->hlen, p, add < room ? add : room);
    r->hlen += add < room ? add : room;
    r->headers[r->hlen] = '\0';
    return add;
}

/* GET https://127.0.0.1:port`path` on `c` (reused: keep-alive) trusting
 * only `ca`. */
static https_resp https_get(CURL *c, const char *path, const char *ca,
                            const char *header)
{
    https_resp r;
    char url[256];
    struct curl_slist *h = header ? curl_slist_append(NULL, header) : NULL;

    memset(&r, 0, sizeof r);
    snprintf(url, sizeof url, "https://127.0.0.1:%u%s", (unsigned)port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_head);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    r.code = (int)curl_easy_perform(c);
    if (r.code == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h);
    return r;
}

static https_resp https_get1(const char *path, const char *ca)
{
    CURL *c = curl_easy_init();
    https_resp r = https_get(c, path, ca, NULL);
    curl_easy_cleanup(c);
    return r;
}

/* A GnuTLS client session over a new connection, handshake done, with
 * the given priorities (NULL: GnuTLS's default). */
typedef struct {
    int fd;
    gnutls_session_t s;
    gnutls_certificate_credentials_t cred;
} tls_client;

static void tls_client_open_resuming(tls_client *t, const char *priorities,
                                     const gnutls_datum_t *resume)
{
    int rc;

    t->fd = tu_connect(port);
    ck_assert_int_eq(gnutls_certificate_allocate_credentials(&t->cred), 0);
    ck_assert_int_eq(gnutls_init(&t->s, GNUTLS_CLIENT), 0);
    if (priorities == NULL)
        gnutls_set_default_priority(t->s);
    else
        ck_assert_int_eq(gnutls_priority_set_direct(t->s, priorities, NULL), 0);
    gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, t->cred);
    if (resume != NULL)
        ck_assert_int_eq(gnutls_session_set_data(t->s, resume->data,
                                                 resume->size), 0);
    gnutls_transport_set_int(t->s, t->fd);
    do
        rc = gnutls_handshake(t->s);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    ck_assert_msg(rc == 0, "handshake: %s", gnutls_strerror(rc));
}

static void tls_client_open_with(tls_client *t, const char *priorities)
{
    tls_client_open_resuming(t, priorities, NULL);
}

static void tls_client_open(tls_client *t)
{
    tls_client_open_with(t, NULL);
}

static void tls_client_free(tls_client *t)
{
    gnutls_deinit(t->s);
    gnutls_certificate_free_credentials(t->cred);
}

/* ---- Tests ---- */

START_TEST(test_https_with_cacert)
{
    https_resp r = https_get1("/hello", cert1);

    ck_assert_msg(r.code == CURLE_OK, "curl: %s", curl_easy_strerror(r.code));
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello over tls");
    ck_assert_ptr_nonnull(strcasestr(r.headers,
                                     "Strict-Transport-Security: max-age=600"));
    /* The other certificate's trust does not verify this server. */
    r = https_get1("/hello", cert2);
    ck_assert_int_ne(r.code, CURLE_OK);
    /* A 404 of the library's own carries HSTS too. */
    r = https_get1("/nowhere", cert1);
    ck_assert_int_eq(r.status, 404);
    ck_assert_ptr_nonnull(strcasestr(r.headers, "Strict-Transport-Security"));
}
END_TEST

/* The default priorities pick by the server's order: AES-128-GCM (SHA-256
 * key schedule) even from a client that lists AES-256-GCM first, on the
 * client's X25519 key share without asking for another one; and still
 * agree with a client that offers only AES-256-GCM, or only TLS 1.2. */
START_TEST(test_default_priorities_choose_cheap_handshake)
{
    static const struct {
        const char *client;
        gnutls_protocol_t version;
        gnutls_cipher_algorithm_t cipher;
    } cases[] = {
        {"NORMAL:-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:"
         "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1",
         GNUTLS_TLS1_3, GNUTLS_CIPHER_AES_128_GCM},
        {"NORMAL:-CIPHER-ALL:+AES-256-GCM", GNUTLS_TLS1_3,
         GNUTLS_CIPHER_AES_256_GCM},
        {"NORMAL:-VERS-ALL:+VERS-TLS1.2", GNUTLS_TLS1_2,
         GNUTLS_CIPHER_AES_128_GCM},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tls_client t;

        tls_client_open_with(&t, cases[i].client);
        ck_assert_int_eq(gnutls_protocol_get_version(t.s), cases[i].version);
        ck_assert_msg(gnutls_cipher_get(t.s) == cases[i].cipher,
                      "case %zu: cipher %s", i,
                      gnutls_cipher_get_name(gnutls_cipher_get(t.s)));
        if (i == 0)
            ck_assert_msg(gnutls_group_get(t.s) == GNUTLS_GROUP_X25519,
                          "group %s", gnutls_group_get_name(gnutls_group_get(t.s)));
        gnutls_bye(t.s, GNUTLS_SHUT_WR);
        close(t.fd);
        tls_client_free(&t);
    }
}
END_TEST

/* GET `path` on an open client session and read the answer into buf to
 * the end (Connection: close); a TLS 1.3 session ticket arrives on the
 * way. */
static void tls_client_get(tls_client *t, const char *path, char *buf, size_t cap)
{
    char get[256];
    size_t got = 0;
    ssize_t n;

    snprintf(get, sizeof get,
             "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    ck_assert_int_eq(gnutls_record_send(t->s, get, strlen(get)), (ssize_t)strlen(get));
    for (;;) {
        n = gnutls_record_recv(t->s, buf + got, cap - 1 - got);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n <= 0 || got + (size_t)n >= cap - 1)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
}

/* Whether GET /hello answers 200 with the handler's body. */
static bool tls_client_hello(tls_client *t)
{
    char buf[4096];

    tls_client_get(t, "/hello", buf, sizeof buf);
    return strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(buf, "hello over tls");
}

/* Connects twice to the server on `port`, the second time offering the
 * session of the first; returns whether it resumed. */
static bool tls_resumes(void)
{
    tls_client t;
    gnutls_datum_t data = {NULL, 0};
    char buf[4096];
    bool resumed;

    tls_client_open(&t);
    ck_assert_int_eq(gnutls_session_is_resumed(t.s), 0);
    tls_client_get(&t, "/", buf, sizeof buf);
    ck_assert_int_eq(strncmp(buf, "HTTP/1.1 ", 9), 0);
    ck_assert_int_eq(gnutls_session_get_data2(t.s, &data), 0);
    close(t.fd);
    tls_client_free(&t);
    tls_client_open_resuming(&t, NULL, &data);
    resumed = gnutls_session_is_resumed(t.s) != 0;
    tls_client_get(&t, "/", buf, sizeof buf);
    ck_assert_int_eq(strncmp(buf, "HTTP/1.1 ", 9), 0);
    close(t.fd);
    tls_client_free(&t);
    gnutls_free(data.data);
    return resumed;
}

/* A client that comes back resumes its session from the ticket the
 * server sent (libmicrohttpd enables none: the glue does), skipping the
 * certificate and the signature, and is answered as before. */
START_TEST(test_session_resumes_from_ticket)
{
    tls_client t;
    gnutls_datum_t data = {NULL, 0};

    ck_assert_msg(tls_resumes(), "the second connection ran a full handshake");
    /* And the resumed session is served as any other. */
    tls_client_open(&t);
    ck_assert(tls_client_hello(&t));
    ck_assert_int_eq(gnutls_session_get_data2(t.s, &data), 0);
    close(t.fd);
    tls_client_free(&t);
    tls_client_open_resuming(&t, NULL, &data);
    ck_assert_int_ne(gnutls_session_is_resumed(t.s), 0);
    ck_assert(tls_client_hello(&t));
    close(t.fd);
    tls_client_free(&t);
    gnutls_free(data.data);
}
END_TEST

START_TEST(test_file_over_tls)
{
    CURL *c = curl_easy_init();
    https_resp r = https_get(c, "/file", cert1, NULL);

    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "0123456789");
    r = https_get(c, "/file", cert1, "Range: bytes=3-5");
    ck_assert_int_eq(r.status, 206);
    ck_assert_str_eq(r.body, "345");
    curl_easy_cleanup(c);
}
END_TEST

/* Sends GET /wait over TLS, waits for the handler, then leaves. */
static void cancel_case(bool rst)
{
    tls_client t;
    const char *get = "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n";
    int before = 0;

    tls_client_open(&t);
    ck_assert_int_eq(gnutls_record_send(t.s, get, strlen(get)), (ssize_t)strlen(get));
    ck_assert(tu_latch_wait(&entered, 1, 10000));
    if (rst) {
        tu_close_rst(t.fd);
    } else {
        shutdown(t.fd, SHUT_WR); /* FIN without a TLS close_notify */
    }
    ck_assert_msg(tu_latch_wait(&left, 1, 5000),
                  "the token did not fire when the client left");
    before = atomic_load(&reason);
    ck_assert_int_eq(before, VG_CANCEL_CLIENT_GONE);
    if (!rst)
        close(t.fd);
    tls_client_free(&t);
}

START_TEST(test_cancel_on_fin_over_tls)
{
    cancel_case(false);
}
END_TEST

START_TEST(test_cancel_on_rst_over_tls)
{
    cancel_case(true);
}
END_TEST

START_TEST(test_reload_keeps_connections)
{
    CURL *kept = curl_easy_init();
    https_resp r = https_get(kept, "/hello", cert1, NULL);
    long connects = -1;

    ck_assert_int_eq(r.status, 200);
    /* Renew: the files now hold the second certificate. */
    ck_assert_int_eq(rename(cert2, cert1), 0);
    ck_assert_int_eq(rename(key2, key1), 0);
    snprintf(cert2, sizeof cert2, "%s/cert1.pem", tmp); /* now the new one */
    ck_assert_int_eq(vg_app_reload_tls(app), 0);
    /* The connection made before is still up and reused. */
    r = https_get(kept, "/hello", cert2, NULL);
    ck_assert_int_eq(r.status, 200);
    curl_easy_getinfo(kept, CURLINFO_NUM_CONNECTS, &connects);
    ck_assert_int_eq(connects, 0);
    curl_easy_cleanup(kept);
    /* New handshakes get the new certificate. */
    r = https_get1("/hello", cert1);
    ck_assert_int_eq(r.status, 200);
    /* A broken renewal keeps the current certificate. */
    {
        int fd = open(cert1, O_WRONLY | O_TRUNC);
        ck_assert(fd >= 0);
        ck_assert_int_eq(write(fd, "garbage", 7), 7);
        close(fd);
    }
    ck_assert_int_eq(vg_app_reload_tls(app), -EINVAL);
    r = https_get1("/hello", key1); /* key1 is not a CA: only checks failure */
    ck_assert_int_ne(r.code, CURLE_OK);
}
END_TEST

static void *run_app(void *arg)
{
    return (void *)(intptr_t)vg_app_run(arg);
}

/* vg_app_run reloads the certificate on SIGHUP. */
START_TEST(test_sighup_reloads)
{
    pthread_t runner;
    struct sigaction cur;
    double until;
    https_resp r;
    void *rc;

    ck_assert_int_eq(pthread_create(&runner, NULL, run_app, app), 0);
    /* Wait until vg_app_run has installed its handler. */
    until = tu_now_ms() + 10000;
    do
        sigaction(SIGHUP, NULL, &cur);
    while (cur.sa_handler == SIG_DFL && tu_now_ms() < until && usleep(1000) == 0);
    ck_assert_msg(cur.sa_handler != SIG_DFL, "vg_app_run set no SIGHUP handler");
    ck_assert_int_eq(rename(cert2, cert1), 0);
    ck_assert_int_eq(rename(key2, key1), 0);
    snprintf(cert2, sizeof cert2, "%s/cert1.pem", tmp);
    ck_assert_int_eq(kill(getpid(), SIGHUP), 0);
    /* The reload happens on the app's reload thread: wait for its effect,
     * a new handshake with the renewed certificate. */
    until = tu_now_ms() + 10000;
    do
        r = https_get1("/hello", cert2);
    while (r.status != 200 && tu_now_ms() < until && usleep(10000) == 0);
    ck_assert_int_eq(r.status, 200);
    vg_app_stop(app);
    pthread_join(runner, &rc);
    ck_assert_int_eq((int)(intptr_t)rc, 0);
    sigaction(SIGHUP, NULL, &cur);
    ck_assert(cur.sa_handler == SIG_DFL); /* restored */
}
END_TEST

/* What the TLS port must survive: plain HTTP, garbage, a stalled and a
 * half-sent handshake held open; a real client is answered meanwhile. */
START_TEST(test_hostile_clients_survived)
{
    static const char client_hello_start[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
    int plain = tu_connect(port), junk = tu_connect(port),
        stalled = tu_connect(port), half = tu_connect(port);
    char buf[512];
    ssize_t n;
    https_resp r;

    ck_assert(tu_send_all(plain, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 33));
    ck_assert(tu_send_all(junk, "\x01\x02\x03\xff\xfe garbage\r\n\r\n", 16));
    ck_assert(tu_send_all(half, client_hello_start, sizeof client_hello_start));
    /* Plain HTTP on the TLS port is never answered in plain text. */
    n = recv(plain, buf, sizeof buf - 1, 0);
    ck_assert(n <= 0 || memcmp(buf, "HTTP/", 5) != 0);
    n = recv(junk, buf, sizeof buf - 1, 0);
    ck_assert(n <= 0 || memcmp(buf, "HTTP/", 5) != 0);
    r = https_get1("/hello", cert1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "hello over tls");
    close(plain);
    close(junk);
    close(stalled);
    close(half);
    r = https_get1("/hello", cert1);
    ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(test_configuration_errors)
{
    vg_app *a = tu_app_new();
    char missing[160];

    make_files();
    snprintf(missing, sizeof missing, "%s/none.pem", tmp);
    ck_assert_int_eq(vg_app_set_tls(NULL, cert1, key1), -EINVAL);
    ck_assert_int_eq(vg_app_set_tls(a, missing, key1), -ENOENT);
    ck_assert_int_eq(vg_app_set_tls(a, cert1, key2), -EINVAL); /* mismatch */
    ck_assert_int_eq(vg_app_set_tls(a, file, key1), -EINVAL);  /* not PEM */
    ck_assert_int_eq(vg_app_set_tls_priorities(a, "NORMAL"), -EINVAL); /* no TLS */
    ck_assert_int_eq(vg_app_set_tls_tickets(a, false), -EINVAL);       /* no TLS */
    ck_assert_int_eq(vg_app_reload_tls(a), -EINVAL);
    ck_assert_int_eq(vg_app_use_hsts(a, 10, true), -EINVAL);
    ck_assert_int_eq(vg_app_set_tls(a, cert1, key1), 0);
    ck_assert_int_eq(vg_app_set_tls(a, cert1, key1), -EINVAL); /* twice */
    ck_assert_int_eq(vg_app_set_tls_priorities(a, "NOT-A-PRIORITY"), -EINVAL);
    ck_assert_int_eq(vg_app_set_tls_priorities(a, "NORMAL:-VERS-ALL:+VERS-TLS1.3"), 0);
    ck_assert_int_eq(vg_app_set_tls_tickets(NULL, false), -EINVAL);
    ck_assert_int_eq(vg_app_set_tls_tickets(a, false), 0);
    tu_start(a);
    port = vg_app_port(a);
    /* No tickets: a client that comes back runs a full handshake. */
    ck_assert(!tls_resumes());
    {
        https_resp r = https_get1("/x", cert1);
        ck_assert_msg(r.code == CURLE_OK, "curl: %s", curl_easy_strerror(r.code));
        ck_assert_int_eq(r.status, 404);
    }
    {
        /* The priorities took effect: a TLS 1.2-only client is refused. */
        CURL *c = curl_easy_init();
        https_resp r;
        curl_easy_setopt(c, CURLOPT_SSLVERSION,
                         (long)(CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2));
        r = https_get(c, "/x", cert1, NULL);
        curl_easy_cleanup(c);
        ck_assert_int_ne(r.code, CURLE_OK);
    }
    ck_assert_int_eq(vg_app_set_tls_priorities(a, "NORMAL"), -EBUSY);
    ck_assert_int_eq(vg_app_set_tls_tickets(a, true), -EBUSY);
    vg_app_free(a);
    tu_remove_tree(tmp);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("https");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_https_with_cacert);
    tcase_add_test(tc, test_file_over_tls);
    tcase_add_test(tc, test_default_priorities_choose_cheap_handshake);
    tcase_add_test(tc, test_session_resumes_from_ticket);
    tcase_add_test(tc, test_cancel_on_fin_over_tls);
    tcase_add_test(tc, test_cancel_on_rst_over_tls);
    tcase_add_test(tc, test_reload_keeps_connections);
    tcase_add_test(tc, test_sighup_reloads);
    tcase_add_test(tc, test_hostile_clients_survived);
    suite_add_tcase(s, tc);
    tc = tcase_create("config");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_configuration_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (access("/usr/bin/openssl", X_OK) != 0) {
        fprintf(stderr, "SKIP: test_tls needs /usr/bin/openssl (apt-get install openssl)\n");
        return 77;
    }
    return tu_main(tls_suite());
}
