/* test_tls_peers.c - libvolga's HTTPS with other implementations and under
 * a reload: Python's ssl module as a client (certificate and host name
 * verified), nginx (Debian's, started and stopped here on loopback)
 * proxying to libvolga as an HTTPS upstream with proxy_ssl_verify on (and
 * failing, 502, when it trusts another certificate), and a certificate
 * reload while 100 keep-alive TLS connections stay up: all 100 answer again
 * on the same sessions, still showing the old certificate, while a new
 * handshake shows the new one. A missing python3 or nginx leaves its test
 * out with a message, and the program then exits 77 (SKIP) if the rest
 * passed. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <volga.h>
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"
#define NGINX "/usr/sbin/nginx"
#define NCONN 100

static char tmp[64], cert1[128], key1[128], cert2[128], key2[128];
static vg_app *app;
static unsigned short port;
static int skipped; /* tests left out: their tool is missing */

static vg_result *h_hello(vg_request *req, void *arg)
{
    (void)arg;
    return vg_textf("hello %s", vg_request_target(req));
}

static void setup(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/vg-tlspeers.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(cert1, sizeof cert1, "%s/cert1.pem", tmp);
    snprintf(key1, sizeof key1, "%s/key1.pem", tmp);
    snprintf(cert2, sizeof cert2, "%s/cert2.pem", tmp);
    snprintf(key2, sizeof key2, "%s/key2.pem", tmp);
    ck_assert_msg(tu_make_cert(cert1, key1, "one"), "openssl req failed");
    ck_assert_msg(tu_make_cert(cert2, key2, "two"), "openssl req failed");
    app = tu_app_new();
    ck_assert_int_eq(vg_app_set_tls(app, cert1, key1), 0);
    ck_assert_int_eq(vg_app_set_fallback(app, h_hello, NULL), 0);
    tu_start(app);
    port = vg_app_port(app);
}

static void teardown(void)
{
    vg_app_free(app);
    app = NULL;
    tu_remove_tree(tmp);
}

/* Runs argv with stdout and stderr into `out` (NUL-terminated); returns
 * the exit code, or -1 if it did not exit within 20 s. */
static int run_capture(char *const argv[], char *out, size_t cap)
{
    char path[128];
    int fd, st;
    ssize_t n;
    pid_t pid;

    snprintf(path, sizeof path, "%s/out.txt", tmp);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert(fd >= 0);
    pid = tu_spawn(argv, -1, fd, fd);
    ck_assert(pid > 0);
    if (!tu_wait_exit(pid, 20000, &st)) {
        tu_stop_child(pid, SIGKILL, 1000);
        st = -1;
    }
    n = pread(fd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* ---- Python's ssl ---- */

static const char py_client[] =
    "import socket, ssl, sys\n"
    "port, ca = int(sys.argv[1]), sys.argv[2]\n"
    "ctx = ssl.create_default_context(cafile=ca)\n"
    "with socket.create_connection(('127.0.0.1', port), timeout=10) as raw:\n"
    "    with ctx.wrap_socket(raw, server_hostname='localhost') as s:\n"
    "        s.sendall(b'GET /py?x=1 HTTP/1.1\\r\\nHost: localhost\\r\\n'\n"
    "                  b'Connection: close\\r\\n\\r\\n')\n"
    "        data = b''\n"
    "        while True:\n"
    "            chunk = s.recv(4096)\n"
    "            if not chunk:\n"
    "                break\n"
    "            data += chunk\n"
    "        print(s.version())\n"
    "        sys.stdout.write(data.decode())\n";

START_TEST(test_python_ssl_client)
{
    char portstr[8], out[4096];
    char *argv[] = {PYTHON, "-c", (char *)py_client, portstr, cert1, NULL};
    int rc;

    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    rc = run_capture(argv, out, sizeof out);
    ck_assert_msg(rc == 0, "python3 exited %d:\n%s", rc, out);
    ck_assert_msg(strncmp(out, "TLSv1.3\n", 8) == 0 || strncmp(out, "TLSv1.2\n", 8) == 0,
                  "%s", out);
    ck_assert_msg(strstr(out, "HTTP/1.1 200 OK\r\n") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "\r\n\r\nhello /py?x=1") != NULL, "%s", out);
    /* Python refuses the server when it trusts another certificate. */
    argv[4] = cert2;
    rc = run_capture(argv, out, sizeof out);
    ck_assert_msg(rc != 0 && strstr(out, "CERTIFICATE_VERIFY_FAILED") != NULL,
                  "python3 trusted the wrong certificate (%d):\n%s", rc, out);
}
END_TEST

/* ---- nginx in front, libvolga as its HTTPS upstream ---- */

static unsigned short free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void write_nginx_conf(const char *dir, unsigned short listen)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/nginx.conf", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "daemon off;\nmaster_process off;\npid %s/nginx.pid;\n"
            "error_log %s/error.log info;\nevents { worker_connections 64; }\n"
            "http {\n"
            "    access_log %s/access.log;\n"
            "    client_body_temp_path %s/cb; proxy_temp_path %s/px;\n"
            "    fastcgi_temp_path %s/fc; uwsgi_temp_path %s/uw; scgi_temp_path %s/sc;\n"
            "    upstream volga { server 127.0.0.1:%u; keepalive 4; }\n"
            /* Its own upstream: no connection or session verified for
             * the other location is reused here. */
            "    upstream volga_untrusted { server 127.0.0.1:%u; }\n"
            "    server {\n"
            "        listen 127.0.0.1:%u;\n"
            "        proxy_http_version 1.1;\n"
            "        proxy_set_header Connection \"\";\n"
            "        proxy_ssl_verify on;\n"
            "        proxy_ssl_name localhost;\n"
            "        proxy_ssl_server_name on;\n"
            "        proxy_ssl_session_reuse on;\n"
            "        location / {\n"
            "            proxy_pass https://volga;\n"
            "            proxy_ssl_trusted_certificate %s;\n"
            "        }\n"
            "        location /untrusted/ {\n"
            "            proxy_pass https://volga_untrusted;\n"
            "            proxy_ssl_session_reuse off;\n"
            "            proxy_ssl_trusted_certificate %s;\n"
            "        }\n"
            "    }\n"
            "}\n",
            dir, dir, dir, dir, dir, dir, dir, dir, (unsigned)port,
            (unsigned)port, (unsigned)listen, cert1, cert2);
    ck_assert_int_eq(fclose(f), 0);
}

static pid_t read_pid(const char *dir)
{
    char path[256];
    long pid = 0;
    FILE *f;

    snprintf(path, sizeof path, "%s/nginx.pid", dir);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

/* Starts nginx on `*listen` and waits until it has written its pid file
 * (which it does once it listens), watching the directory with inotify.
 * Returns its pid, or 0 if it exited first (port taken: try another). */
static pid_t try_nginx(const char *dir, unsigned short *listen)
{
    char conf[256], prefix[256], elog[256], out[256];
    char *argv[] = {NGINX, "-p", prefix, "-c", conf, "-e", elog, NULL};
    double deadline = tu_now_ms() + 20000;
    int fd, ino, st;
    pid_t pid;

    *listen = free_port();
    write_nginx_conf(dir, *listen);
    snprintf(prefix, sizeof prefix, "%s/", dir);
    snprintf(conf, sizeof conf, "%s/nginx.conf", dir);
    snprintf(elog, sizeof elog, "%s/error.log", dir);
    snprintf(out, sizeof out, "%s/stderr.log", dir);
    ino = inotify_init1(IN_CLOEXEC);
    ck_assert_int_ge(ino, 0);
    ck_assert_int_ge(inotify_add_watch(ino, dir, IN_CLOSE_WRITE | IN_MOVED_TO), 0);
    fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    pid = tu_spawn(argv, -1, fd, fd);
    close(fd);
    ck_assert_msg(pid > 0, "cannot start nginx: %s", strerror(errno));
    for (;;) {
        struct pollfd p = {ino, POLLIN, 0};
        char ev[4096] __attribute__((aligned(8)));

        if (read_pid(dir) == pid)
            break;
        if (tu_wait_exit(pid, 0, &st)) {
            pid = 0;
            break;
        }
        ck_assert_msg(tu_now_ms() < deadline, "nginx did not start in 20 s");
        /* The pid file or nginx's exit (its stderr.log closed) wakes us; a
         * bound on the wait covers an exit that closes nothing. */
        if (poll(&p, 1, 100) == 1 && read(ino, ev, sizeof ev) < 0)
            ck_assert_int_eq(errno, EINTR);
    }
    close(ino);
    return pid;
}

/* GET http://127.0.0.1:listen`path` over a plain socket; the status. */
static int plain_get(unsigned short listen, const char *path, char *buf, size_t cap)
{
    char req[256];
    int fd = tu_connect(listen), status = 0;

    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
             path);
    ck_assert(tu_send_all(fd, req, strlen(req)));
    tu_recv_all(fd, buf, cap);
    close(fd);
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        status = 0;
    return status;
}

START_TEST(test_nginx_proxies_to_https_upstream)
{
    char dir[128], buf[4096];
    unsigned short listen = 0;
    pid_t pid = 0;
    int tries, i;

    snprintf(dir, sizeof dir, "%s/nginx", tmp);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    for (tries = 0; tries < 5 && pid == 0; tries++)
        pid = try_nginx(dir, &listen);
    ck_assert_msg(pid > 0, "nginx would not start");
    /* Several requests: over nginx's kept upstream connection too. */
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(plain_get(listen, "/via/nginx?i=1", buf, sizeof buf), 200);
        ck_assert_msg(strstr(buf, "\r\n\r\nhello /via/nginx?i=1") != NULL, "%s", buf);
    }
    /* Trusting another certificate, nginx refuses the upstream: 502. */
    ck_assert_int_eq(plain_get(listen, "/untrusted/x", buf, sizeof buf), 502);
    ck_assert_int_eq(tu_stop_child(pid, SIGQUIT, 10000), 0);
    {
        /* nginx logged why: the upstream certificate did not verify. */
        char log[256], text[65536] = "";
        int fd;
        ssize_t n;
        snprintf(log, sizeof log, "%s/error.log", dir);
        fd = open(log, O_RDONLY);
        ck_assert(fd >= 0);
        n = read(fd, text, sizeof text - 1);
        close(fd);
        text[n > 0 ? n : 0] = '\0';
        ck_assert_msg(strstr(text, "upstream SSL certificate verify error") != NULL,
                      "nginx's log:\n%s", text);
    }
}
END_TEST

/* ---- Reload under 100 kept connections ---- */

typedef struct {
    int fd;
    gnutls_session_t s;
} kept;

static gnutls_certificate_credentials_t cred;

static void kept_open(kept *k)
{
    int rc, one = 1;

    k->fd = tu_connect(port);
    /* As curl does: else Nagle holds the request behind the client's
     * Finished until the server's delayed ACK, 40 ms per connection. */
    ck_assert_int_eq(setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    ck_assert_int_eq(gnutls_init(&k->s, GNUTLS_CLIENT), 0);
    gnutls_set_default_priority(k->s);
    gnutls_credentials_set(k->s, GNUTLS_CRD_CERTIFICATE, cred);
    gnutls_transport_set_int(k->s, k->fd);
    do
        rc = gnutls_handshake(k->s);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    ck_assert_msg(rc == 0, "handshake: %s", gnutls_strerror(rc));
}

/* One keep-alive request on the session; fails the test unless the whole
 * 200 answer with the expected body comes back. */
static void kept_get(kept *k, int i)
{
    char req[128], want[64], buf[2048];
    size_t len = 0;
    const char *body;

    snprintf(req, sizeof req, "GET /k/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
    snprintf(want, sizeof want, "hello /k/%d", i);
    ck_assert_int_eq(gnutls_record_send(k->s, req, strlen(req)), (ssize_t)strlen(req));
    for (;;) {
        ssize_t n = gnutls_record_recv(k->s, buf + len, sizeof buf - 1 - len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        ck_assert_msg(n > 0, "connection %d: %s", i, n < 0 ? gnutls_strerror((int)n) : "closed");
        len += (size_t)n;
        buf[len] = '\0';
        body = strstr(buf, "\r\n\r\n");
        if (body != NULL && strlen(body + 4) >= strlen(want))
            break;
    }
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
    ck_assert_str_eq(body + 4, want);
    ck_assert_ptr_null(strcasestr(buf, "Connection: close"));
}

/* The CN of the server certificate the session got. */
static void peer_cn(gnutls_session_t s, char *out, size_t cap)
{
    unsigned n = 0;
    const gnutls_datum_t *der = gnutls_certificate_get_peers(s, &n);
    gnutls_x509_crt_t crt;

    ck_assert(der != NULL && n > 0);
    ck_assert_int_eq(gnutls_x509_crt_init(&crt), 0);
    ck_assert_int_eq(gnutls_x509_crt_import(crt, &der[0], GNUTLS_X509_FMT_DER), 0);
    ck_assert_int_eq(gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                                   0, out, &cap), 0);
    gnutls_x509_crt_deinit(crt);
}

START_TEST(test_reload_keeps_100_connections)
{
    static kept k[NCONN];
    kept fresh;
    char cn[64];
    int i;
    vg_load ld;

    ck_assert_int_eq(gnutls_certificate_allocate_credentials(&cred), 0);
    for (i = 0; i < NCONN; i++) {
        kept_open(&k[i]);
        kept_get(&k[i], i);
    }
    /* Renew: the configured files now hold certificate "two". */
    ck_assert_int_eq(rename(cert2, cert1), 0);
    ck_assert_int_eq(rename(key2, key1), 0);
    ck_assert_int_eq(vg_app_reload_tls(app), 0);
    /* Every kept connection answers again, on the same session. */
    for (i = 0; i < NCONN; i++) {
        kept_get(&k[i], NCONN + i);
        peer_cn(k[i].s, cn, sizeof cn);
        ck_assert_str_eq(cn, "one");
    }
    vg_app_load(app, &ld);
    ck_assert_uint_ge(ld.connections, NCONN);
    /* A new handshake gets the new certificate. */
    kept_open(&fresh);
    peer_cn(fresh.s, cn, sizeof cn);
    ck_assert_str_eq(cn, "two");
    kept_get(&fresh, 7);
    for (i = 0; i < NCONN; i++) {
        gnutls_deinit(k[i].s);
        close(k[i].fd);
    }
    gnutls_deinit(fresh.s);
    close(fresh.fd);
    gnutls_certificate_free_credentials(cred);
}
END_TEST

static Suite *peers_suite(void)
{
    Suite *s = suite_create("tls_peers");
    TCase *tc = tcase_create("peers");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    if (access(PYTHON, X_OK) == 0) {
        tcase_add_test(tc, test_python_ssl_client);
    } else {
        fprintf(stderr, "SKIP: test_python_ssl_client needs %s (apt-get install python3)\n",
                PYTHON);
        skipped++;
    }
    if (access(NGINX, X_OK) == 0) {
        tcase_add_test(tc, test_nginx_proxies_to_https_upstream);
    } else {
        fprintf(stderr, "SKIP: test_nginx_proxies_to_https_upstream needs %s "
                        "(apt-get install nginx)\n", NGINX);
        skipped++;
    }
    tcase_add_test(tc, test_reload_keeps_100_connections);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (access("/usr/bin/openssl", X_OK) != 0) {
        fprintf(stderr, "SKIP: test_tls_peers needs /usr/bin/openssl (apt-get install openssl)\n");
        return 77;
    }
    {
        int rc = tu_main(peers_suite());
        return rc == 0 && skipped > 0 ? 77 : rc;
    }
}
