/* testutil.c - see testutil.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static void tu_quiet_log(vg_log_level level, const char *msg, void *arg)
{
    (void)arg;
    if (level == VG_LOG_ERROR)
        fprintf(stderr, "volga(test): %s\n", msg);
}

vg_app *tu_app_new(void)
{
    vg_app *app = vg_app_new("127.0.0.1:0");
    ck_assert_ptr_nonnull(app);
    ck_assert_int_eq(vg_app_set_logger(app, tu_quiet_log, NULL, VG_LOG_ERROR), 0);
    return app;
}

void tu_start(vg_app *app)
{
    ck_assert_int_eq(vg_app_start(app), 0);
    ck_assert_uint_ne(vg_app_port(app), 0);
}

typedef struct {
    char *data;
    size_t len;
} tu_buf;

static size_t tu_collect(char *ptr, size_t size, size_t n, void *arg)
{
    tu_buf *b = arg;
    size_t add = size * n;
    char *grown = realloc(b->data, b->len + add + 1);

    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, ptr, add);
    b->len += add;
    grown[b->len] = '\0';
    b->data = grown;
    return add;
}

tu_response tu_request(unsigned short port, const char *method,
                       const char *path, const char *body, size_t len,
                       const char *const *headers)
{
    tu_response r = {0};
    tu_buf b = {0}, h = {0};
    struct curl_slist *list = NULL;
    char url[2048];
    CURL *c = curl_easy_init();

    ck_assert_ptr_nonnull(c);
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tu_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tu_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    list = curl_slist_append(list, "Expect:");
    for (; headers != NULL && *headers != NULL; headers++)
        list = curl_slist_append(list, *headers);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    r.curl_code = (int)curl_easy_perform(c);
    if (r.curl_code == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    r.body = b.data ? b.data : strdup("");
    r.body_len = b.len;
    r.headers = h.data ? h.data : strdup("");
    return r;
}

tu_response tu_get(unsigned short port, const char *path)
{
    return tu_request(port, "GET", path, NULL, 0, NULL);
}

tu_response tu_curl_perform(void *easy, unsigned short port, const char *path)
{
    tu_response r = {0};
    tu_buf b = {0}, h = {0};
    char url[2048];
    CURL *c = easy;

    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tu_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tu_collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    r.curl_code = (int)curl_easy_perform(c);
    if (r.curl_code == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    /* The handle outlives this call: leave it no pointers to our locals. */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, NULL);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, NULL);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, NULL);
    r.body = b.data ? b.data : strdup("");
    r.body_len = b.len;
    r.headers = h.data ? h.data : strdup("");
    return r;
}

void tu_response_free(tu_response *r)
{
    free(r->body);
    free(r->headers);
    r->body = r->headers = NULL;
}

char *tu_header(const tu_response *r, const char *name)
{
    size_t nlen = strlen(name);
    const char *line = r->headers;

    while (line != NULL && *line) {
        const char *end = strstr(line, "\r\n");
        size_t llen = end ? (size_t)(end - line) : strlen(line);
        if (llen > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            return strndup(v, llen - (size_t)(v - line));
        }
        line = end ? end + 2 : NULL;
    }
    return NULL;
}

int tu_try_connect(unsigned short port)
{
    struct sockaddr_in sa;
    struct timeval tv = {10, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tu_connect(unsigned short port)
{
    int fd = tu_try_connect(port);

    ck_assert_int_ge(fd, 0);
    return fd;
}

bool tu_send_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        s += n;
        len -= (size_t)n;
    }
    return true;
}

size_t tu_recv_all(int fd, char *buf, size_t len)
{
    size_t got = 0;

    while (got + 1 < len) {
        ssize_t n = recv(fd, buf + got, len - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

size_t tu_recv_response(int fd, char *buf, size_t len)
{
    size_t got = 0;

    while (got + 1 < len) {
        ssize_t n = recv(fd, buf + got, len - 1 - got, 0);
        char *hend, *cl;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        got += (size_t)n;
        buf[got] = '\0';
        hend = strstr(buf, "\r\n\r\n");
        if (hend == NULL)
            continue;
        cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl == NULL || cl > hend)
            return got;
        if (got >= (size_t)(hend + 4 - buf) + strtoul(cl + 17, NULL, 10))
            return got;
    }
    return 0;
}

void tu_close_rst(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

void tu_latch_init(tu_latch *l)
{
    pthread_condattr_t ca;
    pthread_mutex_init(&l->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    l->count = 0;
}

void tu_latch_destroy(tu_latch *l)
{
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
}

void tu_latch_add(tu_latch *l, int n)
{
    pthread_mutex_lock(&l->lock);
    l->count += n;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

bool tu_latch_wait(tu_latch *l, int target, int ms)
{
    struct timespec ts;
    bool ok;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->lock);
    while (l->count < target)
        if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) == ETIMEDOUT)
            break;
    ok = l->count >= target;
    pthread_mutex_unlock(&l->lock);
    return ok;
}

double tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Each spawned child holds the write end of an "exit pipe" that nothing
 * else has: the read end sees EOF when the child exits, so waiting for the
 * exit is a poll() on it, with no timer. */
#define TU_MAX_CHILDREN 64
static struct {
    pid_t pid;
    int exit_fd;
} tu_children[TU_MAX_CHILDREN];
static pthread_mutex_t tu_children_lock = PTHREAD_MUTEX_INITIALIZER;

/* Removes `pid` from the table and returns its exit pipe, or -1. */
static int tu_child_take(pid_t pid)
{
    int i, fd = -1;

    pthread_mutex_lock(&tu_children_lock);
    for (i = 0; i < TU_MAX_CHILDREN; i++)
        if (tu_children[i].pid == pid && tu_children[i].exit_fd >= 0) {
            fd = tu_children[i].exit_fd;
            tu_children[i].pid = 0;
            tu_children[i].exit_fd = -1;
            break;
        }
    pthread_mutex_unlock(&tu_children_lock);
    return fd;
}

static bool tu_child_put(pid_t pid, int exit_fd)
{
    int i;

    pthread_mutex_lock(&tu_children_lock);
    for (i = 0; i < TU_MAX_CHILDREN; i++)
        if (tu_children[i].pid == 0 && tu_children[i].exit_fd <= 0) {
            tu_children[i].pid = pid;
            tu_children[i].exit_fd = exit_fd;
            break;
        }
    pthread_mutex_unlock(&tu_children_lock);
    return i < TU_MAX_CHILDREN;
}

/* The child's end of its exit pipe sits on a descriptor no program uses. */
#define TU_EXIT_FD 1023

pid_t tu_spawn(char *const argv[], int in_fd, int out_fd, int err_fd)
{
    pid_t parent = getpid(), pid;
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC), ep[2], saved;

    if (devnull < 0)
        return -1;
    if (pipe2(ep, O_CLOEXEC) != 0) {
        close(devnull);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        sigset_t none;

        /* The parent has threads: only async-signal-safe calls until exec.
         * The death signal is what stops a server whose test died; checking
         * the parent afterwards closes the race with a parent that died
         * before prctl. dup2 clears close-on-exec, so the exit pipe's write
         * end lives as long as the program. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(in_fd >= 0 ? in_fd : devnull, 0) < 0 ||
            dup2(out_fd >= 0 ? out_fd : devnull, 1) < 0 ||
            dup2(err_fd >= 0 ? err_fd : devnull, 2) < 0 ||
            dup2(ep[1], TU_EXIT_FD) < 0)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    saved = errno;
    close(devnull);
    close(ep[1]);
    if (pid < 0 || !tu_child_put(pid, ep[0]))
        close(ep[0]);
    errno = saved;
    return pid;
}

bool tu_wait_exit(pid_t pid, int ms, int *status)
{
    double deadline = tu_now_ms() + ms;
    int fd = tu_child_take(pid), st = 0, rc = 0;
    pid_t got;

    if (fd >= 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        do {
            double left = deadline - tu_now_ms();
            rc = poll(&pfd, 1, left > 0 ? (int)left + 1 : 0);
        } while (rc < 0 && errno == EINTR);
    }
    /* EOF on the pipe: the child is exiting, so a blocking wait is short.
     * Otherwise (time is up, or a child we did not spawn) only look. */
    do
        got = waitpid(pid, &st, rc > 0 ? 0 : WNOHANG);
    while (got < 0 && errno == EINTR);
    if (got == pid) {
        if (fd >= 0)
            close(fd);
        if (status != NULL)
            *status = st;
        return true;
    }
    if (fd >= 0 && !tu_child_put(pid, fd))
        close(fd);
    return false;
}

bool tu_make_cert(const char *cert, const char *key, const char *cn)
{
    char subj[64];
    char *argv[] = {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", (char *)key, "-out", (char *)cert, "-days", "2",
                    "-subj", subj, "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost", NULL};
    int st;
    pid_t pid;

    snprintf(subj, sizeof subj, "/CN=%s", cn);
    pid = tu_spawn(argv, -1, -1, -1);
    return pid > 0 && tu_wait_exit(pid, 20000, &st) && WIFEXITED(st) &&
           WEXITSTATUS(st) == 0;
}

int tu_stop_child(pid_t pid, int sig, int ms)
{
    int status = 0;

    kill(pid, sig);
    if (tu_wait_exit(pid, ms, &status))
        return status;
    kill(pid, SIGKILL);
    tu_wait_exit(pid, 10000, NULL);
    return -1;
}

void tu_sample_start(tu_sample *s, const char *name, bool want_err)
{
    const char *top = getenv("top_builddir");
    char path[PATH_MAX], buf[512] = "";
    char *argv[] = {path, (char *)"127.0.0.1:0", NULL};
    int out[2], err[2] = {-1, -1};
    size_t got = 0;
    const char *at = buf;

    memset(s, 0, sizeof *s);
    snprintf(path, sizeof path, "%s/samples/%s", top ? top : ".", name);
    ck_assert_msg(access(path, X_OK) == 0, "%s is not built", path);
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    if (want_err)
        ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
    s->pid = tu_spawn(argv, -1, out[1], err[1]);
    ck_assert_int_gt(s->pid, 0);
    close(out[1]);
    if (want_err)
        close(err[1]);
    s->out = out[0];
    s->err = err[0];
    /* Every sample prints "... port N" on its first stdout line. */
    for (;;) {
        struct pollfd pfd = {s->out, POLLIN, 0};
        ssize_t n;
        while ((at = strstr(at, "port ")) != NULL && (at[5] < '0' || at[5] > '9'))
            at += 5;
        if (at != NULL && strchr(at, '\n') != NULL)
            break;
        at = buf;
        ck_assert_msg(poll(&pfd, 1, 10000) == 1, "no port line from %s", name);
        n = read(s->out, buf + got, sizeof buf - 1 - got);
        ck_assert_msg(n > 0, "%s exited before printing its port", name);
        got += (size_t)n;
        buf[got] = '\0';
    }
    s->port = (unsigned short)atoi(at + 5);
    ck_assert_uint_ne(s->port, 0);
}

/* Whether process `pid` catches `sig` now (SigCgt in /proc/PID/status). */
static bool tu_catches(int pid, int sig)
{
    char path[64], line[256];
    unsigned long long mask = 0;
    bool found = false;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", pid);
    if ((f = fopen(path, "r")) == NULL)
        return false;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "SigCgt: %llx", &mask) == 1) {
            found = true;
            break;
        }
    fclose(f);
    return found && (mask >> (sig - 1) & 1);
}

void tu_sample_stop(tu_sample *s)
{
    int status = 0;
    double t0 = tu_now_ms();
    struct timespec ms = {0, 1000000};

    /* A sample prints its port after vg_app_start and only then enters
     * vg_app_run, which installs the SIGTERM handler: a SIGTERM sent in
     * between would kill it instead of stopping it. Nothing announces the
     * handler, so look for it (bounded). */
    while (!tu_catches(s->pid, SIGTERM) && tu_now_ms() - t0 < 10000)
        nanosleep(&ms, NULL);
    ck_assert_msg(tu_catches(s->pid, SIGTERM),
                  "the sample never installed its SIGTERM handler");
    ck_assert_int_eq(kill(s->pid, SIGTERM), 0);
    ck_assert_msg(tu_wait_exit(s->pid, 10000, &status),
                  "the sample did not exit within 10 s of SIGTERM");
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    close(s->out);
    if (s->err >= 0)
        close(s->err);
}

bool tu_wait_settled(vg_app *app, unsigned long long requests, int ms,
                     vg_stats *st)
{
    vg_token *tick = vg_token_new();
    double deadline = tu_now_ms() + ms;
    bool ok;

    ck_assert_ptr_nonnull(tick);
    for (;;) {
        vg_app_stats(app, st);
        ok = st->requests >= requests && st->in_flight == 0;
        if (ok || tu_now_ms() > deadline)
            break;
        vg_token_wait(tick, 1); /* 1 ms on a token nobody cancels */
    }
    vg_token_unref(tick);
    return ok;
}

static int tu_remove_entry(const char *path, const struct stat *st, int flag,
                           struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void tu_remove_tree(const char *path)
{
    nftw(path, tu_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int tu_main(Suite *suite)
{
    SRunner *sr = srunner_create(suite);
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
