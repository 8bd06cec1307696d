/* app.c - an app's settings, and its life: start, run, stop, free.
 *
 * Shutdown order (DESIGN.md fact 8), run by the supervisor thread once
 * vg_app_stop rings its eventfd:
 *   1. quiesce the engine: no new connection is accepted;
 *   2. set `stopping`: requests that arrive on open connections get 503;
 *   3. wait up to the grace period for in-flight handlers to return;
 *   4. close the watcher's registry and, for every request still suspended,
 *      cancel its token (VG_CANCEL_SHUTDOWN) and resume it with a 503, and
 *      wait for resumes in progress (vg__engine_end_suspended);
 *   5. wait briefly for answers to go out;
 *   6. stop the engine's threads and daemons: no suspended connection is
 *      left for them to trip on; close the listening socket.
 * Workers and the watcher outlive the daemons until vg_app_free, because a
 * handler that ignores its token may still be running.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "app.h"
#include "core/clock.h"
#include "engine/engine.h"
#include "core/thread.h"
#include "core/token.h"

/* How long shutdown waits for 503s and last answers to be written before
 * stopping the daemon regardless. */
#define VG__DRAIN_MS 1000

/* ---- Address parsing ---- */

static bool vg__port_ok(const char *p)
{
    unsigned long v;
    char *end;

    if (*p == '\0' || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p))
        return false;
    v = strtoul(p, &end, 10);
    return *end == '\0' && v <= 65535;
}

/* Splits "host:port" or "[v6]:port" into the app's host and port. */
static int vg__parse_address(vg_app *app, const char *address)
{
    const char *colon, *host = address;
    size_t hlen;

    if (address == NULL)
        return 0; /* a listening socket will be given (vg_app_set_listen_fd) */
    if (*address == '\0')
        return -EINVAL;
    if (*address == '[') {
        const char *close = strchr(address, ']');
        if (close == NULL || close[1] != ':')
            return -EINVAL;
        host = address + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(address, ':');
        if (colon == NULL)
            return -EINVAL;
        hlen = (size_t)(colon - address);
        /* An unbracketed IPv6 address is ambiguous: "::1:80". */
        if (memchr(address, ':', hlen) != NULL)
            return -EINVAL;
    }
    if (hlen == 0 || hlen >= sizeof app->host || !vg__port_ok(colon + 1))
        return -EINVAL;
    memcpy(app->host, host, hlen);
    app->host[hlen] = '\0';
    if (strpbrk(app->host, " \t/[]") != NULL)
        return -EINVAL;
    strcpy(app->port, colon + 1);
    return 0;
}

/* ---- Creation and settings ---- */

static unsigned vg__default_workers(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = cpus > 0 ? 8u * (unsigned)cpus : 16u;
    return n < 16 ? 16 : n;
}

vg_app *vg_app_new(const char *address)
{
    vg_app *app = calloc(1, sizeof *app);
    int rc;

    if (app == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    rc = vg__parse_address(app, address);
    if (rc != 0) {
        free(app);
        errno = -rc;
        return NULL;
    }
    app->router = vg__router_new();
    if (app->router == NULL) {
        free(app);
        errno = ENOMEM;
        return NULL;
    }
    app->workers = vg__default_workers();
    app->shutdown_grace_ms = 10000;
    app->max_connections = 10000;
    app->batch = true;
    app->body_limit = 1024 * 1024;
    app->idle_timeout_s = 30;
    app->queue_limit = 4096;
    app->header_limit = 32 * 1024;
    app->watch = true;
    app->listen_fd = -1;
    app->stop_fd = -1;
    app->hup_fd = -1;
    vg__log_init_default(&app->log);
    pthread_mutex_init(&app->lock, NULL);
    vg__cond_init_monotonic(&app->cond);
    return app;
}

/* Settings may change only before start. */
static int vg__configurable(const vg_app *app)
{
    if (app == NULL)
        return -EINVAL;
    return atomic_load(&app->state) == VG__APP_NEW ? 0 : -EBUSY;
}

int vg_app_set_logger(vg_app *app, vg_log_fn fn, void *arg,
                      vg_log_level max_level)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    if ((unsigned)max_level > VG_LOG_DEBUG)
        return -EINVAL;
    app->log.fn = fn;
    app->log.arg = arg;
    app->log.max = max_level;
    return 0;
}

int vg_app_set_workers(vg_app *app, unsigned n)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    if (n == 0 || n > 4096)
        return -EINVAL;
    app->workers = n;
    return 0;
}

int vg_app_set_request_timeout(vg_app *app, unsigned ms)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    if (ms > (unsigned)INT32_MAX)
        return -EINVAL;
    app->request_timeout_ms = ms;
    return 0;
}

int vg_app_set_shutdown_grace(vg_app *app, unsigned ms)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    app->shutdown_grace_ms = ms;
    return 0;
}

int vg_app_set_drain_delay(vg_app *app, unsigned ms)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    app->drain_delay_ms = ms;
    return 0;
}

bool vg_app_stopping(const vg_app *app)
{
    int st;

    if (app == NULL)
        return false;
    st = atomic_load(&((vg_app *)app)->state);
    return st == VG__APP_STOPPING || st == VG__APP_STOPPED;
}

int vg_app_set_max_connections(vg_app *app, unsigned n)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    if (n == 0 || n > 1000000)
        return -EINVAL;
    app->max_connections = n;
    return 0;
}

int vg_app_set_body_limit(vg_app *app, size_t bytes)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    app->body_limit = bytes;
    return 0;
}

int vg_app_set_per_ip_limit(vg_app *app, unsigned n)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    app->per_ip_limit = n;
    return 0;
}

int vg_app_set_idle_timeout(vg_app *app, unsigned seconds)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    app->idle_timeout_s = seconds;
    return 0;
}

int vg_app_set_header_limit(vg_app *app, size_t bytes)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    /* libmicrohttpd needs room for its own buffers below a few KiB. */
    if (bytes < 4096 || bytes > 16u * 1024 * 1024)
        return -EINVAL;
    app->header_limit = bytes;
    return 0;
}

int vg_app_set_queue_limit(vg_app *app, unsigned n)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    if (n == 0)
        return -EINVAL;
    app->queue_limit = n;
    return 0;
}

int vg_app_set_disconnect_watch(vg_app *app, bool on)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    app->watch = on;
    return 0;
}

int vg_app_set_batch_scheduling(vg_app *app, bool on)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    app->batch = on;
    return 0;
}

int vg_app_set_reuse_port(vg_app *app, bool on)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    app->reuse_port = on;
    return 0;
}

/* Port of a bound socket, 0 if it has none we understand (AF_UNIX...). */
static unsigned short vg__socket_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* Accepts only what libmicrohttpd can serve: a listening TCP socket. */
static int vg__check_listening(int fd)
{
    int type = 0, listening = 0;
    socklen_t len = sizeof type;

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
        return errno == EBADF ? -EBADF : -ENOTSOCK;
    len = sizeof listening;
    if (type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 ||
        !listening)
        return -EINVAL;
    return 0;
}

int vg_app_set_listen_fd(vg_app *app, int fd)
{
    int rc = vg__configurable(app), flags;

    if (rc != 0)
        return rc;
    if (fd < 0 || app->listen_fd >= 0)
        return -EINVAL;
    rc = vg__check_listening(fd);
    if (rc != 0)
        return rc;
    /* libmicrohttpd's threads share the socket and must never block in
     * accept() after another thread took the connection. */
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return -errno;
    app->listen_fd = fd;
    app->listen_adopted = true;
    app->bound_port = vg__socket_port(fd);
    return 0;
}

/* systemd's socket activation protocol (sd_listen_fds(3)): passed sockets
 * start at descriptor 3 and LISTEN_PID names the process they are for. */
int vg_systemd_listen_fd(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    char *end;
    unsigned long v;

    if (pid == NULL || fds == NULL)
        return -ENOENT;
    errno = 0;
    v = strtoul(pid, &end, 10);
    if (errno != 0 || *end != '\0' || end == pid || v != (unsigned long)getpid())
        return -ENOENT;
    v = strtoul(fds, &end, 10);
    if (errno != 0 || *end != '\0' || end == fds || v < 1)
        return -ENOENT;
    return vg__check_listening(3) == 0 ? 3 : -ENOENT;
}

/* ---- Routes ---- */

int vg_map(vg_app *app, const char *method, const char *pattern, vg_handler fn,
           void *arg)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    if (fn == NULL)
        rc = -EINVAL;
    else
        rc = vg__router_add(app->router, method, pattern, fn, arg);
    if (rc != 0)
        vg__logf(&app->log, VG_LOG_ERROR, "cannot map %s %s: %s",
                 method ? method : "(null)", pattern ? pattern : "(null)",
                 rc == -EEXIST ? "route already mapped" : strerror(-rc));
    return rc;
}

int vg_map_get(vg_app *app, const char *pattern, vg_handler fn, void *arg)
{
    return vg_map(app, "GET", pattern, fn, arg);
}

int vg_map_post(vg_app *app, const char *pattern, vg_handler fn, void *arg)
{
    return vg_map(app, "POST", pattern, fn, arg);
}

int vg_map_put(vg_app *app, const char *pattern, vg_handler fn, void *arg)
{
    return vg_map(app, "PUT", pattern, fn, arg);
}

int vg_map_patch(vg_app *app, const char *pattern, vg_handler fn, void *arg)
{
    return vg_map(app, "PATCH", pattern, fn, arg);
}

int vg_map_delete(vg_app *app, const char *pattern, vg_handler fn, void *arg)
{
    return vg_map(app, "DELETE", pattern, fn, arg);
}

int vg_map_timeout(vg_app *app, const char *method, const char *pattern,
                   unsigned ms)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    if (ms > (unsigned)INT32_MAX)
        return -EINVAL;
    rc = vg__router_set_timeout(app->router, method, pattern, (long)ms);
    if (rc != 0)
        vg__logf(&app->log, VG_LOG_ERROR, "cannot set a timeout on %s %s: %s",
                 method ? method : "(null)", pattern ? pattern : "(null)",
                 rc == -ENOENT ? "no such route" : strerror(-rc));
    else if (ms > 0)
        app->route_timeouts = true;
    return rc;
}

int vg_map_inline(vg_app *app, const char *method, const char *pattern,
                  bool on)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    rc = vg__router_set_inline(app->router, method, pattern, on);
    if (rc != 0)
        vg__logf(&app->log, VG_LOG_ERROR, "cannot make %s %s inline: %s",
                 method ? method : "(null)", pattern ? pattern : "(null)",
                 rc == -ENOENT ? "no such route" : strerror(-rc));
    return rc;
}

int vg_map_deadline_body(vg_app *app, const char *method, const char *pattern,
                         bool on)
{
    int rc = vg__configurable(app);

    if (rc != 0)
        return rc;
    rc = vg__router_set_deadline_body(app->router, method, pattern, on);
    if (rc != 0)
        vg__logf(&app->log, VG_LOG_ERROR,
                 "cannot make the deadline of %s %s cover its body: %s",
                 method ? method : "(null)", pattern ? pattern : "(null)",
                 rc == -ENOENT ? "no such route" : strerror(-rc));
    return rc;
}

/* ---- Counters ---- */

void vg_app_stats(const vg_app *app, vg_stats *out)
{
    vg_app *a = (vg_app *)app; /* atomics are read-only here */

    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (a == NULL)
        return;
    out->requests = atomic_load(&a->requests);
    out->in_flight = atomic_load(&a->in_flight);
    out->cancelled_client_gone = atomic_load(&a->cancelled_client_gone);
    out->cancelled_timeout = atomic_load(&a->cancelled_timeout);
    out->cancelled_shutdown = atomic_load(&a->cancelled_shutdown);
}

void vg_app_load(const vg_app *app, vg_load *out)
{
    vg_app *a = (vg_app *)app;
    unsigned queued = 0, busy = 0;

    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    /* The pool and the engine exist from a successful start (whose state
     * store publishes them) until vg_app_free. */
    if (a == NULL || atomic_load(&a->state) == VG__APP_NEW)
        return;
    if (a->pool != NULL)
        vg__pool_load(a->pool, &queued, &busy);
    out->queued = queued;
    out->busy_workers = busy;
    out->workers = a->workers;
    out->connections = vg__engine_connections(a->engine);
}

/* ---- Start ---- */

/* Binds exactly the host asked for; names prefer their IPv4 address. */
static int vg__listen(vg_app *app)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, err = EADDRNOTAVAIL, one = 1, pass, rc;

    if (app->listen_fd >= 0)
        return 0; /* adopted by vg_app_set_listen_fd */
    if (app->host[0] == '\0') {
        vg__logf(&app->log, VG_LOG_ERROR,
                 "no address and no listening socket to serve on");
        return -EDESTADDRREQ;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(app->host, app->port, &hints, &res);
    if (rc != 0) {
        vg__logf(&app->log, VG_LOG_ERROR, "cannot resolve %s: %s", app->host,
                 gai_strerror(rc));
        return rc == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
    }
    for (pass = 0; pass < 2 && fd < 0; pass++) {
        for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
            if ((pass == 0) != (ai->ai_family == AF_INET))
                continue;
            fd = socket(ai->ai_family,
                        ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                err = errno;
                continue;
            }
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (app->reuse_port &&
                setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
                err = errno;
                close(fd);
                fd = -1;
                continue;
            }
            if (ai->ai_family == AF_INET6)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
                listen(fd, SOMAXCONN) != 0) {
                err = errno;
                close(fd);
                fd = -1;
            }
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        vg__logf(&app->log, VG_LOG_ERROR, "cannot listen on %s:%s: %s",
                 app->host, app->port, strerror(err));
        return -err;
    }
    app->bound_port = vg__socket_port(fd);
    app->listen_fd = fd;
    return 0;
}

/* Workers kept busy before a sleeping one is woken for a new task (see
 * pool.c): half the CPUs, since libmicrohttpd's threads need the rest. On
 * 2 CPUs, /hello over 50 connections cost 45 us of CPU per request with 16
 * workers woken in turn and 32 us with a single worker. */
static unsigned vg__awake_workers(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus >= 4 ? (unsigned)(cpus / 2) : 1u;
}

/* A worker whose task has run longer than this may be blocked: it no
 * longer stops a new task from waking another worker. */
#define VG__FRESH_US 100

/* Each connection is a descriptor: make room for the limit if allowed. */
static void vg__raise_nofile(vg_app *app)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)app->max_connections + 256;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
                      ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        vg__logf(&app->log, VG_LOG_WARN,
                 "open-file limit %llu is below the %u connections allowed",
                 (unsigned long long)rl.rlim_cur, app->max_connections);
}

static void vg__app_shutdown(vg_app *app);

static void *vg__supervisor_main(void *arg)
{
    vg_app *app = arg;
    uint64_t v;

    vg__thread_name("vg-supervisor");
    while (read(app->stop_fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    vg__app_shutdown(app);
    return NULL;
}

/* Undoes a partial start; the app can then only be freed. */
static void vg__start_failed(vg_app *app)
{
    vg__engine_stop(app->engine);
    if (app->listen_fd >= 0)
        close(app->listen_fd);
    app->listen_fd = -1;
    vg__pool_free(app->pool);
    app->pool = NULL;
    vg__engine_free(app->engine);
    app->engine = NULL;
}

int vg_app_start(vg_app *app)
{
    int expected = VG__APP_NEW, rc;

    if (app == NULL)
        return -EINVAL;
    if (atomic_load(&app->state) != VG__APP_NEW)
        return atomic_load(&app->state) == VG__APP_RUNNING ? -EALREADY
                                                           : -EINVAL;
    rc = vg__pipeline_prepare(app);
    if (rc != 0)
        return rc;
    app->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (app->stop_fd < 0)
        return -errno;
    rc = vg__listen(app);
    if (rc != 0)
        return rc;
    vg__raise_nofile(app);
    app->pool = vg__pool_new(app->workers, app->queue_limit,
                             vg__awake_workers(), VG__FRESH_US, app->batch);
    if (app->pool == NULL) {
        rc = -errno;
        vg__logf(&app->log, VG_LOG_ERROR, "cannot start threads: %s",
                 strerror(errno));
        vg__start_failed(app);
        return rc;
    }
    app->engine = vg__engine_start(app);
    if (app->engine == NULL) {
        rc = -errno;
        vg__start_failed(app);
        return rc;
    }
    rc = pthread_create(&app->supervisor, NULL, vg__supervisor_main, app);
    if (rc != 0) {
        vg__start_failed(app);
        return -rc;
    }
    app->supervisor_started = true;
    atomic_compare_exchange_strong(&app->state, &expected, VG__APP_RUNNING);
    if (app->listen_adopted)
        vg__logf(&app->log, VG_LOG_INFO, "serving the given socket (fd %d, port %u)",
                 app->listen_fd, (unsigned)app->bound_port);
    else
        vg__logf(&app->log, VG_LOG_INFO, "listening on %s:%u", app->host,
                 (unsigned)app->bound_port);
    return 0;
}

unsigned short vg_app_port(const vg_app *app)
{
    return app != NULL && app->listen_fd >= 0 ? app->bound_port : 0;
}

/* ---- Stop ---- */

void vg_app_stop(vg_app *app)
{
    int expected = VG__APP_RUNNING;
    uint64_t one = 1;

    /* Only an atomic exchange and a write(2): safe in a signal handler. */
    if (app != NULL &&
        atomic_compare_exchange_strong(&app->state, &expected,
                                       VG__APP_STOPPING)) {
        ssize_t n = write(app->stop_fd, &one, sizeof one);
        (void)n;
    }
}

/* Waits on app->cond until `*counter` is zero or `ms` pass. */
static void vg__wait_zero(vg_app *app, atomic_ullong *counter, unsigned ms)
{
    struct timespec deadline;

    vg__clock_deadline(&deadline, (uint64_t)ms * 1000000u);
    pthread_mutex_lock(&app->lock);
    while (atomic_load(counter) != 0)
        if (pthread_cond_timedwait(&app->cond, &app->lock, &deadline) ==
            ETIMEDOUT)
            break;
    pthread_mutex_unlock(&app->lock);
}

static void vg__app_shutdown(vg_app *app)
{
    vg__logf(&app->log, VG_LOG_INFO, "stopping");
    /* Serve on as usual for the drain delay: readiness probes already say
     * 503 (vg_app_stopping), so a load balancer takes this instance out
     * before it starts refusing anything. */
    if (app->drain_delay_ms > 0) {
        struct timespec ts = {app->drain_delay_ms / 1000,
                              (long)(app->drain_delay_ms % 1000) * 1000000L};
        vg__logf(&app->log, VG_LOG_INFO, "draining for %u ms",
                 app->drain_delay_ms);
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    /* No new connection is accepted from here on; the socket is closed
     * once the engine has stopped, and connections arriving meanwhile wait
     * in the backlog and are reset then. */
    vg__engine_quiesce(app->engine);
    atomic_store(&app->stopping, true);
    vg__wait_zero(app, &app->in_flight, app->shutdown_grace_ms);
    vg__engine_end_suspended(app->engine);
    vg__wait_zero(app, &app->live, VG__DRAIN_MS);
    vg__engine_stop(app->engine);
    if (app->listen_fd >= 0)
        close(app->listen_fd);
    app->listen_fd = -1;
    atomic_store(&app->state, VG__APP_STOPPED);
    vg__logf(&app->log, VG_LOG_INFO, "stopped");
}

/* ---- Run ---- */

static _Atomic(vg_app *) vg__signal_app;

__thread vg_app *vg__event_app;

static void vg__on_signal(int sig)
{
    vg_app *app = atomic_load(&vg__signal_app);
    uint64_t one = 1;

    if (sig == SIGHUP) {
        /* A feature asked for SIGHUP (TLS certificate reload): ring its
         * eventfd, a write being async-signal-safe; its thread does the
         * work. */
        if (app != NULL && app->hup_fd >= 0 &&
            write(app->hup_fd, &one, sizeof one) < 0)
            return;
        return;
    }
    vg_app_stop(app);
}

static void vg__join_supervisor(vg_app *app)
{
    if (app->supervisor_started && !app->supervisor_joined) {
        pthread_join(app->supervisor, NULL);
        app->supervisor_joined = true;
    }
}

int vg_app_run(vg_app *app)
{
    struct sigaction sa, old_int, old_term, old_hup;
    int rc;

    if (app == NULL)
        return -EINVAL;
    if (atomic_load(&app->state) == VG__APP_NEW) {
        rc = vg_app_start(app);
        if (rc != 0)
            return rc;
    }
    atomic_store(&vg__signal_app, app);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = vg__on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (app->hup_fd >= 0)
        sigaction(SIGHUP, &sa, &old_hup);
    vg__join_supervisor(app);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (app->hup_fd >= 0)
        sigaction(SIGHUP, &old_hup, NULL);
    atomic_store(&vg__signal_app, NULL);
    return 0;
}

/* ---- Free ---- */

/* Deferred requests hold the app until they are finished; shutdown has
 * cancelled their tokens, so code that watches them finishes soon. */
static void vg__wait_deferred(vg_app *app)
{
    while (atomic_load(&app->deferred) != 0) {
        vg__wait_zero(app, &app->deferred, 5000);
        if (atomic_load(&app->deferred) != 0)
            vg__logf(&app->log, VG_LOG_WARN,
                     "vg_app_free: waiting for %llu deferred requests to be "
                     "finished", (unsigned long long)atomic_load(&app->deferred));
    }
}

int vg__app_add_cleanup(vg_app *app, void (*fn)(void *), void *arg)
{
    vg__app_cleanup *c = malloc(sizeof *c);

    if (c == NULL)
        return -ENOMEM;
    c->fn = fn;
    c->arg = arg;
    c->next = app->cleanups;
    app->cleanups = c;
    return 0;
}

/* Runs once the engine and the pool are gone: no request is left to use
 * what the features attached. */
static void vg__run_cleanups(vg_app *app)
{
    while (app->cleanups != NULL) {
        vg__app_cleanup *c = app->cleanups;
        app->cleanups = c->next;
        c->fn(c->arg);
        free(c);
    }
}

void vg_app_free(vg_app *app)
{
    if (app == NULL)
        return;
    vg_app_stop(app);
    vg__join_supervisor(app);
    vg__wait_deferred(app);
    /* Handlers may still run (a token ignored): the pool waits for them,
     * and they may still need the watcher until then. */
    vg__pool_free(app->pool);
    vg__engine_free(app->engine);
    if (app->listen_fd >= 0)
        close(app->listen_fd);
    if (app->stop_fd >= 0)
        close(app->stop_fd);
    vg__pipeline_free(app);
    vg__router_free(app->router);
    vg__run_cleanups(app);
    pthread_cond_destroy(&app->cond);
    pthread_mutex_destroy(&app->lock);
    free(app);
}
