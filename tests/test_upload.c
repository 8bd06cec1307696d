/* test_upload.c - multipart file parts streamed to anonymous temporary
 * files (vg_map_uploads, vg_request_upload, vg_upload_*) as libcurl and
 * Python's requests send them: contents, names as sent, saving, limits, nothing left behind when a client leaves in the
 * middle, and a 1 GiB upload in bounded memory with its SHA-256 checked. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef HAVE_NETTLE
#include <nettle/sha2.h>
#endif

#include <volga.h>
#include "model/upload.h" /* vg__upload_no_tmpfile: the fallback, on demand */
#include "testutil.h"

static char updir[256];   /* the uploads directory of a test */
static char savedir[256]; /* where handlers save files */
static atomic_int handled;

static void make_dirs(void)
{
    snprintf(updir, sizeof updir, "/tmp/volga-up-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(updir));
    snprintf(savedir, sizeof savedir, "/tmp/volga-saved-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(savedir));
}

static void remove_dirs(void)
{
    tu_remove_tree(updir);
    tu_remove_tree(savedir);
}

/* Entries in `dir`, "." and ".." aside. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int count_fds(void)
{
    return count_entries("/proc/self/fd");
}

/* Descriptors that are sockets or files of the upload directory: what a
 * connection and its upload hold (the library may open an eventfd or an
 * epoll set lazily, under load; those are not counted). */
static int count_conn_fds(void)
{
    char path[300], target[256];
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    ssize_t n;
    int count = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strncmp(target, "socket:", 7) == 0 ||
            strncmp(target, updir, strlen(updir)) == 0)
            count++;
    }
    closedir(d);
    return count;
}

/* What the descriptors are, for a failure message. */
static const char *list_fds(void)
{
    static char out[4096];
    char path[300], target[256];
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    size_t used = 0;
    ssize_t n;

    out[0] = '\0';
    if (d == NULL)
        return out;
    while ((e = readdir(d)) != NULL && used < sizeof out - 300) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        used += (size_t)snprintf(out + used, sizeof out - used, "%s=%s ",
                                 e->d_name, target);
    }
    closedir(d);
    return out;
}

/* Writes what a handler sees of one upload, contents included (short). */
static int describe(const vg_upload *u, void *arg)
{
    FILE *f = arg;
    char buf[256];
    ssize_t n = pread(vg_upload_fd(u), buf, sizeof buf - 1, 0);
    const char *ct = vg_upload_content_type(u);

    buf[n > 0 ? n : 0] = '\0';
    fprintf(f, "%s|%s|%s|%zu|%s\n", vg_upload_name(u), vg_upload_filename(u),
            ct ? ct : "-", vg_upload_size(u), buf);
    return 0;
}

/* Describes every upload and the "note" field, and saves the first file of
 * field "keep" (if any) as savedir/kept. */
static vg_result *on_upload(vg_request *req, void *arg)
{
    const vg_upload *keep = vg_request_upload(req, "keep");
    const char *note = vg_request_form(req, "note");
    char *text = NULL, path[512];
    size_t size = 0, blen;
    FILE *f = open_memstream(&text, &size);
    vg_result *res;

    (void)arg;
    atomic_fetch_add(&handled, 1);
    (void)vg_request_body(req, &blen);
    fprintf(f, "note=%s body=%zu\n", note ? note : "-", blen);
    vg_request_uploads(req, describe, f);
    if (keep != NULL) {
        snprintf(path, sizeof path, "%s/kept", savedir);
        fprintf(f, "save=%d\n", vg_upload_save(keep, path));
        fprintf(f, "again=%d\n", vg_upload_save(keep, path));
    }
    fclose(f);
    res = vg_text(text);
    free(text);
    return res;
}

static vg_app *upload_app(const vg_body_limits *lim)
{
    vg_app *app = tu_app_new();

    make_dirs();
    atomic_store(&handled, 0);
    ck_assert_int_eq(vg_map_post(app, "/up", on_upload, NULL), 0);
    ck_assert_int_eq(vg_map_uploads(app, "POST", "/up", updir), 0);
    if (lim != NULL)
        ck_assert_int_eq(vg_map_body_limits(app, "POST", "/up", lim), 0);
    tu_start(app);
    return app;
}

/* curl -F note=hello -F keep=@a.txt -F other=@b.bin;type=... */
static tu_response post_files(vg_app *app)
{
    CURL *c = curl_easy_init();
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *p;
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    tu_response r;

    p = curl_mime_addpart(mime);
    curl_mime_name(p, "note");
    curl_mime_data(p, "hello", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "keep");
    curl_mime_filename(p, "a.txt");
    curl_mime_type(p, "text/plain");
    curl_mime_data(p, "first file", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "other");
    curl_mime_filename(p, "b.bin");
    curl_mime_type(p, "application/octet-stream");
    curl_mime_data(p, "second\r\n--not a boundary", CURL_ZERO_TERMINATED);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    r = tu_curl_perform(c, vg_app_port(app), "/up");
    curl_mime_free(mime);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

static char *read_file(const char *path)
{
    static char buf[256];
    int fd = open(path, O_RDONLY);
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void files_are_streamed_saved_and_the_rest_vanish(bool fallback)
{
    vg_app *app;
    tu_response r;
    char path[512];
    struct stat st;
    vg_stats stats;

    vg__upload_no_tmpfile = fallback;
    app = upload_app(NULL);
    r = post_files(app);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "note=hello body=0\n"
                             "keep|a.txt|text/plain|10|first file\n"
                             "other|b.bin|application/octet-stream|24|"
                             "second\r\n--not a boundary\n"
                             "save=0\nagain=-17\n");
    tu_response_free(&r);
    ck_assert(tu_wait_settled(app, 1, 5000, &stats));
    snprintf(path, sizeof path, "%s/kept", savedir);
    ck_assert_str_eq(read_file(path), "first file");
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* Nothing else was ever named: the upload directory is empty. */
    ck_assert_int_eq(count_entries(updir), 0);
    ck_assert_int_eq(count_entries(savedir), 1);
    vg_app_free(app);
    vg__upload_no_tmpfile = false;
    remove_dirs();
}

START_TEST(files_are_streamed_saved_and_the_rest_vanish_o_tmpfile)
{
    files_are_streamed_saved_and_the_rest_vanish(false);
}
END_TEST

START_TEST(files_are_streamed_saved_and_the_rest_vanish_mkstemp_fallback)
{
    files_are_streamed_saved_and_the_rest_vanish(true);
}
END_TEST

START_TEST(routes_without_uploads_have_none)
{
    vg_app *app = tu_app_new();
    tu_response r;

    make_dirs();
    ck_assert_int_eq(vg_map_post(app, "/up", on_upload, NULL), 0);
    ck_assert_int_eq(vg_map_uploads(app, "POST", "/nope", updir), -ENOENT);
    ck_assert_int_eq(vg_map_uploads(app, "POST", "/up", "/nonexistent/dir"),
                     -ENOENT);
    ck_assert_int_eq(vg_map_uploads(app, "POST", "/up", "/etc/passwd"),
                     -ENOTDIR);
    tu_start(app);
    r = post_files(app);
    ck_assert_int_eq(r.status, 200);
    /* The file parts stay in the raw body; the text field is decoded. */
    ck_assert_ptr_nonnull(strstr(r.body, "note=hello body="));
    ck_assert_ptr_null(strstr(r.body, "keep|"));
    ck_assert_ptr_null(strstr(r.body, "body=0\n"));
    tu_response_free(&r);
    errno = 0;
    ck_assert_ptr_null(vg_request_upload(NULL, "x"));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(vg_upload_save(NULL, "/tmp/x"), -EINVAL);
    ck_assert_int_eq(vg_upload_fd(NULL), -1);
    vg_app_free(app);
    remove_dirs();
}
END_TEST

/* Sends `body` as a multipart/form-data body with boundary XyZ. */
static tu_response post_raw(vg_app *app, const char *body)
{
    const char *h[] = {"Content-Type: multipart/form-data; boundary=XyZ",
                       NULL};
    return tu_request(vg_app_port(app), "POST", "/up", body, strlen(body), h);
}

/* What Python's requests sends for files=[...] and data={...}: urllib3
 * builds the multipart body (its own boundary, quoting and part order). */
static const char py_client[] =
    "import sys, requests\n"
    "r = requests.post(sys.argv[1], data={'note': 'from python'},\n"
    "    files=[('keep', ('p\u00e9.txt', b'python file', 'text/plain')),\n"
    "           ('other', ('empty.bin', b''))], timeout=10)\n"
    "sys.stdout.write(str(r.status_code) + '\\n' + r.text)\n";

START_TEST(python_requests_multipart_is_streamed)
{
    vg_app *app;
    char url[64], out[2048];
    char *argv[] = {(char *)"/usr/bin/python3", (char *)"-c",
                    (char *)py_client, url, NULL};
    int pipefd[2], status;
    size_t got = 0;
    ssize_t n;
    pid_t pid;

    ck_assert_msg(access(argv[0], X_OK) == 0 &&
                  system("/usr/bin/python3 -c 'import requests' 2>/dev/null") == 0,
                  "python3 and python3-requests are needed (dev.sh installs them)");
    app = upload_app(NULL);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/up", (unsigned)vg_app_port(app));
    ck_assert_int_eq(pipe(pipefd), 0);
    pid = tu_spawn(argv, -1, pipefd[1], 2);
    ck_assert_int_gt(pid, 0);
    close(pipefd[1]);
    while (got < sizeof out - 1 &&
           (n = read(pipefd[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(pipefd[0]);
    ck_assert(tu_wait_exit(pid, 20000, &status));
    ck_assert_int_eq(status, 0);
    /* The first file is saved too (savedir/kept): a link of its inode. */
    ck_assert_str_eq(out, "200\n"
                          "note=from python body=0\n"
                          "keep|p\xc3\xa9.txt|text/plain|11|python file\n"
                          "other|empty.bin|-|0|\n"
                          "save=0\nagain=-17\n");
    ck_assert_int_eq(count_entries(updir), 0);
    vg_app_free(app);
    remove_dirs();
}
END_TEST

START_TEST(filenames_are_kept_as_sent_and_never_used_as_paths)
{
    vg_app *app = upload_app(NULL);
    tu_response r;

    r = post_raw(app, "--XyZ\r\n"
                      "Content-Disposition: form-data; name=\"f\"; "
                      "filename=\"../../../etc/volga-pwned\"\r\n\r\n"
                      "x\r\n"
                      "--XyZ\r\n"
                      "Content-Disposition: form-data; name=\"g\"; "
                      "filename=\"/abs/path\"\r\n"
                      "Content-Type: text/plain\r\n"
                      "X-Injected: yes\r\n\r\n"
                      "y\r\n"
                      "--XyZ--\r\n");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "note=- body=0\n"
                             "f|../../../etc/volga-pwned|-|1|x\n"
                             "g|/abs/path|text/plain|1|y\n");
    tu_response_free(&r);
    /* A CR LF inside the quoted filename ends the header line: what is
     * left can never hold a line break. */
    r = post_raw(app, "--XyZ\r\n"
                      "Content-Disposition: form-data; name=\"f\"; "
                      "filename=\"a.txt\r\nContent-Type: text/evil\"\r\n\r\n"
                      "z\r\n"
                      "--XyZ--\r\n");
    if (r.status == 200)
        ck_assert_ptr_null(strpbrk(strchr(r.body, '\n') + 1, "\r"));
    tu_response_free(&r);
    ck_assert_int_eq(access("/etc/volga-pwned", F_OK), -1);
    ck_assert_int_eq(count_entries(updir), 0);
    vg_app_free(app);
    remove_dirs();
}
END_TEST

START_TEST(upload_limits_remove_the_files_and_answer_413)
{
    vg_body_limits lim = {.files = 1, .file_size = 100};
    vg_app *app;
    tu_response r;
    char body[1024], big[200];
    int fds;

    vg__upload_no_tmpfile = true; /* so that a leftover would be seen */
    fds = count_fds();
    app = upload_app(&lim);
    memset(big, 'b', 101);
    big[101] = '\0';
    snprintf(body, sizeof body,
             "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; "
             "filename=\"a\"\r\n\r\n%.100s\r\n--XyZ--\r\n", big);
    r = post_raw(app, body);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    snprintf(body, sizeof body,
             "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; "
             "filename=\"a\"\r\n\r\n%s\r\n--XyZ--\r\n", big);
    r = post_raw(app, body);
    ck_assert_int_eq(r.status, 413);
    tu_response_free(&r);
    snprintf(body, sizeof body,
             "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; "
             "filename=\"a\"\r\n\r\n1\r\n"
             "--XyZ\r\nContent-Disposition: form-data; name=\"g\"; "
             "filename=\"b\"\r\n\r\n2\r\n--XyZ--\r\n");
    r = post_raw(app, body);
    ck_assert_int_eq(r.status, 413);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&handled), 1);
    ck_assert_int_eq(count_entries(updir), 0);
    vg_app_free(app);
    ck_assert_int_eq(count_fds(), fds);
    vg__upload_no_tmpfile = false;
    remove_dirs();
}
END_TEST

/* A multipart head and body with one file of `size` bytes. */
static char *one_file_body(size_t size, size_t *len)
{
    char *body = malloc(size + 256), *p = body;

    p += sprintf(p, "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; "
                    "filename=\"cut.bin\"\r\n\r\n");
    memset(p, 'c', size);
    p += size;
    p += sprintf(p, "\r\n--XyZ--\r\n");
    *len = (size_t)(p - body);
    return body;
}

static atomic_int ended_gone, ended_other;

/* What the access log would say of each request: its cancel reason. */
static void count_ends(const vg_completion *c, void *arg)
{
    (void)arg;
    if (c->cancelled == VG_CANCEL_CLIENT_GONE)
        atomic_fetch_add(&ended_gone, 1);
    else
        atomic_fetch_add(&ended_other, 1);
}

/* An app (not started) with POST /up streaming uploads into a new updir,
 * its completion hook counting how requests ended, the counters reset. */
static vg_app *counted_upload_app(void)
{
    vg_app *app = tu_app_new();

    make_dirs();
    atomic_store(&handled, 0);
    atomic_store(&ended_gone, 0);
    atomic_store(&ended_other, 0);
    ck_assert_int_eq(vg_map_post(app, "/up", on_upload, NULL), 0);
    ck_assert_int_eq(vg_map_uploads(app, "POST", "/up", updir), 0);
    ck_assert_int_eq(vg_app_on_complete(app, count_ends, NULL), 0);
    return app;
}

/* Byte j of the file of part i: no CR, so no boundary can hide in it, and
 * different in every part and every 1000-byte stretch. */
static char part_byte(int i, size_t j)
{
    return (char)('a' + (i * 7 + j * 13 + j / 1000) % 26);
}

/* Sizes around the 256 KiB that lib/model/upload.c gathers per write(2). */
static const size_t around_wbuf[] = {0, 1, 262143, 262144, 262145, 700001};
#define N_AROUND (sizeof around_wbuf / sizeof around_wbuf[0])

/* Checks every byte of every upload against part_byte: "fI SIZE ok" or
 * "fI SIZE bad@OFFSET" per file, in order. */
static int check_pattern(const vg_upload *u, void *arg)
{
    FILE *f = arg;
    int i = atoi(vg_upload_name(u) + 1);
    static char buf[65536];
    size_t off = 0, k, bad = (size_t)-1;
    ssize_t n;

    while (bad == (size_t)-1 &&
           (n = pread(vg_upload_fd(u), buf, sizeof buf, (off_t)off)) > 0) {
        for (k = 0; k < (size_t)n; k++)
            if (buf[k] != part_byte(i, off + k)) {
                bad = off + k;
                break;
            }
        off += (size_t)n;
    }
    if (bad == (size_t)-1 && off != vg_upload_size(u))
        bad = off;
    if (bad == (size_t)-1)
        fprintf(f, "%s %zu ok\n", vg_upload_name(u), vg_upload_size(u));
    else
        fprintf(f, "%s %zu bad@%zu\n", vg_upload_name(u), vg_upload_size(u),
                bad);
    return 0;
}

static vg_result *on_pattern(vg_request *req, void *arg)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    const char *between = vg_request_form(req, "between");
    vg_result *res;

    (void)arg;
    atomic_fetch_add(&handled, 1);
    fprintf(f, "between=%s\n", between ? between : "-");
    vg_request_uploads(req, check_pattern, f);
    fclose(f);
    res = vg_text(text);
    free(text);
    return res;
}

/* A body with one file part "fI" of around_wbuf[I] bytes each, a text
 * field after the second; *len its length. */
static char *pattern_body(size_t *len)
{
    size_t total = 4096, i, j;
    char *body, *p;

    for (i = 0; i < N_AROUND; i++)
        total += around_wbuf[i] + 256;
    p = body = malloc(total);
    for (i = 0; i < N_AROUND; i++) {
        p += sprintf(p, "--XyZ\r\nContent-Disposition: form-data; "
                        "name=\"f%zu\"; filename=\"f%zu.bin\"\r\n\r\n", i, i);
        for (j = 0; j < around_wbuf[i]; j++)
            *p++ = part_byte((int)i, j);
        p += sprintf(p, "\r\n");
        if (i == 1)
            p += sprintf(p, "--XyZ\r\nContent-Disposition: form-data; "
                            "name=\"between\"\r\n\r\nfields too\r\n");
    }
    p += sprintf(p, "--XyZ--\r\n");
    *len = (size_t)(p - body);
    return body;
}

START_TEST(files_around_the_write_buffer_size_are_stored_exactly)
{
    vg_body_limits lim = {.body = 4 << 20};
    const char *h[] = {"Content-Type: multipart/form-data; boundary=XyZ",
                       NULL};
    vg_app *app = tu_app_new();
    char want[1024], *body;
    size_t len, i, used;
    tu_response r;

    make_dirs();
    atomic_store(&handled, 0);
    ck_assert_int_eq(vg_map_post(app, "/up", on_pattern, NULL), 0);
    ck_assert_int_eq(vg_map_uploads(app, "POST", "/up", updir), 0);
    ck_assert_int_eq(vg_map_body_limits(app, "POST", "/up", &lim), 0);
    tu_start(app);
    body = pattern_body(&len);
    used = (size_t)snprintf(want, sizeof want, "between=fields too\n");
    for (i = 0; i < N_AROUND; i++)
        used += (size_t)snprintf(want + used, sizeof want - used,
                                 "f%zu %zu ok\n", i, around_wbuf[i]);
    r = tu_request(vg_app_port(app), "POST", "/up", body, len, h);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, want);
    tu_response_free(&r);
    ck_assert_int_eq(atomic_load(&handled), 1);
    vg_app_free(app);
    ck_assert_int_eq(count_entries(updir), 0);
    free(body);
    remove_dirs();
}
END_TEST

/* With the process's file size limit at 64 KiB (RLIMIT_FSIZE; SIGXFSZ
 * ignored, so write(2) fails with EFBIG), an upload of `size` bytes. */
static tu_response post_over_fsize_limit(vg_app *app, size_t size)
{
    const char *h[] = {"Content-Type: multipart/form-data; boundary=XyZ",
                       NULL};
    struct rlimit old, lim;
    size_t len;
    char *body = one_file_body(size, &len);
    tu_response r;

    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    r = tu_request(vg_app_port(app), "POST", "/up", body, len, h);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    free(body);
    return r;
}

START_TEST(an_upload_that_cannot_be_written_answers_500_and_leaves_nothing)
{
    vg_body_limits lim = {.body = 4 << 20};
    vg_app *app;
    tu_response r;
    vg_stats st;
    int fds;

    vg__upload_no_tmpfile = true; /* so that a leftover would be seen */
    fds = count_fds();
    app = upload_app(&lim);
    /* 100 KiB: all of it gathered, the failure is in the last write, once
     * the body is complete. */
    r = post_over_fsize_limit(app, 100 * 1024);
    ck_assert_int_eq(r.status, 500);
    tu_response_free(&r);
    /* 600 KiB: the first 256 KiB write fails in the middle of the body. */
    r = post_over_fsize_limit(app, 600 * 1024);
    ck_assert_int_eq(r.status, 500);
    tu_response_free(&r);
    /* Under the limit all is well. */
    r = post_over_fsize_limit(app, 60 * 1024);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    ck_assert(tu_wait_settled(app, 3, 5000, &st));
    ck_assert_int_eq(atomic_load(&handled), 1);
    ck_assert_int_eq(count_entries(updir), 0);
    vg_app_free(app);
    ck_assert_int_eq(count_fds(), fds);
    vg__upload_no_tmpfile = false;
    remove_dirs();
}
END_TEST

START_TEST(clients_leaving_mid_upload_leave_nothing_behind)
{
    vg_app *app;
    size_t len, cut;
    char *body = one_file_body(256 * 1024, &len), head[256];
    unsigned seed = 19;
    vg_stats st;
    int i, fd, fds, n = 100;
    size_t part_head = strstr(body, "\r\n\r\n") - body + 4;
    double until, t0;
    int app_fds, k;

    vg__upload_no_tmpfile = true; /* a named file would show in updir */
    fds = count_fds();
    app = counted_upload_app();
    tu_start(app);
    snprintf(head, sizeof head,
             "POST /up HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: multipart/form-data; boundary=XyZ\r\n"
             "Content-Length: %zu\r\n\r\n", len);
    app_fds = count_conn_fds();
    for (i = 0; i < n; i++) {
        cut = (size_t)(rand_r(&seed) % (unsigned)(len - 1)) + 1;
        if (i % 2 == 0) {
            /* FIN anywhere in the body. */
            fd = tu_connect(vg_app_port(app));
            ck_assert(tu_send_all(fd, head, strlen(head)));
            ck_assert(tu_send_all(fd, body, cut));
            close(fd);
            continue;
        }
        /* (The bound is the idle timeout and more: a connection cut short is
         * closed at once by the engine, but rarely, under load, one has been
         * seen to stay 5 s; the wait is logged when over 100 ms.)
         * RST once the server holds a temporary file: a reset that came
         * sooner would discard the data unread, and the server would never
         * have seen a request at all. Counted from a descriptor table with
         * none of the earlier connections left in it. */
        if (cut <= part_head)
            cut = part_head + 1;
        t0 = tu_now_ms();
        until = t0 + 40000;
        while ((k = count_conn_fds()) > app_fds && tu_now_ms() < until)
            usleep(200); /* the fd table has no notification */
        if (tu_now_ms() - t0 > 100)
            fprintf(stderr, "iteration %d: waited %.0f ms\n", i, tu_now_ms() - t0);
        ck_assert_msg(k == app_fds, "iteration %d: %d fds, not %d: %s",
                      i, k, app_fds, list_fds());
        fd = tu_connect(vg_app_port(app));
        ck_assert(tu_send_all(fd, head, strlen(head)));
        ck_assert(tu_send_all(fd, body, cut));
        /* client socket, server socket, temporary file */
        until = tu_now_ms() + 10000;
        while (count_conn_fds() < app_fds + 3 && tu_now_ms() < until)
            usleep(200);
        /* Rarely, under load, the server has not read the part yet (the
         * open stall of the closing notes): the reset then comes earlier,
         * which the checks below must survive just as well. */
        if (count_conn_fds() < app_fds + 3)
            fprintf(stderr, "iteration %d: no temporary file yet\n", i);
        tu_close_rst(fd);
    }
    /* Every connection closes at once (libmicrohttpd notes the request's
     * end before it closes the socket, so the books are closed then)... */
    until = tu_now_ms() + 5000;
    while (count_conn_fds() > app_fds && tu_now_ms() < until)
        usleep(1000);
    ck_assert_int_eq(count_conn_fds(), app_fds);
    /* ...every request the server saw ended as a client gone (a FIN that
     * came with a few bytes may end a connection before its request
     * begins), and no handler ran. */
    vg_app_stats(app, &st);
    ck_assert_uint_ge(st.requests, (unsigned long long)n / 2);
    ck_assert_uint_eq(st.cancelled_client_gone, st.requests);
    /* The completion hooks (the access log is one) say client_gone too. */
    ck_assert_int_eq(atomic_load(&ended_gone), (int)st.requests);
    ck_assert_int_eq(atomic_load(&ended_other), 0);
    ck_assert_uint_eq(st.in_flight, 0);
    ck_assert_int_eq(atomic_load(&handled), 0);
    ck_assert_int_eq(count_entries(updir), 0);
    vg_app_free(app);
    ck_assert_int_eq(count_fds(), fds);
    vg__upload_no_tmpfile = false;
    free(body);
    remove_dirs();
}
END_TEST

#ifdef HAVE_NETTLE
/* A 1 GiB body generated as it is sent (xorshift bytes), hashed on the
 * way out; the handler hashes the stored file. */
typedef struct {
    unsigned long long left;
    unsigned long long x;
    struct sha256_ctx sha;
} gen;

static size_t gen_read(char *buf, size_t size, size_t n, void *arg)
{
    gen *g = arg;
    size_t want = size * n, i;

    if (want > g->left)
        want = (size_t)g->left;
    for (i = 0; i + 8 <= want; i += 8) {
        g->x ^= g->x << 13;
        g->x ^= g->x >> 7;
        g->x ^= g->x << 17;
        memcpy(buf + i, &g->x, 8);
    }
    for (; i < want; i++)
        buf[i] = (char)i;
    sha256_update(&g->sha, want, (const uint8_t *)buf);
    g->left -= want;
    return want;
}

static void hex(const uint8_t *d, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static vg_result *hash_upload(vg_request *req, void *arg)
{
    const vg_upload *u = vg_request_upload(req, "big");
    struct sha256_ctx sha;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char out[2 * SHA256_DIGEST_SIZE + 1];
    static char buf[1 << 16];
    off_t off = 0;
    ssize_t n;

    (void)arg;
    if (u == NULL)
        return vg_status(400);
    sha256_init(&sha);
    while ((n = pread(vg_upload_fd(u), buf, sizeof buf, off)) > 0) {
        sha256_update(&sha, (size_t)n, (const uint8_t *)buf);
        off += n;
    }
    sha256_digest(&sha, sizeof digest, digest);
    hex(digest, sizeof digest, out);
    return vg_textf("%zu %s", vg_upload_size(u), out);
}

/* Collects a short answer (NUL-terminated, truncated at 255 bytes). */
static size_t collect(char *ptr, size_t size, size_t n, void *arg)
{
    char *answer = arg;
    size_t have = strlen(answer), add = size * n;

    if (add > 255 - have)
        add = 255 - have;
    memcpy(answer + have, ptr, add);
    answer[have + add] = '\0';
    return size * n;
}

/* Peak RSS in KiB since the last reset (VmHWM). */
static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmHWM: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static void reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");

    if (f != NULL) {
        fputs("5", f);
        fclose(f);
    }
}
#endif

START_TEST(a_gigabyte_upload_streams_in_bounded_memory)
{
#ifdef HAVE_NETTLE
    const char *scale = getenv("VG_TIME_SCALE");
    /* Under sanitizers (VG_TIME_SCALE > 1) 128 MiB make the same point in
     * a tenth of the time, under valgrind (20) 32 MiB; valgrind's own
     * memory grows as it translates code, so there only the SHA-256 and
     * the leak check are asserted, not the RSS. */
    int s = scale ? atoi(scale) : 1;
    unsigned long long size = s >= 10 ? 32ULL << 20
                              : s > 1 ? 128ULL << 20 : 1ULL << 30;
    vg_body_limits lim = {.body = (size_t)size + 4096};
    vg_app *app = tu_app_new();
    gen g;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char want[2 * SHA256_DIGEST_SIZE + 64], sent[2 * SHA256_DIGEST_SIZE + 1];
    CURL *c;
    curl_mime *mime;
    curl_mimepart *p;
    struct curl_slist *h;
    tu_response r;
    long before, after;
    char url[64], answer[256] = "";
    double start, ms;

    memset(&g, 0, sizeof g);
    g.left = size;
    g.x = 88172645463325252ULL;
    make_dirs();
    ck_assert_int_eq(vg_map_post(app, "/big", hash_upload, NULL), 0);
    ck_assert_int_eq(vg_map_uploads(app, "POST", "/big", updir), 0);
    ck_assert_int_eq(vg_map_body_limits(app, "POST", "/big", &lim), 0);
    tu_start(app);
    sha256_init(&g.sha);
    c = curl_easy_init();
    mime = curl_mime_init(c);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "big");
    curl_mime_filename(p, "big.bin");
    curl_mime_data_cb(p, (curl_off_t)size, gen_read, NULL, NULL, &g);
    h = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/big", vg_app_port(app));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 240L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
    reset_peak_rss();
    before = peak_rss_kib();
    memset(&r, 0, sizeof r);
    start = tu_now_ms();
    r.curl_code = (int)curl_easy_perform(c);
    ms = tu_now_ms() - start;
    if (r.curl_code == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    r.body = strdup(answer);
    after = peak_rss_kib();
    sha256_digest(&g.sha, sizeof digest, digest);
    hex(digest, sizeof digest, sent);
    snprintf(want, sizeof want, "%llu %s", size, sent);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, want);
    if (s < 10)
        ck_assert_msg(after - before < 8 * 1024,
                      "RSS grew by %ld KiB during the upload", after - before);
    fprintf(stderr, "upload of %llu MiB in %.0f ms: peak RSS %ld -> %ld KiB\n",
            size >> 20, ms, before, after);
    tu_response_free(&r);
    curl_mime_free(mime);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    vg_app_free(app);
    ck_assert_int_eq(count_entries(updir), 0);
    remove_dirs();
#else
    fprintf(stderr, "SKIP: built without nettle (SHA-256)\n");
    exit(77);
#endif
}
END_TEST

/* Sends a one-file multipart upload of `size` bytes to `path` on a raw
 * socket, the body in pieces of `step` bytes `gap_ms` apart (a slow
 * client); stops sending as soon as the server answers or closes.
 * Returns the milliseconds until then (or until the answer after the
 * whole body), and the answer's first bytes in `status` ("" if closed
 * without one). */
static double trickle(unsigned short port, const char *path, size_t size,
                      size_t step, int gap_ms, char *status, size_t cap)
{
    size_t len, off = 0, n;
    char *body = one_file_body(size, &len), head[256], probe;
    double t0 = tu_now_ms();
    ssize_t got = -1;
    int fd = tu_connect(port);

    snprintf(head, sizeof head,
             "POST %s HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: multipart/form-data; boundary=XyZ\r\n"
             "Content-Length: %zu\r\n\r\n", path, len);
    ck_assert(tu_send_all(fd, head, strlen(head)));
    while (off < len) {
        n = len - off < step ? len - off : step;
        if (send(fd, body + off, n, MSG_NOSIGNAL) != (ssize_t)n)
            break; /* the server has closed */
        off += n;
        got = recv(fd, &probe, 1, MSG_DONTWAIT | MSG_PEEK);
        if (got >= 0)
            break; /* an answer, or the end of the connection */
        usleep((useconds_t)gap_ms * 1000); /* the client's pace */
    }
    n = tu_recv_response(fd, status, cap - 1);
    status[n] = '\0';
    close(fd);
    free(body);
    return tu_now_ms() - t0;
}

/* A route whose deadline covers its body (vg_map_deadline_body): a client
 * trickling an upload for 2 s against a 300 ms deadline is cut off at the
 * deadline: the connection closes without the handler running, the token
 * says TIMEOUT (stats and completion hook), the file written so far is
 * gone and no descriptor is left. The same trickle on a route without the
 * option is served (its deadline starts with the handler), and an upload
 * within the deadline is served with it. */
START_TEST(a_deadline_covering_the_body_cuts_a_trickled_upload)
{
    vg_app *app;
    vg_stats st;
    char answer[512];
    double took, until;
    int fds = count_fds(), app_fds;

    app = counted_upload_app();
    ck_assert_int_eq(vg_map_timeout(app, "POST", "/up", 300), 0);
    ck_assert_int_eq(vg_map_deadline_body(app, "POST", "/up", true), 0);
    ck_assert_int_eq(vg_map_post(app, "/slow", on_upload, NULL), 0);
    ck_assert_int_eq(vg_map_uploads(app, "POST", "/slow", updir), 0);
    ck_assert_int_eq(vg_map_timeout(app, "POST", "/slow", 300), 0);
    ck_assert_int_eq(vg_map_post(app, "/roomy", on_upload, NULL), 0);
    ck_assert_int_eq(vg_map_uploads(app, "POST", "/roomy", updir), 0);
    ck_assert_int_eq(vg_map_timeout(app, "POST", "/roomy", 30000), 0);
    ck_assert_int_eq(vg_map_deadline_body(app, "POST", "/roomy", true), 0);
    ck_assert_int_eq(vg_map_deadline_body(app, "GET", "/nowhere", true), -ENOENT);
    tu_start(app);
    app_fds = count_conn_fds();

    took = trickle(vg_app_port(app), "/up", 40 * 1024, 1024, 50, answer,
                   sizeof answer);
    /* 40 pieces 50 ms apart would take 2 s; the deadline is 300 ms (the
     * bound is generous for loaded machines, and still well below). */
    ck_assert_msg(took < 1800, "the upload was not cut: %.0f ms", took);
    ck_assert_msg(answer[0] == '\0' || strncmp(answer, "HTTP/1.1 504", 12) == 0,
                  "answer: %s", answer);
    until = tu_now_ms() + 10000;
    while (atomic_load(&ended_other) < 1 && tu_now_ms() < until)
        usleep(1000); /* the completion hook has no notification */
    ck_assert_int_eq(atomic_load(&ended_other), 1);
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.cancelled_timeout, 1);
    ck_assert_int_eq(atomic_load(&handled), 0);
    ck_assert_int_eq(count_entries(updir), 0);
    until = tu_now_ms() + 10000;
    while (count_conn_fds() > app_fds && tu_now_ms() < until)
        usleep(1000);
    ck_assert_int_eq(count_conn_fds(), app_fds);

    /* Without the option the same client is served. */
    took = trickle(vg_app_port(app), "/slow", 40 * 1024, 1024, 25, answer,
                   sizeof answer);
    ck_assert_msg(strncmp(answer, "HTTP/1.1 200", 12) == 0, "answer: %s", answer);
    ck_assert_int_eq(atomic_load(&handled), 1);
    /* With it, an upload within its deadline (30 s: whatever the
     * machine's load) is served. */
    took = trickle(vg_app_port(app), "/roomy", 40 * 1024, 4096, 5, answer,
                   sizeof answer);
    ck_assert_msg(strncmp(answer, "HTTP/1.1 200", 12) == 0, "answer: %s", answer);
    ck_assert_int_eq(atomic_load(&handled), 2);
    vg_app_stats(app, &st);
    ck_assert_uint_eq(st.cancelled_timeout, 1);
    vg_app_free(app);
    ck_assert_int_eq(count_entries(updir), 0);
    ck_assert_int_eq(count_fds(), fds);
    remove_dirs();
}
END_TEST

static Suite *upload_suite(void)
{
    Suite *s = suite_create("upload");
    TCase *tc = tcase_create("upload");
    TCase *big = tcase_create("big");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, files_are_streamed_saved_and_the_rest_vanish_o_tmpfile);
    tcase_add_test(tc, files_are_streamed_saved_and_the_rest_vanish_mkstemp_fallback);
    tcase_add_test(tc, routes_without_uploads_have_none);
    tcase_add_test(tc, filenames_are_kept_as_sent_and_never_used_as_paths);
    tcase_add_test(tc, python_requests_multipart_is_streamed);
    tcase_add_test(tc, upload_limits_remove_the_files_and_answer_413);
    tcase_add_test(tc, files_around_the_write_buffer_size_are_stored_exactly);
    tcase_add_test(tc, an_upload_that_cannot_be_written_answers_500_and_leaves_nothing);
    tcase_add_test(tc, clients_leaving_mid_upload_leave_nothing_behind);
    tcase_add_test(tc, a_deadline_covering_the_body_cuts_a_trickled_upload);
    suite_add_tcase(s, tc);
    tcase_set_timeout(big, 300);
    tcase_add_test(big, a_gigabyte_upload_streams_in_bounded_memory);
    suite_add_tcase(s, big);
    return s;
}

int main(void)
{
    return tu_main(upload_suite());
}
