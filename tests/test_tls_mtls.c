/* test_tls_mtls.c - client certificates (vg_app_set_tls_client_ca) with a
 * CA, client certificates and a second CA made by openssl at test time,
 * presented by libcurl (curl's --cert/--key): a good certificate is
 * verified and its subject and SHA-256 fingerprint reach the handler (the
 * fingerprint compared with openssl's); no certificate, another CA's,
 * an expired one and one made for servers only are not verified:
 * served without a subject in the optional mode, refused 403 with the
 * connection closed in the required mode. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <volga.h>
#include "testutil.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[64];
static vg_app *app;
static unsigned short port;

/* ---- Certificates ---- */

static char *path_of(const char *name)
{
    static char paths[16][128];
    static int next;
    char *p = paths[next++ % 16];

    snprintf(p, 128, "%s/%s", tmp, name);
    return p;
}

/* Runs openssl with the arguments given (NULL-terminated), stdout into
 * `out` when not NULL; true if it exited 0. */
static bool openssl(const char *out, ...)
{
    char *argv[40] = {"/usr/bin/openssl"};
    int n = 1, st, fd = -1;
    va_list ap;
    pid_t pid;
    bool ok;

    va_start(ap, out);
    while (n < 39 && (argv[n] = va_arg(ap, char *)) != NULL)
        n++;
    va_end(ap);
    argv[n] = NULL;
    if (out != NULL && (fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
        return false;
    pid = tu_spawn(argv, -1, fd, -1);
    ok = pid > 0 && tu_wait_exit(pid, 20000, &st) && WIFEXITED(st) &&
         WEXITSTATUS(st) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    ck_assert(fd >= 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

#define EC "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"

static void make_ca(const char *name, const char *cn)
{
    char subj[64], cert[160], key[160];

    snprintf(subj, sizeof subj, "/CN=%s", cn);
    snprintf(cert, sizeof cert, "%s/%s.pem", tmp, name);
    snprintf(key, sizeof key, "%s/%s.key", tmp, name);
    ck_assert_msg(openssl(NULL, "req", "-x509", EC, "-keyout", key, "-out", cert,
                          "-days", "2", "-subj", subj, "-addext",
                          "basicConstraints=critical,CA:TRUE", "-addext",
                          "keyUsage=critical,keyCertSign,cRLSign", NULL),
                  "openssl: CA %s", name);
}

/* A certificate for `name` signed by CA `ca`, valid for `days` (-1: expired
 * yesterday), with the extensions in `ext` (an openssl extfile's lines). */
static void make_client(const char *name, const char *subj, const char *ca,
                        const char *days, const char *ext)
{
    char cert[160], key[160], csr[160], extf[160], cacert[160], cakey[160];

    snprintf(cert, sizeof cert, "%s/%s.pem", tmp, name);
    snprintf(key, sizeof key, "%s/%s.key", tmp, name);
    snprintf(csr, sizeof csr, "%s/%s.csr", tmp, name);
    snprintf(extf, sizeof extf, "%s/%s.ext", tmp, name);
    snprintf(cacert, sizeof cacert, "%s/%s.pem", tmp, ca);
    snprintf(cakey, sizeof cakey, "%s/%s.key", tmp, ca);
    write_file(extf, ext);
    ck_assert_msg(openssl(NULL, "req", EC, "-keyout", key, "-out", csr, "-subj",
                          subj, NULL), "openssl: csr %s", name);
    ck_assert_msg(openssl(NULL, "x509", "-req", "-in", csr, "-CA", cacert,
                          "-CAkey", cakey, "-set_serial", "7", "-days", days,
                          "-extfile", extf, "-out", cert, NULL),
                  "openssl: sign %s", name);
}

static const char client_ext[] =
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=clientAuth\n";

static void make_files(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/vg-mtls.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    ck_assert_msg(openssl(NULL, "req", "-x509", EC, "-keyout", path_of("server.key"),
                          "-out", path_of("server.pem"), "-days", "2", "-subj",
                          "/CN=server", "-addext",
                          "subjectAltName=IP:127.0.0.1,DNS:localhost", NULL),
                  "openssl: server certificate");
    make_ca("ca", "Volga Test CA");
    make_ca("otherca", "Someone Else CA");
    make_client("alice", "/O=Volga Test/CN=alice", "ca", "2", client_ext);
    make_client("expired", "/O=Volga Test/CN=old", "ca", "-1", client_ext);
    make_client("mallory", "/O=Volga Test/CN=mallory", "otherca", "2", client_ext);
    make_client("serveronly", "/O=Volga Test/CN=srv", "ca", "2",
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
}

/* openssl's SHA-256 fingerprint of `cert` as 64 lowercase hex digits. */
static void openssl_fingerprint(const char *cert, char out[65])
{
    char buf[256];
    const char *p;
    int fd, n = 0;
    ssize_t len;

    ck_assert(openssl(path_of("fp.txt"), "x509", "-in", cert, "-noout",
                      "-fingerprint", "-sha256", NULL));
    fd = open(path_of("fp.txt"), O_RDONLY);
    ck_assert(fd >= 0);
    len = read(fd, buf, sizeof buf - 1);
    close(fd);
    ck_assert(len > 0);
    buf[len] = '\0';
    p = strchr(buf, '=');
    ck_assert_ptr_nonnull(p);
    for (p++; *p && n < 64; p++)
        if (isxdigit((unsigned char)*p))
            out[n++] = (char)tolower((unsigned char)*p);
    out[n] = '\0';
    ck_assert_int_eq(n, 64);
}

/* ---- The app ---- */

static vg_result *h_who(vg_request *req, void *arg)
{
    const char *s = vg_request_tls_peer_subject(req);
    const char *f = vg_request_tls_peer_fingerprint(req);

    (void)arg;
    if (s == NULL)
        return vg_text(f == NULL ? "none" : "fingerprint without subject");
    return vg_textf("%s|%s", s, f ? f : "no fingerprint");
}

static void start(vg_tls_client_mode mode)
{
    make_files();
    app = tu_app_new();
    ck_assert_int_eq(vg_app_set_tls(app, path_of("server.pem"), path_of("server.key")), 0);
    ck_assert_int_eq(vg_app_set_tls_client_ca(app, path_of("ca.pem"), mode), 0);
    ck_assert_int_eq(vg_map_get(app, "/who", h_who, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);
}

static void teardown(void)
{
    vg_app_free(app);
    app = NULL;
    tu_remove_tree(tmp);
}

/* ---- A client ---- */

typedef struct {
    int code;
    long status;
    char body[1024], headers[2048];
    size_t len, hlen;
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    resp *r = arg;
    size_t add = sz * n, room = sizeof r->body - 1 - r->len;

    add = add < room ? add : room;
    memcpy(r->body + r->len, p, add);
    r->body[r->len += add] = '\0';
    return sz * n;
}

static size_t on_head(char *p, size_t sz, size_t n, void *arg)
{
    resp *r = arg;
    size_t add = sz * n, room = sizeof r->headers - 1 - r->hlen;

    add = add < room ? add : room;
    memcpy(r->headers + r->hlen, p, add);
    r->headers[r->hlen += add] = '\0';
    return sz * n;
}

/* GET /who on `c` presenting client certificate `who` (NULL: none). */
static resp who(CURL *c, const char *name)
{
    resp r;
    char url[64], cert[160], key[160];

    memset(&r, 0, sizeof r);
    snprintf(url, sizeof url, "https://127.0.0.1:%u/who", (unsigned)port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, path_of("server.pem"));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_head);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    if (name != NULL) {
        snprintf(cert, sizeof cert, "%s/%s.pem", tmp, name);
        snprintf(key, sizeof key, "%s/%s.key", tmp, name);
        curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, key);
    }
    r.code = (int)curl_easy_perform(c);
    if (r.code == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    return r;
}

static resp who1(const char *name)
{
    CURL *c = curl_easy_init();
    resp r = who(c, name);

    curl_easy_cleanup(c);
    return r;
}

/* ---- Tests ---- */

START_TEST(test_verified_certificate_reaches_handler)
{
    char fp[65], want[256];
    CURL *c;
    resp r;
    long connects = -1;

    start(VG_TLS_CLIENT_OPTIONAL);
    openssl_fingerprint(path_of("alice.pem"), fp);
    snprintf(want, sizeof want, "CN=alice,O=Volga Test|%s", fp);
    c = curl_easy_init();
    r = who(c, "alice");
    ck_assert_msg(r.code == CURLE_OK, "curl: %s", curl_easy_strerror(r.code));
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, want);
    /* The second request on the connection sees it too. */
    r = who(c, "alice");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, want);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    ck_assert_int_eq(connects, 0);
    curl_easy_cleanup(c);
}
END_TEST

/* Optional mode: served, but nothing unverified is ever reported. */
START_TEST(test_optional_unverified_has_no_subject)
{
    static const char *const names[] = {NULL, "mallory", "expired", "serveronly"};
    size_t i;

    start(VG_TLS_CLIENT_OPTIONAL);
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        resp r = who1(names[i]);
        ck_assert_msg(r.code == CURLE_OK, "%s: curl: %s",
                      names[i] ? names[i] : "no certificate",
                      curl_easy_strerror(r.code));
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(strcmp(r.body, "none") == 0, "%s: %s",
                      names[i] ? names[i] : "no certificate", r.body);
    }
}
END_TEST

/* Required mode: refused 403 and closed, the handler never runs; a good
 * certificate still passes. */
START_TEST(test_required_refuses_unverified)
{
    static const char *const names[] = {NULL, "mallory", "expired", "serveronly"};
    size_t i;
    resp r;

    start(VG_TLS_CLIENT_REQUIRED);
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *n = names[i] ? names[i] : "no certificate";
        r = who1(names[i]);
        ck_assert_msg(r.code == CURLE_OK, "%s: curl: %s", n, curl_easy_strerror(r.code));
        ck_assert_msg(r.status == 403, "%s: %ld %s", n, r.status, r.body);
        ck_assert_msg(strstr(r.body, "none") == NULL, "%s: the handler ran", n);
        ck_assert_ptr_nonnull(strcasestr(r.headers, "Connection: close"));
    }
    r = who1("alice");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "CN=alice,O=Volga Test|"));
}
END_TEST

START_TEST(test_client_ca_configuration_errors)
{
    vg_app *a = tu_app_new();

    make_files();
    /* No vg_app_set_tls yet. */
    ck_assert_int_eq(vg_app_set_tls_client_ca(a, path_of("ca.pem"),
                                              VG_TLS_CLIENT_OPTIONAL), -EINVAL);
    ck_assert_int_eq(vg_app_set_tls(a, path_of("server.pem"), path_of("server.key")), 0);
    ck_assert_int_eq(vg_app_set_tls_client_ca(NULL, path_of("ca.pem"),
                                              VG_TLS_CLIENT_OPTIONAL), -EINVAL);
    ck_assert_int_eq(vg_app_set_tls_client_ca(a, NULL, VG_TLS_CLIENT_OPTIONAL), -EINVAL);
    ck_assert_int_eq(vg_app_set_tls_client_ca(a, path_of("ca.pem"),
                                              (vg_tls_client_mode)9), -EINVAL);
    ck_assert_int_eq(vg_app_set_tls_client_ca(a, path_of("none.pem"),
                                              VG_TLS_CLIENT_OPTIONAL), -ENOENT);
    /* A key is not a certificate. */
    ck_assert_int_eq(vg_app_set_tls_client_ca(a, path_of("ca.key"),
                                              VG_TLS_CLIENT_OPTIONAL), -EINVAL);
    ck_assert_int_eq(vg_app_set_tls_client_ca(a, path_of("ca.pem"),
                                              VG_TLS_CLIENT_REQUIRED), 0);
    ck_assert_int_eq(vg_app_set_tls_client_ca(a, path_of("ca.pem"),
                                              VG_TLS_CLIENT_REQUIRED), -EINVAL);
    tu_start(a);
    ck_assert_int_eq(vg_app_set_tls_client_ca(a, path_of("ca.pem"),
                                              VG_TLS_CLIENT_REQUIRED), -EBUSY);
    vg_app_free(a);
    ck_assert_ptr_null(vg_request_tls_peer_subject(NULL));
    ck_assert_ptr_null(vg_request_tls_peer_fingerprint(NULL));
    tu_remove_tree(tmp);
}
END_TEST

static Suite *mtls_suite(void)
{
    Suite *s = suite_create("mtls");
    TCase *tc = tcase_create("mtls");

    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_verified_certificate_reaches_handler);
    tcase_add_test(tc, test_optional_unverified_has_no_subject);
    tcase_add_test(tc, test_required_refuses_unverified);
    suite_add_tcase(s, tc);
    tc = tcase_create("config");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_client_ca_configuration_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (access("/usr/bin/openssl", X_OK) != 0) {
        fprintf(stderr, "SKIP: test_tls_mtls needs /usr/bin/openssl (apt-get install openssl)\n");
        return 77;
    }
    return tu_main(mtls_suite());
}
