/* test_samples.c - the samples as users run them: samples/todo started as
 * a process, driven over HTTP (201 + Location, 200, 204, 400, 404), then
 * stopped with SIGTERM, exiting 0; samples/hello; samples/api (groups, a
 * bearer-token middleware, problem documents, a fallback); samples/convert
 * (a child process group stopped when the client leaves); samples/session
 * (CORS across two ports, a signed session cookie, Basic auth, a
 * rate-limited login, /metrics, /livez and /readyz);
 * samples/upload (a form with several files and a note, the list with
 * sizes and SHA-256 sums, downloads). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <time.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <volga.h>
#include "testutil.h"


static const char *const json_hdr[] = {"Content-Type: application/json", NULL};

START_TEST(todo_crud)
{
    tu_sample s;
    tu_response r;
    json_t *j;
    char *loc, path[64];

    tu_sample_start(&s, "todo", false);
    r = tu_request(s.port, "POST", "/todos", "{\"title\":\"milk\"}", 16, json_hdr);
    ck_assert_int_eq(r.status, 201);
    loc = tu_header(&r, "Location");
    ck_assert_ptr_nonnull(loc);
    j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "title")), "milk");
    ck_assert(json_is_false(json_object_get(j, "done")));
    snprintf(path, sizeof path, "/todos/%s",
             json_string_value(json_object_get(j, "id")));
    ck_assert_str_eq(loc, path);
    json_decref(j);
    free(loc);
    tu_response_free(&r);

    r = tu_get(s.port, path);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_get(s.port, "/todos");
    ck_assert_int_eq(r.status, 200);
    j = json_loads(r.body, 0, NULL);
    ck_assert_uint_eq(json_array_size(j), 1);
    json_decref(j);
    tu_response_free(&r);

    r = tu_request(s.port, "PUT", path, "{\"title\":\"oat milk\",\"done\":true}",
                   32, json_hdr);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"done\":true"));
    tu_response_free(&r);

    r = tu_request(s.port, "POST", "/todos", "{nope", 5, json_hdr);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);
    r = tu_request(s.port, "POST", "/todos", "{\"title\":5}", 11, json_hdr);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);

    r = tu_request(s.port, "DELETE", path, NULL, 0, NULL);
    ck_assert_int_eq(r.status, 204);
    tu_response_free(&r);
    r = tu_get(s.port, path);
    ck_assert_int_eq(r.status, 404);
    tu_response_free(&r);
    r = tu_request(s.port, "DELETE", path, NULL, 0, NULL);
    ck_assert_int_eq(r.status, 404);
    tu_response_free(&r);
    r = tu_request(s.port, "PATCH", "/todos", NULL, 0, NULL);
    ck_assert_int_eq(r.status, 405);
    tu_response_free(&r);
    tu_sample_stop(&s);
}
END_TEST

START_TEST(hello_answers_text_and_json)
{
    tu_sample s;
    tu_response r;

    tu_sample_start(&s, "hello", false);
    r = tu_get(s.port, "/hello/Ada");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "Hello, Ada!");
    tu_response_free(&r);
    r = tu_get(s.port, "/json");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"message\":\"Hello, World!\",\"answer\":42}");
    tu_response_free(&r);
    r = tu_request(s.port, "POST", "/echo", "not json", 8, NULL);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);
    tu_sample_stop(&s);
}
END_TEST

/* The member `name` of a problem document body, or NULL. */
static const char *problem_member(json_t *doc, const char *name)
{
    return json_string_value(json_object_get(doc, name));
}

START_TEST(api_groups_auth_and_problems)
{
    static const char *const bearer[] = {"Authorization: Bearer s3cret", NULL};
    tu_sample s;
    tu_response r;
    json_t *j;
    char *h;

    tu_sample_start(&s, "api", false);
    r = tu_request(s.port, "POST", "/api/v1/users", "{\"name\":\"Ada\"}", 14,
                   json_hdr);
    ck_assert_int_eq(r.status, 201);
    h = tu_header(&r, "Location");
    ck_assert_str_eq(h, "/api/v1/users/1");
    free(h);
    /* The timing middleware decorates every answer. */
    h = tu_header(&r, "Server-Timing");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(strncmp(h, "app;dur=", 8), 0);
    free(h);
    tu_response_free(&r);

    r = tu_get(s.port, "/api/v1/users/1");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"id\":1,\"name\":\"Ada\"}");
    tu_response_free(&r);

    /* The admin group's middleware answers without its token. */
    r = tu_get(s.port, "/api/v1/admin/stats");
    ck_assert_int_eq(r.status, 401);
    h = tu_header(&r, "Content-Type");
    ck_assert_str_eq(h, "application/problem+json");
    free(h);
    h = tu_header(&r, "WWW-Authenticate");
    ck_assert_str_eq(h, "Bearer realm=\"admin\"");
    free(h);
    j = json_loads(r.body, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 401);
    ck_assert_str_eq(problem_member(j, "title"), "Unauthorized");
    json_decref(j);
    tu_response_free(&r);
    r = tu_request(s.port, "GET", "/api/v1/admin/stats", NULL, 0, bearer);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"users\":1}");
    tu_response_free(&r);

    /* Library errors are problem documents; misses reach the fallback. */
    r = tu_request(s.port, "DELETE", "/api/v1/users", NULL, 0, NULL);
    ck_assert_int_eq(r.status, 405);
    j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(problem_member(j, "title"), "Method Not Allowed");
    json_decref(j);
    tu_response_free(&r);
    r = tu_get(s.port, "/nowhere");
    ck_assert_int_eq(r.status, 404);
    j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(problem_member(j, "path"), "/nowhere");
    json_decref(j);
    h = tu_header(&r, "Server-Timing");
    ck_assert_ptr_nonnull(h);
    free(h);
    tu_response_free(&r);
    /* A body sent compressed (zlib's compress() is HTTP's "deflate") is
     * decoded before the handler parses it. */
    {
        static const char *const deflated[] = {
            "Content-Type: application/json", "Content-Encoding: deflate", NULL};
        unsigned char z[64];
        uLongf zn = sizeof z;

        ck_assert_int_eq(compress(z, &zn, (const Bytef *)"{\"name\":\"Bo\"}", 13),
                         Z_OK);
        r = tu_request(s.port, "POST", "/api/v1/users", (const char *)z, zn,
                       deflated);
        ck_assert_int_eq(r.status, 201);
        h = tu_header(&r, "Location");
        ck_assert_str_eq(h, "/api/v1/users/2");
        free(h);
        tu_response_free(&r);
    }
    r = tu_request(s.port, "POST", "/api/v1/users", "{}", 2, json_hdr);
    ck_assert_int_eq(r.status, 400);
    j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(problem_member(j, "field"), "name");
    json_decref(j);
    tu_response_free(&r);
    tu_sample_stop(&s);
}
END_TEST

/* Two files and a note as the upload page's form sends them. */
static tu_response post_upload(unsigned short port)
{
    CURL *c = curl_easy_init();
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *p;
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    static char bin[3000];
    tu_response r;
    size_t i;

    for (i = 0; i < sizeof bin; i++)
        bin[i] = (char)(i * 7);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "note");
    curl_mime_data(p, "two <files>", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "file");
    curl_mime_filename(p, "hello.txt");
    curl_mime_data(p, "hello file", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "file");
    curl_mime_filename(p, "../bin<1>.dat");
    curl_mime_data(p, bin, sizeof bin);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    r = tu_curl_perform(c, port, "/upload");
    curl_mime_free(mime);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

START_TEST(upload_keeps_lists_and_serves_files)
{
#ifdef HAVE_NETTLE
    char dir[] = "/tmp/volga-upload-sample-XXXXXX";
    tu_sample s;
    tu_response r;
    size_t i;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("UPLOAD_STORE", dir, 1);
    tu_sample_start(&s, "upload", false);
    unsetenv("UPLOAD_STORE");
    r = tu_get(s.port, "/");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "enctype=multipart/form-data"));
    ck_assert_ptr_nonnull(strstr(r.body, "<input type=file name=file multiple>"));
    tu_response_free(&r);
    r = post_upload(s.port);
    ck_assert_int_eq(r.status, 303);
    ck_assert_str_eq(r.body, "kept 2 file(s)\n");
    tu_response_free(&r);
    r = tu_get(s.port, "/");
    /* The SHA-256 of "hello file", by sha256sum. */
    ck_assert_ptr_nonnull(strstr(r.body,
        "<a href=\"/files/1\">hello.txt</a><td>10<td>"
        "f3877e8a3d98f809d9f844060fbea2864a4b66980a22ff22297014d0c168db2e"));
    /* The name as sent, escaped, never a path; the note too. */
    ck_assert_ptr_nonnull(strstr(r.body,
        "<a href=\"/files/2\">../bin&lt;1&gt;.dat</a><td>3000<td>"));
    ck_assert_ptr_nonnull(strstr(r.body, "two &lt;files&gt;"));
    tu_response_free(&r);
    r = tu_get(s.port, "/files/2");
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 3000);
    for (i = 0; i < 3000; i++)
        ck_assert_int_eq((unsigned char)r.body[i], (unsigned char)(i * 7));
    tu_response_free(&r);
    r = tu_get(s.port, "/files/3");
    ck_assert_int_eq(r.status, 404);
    tu_response_free(&r);
    tu_sample_stop(&s);
    tu_remove_tree(dir);
#else
    fprintf(stderr, "SKIP: samples/upload needs nettle\n");
    exit(77);
#endif
}
END_TEST

/* Reads the sample's stderr into acc (cap bytes, NUL-terminated, *len of
 * them kept across calls) until `needle` appears in it; returns where it
 * starts, or NULL after `ms`. */
static const char *wait_for_log(int fd, char *acc, size_t cap, size_t *len,
                                const char *needle, int ms)
{
    double t0 = tu_now_ms();
    const char *hit;

    while ((hit = strstr(acc, needle)) == NULL && tu_now_ms() - t0 < ms) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, 100) <= 0)
            continue;
        n = read(fd, acc + *len, cap - 1 - *len);
        if (n <= 0)
            break;
        *len += (size_t)n;
        acc[*len] = '\0';
    }
    return hit;
}

/* Processes of group `pgid` that still run (zombies do not: an orphan's
 * zombie waits for whoever adopted it, which may never reap it). */
static int group_running(int pgid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512], *p;
        FILE *f;
        size_t got;
        char state;
        int ppid, pgrp;

        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[got] = '\0';
        if ((p = strrchr(buf, ')')) == NULL ||
            sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
            continue;
        if (pgrp == pgid && state != 'Z' && state != 'X')
            n++;
    }
    closedir(d);
    return n;
}

/* Waits up to `ms` for group_running(pgid) to reach 0; the processes are
 * not ours to wait for, so this looks every millisecond. */
static bool group_gone(int pgid, int ms)
{
    double t0 = tu_now_ms();
    struct timespec one = {0, 1000000};

    while (group_running(pgid) > 0) {
        if (tu_now_ms() - t0 > ms)
            return false;
        nanosleep(&one, NULL);
    }
    return true;
}

START_TEST(convert_stops_its_child_when_the_client_leaves)
{
    static const char req[] = "GET /convert?mb=4000 HTTP/1.1\r\nHost: t\r\n\r\n";
    char acc[16384] = "", want[64];
    size_t len = 0;
    const char *hit;
    tu_sample s;
    tu_response r;
    int fd, pid;

    tu_sample_start(&s, "convert", true);
    /* A small conversion ends normally: the compressed size (random bytes
     * do not shrink). */
    r = tu_get(s.port, "/convert?mb=1");
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_gt(atol(r.body), 1048576);
    tu_response_free(&r);
    r = tu_get(s.port, "/convert?mb=0");
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);

    /* A big one, abandoned once it runs. */
    fd = tu_connect(s.port);
    ck_assert(tu_send_all(fd, req, sizeof req - 1));
    /* "convert: started pid N for 4000 MiB ...": N is the pipeline's shell
     * and its process group. */
    hit = wait_for_log(s.err, acc, sizeof acc, &len, " for 4000 MiB", 10000);
    ck_assert_msg(hit != NULL, "no start logged: %s", acc);
    while (hit > acc && isdigit((unsigned char)hit[-1]))
        hit--;
    ck_assert(hit - acc >= 12 && strncmp(hit - 12, "started pid ", 12) == 0);
    pid = atoi(hit);
    ck_assert_int_gt(pid, 1);
    ck_assert_int_ge(group_running(pid), 1);
    close(fd);

    snprintf(want, sizeof want, "stopped pid %d (", pid);
    hit = wait_for_log(s.err, acc, sizeof acc, &len, want, 10000);
    ck_assert_msg(hit != NULL, "no stop logged: %s", acc);
    ck_assert_ptr_nonnull(strstr(hit, "client_gone"));
    /* The shell is reaped and head and gzip went with it. */
    ck_assert_int_eq(kill(pid, 0), -1);
    ck_assert_msg(group_gone(pid, 5000), "group %d still runs", pid);
    tu_sample_stop(&s);
}
END_TEST

/* The value of the sample `series` (name and labels, as printed) in a
 * Prometheus text body, or -1 when it is not there. */
static double metric_value(const char *body, const char *series)
{
    size_t n = strlen(series);
    const char *at = body;

    while ((at = strstr(at, series)) != NULL) {
        if ((at == body || at[-1] == '\n') && at[n] == ' ')
            return strtod(at + n + 1, NULL);
        at += n;
    }
    return -1;
}

/* Scrapes the session sample's /metrics (checking the format's
 * Content-Type) until `series` reads `want`: a request is counted by a
 * completion hook, which may run just after its client has the answer.
 * Fails after 10 s. */
static void session_metric_reaches(unsigned short port, const char *series,
                                   double want)
{
    double t0 = tu_now_ms(), got;
    tu_response r;
    char *h;

    for (;;) {
        r = tu_get(port, "/metrics");
        ck_assert_int_eq(r.status, 200);
        h = tu_header(&r, "Content-Type");
        ck_assert_ptr_nonnull(h);
        ck_assert_msg(strncmp(h, "text/plain; version=0.0.4", 25) == 0, "%s",
                      h);
        free(h);
        got = metric_value(r.body, series);
        if (got == want)
            break;
        ck_assert_msg(got < want && tu_now_ms() - t0 < 10000,
                      "%s is %g, not %g:\n%s", series, got, want, r.body);
        tu_response_free(&r);
        poll(NULL, 0, 5); /* the hook runs within moments */
    }
    tu_response_free(&r);
}

/* samples/session: a page on one port, its API on another (CORS with
 * credentials), a signed session cookie, request IDs, Basic auth, a
 * login limited to 5 a minute per address, metrics and health. */
START_TEST(session_login_cors_and_signed_cookie)
{
    static const char login_body[] = "{\"user\":\"ada\",\"password\":\"lovelace\"}";
    tu_sample s;
    tu_response r;
    char origin[96], page_path[32], *h, *at, *cookie, *eq, hdr[512];
    const char *with_origin[4] = {origin, "Content-Type: application/json",
                                  NULL, NULL};
    unsigned page_port, allowed;
    double t_first, waited;
    json_t *j;

    tu_sample_start(&s, "session", false);
    /* Health: alive, and ready (its check: the page's app serves). */
    r = tu_get(s.port, "/livez");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    tu_response_free(&r);
    r = tu_get(s.port, "/readyz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"checks\":{\"page\":\"ok\"},\"status\":\"ok\"}");
    tu_response_free(&r);
    session_metric_reaches(s.port, "session_logins_total", 0);
    session_metric_reaches(s.port, "volga_requests_total{method=\"GET\","
                           "route=\"/readyz\",status=\"200\"}", 1);

    /* The API's root says where the page is. */
    r = tu_get(s.port, "/");
    ck_assert_int_eq(r.status, 200);
    at = strstr(r.body, "http://127.0.0.1:");
    ck_assert_ptr_nonnull(at);
    page_port = (unsigned)atoi(at + 17);
    ck_assert_uint_ne(page_port, 0);
    tu_response_free(&r);
    snprintf(page_path, sizeof page_path, "/");
    r = tu_get((unsigned short)page_port, page_path);
    ck_assert_int_eq(r.status, 200);
    snprintf(hdr, sizeof hdr, "const API = 'http://127.0.0.1:%u'", (unsigned)s.port);
    ck_assert_msg(strstr(r.body, hdr) != NULL, "page: %s", r.body);
    tu_response_free(&r);
    snprintf(origin, sizeof origin, "Origin: http://127.0.0.1:%u", page_port);

    /* The page's preflight for its JSON login. */
    {
        char m[] = "Access-Control-Request-Method: POST";
        char hh[] = "Access-Control-Request-Headers: content-type";
        const char *pre[] = {origin, m, hh, NULL};
        r = tu_request(s.port, "OPTIONS", "/api/login", NULL, 0, pre);
    }
    ck_assert_int_eq(r.status, 204);
    h = tu_header(&r, "Access-Control-Allow-Origin");
    ck_assert_str_eq(h, origin + 8);
    free(h);
    h = tu_header(&r, "Access-Control-Allow-Credentials");
    ck_assert_str_eq(h, "true");
    free(h);
    tu_response_free(&r);

    /* Wrong password: a problem, no cookie. */
    t_first = tu_now_ms();
    r = tu_request(s.port, "POST", "/api/login",
                   "{\"user\":\"ada\",\"password\":\"x\"}", 29, with_origin);
    ck_assert_int_eq(r.status, 401);
    ck_assert_ptr_null(tu_header(&r, "Set-Cookie"));
    tu_response_free(&r);

    r = tu_request(s.port, "POST", "/api/login", login_body,
                   sizeof login_body - 1, with_origin);
    ck_assert_int_eq(r.status, 200);
    h = tu_header(&r, "Access-Control-Allow-Origin");
    ck_assert_str_eq(h, origin + 8);
    free(h);
    h = tu_header(&r, "X-Request-Id");
    ck_assert_ptr_nonnull(h);
    ck_assert_uint_eq(strlen(h), 32);
    free(h);
    h = tu_header(&r, "Set-Cookie");
    ck_assert_ptr_nonnull(h);
    ck_assert_msg(strncmp(h, "session=ada.", 12) == 0, "%s", h);
    ck_assert_ptr_nonnull(strstr(h, "; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"));
    cookie = strndup(h, (size_t)(strchr(h, ';') - h));
    free(h);
    tu_response_free(&r);

    /* The signed cookie identifies the user; altered, it does not. */
    snprintf(hdr, sizeof hdr, "Cookie: %s", cookie);
    with_origin[2] = hdr;
    r = tu_request(s.port, "GET", "/api/me", NULL, 0, with_origin);
    ck_assert_int_eq(r.status, 200);
    j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(problem_member(j, "user"), "ada");
    ck_assert_uint_eq(strlen(problem_member(j, "request_id")), 32);
    json_decref(j);
    tu_response_free(&r);
    eq = strchr(hdr, '=') + 1;
    memcpy(eq, "eve", 3); /* session=eve.EXPIRY.MAC */
    r = tu_request(s.port, "GET", "/api/me", NULL, 0, with_origin);
    ck_assert_int_eq(r.status, 401);
    tu_response_free(&r);
    with_origin[2] = NULL;

    /* Two logins so far; the limit is 5 a minute per address (one more
     * every 12 s), so the sixth is refused, through the error handler,
     * with CORS headers the page needs to read it. */
    allowed = 2;
    for (;;) {
        r = tu_request(s.port, "POST", "/api/login",
                       "{\"user\":\"ada\",\"password\":\"x\"}", 29,
                       with_origin);
        if (r.status == 429)
            break;
        ck_assert_int_eq(r.status, 401);
        tu_response_free(&r);
        ck_assert_uint_lt(++allowed, 20);
    }
    waited = tu_now_ms() - t_first;
    if (waited < 11000)
        ck_assert_uint_eq(allowed, 5);
    else
        ck_assert_uint_le(allowed, 5 + (unsigned)(waited / 12000) + 1);
    ck_assert_uint_ge(allowed, 5);
    h = tu_header(&r, "Retry-After");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_ge(atoi(h), 1);
    ck_assert_int_le(atoi(h), 12);
    free(h);
    h = tu_header(&r, "Content-Type");
    ck_assert_str_eq(h, "application/problem+json");
    free(h);
    h = tu_header(&r, "Access-Control-Allow-Origin");
    ck_assert_str_eq(h, origin + 8);
    free(h);
    j = json_loads(r.body, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 429);
    json_decref(j);
    tu_response_free(&r);
    /* The right password is refused too, until the budget refills. */
    r = tu_request(s.port, "POST", "/api/login", login_body,
                   sizeof login_body - 1, with_origin);
    ck_assert_int_eq(r.status, 429);
    ck_assert_ptr_null(tu_header(&r, "Set-Cookie"));
    tu_response_free(&r);

    r = tu_request(s.port, "POST", "/api/logout", NULL, 0, with_origin);
    ck_assert_int_eq(r.status, 204);
    h = tu_header(&r, "Set-Cookie");
    ck_assert_str_eq(h, "session=; Path=/; Max-Age=0; "
                        "Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax");
    free(h);
    tu_response_free(&r);

    /* Basic auth on the admin group. */
    r = tu_get(s.port, "/api/admin/sessions");
    ck_assert_int_eq(r.status, 401);
    h = tu_header(&r, "WWW-Authenticate");
    ck_assert_str_eq(h, "Basic realm=\"session admin\", charset=\"UTF-8\"");
    free(h);
    tu_response_free(&r);
    {
        /* admin:admin-pass */
        const char *basic[] = {"Authorization: Basic YWRtaW46YWRtaW4tcGFzcw==", NULL};
        r = tu_request(s.port, "GET", "/api/admin/sessions", NULL, 0, basic);
    }
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"logins\":1}");
    tu_response_free(&r);

    /* The counters grew: the sample's own and the library's. */
    session_metric_reaches(s.port, "session_logins_total", 1);
    session_metric_reaches(s.port, "volga_requests_total{method=\"POST\","
                           "route=\"/api/login\",status=\"200\"}", 1);
    session_metric_reaches(s.port, "volga_requests_total{method=\"POST\","
                           "route=\"/api/login\",status=\"429\"}", 2);
    free(cookie);
    tu_sample_stop(&s);
}
END_TEST

static Suite *samples_suite(void)
{
    Suite *s = suite_create("samples");
    TCase *tc = tcase_create("samples");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, todo_crud);
    tcase_add_test(tc, hello_answers_text_and_json);
    tcase_add_test(tc, api_groups_auth_and_problems);
    tcase_add_test(tc, convert_stops_its_child_when_the_client_leaves);
    tcase_add_test(tc, session_login_cors_and_signed_cookie);
    tcase_add_test(tc, upload_keeps_lists_and_serves_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(samples_suite());
}
