/* cdp.c - see cdp.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cdp.h"
#include "testutil.h"

bool cdp_launch(cdp_browser *b, const char *exe)
{
    /* --headless: no display needed (Chromium >= 132 only has the "new"
     * headless mode). --no-sandbox: the sandbox refuses to run as root and
     * needs user namespaces that containers often lack. The dev-shm, GPU,
     * background-networking, extension, component-update and proxy flags
     * keep the browser from depending on the machine (a small /dev/shm, no
     * GPU, a proxy in the environment) and from talking to anyone but us. */
    char dirflag[96];
    char *argv[] = {
        (char *)exe, (char *)"--headless", (char *)"--no-sandbox",
        (char *)"--disable-gpu", (char *)"--disable-dev-shm-usage",
        (char *)"--no-first-run", (char *)"--no-default-browser-check",
        (char *)"--disable-background-networking",
        (char *)"--disable-component-update", (char *)"--disable-extensions",
        (char *)"--no-proxy-server", (char *)"--log-level=3", dirflag,
        (char *)"--remote-debugging-pipe", (char *)"about:blank", NULL};
    int cmd[2], rep[2], in_fd, out_fd;
    pid_t parent = getpid();

    memset(b, 0, sizeof *b);
    b->to_fd = b->from_fd = -1;
    b->next_id = 1;
    snprintf(b->dir, sizeof b->dir, "/tmp/volga-browser-XXXXXX");
    if (mkdtemp(b->dir) == NULL) {
        snprintf(b->err, sizeof b->err, "mkdtemp: %s", strerror(errno));
        b->dir[0] = '\0';
        return false;
    }
    snprintf(dirflag, sizeof dirflag, "--user-data-dir=%s", b->dir);
    if (pipe2(cmd, O_CLOEXEC) != 0) {
        snprintf(b->err, sizeof b->err, "pipe: %s", strerror(errno));
        goto fail;
    }
    b->to_fd = cmd[1];
    if (pipe2(rep, O_CLOEXEC) != 0) {
        snprintf(b->err, sizeof b->err, "pipe: %s", strerror(errno));
        close(cmd[0]);
        goto fail;
    }
    b->from_fd = rep[0];
    /* The browser's ends move above 4 first, so that placing them on 3 and
     * 4 in the child can never overwrite one with the other. */
    in_fd = fcntl(cmd[0], F_DUPFD_CLOEXEC, 10);
    out_fd = fcntl(rep[1], F_DUPFD_CLOEXEC, 10);
    close(cmd[0]);
    close(rep[1]);
    if (in_fd < 0 || out_fd < 0) {
        snprintf(b->err, sizeof b->err, "fcntl: %s", strerror(errno));
        if (in_fd >= 0)
            close(in_fd);
        if (out_fd >= 0)
            close(out_fd);
        goto fail;
    }
    b->pid = fork();
    if (b->pid == 0) {
        /* The child: only async-signal-safe calls until exec. The death
         * signal kills the browser if the test process dies (a failed
         * Check assertion _exits the test's process); it survives exec.
         * stderr stays the test's, so a browser that cannot start says
         * why in the test log (--log-level=3 keeps it quiet otherwise). */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
            dup2(in_fd, 3) < 0 || dup2(out_fd, 4) < 0)
            _exit(127);
        execv(exe, argv);
        _exit(127);
    }
    close(in_fd);
    close(out_fd);
    if (b->pid < 0) {
        snprintf(b->err, sizeof b->err, "fork: %s", strerror(errno));
        b->pid = 0;
        goto fail;
    }
    /* A browser that dies makes our writes fail with EPIPE; without this
     * the signal would kill the test instead of failing it. */
    signal(SIGPIPE, SIG_IGN);
    return true;
fail:
    cdp_quit(b, 0); /* no browser yet: closes the pipes, removes the dir */
    return false;
}

static bool cdp_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* The next whole message from the browser, a new reference, or NULL with
 * b->err set once tu_now_ms() passes `deadline` or the pipe breaks. */
static json_t *cdp_read(cdp_browser *b, double deadline)
{
    for (;;) {
        char *nul = b->len > 0 ? memchr(b->buf, '\0', b->len) : NULL;
        struct pollfd pfd = {b->from_fd, POLLIN, 0};
        double left;
        ssize_t n;

        if (nul != NULL) {
            size_t mlen = (size_t)(nul - b->buf);
            json_error_t je;
            json_t *msg = json_loadb(b->buf, mlen, 0, &je);

            memmove(b->buf, nul + 1, b->len - mlen - 1);
            b->len -= mlen + 1;
            if (msg == NULL)
                snprintf(b->err, sizeof b->err, "bad message: %s", je.text);
            return msg;
        }
        left = deadline - tu_now_ms();
        if (left <= 0) {
            snprintf(b->err, sizeof b->err, "no reply in time");
            return NULL;
        }
        if (poll(&pfd, 1, (int)left + 1) <= 0)
            continue; /* EINTR or a timeout: the deadline decides */
        if (b->cap - b->len < 65536) {
            char *grown = realloc(b->buf, b->cap + 65536);
            if (grown == NULL) {
                snprintf(b->err, sizeof b->err, "out of memory");
                return NULL;
            }
            b->buf = grown;
            b->cap += 65536;
        }
        n = read(b->from_fd, b->buf + b->len, b->cap - b->len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            b->closed = n == 0;
            snprintf(b->err, sizeof b->err, "browser closed the pipe (%s)",
                     n == 0 ? "exited" : strerror(errno));
            return NULL;
        }
        b->len += (size_t)n;
    }
}

json_t *cdp_call(cdp_browser *b, const char *session, const char *method,
                 int ms, const char *fmt, ...)
{
    long id = b->next_id++;
    double deadline = tu_now_ms() + ms;
    json_t *cmd, *params = NULL, *msg;
    json_error_t je;
    char *text;
    bool sent;

    if (b->pid <= 0) {
        snprintf(b->err, sizeof b->err, "%s: no browser", method);
        return NULL;
    }
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        params = json_vpack_ex(&je, 0, fmt, ap);
        va_end(ap);
        if (params == NULL) {
            snprintf(b->err, sizeof b->err, "%s: params: %s", method, je.text);
            return NULL;
        }
    }
    cmd = json_pack("{s:I, s:s}", "id", (json_int_t)id, "method", method);
    if (cmd == NULL) {
        json_decref(params);
        snprintf(b->err, sizeof b->err, "%s: out of memory", method);
        return NULL;
    }
    if (params != NULL)
        json_object_set_new(cmd, "params", params);
    if (session != NULL)
        json_object_set_new(cmd, "sessionId", json_string(session));
    text = json_dumps(cmd, JSON_COMPACT);
    json_decref(cmd);
    /* The terminating NUL is the message separator: send it too. */
    sent = text != NULL && cdp_write_all(b->to_fd, text, strlen(text) + 1);
    free(text);
    if (!sent) {
        snprintf(b->err, sizeof b->err, "%s: cannot send: %s", method,
                 strerror(errno));
        return NULL;
    }
    while ((msg = cdp_read(b, deadline)) != NULL) {
        json_t *mid = json_object_get(msg, "id");
        json_t *error, *result;

        if (!json_is_integer(mid) || json_integer_value(mid) != id) {
            json_decref(msg); /* an event: nothing here waits for those */
            continue;
        }
        error = json_object_get(msg, "error");
        result = json_object_get(msg, "result");
        if (error != NULL || result == NULL) {
            char *e = json_dumps(error ? error : msg, JSON_COMPACT);
            snprintf(b->err, sizeof b->err, "%s: %s", method, e ? e : "?");
            free(e);
            result = NULL;
        }
        json_incref(result);
        json_decref(msg);
        return result;
    }
    {
        char why[sizeof b->err];
        memcpy(why, b->err, sizeof why);
        snprintf(b->err, sizeof b->err, "%s: %.400s", method, why);
    }
    return NULL;
}

bool cdp_quit(cdp_browser *b, int ms)
{
    bool by_itself = false;

    if (b->pid > 0) {
        double deadline = tu_now_ms() + ms;
        /* The reply may never come (the browser can close the pipe first);
         * its exit is what counts. */
        json_t *r = cdp_call(b, NULL, "Browser.close", ms, NULL);
        int status;

        json_decref(r);
        /* The browser's end of the reply pipe closes when it exits (the
         * processes it starts do not inherit it), so end of file there,
         * awaited with a bound, says it is going; waitpid then only
         * collects it. pidfd_open would say the same more directly, but
         * valgrind (3.19) does not know that system call. */
        for (;;) {
            json_t *msg = cdp_read(b, deadline);
            if (msg == NULL)
                break;
            json_decref(msg); /* events sent while closing */
        }
        by_itself = b->closed;
        if (!by_itself)
            kill(b->pid, SIGKILL);
        while (waitpid(b->pid, &status, 0) < 0 && errno == EINTR)
            ;
        b->pid = 0;
    }
    if (b->to_fd >= 0)
        close(b->to_fd);
    if (b->from_fd >= 0)
        close(b->from_fd);
    b->to_fd = b->from_fd = -1;
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
    /* Best effort: a renderer still exiting may hold a file a moment. */
    if (b->dir[0] != '\0')
        tu_remove_tree(b->dir);
    b->dir[0] = '\0';
    return by_itself;
}
