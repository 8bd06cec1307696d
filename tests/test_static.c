/* test_static.c - static files end to end: vg_app_serve_dir and vg_file
 * on a real app, talked to with libcurl (path-as-is) and raw sockets.
 * Traversal in every spelling against a canary file beside the root (with
 * openat2 and with the O_NOFOLLOW walk), the conditional and range matrix
 * byte for byte, directories, precompressed siblings, the SPA fallback, a
 * 10 GiB sparse file, and downloads cut short leaving no descriptor. The
 * parsers have unit tests at the end. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <volga.h>
#include "testutil.h"
#include "web/mime.h"
#include "web/static.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/openat2.h>
#endif

#define ABC "0123456789abcdefghij" /* a.txt: 20 bytes */
#define SPARSE_SIZE (10ULL * 1024 * 1024 * 1024)

static char tmp[64];      /* the test's directory */
static char root[128];    /* served: tmp/root; the canary is tmp/canary.txt */
static bool have_sparse;  /* the 10 GiB file could be made */
static vg_app *app;
static unsigned short port;

/* ---- The tree ---- */

static void put(const char *rel, const char *data)
{
    char p[256];
    int fd;

    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_msg(fd >= 0, "create %s: %s", p, strerror(errno));
    ck_assert_int_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
}

static void link_at(const char *target, const char *rel)
{
    char p[256];

    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    ck_assert_msg(symlink(target, p) == 0, "symlink %s", p);
}

static void make_tree(void)
{
    char p[256];
    int fd;

    snprintf(tmp, sizeof tmp, "/tmp/vg-static.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(root, sizeof root, "%s/root", tmp);
    ck_assert_int_eq(mkdir(root, 0755), 0);
    snprintf(p, sizeof p, "%s/sub", root);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/noindex", root);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/.hidden", root);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    put("canary.txt", "CANARY");
    put("root/a.txt", ABC);
    put("root/index.html", "<p>root index</p>");
    put("root/sub/index.html", "<p>sub index</p>");
    put("root/.secret", "CANARY secret");
    put("root/.hidden/x.txt", "CANARY hidden");
    put("root/app.js", "console.log('identity');");
    put("root/app.js.gz", "GZIP-BYTES");
    put("root/app.js.br", "BROTLI-BYTES");
    put("root/pic.png", "PNG");
    put("root/empty.txt", "");
    put("root/weird name ü.txt", "weird");
    link_at("a.txt", "root/link_in");
    link_at("../canary.txt", "root/link_out");
    link_at("..", "root/dirlink_out");
    link_at("/etc/passwd", "root/link_abs");
    snprintf(p, sizeof p, "%s/fifo", root);
    ck_assert_int_eq(mkfifo(p, 0644), 0);
    snprintf(p, sizeof p, "%s/big.bin", root);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert(fd >= 0);
    have_sparse = ftruncate(fd, (off_t)SPARSE_SIZE) == 0 &&
                  pwrite(fd, "TAIL", 4, (off_t)SPARSE_SIZE - 4) == 4;
    close(fd);
}

static void app_up(const vg_static_options *opt)
{
    make_tree();
    app = tu_app_new();
    ck_assert_int_eq(vg_app_serve_dir_opts(app, "/", root, opt), 0);
    tu_start(app);
    port = vg_app_port(app);
}

static void setup(void)
{
    app_up(NULL);
}

static void setup_walk(void)
{
    vg__static_force_walk = true;
    app_up(NULL);
}

static void setup_spa(void)
{
    vg_static_options o = {0};
    o.spa_fallback = "index.html";
    o.cache_control = "no-cache";
    app_up(&o);
}

static void teardown(void)
{
    vg_app_free(app);
    app = NULL;
    vg__static_force_walk = false;
    tu_remove_tree(tmp);
}

/* ---- Helpers ---- */

/* GET (or HEAD) with extra header lines; returns the response. */
static tu_response req(const char *method, const char *path,
                       const char *h1, const char *h2)
{
    const char *hs[3] = {h1, h1 ? h2 : NULL, NULL};
    return tu_request(port, method, path, NULL, 0, hs);
}

static void expect(const char *path, const char *h1, long status,
                   const char *body)
{
    tu_response r = req("GET", path, h1, NULL);
    long st = r.status;
    bool same = body == NULL || (r.body_len == strlen(body) &&
                                 memcmp(r.body, body, r.body_len) == 0);
    char got[64];

    snprintf(got, sizeof got, "%.*s", (int)(r.body_len < 60 ? r.body_len : 60),
             r.body ? r.body : "");
    tu_response_free(&r);
    ck_assert_msg(st == status, "%s [%s]: status %ld, want %ld", path,
                  h1 ? h1 : "", st, status);
    ck_assert_msg(same, "%s [%s]: body \"%s\", want \"%s\"", path,
                  h1 ? h1 : "", got, body);
}

static char *header_of(const char *method, const char *path, const char *h1,
                       const char *name, long *status)
{
    tu_response r = req(method, path, h1, NULL);
    char *v = tu_header(&r, name);
    *status = r.status;
    tu_response_free(&r);
    return v;
}

static void expect_header(const char *path, const char *h1, const char *name,
                          const char *want)
{
    long st;
    char *v = header_of("GET", path, h1, name, &st);
    bool ok = want ? v && strcmp(v, want) == 0 : v == NULL;
    char got[200];

    snprintf(got, sizeof got, "%s", v ? v : "(none)");
    free(v);
    ck_assert_msg(ok, "%s [%s] %s: \"%s\", want \"%s\"", path, h1 ? h1 : "",
                  name, got, want ? want : "(none)");
}

/* A raw request line (nothing normalised by a client), the answer read
 * whole; returns the status, 0 if none. Asserts no canary in it. */
static int raw_status(const char *target)
{
    char out[8192], buf[16384];
    int fd = tu_connect(port), st = 0;
    size_t n;

    snprintf(out, sizeof out, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             target);
    ck_assert(tu_send_all(fd, out, strlen(out)));
    n = tu_recv_all(fd, buf, sizeof buf);
    close(fd);
    if (n > 12 && strncmp(buf, "HTTP/1.1 ", 9) == 0)
        st = atoi(buf + 9);
    ck_assert_msg(strstr(buf, "CANARY") == NULL, "%s leaked: %s", target, buf);
    return st;
}

/* ---- Basics ---- */

START_TEST(test_file_served_with_headers)
{
    tu_response r = req("GET", "/a.txt", NULL, NULL);
    char *ct = tu_header(&r, "Content-Type"), *et = tu_header(&r, "ETag"),
         *lm = tu_header(&r, "Last-Modified"),
         *ns = tu_header(&r, "X-Content-Type-Options"),
         *ar = tu_header(&r, "Accept-Ranges");

    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, ABC);
    ck_assert_str_eq(ct, "text/plain; charset=utf-8");
    ck_assert(et != NULL && et[0] == '"' && et[strlen(et) - 1] == '"');
    ck_assert(lm != NULL && strstr(lm, " GMT") != NULL);
    ck_assert_str_eq(ns, "nosniff");
    ck_assert_str_eq(ar, "bytes");
    free(ct), free(et), free(lm), free(ns), free(ar);
    tu_response_free(&r);
    expect_header("/index.html", NULL, "Content-Type", "text/html; charset=utf-8");
    expect_header("/pic.png", NULL, "Content-Type", "image/png");
    expect_header("/app.js", NULL, "Content-Type",
                  "text/javascript; charset=utf-8");
    expect("/empty.txt", NULL, 200, "");
    expect("/weird%20name%20%C3%BC.txt", NULL, 200, "weird");
    expect("/missing.txt", NULL, 404, NULL);
}
END_TEST

START_TEST(test_head_has_headers_no_body)
{
    tu_response r = req("HEAD", "/a.txt", NULL, NULL);
    char *cl = tu_header(&r, "Content-Length"), *et = tu_header(&r, "ETag");

    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.body_len, 0);
    ck_assert_str_eq(cl, "20");
    ck_assert_ptr_nonnull(et);
    free(cl), free(et);
    tu_response_free(&r);
}
END_TEST

START_TEST(test_directory_index_and_redirect)
{
    long st;
    char *loc;

    expect("/", NULL, 200, "<p>root index</p>");
    expect("/sub/", NULL, 200, "<p>sub index</p>");
    expect("/noindex/", NULL, 404, NULL);
    loc = header_of("GET", "/sub?x=1", NULL, "Location", &st);
    ck_assert_int_eq(st, 301);
    ck_assert_str_eq(loc, "/sub/?x=1");
    free(loc);
}
END_TEST

/* ---- Never outside the root ---- */

static const char *const escapes[] = {
    "/../canary.txt", "/%2e%2e/canary.txt", "/%2E%2E/canary.txt",
    "/.%2e/canary.txt", "/..%2fcanary.txt", "/..%2Fcanary.txt",
    "/sub/..%2f..%2fcanary.txt", "/%2e%2e%2fcanary.txt",
    "/sub/../../canary.txt", "/..\\canary.txt", "/..%5ccanary.txt",
    "/sub%5c..%5c..%5ccanary.txt", "/link_out", "/dirlink_out/canary.txt",
    "/dirlink_out/root/a.txt", "/link_abs", "/.secret", "/%2esecret",
    "/.hidden/x.txt", "/sub/%2e%2e/.secret", "/a.txt%00", "/%00",
    "//canary.txt", "/./a.txt/../../canary.txt", "/%ff%fe/../canary.txt",
    "/fifo", "/.", "/..", "/%2e", "/%2e%2e",
};

static void check_escapes(void)
{
    char longp[6000];
    size_t i;

    for (i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        tu_response r = req("GET", escapes[i], NULL, NULL);
        bool leaked = r.body && strstr(r.body, "CANARY") != NULL;
        long st = r.status;
        tu_response_free(&r);
        ck_assert_msg(!leaked, "%s served the canary", escapes[i]);
        ck_assert_msg(st >= 400 && st < 500, "%s: status %ld", escapes[i], st);
        st = raw_status(escapes[i]);
        ck_assert_msg(st == 0 || (st >= 400 && st < 500), "%s raw: %ld",
                      escapes[i], st);
    }
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    ck_assert_int_ge(raw_status(longp), 400);
    /* Still answering after all that (the FIFO did not block a thread). */
    expect("/a.txt", NULL, 200, ABC);
}

START_TEST(test_traversal_never_leaves_root)
{
    check_escapes();
}
END_TEST

/* Whether the kernel has openat2 (else both setups walk). */
static bool have_openat2(void)
{
#if defined(SYS_openat2) && defined(RESOLVE_BENEATH)
    struct open_how how = {.flags = O_RDONLY, .resolve = RESOLVE_BENEATH};
    long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof how);
    if (fd >= 0)
        close((int)fd);
    return fd >= 0;
#else
    return false;
#endif
}

START_TEST(test_symlink_inside_root_served)
{
    if (!have_openat2()) {
        fprintf(stderr, "test_static: no openat2 here: inner symlinks are "
                        "refused by the walk (tested in the walk case)\n");
        expect("/link_in", NULL, 404, NULL);
        return;
    }
    expect("/link_in", NULL, 200, ABC);
}
END_TEST

START_TEST(test_walk_refuses_every_symlink)
{
    expect("/link_in", NULL, 404, NULL);
    expect("/sub/index.html", NULL, 200, "<p>sub index</p>");
    check_escapes();
}
END_TEST

/* ---- Conditionals ---- */

static char *etag_of(const char *path)
{
    long st;
    char *v = header_of("GET", path, NULL, "ETag", &st);
    ck_assert_int_eq(st, 200);
    ck_assert_ptr_nonnull(v);
    return v;
}

START_TEST(test_conditional_matrix)
{
    char *et = etag_of("/a.txt"), h[300], h2[300];
    long st;
    char *lm = header_of("GET", "/a.txt", NULL, "Last-Modified", &st);
    tu_response r;

    snprintf(h, sizeof h, "If-None-Match: %s", et);
    r = req("GET", "/a.txt", h, NULL);
    ck_assert_int_eq(r.status, 304);
    ck_assert_int_eq(r.body_len, 0);
    {
        char *e2 = tu_header(&r, "ETag");
        ck_assert_str_eq(e2, et);
        free(e2);
    }
    tu_response_free(&r);
    snprintf(h, sizeof h, "If-None-Match: \"x\", W/%s", et);
    expect("/a.txt", h, 304, ""); /* weak comparison for If-None-Match */
    expect("/a.txt", "If-None-Match: *", 304, "");
    /* If-None-Match takes precedence over a matching If-Modified-Since. */
    snprintf(h2, sizeof h2, "If-Modified-Since: %s", lm);
    r = req("GET", "/a.txt", "If-None-Match: \"other\"", h2);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, ABC);
    tu_response_free(&r);
    expect("/a.txt", h2, 304, "");
    expect("/a.txt", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT", 200, ABC);
    expect("/a.txt", "If-Modified-Since: yesterday", 200, ABC);
    expect("/a.txt", "If-Match: \"nope\"", 412, NULL);
    snprintf(h, sizeof h, "If-Match: %s", et);
    expect("/a.txt", h, 200, ABC);
    expect("/a.txt", "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT", 412, NULL);
    free(et);
    free(lm);
}
END_TEST

/* ---- Ranges ---- */

static void expect_range(const char *range, long status, const char *body,
                         const char *crange)
{
    char h[200];

    snprintf(h, sizeof h, "Range: %s", range);
    expect("/a.txt", h, status, body);
    expect_header("/a.txt", h, "Content-Range", crange);
}

START_TEST(test_range_matrix)
{
    char *et = etag_of("/a.txt"), h[300];
    long st;
    char *lm = header_of("GET", "/a.txt", NULL, "Last-Modified", &st);
    tu_response r;

    expect_range("bytes=0-4", 206, "01234", "bytes 0-4/20");
    expect_range("bytes=15-", 206, "fghij", "bytes 15-19/20");
    expect_range("bytes=-3", 206, "hij", "bytes 17-19/20");
    expect_range("bytes=-300", 206, ABC, "bytes 0-19/20");
    expect_range("bytes=5-100", 206, "56789abcdefghij", "bytes 5-19/20");
    expect_range("bytes=19-19", 206, "j", "bytes 19-19/20");
    expect_range("bytes=20-", 416, NULL, "bytes */20");
    expect_range("bytes=-0", 416, NULL, "bytes */20");
    expect_range("bytes=0-1,5-6", 200, ABC, NULL);
    expect_range("bytes=x", 200, ABC, NULL);
    expect_range("bytes=5-2", 200, ABC, NULL);
    expect_range("items=0-1", 200, ABC, NULL);
    expect_range("bytes=99999999999999999999999-", 200, ABC, NULL);
    /* If-Range: the range only while the client's copy is current. */
    snprintf(h, sizeof h, "If-Range: %s", et);
    r = req("GET", "/a.txt", "Range: bytes=0-1", h);
    ck_assert_int_eq(r.status, 206);
    ck_assert_str_eq(r.body, "01");
    tu_response_free(&r);
    r = req("GET", "/a.txt", "Range: bytes=0-1", "If-Range: \"stale\"");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, ABC);
    tu_response_free(&r);
    snprintf(h, sizeof h, "If-Range: %s", lm);
    r = req("GET", "/a.txt", "Range: bytes=2-3", h);
    ck_assert_int_eq(r.status, 206);
    ck_assert_str_eq(r.body, "23");
    tu_response_free(&r);
    r = req("GET", "/a.txt", "Range: bytes=2-3",
            "If-Range: Sat, 01 Jan 2000 00:00:00 GMT");
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    /* HEAD with a range: the 206's headers, no body. */
    r = req("HEAD", "/a.txt", "Range: bytes=0-4", NULL);
    ck_assert_int_eq(r.status, 206);
    ck_assert_int_eq(r.body_len, 0);
    {
        char *cl = tu_header(&r, "Content-Length");
        ck_assert_str_eq(cl, "5");
        free(cl);
    }
    tu_response_free(&r);
    expect("/empty.txt", "Range: bytes=0-", 416, NULL);
    free(et);
    free(lm);
}
END_TEST

START_TEST(test_sparse_10gib_tail_range)
{
    tu_response r;
    char *cr;

    ck_assert_msg(have_sparse, "could not make a 10 GiB sparse file in /tmp");
    r = req("GET", "/big.bin", "Range: bytes=-4", NULL);
    cr = tu_header(&r, "Content-Range");
    ck_assert_int_eq(r.status, 206);
    ck_assert_int_eq(r.body_len, 4);
    ck_assert(memcmp(r.body, "TAIL", 4) == 0);
    ck_assert_str_eq(cr, "bytes 10737418236-10737418239/10737418240");
    free(cr);
    tu_response_free(&r);
    r = req("GET", "/big.bin", "Range: bytes=10737418238-", NULL);
    ck_assert_int_eq(r.status, 206);
    ck_assert_int_eq(r.body_len, 2);
    ck_assert(memcmp(r.body, "IL", 2) == 0);
    tu_response_free(&r);
    r = req("HEAD", "/big.bin", NULL, NULL);
    cr = tu_header(&r, "Content-Length");
    ck_assert_str_eq(cr, "10737418240");
    free(cr);
    tu_response_free(&r);
}
END_TEST

/* ---- No descriptor left behind ---- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

START_TEST(test_cut_downloads_leave_no_fd)
{
    int before, i, fds[16];
    char buf[65536];
    double until;

    ck_assert_msg(have_sparse, "could not make a 10 GiB sparse file in /tmp");
    expect("/a.txt", NULL, 200, ABC); /* every event thread warmed up */
    before = count_fds();
    for (i = 0; i < 16; i++) {
        const char *get = "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
        fds[i] = tu_connect(port);
        ck_assert(tu_send_all(fds[i], get, strlen(get)));
        ck_assert_int_gt(recv(fds[i], buf, sizeof buf, MSG_WAITALL), 0);
    }
    for (i = 0; i < 16; i++) {
        if (i % 2)
            tu_close_rst(fds[i]);
        else
            close(fds[i]);
    }
    /* The server's sockets and the files' descriptors must all go. */
    until = tu_now_ms() + 10000;
    while (count_fds() > before && tu_now_ms() < until)
        usleep(2000);
    ck_assert_int_le(count_fds(), before);
    expect("/a.txt", NULL, 200, ABC);
}
END_TEST

/* ---- Precompressed siblings ---- */

START_TEST(test_precompressed_siblings)
{
    expect("/app.js", "Accept-Encoding: gzip, br", 200, "BROTLI-BYTES");
    expect_header("/app.js", "Accept-Encoding: gzip, br", "Content-Encoding", "br");
    expect("/app.js", "Accept-Encoding: gzip", 200, "GZIP-BYTES");
    expect_header("/app.js", "Accept-Encoding: gzip", "Content-Encoding", "gzip");
    expect("/app.js", "Accept-Encoding: br;q=0, gzip;q=0.5", 200, "GZIP-BYTES");
    expect("/app.js", "Accept-Encoding: *;q=0", 200, "console.log('identity');");
    expect("/app.js", "Accept-Encoding: *", 200, "BROTLI-BYTES");
    expect("/app.js", NULL, 200, "console.log('identity');");
    expect_header("/app.js", NULL, "Content-Encoding", NULL);
    expect_header("/app.js", NULL, "Vary", "Accept-Encoding");
    expect_header("/app.js", "Accept-Encoding: gzip", "Vary", "Accept-Encoding");
    /* The sibling keeps the original's type. */
    expect_header("/app.js", "Accept-Encoding: gzip", "Content-Type",
                  "text/javascript; charset=utf-8");
    /* Images are not compressible: no sibling lookup, no Vary. */
    expect_header("/pic.png", "Accept-Encoding: gzip", "Vary", NULL);
}
END_TEST

/* ---- Options, groups, vg_file ---- */

START_TEST(test_spa_fallback_and_cache_control)
{
    expect("/some/client/route", NULL, 200, "<p>root index</p>");
    expect("/.secret", NULL, 404, NULL);
    expect("/../canary.txt", NULL, 404, NULL);
    expect_header("/a.txt", NULL, "Cache-Control", "no-cache");
    expect_header("/pic.png", NULL, "Cache-Control", "no-cache");
}
END_TEST

static vg_result *h_file(vg_request *rq, void *arg)
{
    char p[256];

    snprintf(p, sizeof p, "%s/%s", root, vg_request_param(rq, "name"));
    return vg_file(rq, p, arg);
}

START_TEST(test_vg_file_and_group)
{
    vg_app *a2;
    vg_group *g;
    unsigned short p2;
    unsigned short saved = port;
    char *ct;
    long st;

    make_tree();
    a2 = tu_app_new();
    g = vg_app_group(a2, "/assets");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(vg_group_serve_dir(g, "/", root, NULL), 0);
    ck_assert_int_eq(vg_map_get(a2, "/f/{name}", h_file, NULL), 0);
    ck_assert_int_eq(vg_map_get(a2, "/typed/{name}", h_file, "application/x-test"), 0);
    ck_assert_int_eq(vg_app_serve_dir(a2, "/bad", "/nonexistent/dir"), -ENOENT);
    ck_assert_int_eq(vg_app_serve_dir(a2, "nope", root), -EINVAL);
    tu_start(a2);
    port = p2 = vg_app_port(a2);
    expect("/assets/a.txt", NULL, 200, ABC);
    expect("/assets/../canary.txt", NULL, 404, NULL);
    expect("/f/a.txt", "Range: bytes=1-2", 206, "12");
    expect("/f/missing", NULL, 404, NULL);
    expect("/f/fifo", NULL, 404, NULL);
    ct = header_of("GET", "/typed/a.txt", NULL, "Content-Type", &st);
    ck_assert_int_eq(st, 200);
    ck_assert_str_eq(ct, "application/x-test");
    free(ct);
    ck_assert_ptr_null(vg_file(NULL, "/x", NULL));
    vg_app_free(a2);
    port = saved;
    (void)p2;
    tu_remove_tree(tmp);
}
END_TEST

/* ---- Parsers ---- */

START_TEST(test_range_parse_unit)
{
    unsigned long long a = 7, b = 7;

    ck_assert_int_eq(vg__range_parse(NULL, 10, &a, &b), VG__RANGE_WHOLE);
    ck_assert_int_eq(vg__range_parse("bytes=0-0", 10, &a, &b), VG__RANGE_ONE);
    ck_assert(a == 0 && b == 0);
    ck_assert_int_eq(vg__range_parse(" bytes= 3 - ", 10, &a, &b), VG__RANGE_WHOLE);
    ck_assert_int_eq(vg__range_parse("bytes=3-", 10, &a, &b), VG__RANGE_ONE);
    ck_assert(a == 3 && b == 9);
    ck_assert_int_eq(vg__range_parse("bytes=-", 10, &a, &b), VG__RANGE_WHOLE);
    ck_assert_int_eq(vg__range_parse("bytes=10-", 10, &a, &b),
                     VG__RANGE_UNSATISFIABLE);
    ck_assert_int_eq(vg__range_parse("bytes=-1", 0, &a, &b),
                     VG__RANGE_UNSATISFIABLE);
    ck_assert_int_eq(vg__range_parse("bytes=18446744073709551615-", 10, &a, &b),
                     VG__RANGE_UNSATISFIABLE);
    ck_assert_int_eq(vg__range_parse("bytes=18446744073709551616-", 10, &a, &b),
                     VG__RANGE_WHOLE);
}
END_TEST

START_TEST(test_etag_and_accept_unit)
{
    ck_assert(vg__etag_match("\"a\", \"b\"", "\"b\"", false));
    ck_assert(!vg__etag_match("W/\"b\"", "\"b\"", false));
    ck_assert(vg__etag_match("W/\"b\"", "\"b\"", true));
    ck_assert(!vg__etag_match("\"a", "\"a\"", true));
    ck_assert(!vg__etag_match("", "\"a\"", true));
    ck_assert_int_eq(vg__accept_q("gzip;q=0.5, br", "gzip"), 500);
    ck_assert_int_eq(vg__accept_q("gzip;q=0.5, br", "br"), 1000);
    ck_assert_int_eq(vg__accept_q("gzip;q=0.5, br", "zstd"), -1);
    ck_assert_int_eq(vg__accept_q("*;q=0.1", "zstd"), 100);
    ck_assert_int_eq(vg__accept_q("GZIP;Q=0", "gzip"), 0);
    ck_assert_int_eq(vg__accept_q("gzip;q=2", "gzip"), -1);
    ck_assert_int_eq(vg__accept_q("gzip;q=0.333", "gzip"), 333);
    ck_assert_int_eq(vg__accept_q("gzip;level=1", "gzip"), -1);
    ck_assert_int_eq(vg__accept_q(NULL, "gzip"), -1);
    ck_assert_str_eq(vg__mime_for("X.CSS"), "text/css; charset=utf-8");
    ck_assert_str_eq(vg__mime_for("noext"), "application/octet-stream");
    ck_assert_str_eq(vg__mime_for("dir.d/noext"), "application/octet-stream");
    if (access("/etc/mime.types", R_OK) == 0)
        ck_assert_str_eq(vg__mime_for("doc.odt"),
                         "application/vnd.oasis.opendocument.text");
    else
        fprintf(stderr, "test_static: no /etc/mime.types (media-types): "
                        "system table not checked\n");
    ck_assert(vg__mime_compressible("application/problem+json"));
    ck_assert(vg__mime_compressible("image/svg+xml"));
    ck_assert(!vg__mime_compressible("text/event-stream"));
    ck_assert(!vg__mime_compressible("image/png"));
}
END_TEST

/* ---- Suite ---- */

static TCase *tcase(const char *name, void (*up)(void), int timeout)
{
    TCase *tc = tcase_create(name);

    if (up != NULL)
        tcase_add_checked_fixture(tc, up, teardown);
    tcase_set_timeout(tc, timeout);
    return tc;
}

static Suite *static_suite(void)
{
    Suite *s = suite_create("static");
    TCase *tc;

    tc = tcase("files", setup, 60);
    tcase_add_test(tc, test_file_served_with_headers);
    tcase_add_test(tc, test_head_has_headers_no_body);
    tcase_add_test(tc, test_directory_index_and_redirect);
    tcase_add_test(tc, test_traversal_never_leaves_root);
    tcase_add_test(tc, test_symlink_inside_root_served);
    tcase_add_test(tc, test_conditional_matrix);
    tcase_add_test(tc, test_range_matrix);
    tcase_add_test(tc, test_sparse_10gib_tail_range);
    tcase_add_test(tc, test_cut_downloads_leave_no_fd);
    tcase_add_test(tc, test_precompressed_siblings);
    suite_add_tcase(s, tc);

    tc = tcase("walk", setup_walk, 60);
    tcase_add_test(tc, test_walk_refuses_every_symlink);
    suite_add_tcase(s, tc);

    tc = tcase("options", setup_spa, 60);
    tcase_add_test(tc, test_spa_fallback_and_cache_control);
    suite_add_tcase(s, tc);

    tc = tcase("api", NULL, 60);
    tcase_add_test(tc, test_vg_file_and_group);
    tcase_add_test(tc, test_range_parse_unit);
    tcase_add_test(tc, test_etag_and_accept_unit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(static_suite());
}
