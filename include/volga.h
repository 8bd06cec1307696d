/**
 * @file volga.h
 * volga.h - the whole public contract of libvolga.
 *
 * libvolga is a small routing and results layer on top of GNU libmicrohttpd
 * in the style of the Rust framework Volga. Its signature feature is request
 * cancellation: every request carries a token that is cancelled the moment
 * the remote client goes away, so long-running handlers can stop instead of
 * working for nobody.
 *
 * Conventions that hold for the whole API (exceptions are stated at the
 * function):
 *  - Functions that can fail return an int (0, or a negative errno-style
 *    code such as -EINVAL) or a pointer (NULL, with errno set).
 *  - Objects returned by a _new or _child function or a result constructor
 *    are owned by the caller until handed over; vg_*_free(NULL) and
 *    vg_token_unref(NULL) are harmless no-ops.
 *  - Strings returned by vg_request_* are borrowed from the request and valid
 *    until the handler returns.
 *  - Threads: app configuration (vg_app_set_*, vg_map*, vg_app_use,
 *    groups) must happen before vg_app_start and from one thread. Handlers
 *    and middleware run on the app's worker threads, several at once
 *    (inline routes: on the event threads); filters, completion hooks
 *    and, for some errors, the error handler run on libmicrohttpd's
 *    threads and must not block. Tokens and results may be used from any
 *    thread. Each function states anything beyond that.
 *  - The library never calls abort() or exit() for the application and never
 *    calls user code while holding one of its own locks.
 */
#ifndef VOLGA_H
#define VOLGA_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this header (the package version); libtool's ABI version is
 *  separate. */
#define VG_VERSION_MAJOR 0
#define VG_VERSION_MINOR 1 /**< see VG_VERSION_MAJOR */
#define VG_VERSION_PATCH 0 /**< see VG_VERSION_MAJOR */

/** @cond INTERNAL */
#if defined(__GNUC__)
#define VG_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define VG_PRINTF(fmt, args)
#endif
/** @endcond */

/* ------------------------------------------------------------------------ */
/** @name Types
 * @{
 */

/** A server: its routes, settings, worker pool and libmicrohttpd daemon. */
typedef struct vg_app vg_app;
/** One HTTP request. Handlers borrow it; it is freed by the library. */
typedef struct vg_request vg_request;
/** What a handler answers with: status, headers and body. */
typedef struct vg_result vg_result;
/** A reference-counted cancellation token. */
typedef struct vg_token vg_token;
/** A response body written incrementally (chunked), from any thread. */
typedef struct vg_stream vg_stream;
/** The rest of a request's chain (inner middleware, then the handler),
 *  borrowed by a middleware for one call. */
typedef struct vg_next vg_next;
/** A route prefix with its own middleware, filters and deadline; owned by
 *  its app. */
typedef struct vg_group vg_group;

/**
 * A route handler. Runs on a worker thread while the request's connection is
 * suspended, so it may block (sleep, compute, wait on its token) without
 * stalling other connections. It returns a new result that the library then
 * owns; NULL answers 500 Internal Server Error. `arg` is the pointer given
 * when the route was mapped.
 */
typedef vg_result *(*vg_handler)(vg_request *req, void *arg);

/** Why a token was cancelled. A child token gets its parent's reason. */
typedef enum {
    VG_CANCEL_NONE = 0,    /**< not cancelled */
    VG_CANCEL_CLIENT_GONE, /**< the remote client closed, reset or half-closed */
    VG_CANCEL_TIMEOUT,     /**< the request's deadline passed */
    VG_CANCEL_SHUTDOWN,    /**< the app is shutting down */
    VG_CANCEL_MANUAL       /**< vg_token_cancel() was called */
} vg_cancel_reason;

/** Returns a static, human-readable name for `reason` ("client_gone"...). */
const char *vg_cancel_reason_name(vg_cancel_reason reason);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Logging
 * @{
 */

/** How much a log message matters; a logger gets its level and those above. */
typedef enum {
    VG_LOG_ERROR = 0, /**< something failed: a bind, a bad route, no memory */
    VG_LOG_WARN,      /**< something the operator should know about */
    VG_LOG_INFO,      /**< lifecycle: started, stopping, stopped */
    VG_LOG_DEBUG      /**< per-request detail */
} vg_log_level;

/**
 * A log sink. `msg` is one line without a trailing newline, borrowed for the
 * call. Runs on whichever thread logs (the caller of a vg_app_* function,
 * an event thread, the watcher or a worker), possibly on several at
 * once, so it must be thread-safe.
 */
typedef void (*vg_log_fn)(vg_log_level level, const char *msg, void *arg);

/** The default sink: writes "volga: LEVEL: msg" lines to stderr. */
void vg_log_stderr(vg_log_level level, const char *msg, void *arg);

/**
 * Routes the app's messages at `max_level` and below to `fn` (NULL: discard
 * them). The default is vg_log_stderr up to VG_LOG_WARN. At VG_LOG_INFO the
 * app also writes one access-log line per request when it completes:
 * "GET /path?q 200 0.153 ms", with " id=ID" when the response carries an
 * X-Request-Id (vg_app_use_request_id), then " cancelled: client_gone" (or
 * another reason) when the request's token fired; "-" stands for a status
 * never sent. Returns 0, -EINVAL or -EBUSY once started. Thread: the
 * configuring thread.
 */
int vg_app_set_logger(vg_app *app, vg_log_fn fn, void *arg,
                      vg_log_level max_level);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name App
 * @{
 */

/**
 * Creates an app that will listen on `address`, "host:port": "localhost:7878",
 * "127.0.0.1:0" (0: any free port), "[::1]:8080", "0.0.0.0:80". It binds
 * exactly that host, never silently every interface; a name that resolves
 * to both IPv4 and IPv6 binds its first IPv4 address. Nothing is bound until
 * vg_app_start. `address` may be NULL for an app that will serve a socket
 * given with vg_app_set_listen_fd. Returns NULL with errno EINVAL for a
 * malformed address or ENOMEM. Free with vg_app_free. Any thread.
 */
vg_app *vg_app_new(const char *address);

/**
 * Settings. Each must be called before vg_app_start, from the thread that
 * configures the app; each returns 0, -EINVAL for a bad value or a NULL app,
 * or -EBUSY once the app has started.
 */
/** Worker threads that run handlers; default max(16, 8 x online CPUs). */
int vg_app_set_workers(vg_app *app, unsigned n);
/** 0 = no deadline (the default). Past it the request's token is cancelled
 *  with VG_CANCEL_TIMEOUT and the client gets 504 at once; the handler's
 *  later result is discarded. */
int vg_app_set_request_timeout(vg_app *app, unsigned ms);
/** How long in-flight requests may finish after a stop is asked before
 *  their tokens are cancelled with VG_CANCEL_SHUTDOWN; default 10000. */
int vg_app_set_shutdown_grace(vg_app *app, unsigned ms);
/** How long a stopped app goes on serving as usual before the shutdown
 *  grace starts (default 0): readiness probes answer 503 from the moment
 *  of vg_app_stop (vg_app_stopping, vg_app_use_health), so a load balancer
 *  can take the instance out before it refuses anything. vg_app_free
 *  waits for it too. */
int vg_app_set_drain_delay(vg_app *app, unsigned ms);
/** Most concurrent connections, counted across every event thread;
 *  default 10000 (RLIMIT_NOFILE is raised toward what that needs where the
 *  system allows). A connection over the limit is closed at once. */
int vg_app_set_max_connections(vg_app *app, unsigned n);
/** Largest accepted request body; default 1 MiB. Larger bodies get 413. */
int vg_app_set_body_limit(vg_app *app, size_t bytes);
/** Most concurrent connections from one IP address (an IPv4 client seen
 *  over an IPv6 socket counts as its IPv4 address), across every event
 *  thread; 0 = no limit (the default). A connection over the limit is
 *  closed at once. */
int vg_app_set_per_ip_limit(vg_app *app, unsigned n);
/** Seconds a connection may stay idle (between requests, or while a
 *  client trickles a request or stops reading) before it is closed;
 *  default 30, 0 = never. Connections whose handler runs are exempt: use
 *  vg_app_set_request_timeout for those. */
int vg_app_set_idle_timeout(vg_app *app, unsigned seconds);
/** Memory for one connection's request head (request line and headers);
 *  a larger head gets 431. Default 32 KiB, range 4 KiB - 16 MiB. */
int vg_app_set_header_limit(vg_app *app, size_t bytes);
/** Requests that may wait for a free worker; default 4096. When every
 *  worker is busy and this many wait, new requests get 503 with
 *  Retry-After: 1 instead of growing memory without bound. */
int vg_app_set_queue_limit(vg_app *app, unsigned n);
/** Whether a client going away while its request is suspended (a handler
 *  running, a deferred answer, a parked stream) cancels the request's token
 *  at once (default true). The event threads see it on the connection's
 *  socket, which is in their epoll set for its whole life, so watching
 *  costs nothing per request. Turning it off is for measuring: without it
 *  a vanished client is noticed only when the handler returns. */
int vg_app_set_disconnect_watch(vg_app *app, bool on);
/** Whether the worker threads and the event threads run under Linux's
 *  SCHED_BATCH policy (default true). Such a thread does not preempt the
 *  running one when woken, so requests pass between the event threads and
 *  the workers in batches rather than one context switch each: about 0.2
 *  instead of 0.6 switches and 7-30% less CPU per request on a 2-core
 *  machine under load (bench/RESULTS.md). The price: when other programs
 *  keep the CPUs busy, a woken thread may wait up to a scheduler time slice
 *  (a few milliseconds) longer to run; that includes the event thread that
 *  notices a client leaving, so on a saturated machine cancellation may
 *  come a few milliseconds later (turn this off where that matters more
 *  than CPU). Threads a handler creates inherit the policy; the deadline
 *  watcher keeps the default policy. Real-time threads are never demoted;
 *  where the policy does not exist, nothing changes. */
int vg_app_set_batch_scheduling(vg_app *app, bool on);
/** Sets SO_REUSEPORT on the socket the app binds (default off), so that
 *  several processes, each with its own app on the same address, share the
 *  port and the kernel spreads new connections among them. Every process
 *  must turn it on; a running one that did not makes the others fail with
 *  -EADDRINUSE. */
int vg_app_set_reuse_port(vg_app *app, bool on);
/**
 * Serves an already bound and listening TCP socket instead of binding the
 * app's address: one inherited from a supervisor, such as systemd's socket
 * activation (see vg_systemd_listen_fd), or one set up by the program. On
 * success the app owns `fd`: it makes it non-blocking and close-on-exec and
 * closes it when it stops or is freed, even if never started. Returns 0,
 * -EBADF, -ENOTSOCK, -EINVAL (not a listening stream socket, or a socket was
 * already given), or -EBUSY once started. Thread: the configuring thread.
 */
int vg_app_set_listen_fd(vg_app *app, int fd);
/**
 * The listening socket systemd passed to this process (socket activation:
 * LISTEN_PID is this process and LISTEN_FDS >= 1), that is descriptor 3,
 * or -ENOENT when there is none. Only the first socket is considered; the
 * environment is left as it is. Pair it with vg_app_set_listen_fd. Any
 * thread.
 */
int vg_systemd_listen_fd(void);

/**
 * Binds the address (or takes the socket given with vg_app_set_listen_fd)
 * and starts serving on background threads, named so that top -H, gdb and
 * perf tell them apart: the event threads ("vg-event"; one per CPU, at
 * least 2, at most 16), each accepting connections and driving its own
 * libmicrohttpd daemon, which also notice clients leaving; the workers
 * ("vg-worker"; vg_app_set_workers; a sleeping worker is woken only when
 * no awake one will take the request soon); "vg-monitor", which watches
 * the queue for workers stuck in a handler; the deadline watcher
 * ("vg-watcher"; only when some route has a deadline) and "vg-supervisor"
 * for shutdown. Returns 0, or -EADDRINUSE, -EACCES, -EADDRNOTAVAIL (from bind),
 * -EDESTADDRREQ (no address and no socket), -EALREADY if already started,
 * -EINVAL if the app was stopped (an app runs once) or another negative
 * errno-style code. On failure nothing stays running and the error is
 * logged. Thread: the configuring thread.
 */
int vg_app_start(vg_app *app);

/** The bound port once started (useful with port 0), else 0. Any thread. */
unsigned short vg_app_port(const vg_app *app);

/**
 * Starts the app if needed and serves until SIGINT or SIGTERM arrives or
 * vg_app_stop is called, then shuts down gracefully (see vg_app_stop) and
 * returns 0, or a negative errno-style code if it could not start. While it
 * runs it installs handlers for SIGINT and SIGTERM (and, for an HTTPS app,
 * SIGHUP, which reloads the certificate: vg_app_reload_tls) and restores
 * the previous ones before returning. Call it from one thread (usually
 * main).
 */
int vg_app_run(vg_app *app);

/**
 * Begins a graceful shutdown and returns at once: vg_app_stopping turns
 * true (readiness probes answer 503), the app serves on as usual for the
 * drain delay (vg_app_set_drain_delay, default 0), then new connections
 * are no longer accepted (they wait in the listen backlog and are reset when the
 * socket closes), requests arriving on open connections get 503, in-flight
 * requests have the shutdown grace to finish, after which their tokens are
 * cancelled with VG_CANCEL_SHUTDOWN and their clients get 503. Any thread,
 * async-signal-safe, idempotent; NULL or an app never started is a no-op.
 */
void vg_app_stop(vg_app *app);

/**
 * Stops the app gracefully if it runs, waits for the shutdown to finish and
 * for every handler to return (a handler that ignores its token delays
 * this), then frees everything. NULL is a no-op. Never call it from a
 * handler or a callback of this app. Thread: the configuring thread.
 */
void vg_app_free(vg_app *app);

/** True from vg_app_stop on (during the drain delay, the grace and
 *  after): what a readiness probe reports. NULL: false. Any thread,
 *  lock-free. */
bool vg_app_stopping(const vg_app *app);

/** Counters for monitoring. */
typedef struct {
    unsigned long long requests;  /**< requests answered or abandoned */
    unsigned long long in_flight; /**< handlers running (or queued) now */
    unsigned long long cancelled_client_gone; /**< tokens cancelled: client gone */
    unsigned long long cancelled_timeout;     /**< ... deadline passed */
    unsigned long long cancelled_shutdown;    /**< ... app shutting down */
} vg_stats;

/** Copies the app's counters into `out`. Any thread, any time. */
void vg_app_stats(const vg_app *app, vg_stats *out);

/** How loaded the app is right now (gauges, unlike the counters of
 *  vg_stats). */
typedef struct {
    unsigned queued;       /**< requests waiting for a free worker */
    unsigned busy_workers; /**< workers running a handler (or about to) */
    unsigned workers;      /**< worker threads (vg_app_set_workers) */
    unsigned connections;  /**< connections open, across every event thread */
} vg_load;

/** Copies the app's load into `out` (all zero before vg_app_start); takes
 *  the worker pool's lock for a moment. Any thread, until vg_app_free. */
void vg_app_load(const vg_app *app, vg_load *out);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Routes
 *
 * A pattern is a path of '/'-separated segments: literals, `{name}`
 * parameters that match one non-empty segment, and a final `{*name}` that
 * matches the rest of the path (possibly empty, slashes included). Names are
 * letters, digits and '_'. A literal segment beats a parameter at the same
 * place; a parameter beats a `{*rest}`.
 *
 * Trailing slash: a pattern other than "/" must not end in '/', and a request
 * path ending in one '/' is matched as if it had none ("/users/" finds
 * "/users"). Segments are compared after percent-decoding, so a parameter
 * may hold an encoded '/' ("%2F").
 *
 * A path with no route answers 404 (or goes to the fallback,
 * vg_app_set_fallback); a path with routes for other methods answers 405
 * with an Allow header; HEAD is answered by every GET route (without its
 * body). OPTIONS on a path with routes but no OPTIONS route of its own
 * answers 204 with the path's Allow ("GET, HEAD, OPTIONS"), and
 * "OPTIONS *" answers 200 with every method the app serves; a mapped
 * OPTIONS route wins.
 *
 * Each returns 0, or -EINVAL for a NULL argument or an invalid pattern or
 * method, -EEXIST for a route already mapped for that method and pattern
 * shape, -EBUSY once started, -ENOMEM. Errors are also logged.
 * @{
 */
/** Routes GET (and so HEAD) requests for `pattern` to `fn(req, arg)`. */
int vg_map_get(vg_app *app, const char *pattern, vg_handler fn, void *arg);
/** Routes POST requests for `pattern` to `fn(req, arg)`. */
int vg_map_post(vg_app *app, const char *pattern, vg_handler fn, void *arg);
/** Routes PUT requests for `pattern` to `fn(req, arg)`. */
int vg_map_put(vg_app *app, const char *pattern, vg_handler fn, void *arg);
/** Routes PATCH requests for `pattern` to `fn(req, arg)`. */
int vg_map_patch(vg_app *app, const char *pattern, vg_handler fn, void *arg);
/** Routes DELETE requests for `pattern` to `fn(req, arg)`. */
int vg_map_delete(vg_app *app, const char *pattern, vg_handler fn, void *arg);
/** Any method token ("OPTIONS", "REPORT"...), case-sensitive as in HTTP. */
int vg_map(vg_app *app, const char *method, const char *pattern, vg_handler fn,
           void *arg);

/**
 * Gives the route already mapped for `method` and `pattern` its own
 * deadline, overriding vg_app_set_request_timeout: `ms` 0 means no deadline
 * for this route. The pattern must have the same shape as the mapped one
 * (parameter names may differ). A HEAD request answered by a GET route uses
 * the GET route's deadline. Returns 0, -EINVAL, -ENOENT (no such route) or
 * -EBUSY once started. Thread: the configuring thread, before start.
 */
int vg_map_timeout(vg_app *app, const char *method, const char *pattern,
                   unsigned ms);

/**
 * Makes the deadline of the route already mapped for `method` and
 * `pattern` (its own, its group's or the app's) count from when the
 * request's head arrived rather than from when its handler starts (`on`
 * true), so that a client sending its body slowly (a trickled upload) is
 * bounded by it and not only by the idle timeout. If it passes while the
 * body is still arriving, the request's token is cancelled with
 * VG_CANCEL_TIMEOUT (counted in vg_stats.cancelled_timeout), reading
 * stops, the uploads already written are removed at once and the handler
 * never runs; libmicrohttpd cannot answer before a body has ended, so the
 * connection is closed without an answer. If it passes once the body is
 * in but before the handler starts, the answer is 504 (through the error
 * handler); otherwise the handler gets what is left of it. No effect on a
 * route without a deadline. Returns as vg_map_timeout.
 */
int vg_map_deadline_body(vg_app *app, const char *method, const char *pattern,
                         bool on);

/**
 * Runs the route already mapped for `method` and `pattern` inline (`on`
 * true): its handler is called on libmicrohttpd's own thread, with no
 * suspend and no hand-off to a worker, which is the fastest way to answer.
 * Only for handlers that never block (no sleeping, no waiting on a token,
 * no slow I/O): while one runs, the other connections of that thread wait.
 * Its token still fires for a deadline (and the answer becomes 504) and for
 * shutdown, but a client leaving is only noticed after it returns; vg_defer
 * and streams are not available inline. Returns as vg_map_timeout.
 */
int vg_map_inline(vg_app *app, const char *method, const char *pattern,
                  bool on);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Pipeline: middleware, filters, groups, fallbacks and errors
 *
 * What runs around a handler, in this order for a request that a route
 * matches:
 *   1. filters (vg_app_filter, then each enclosing group's vg_group_filter
 *      from the outermost in), on an event thread, before the
 *      request is handed to a worker: quick yes/no decisions (a CORS
 *      preflight, a rate limit) that must cost no hand-off;
 *   2. middleware (vg_app_use, then each enclosing group's vg_group_use
 *      from the outermost in), on the handler's thread, each wrapping the
 *      rest of the chain: it may run code before, call vg_next_run at most
 *      once, or answer itself without calling it (a 401), and then
 *      decorate, replace or free what came back;
 *   3. the handler. Results unwind through the middleware in reverse.
 * Every route's chain is resolved once at start into a fixed array, so a
 * request walks it without a lock or an allocation, and a route in groups
 * costs nothing more to match than the same route mapped on the app.
 *
 * The library's own answers to routing misses (404, 405, OPTIONS on a
 * routed path, OPTIONS *) and the fallback pass through the app's filters
 * and middleware too (not through any group's), except a CORS preflight
 * (OPTIONS with Access-Control-Request-Method) on a path without an
 * OPTIONS route: it passes through the chain of the route it asks about,
 * so that a group's filters see preflights for the group's routes. With no app middleware
 * they are answered at once on an event thread; with some they run
 * on a worker like a handler, so that no middleware ever runs on
 * an event thread unless its route is inline.
 *
 * Middleware sees the request's token: a client leaving while a middleware
 * blocks cancels it exactly as in a handler. A deferred or streamed result
 * passes back through the chain as a result like any other; nothing may be
 * set on the deferred marker (vg_result_is_deferred), and code that must
 * run when such a request really ends belongs in a completion hook
 * (vg_app_on_complete). All registration happens before vg_app_start, from
 * the configuring thread; each returns -EBUSY once started.
 * @{
 */

/**
 * A middleware: `next` is the rest of the chain, borrowed for this call.
 * Return vg_next_run(next)'s result (possibly decorated), another result
 * (freeing the one that came back), or a result of its own without calling
 * vg_next_run. Returning NULL answers 500. Runs on the thread that runs the
 * handler: a worker, or an event thread for an inline route (then it
 * must not block either). `arg` is the pointer given at registration.
 */
typedef vg_result *(*vg_middleware)(vg_request *req, vg_next *next,
                                    void *arg);

/**
 * Runs the rest of the chain (inner middleware, then the handler) and
 * returns its result, owned by the caller: return it, decorate it
 * (vg_result_set_header), or free it and return another. At most once per
 * call of a middleware: a second call returns NULL with errno EALREADY (and
 * NULL `next` gives EINVAL). A NULL result from the inner chain means it
 * failed (500 unless replaced). The middleware's thread.
 */
vg_result *vg_next_run(vg_next *next);

/** Adds a middleware around every request the app answers, the library's
 *  own 404/405/OPTIONS and the fallback included; the first added is the
 *  outermost. Returns 0, -EINVAL (NULL app or fn), -EBUSY or -ENOMEM. */
int vg_app_use(vg_app *app, vg_middleware fn, void *arg);

/**
 * A filter: a quick decision made on an event thread before the
 * request is handed to a worker. Return NULL to let the request through,
 * or a result to answer it at once (it then skips the middleware and the
 * handler). It must not block, defer or start a stream; it may use
 * vg_request_add_response_header and vg_request_set_data to prepare what
 * the rest of the chain needs. The request's path, headers, body and
 * route are all available.
 */
typedef vg_result *(*vg_filter)(vg_request *req, void *arg);

/** Adds a filter for every request the app answers (misses included), in
 *  registration order. Returns as vg_app_use. */
int vg_app_filter(vg_app *app, vg_filter fn, void *arg);

/**
 * A group of routes under `prefix` ("/api/v1"; "/" for none), owned by the
 * app and valid until vg_app_free. The prefix follows the pattern rules
 * (literals and {params}, no {*rest}, no trailing '/'). NULL with errno
 * EINVAL (NULL app, bad prefix), EBUSY or ENOMEM. The configuring thread.
 */
vg_group *vg_app_group(vg_app *app, const char *prefix);
/** A group nested in `g`: its prefix is joined to g's ("/api" then "/v1":
 *  "/api/v1"), its middleware and filters run after g's. As vg_app_group. */
vg_group *vg_group_group(vg_group *g, const char *prefix);
/** Adds a middleware for the group's routes and its nested groups'. */
int vg_group_use(vg_group *g, vg_middleware fn, void *arg);
/** Adds a filter for the group's routes and its nested groups'. */
int vg_group_filter(vg_group *g, vg_filter fn, void *arg);
/**
 * Maps `method` on the group's prefix joined with `pattern` ("/users/{id}"
 * in "/api": "/api/users/{id}"; "/" maps the prefix itself), exactly as
 * vg_map would with the joined pattern, so vg_map_timeout and
 * vg_map_inline take the joined pattern. Returns as vg_map; errors and log
 * lines name the joined pattern.
 */
int vg_group_map(vg_group *g, const char *method, const char *pattern,
                 vg_handler fn, void *arg);
/** vg_group_map for GET (and so HEAD). */
int vg_group_map_get(vg_group *g, const char *pattern, vg_handler fn,
                     void *arg);
/** vg_group_map for POST. */
int vg_group_map_post(vg_group *g, const char *pattern, vg_handler fn,
                      void *arg);
/** vg_group_map for PUT. */
int vg_group_map_put(vg_group *g, const char *pattern, vg_handler fn,
                     void *arg);
/** vg_group_map for PATCH. */
int vg_group_map_patch(vg_group *g, const char *pattern, vg_handler fn,
                       void *arg);
/** vg_group_map for DELETE. */
int vg_group_map_delete(vg_group *g, const char *pattern, vg_handler fn,
                        void *arg);
/** A deadline for the group's routes and its nested groups' (0: none),
 *  instead of the app's; a nested group's own and a route's own
 *  (vg_map_timeout) win. Returns 0, -EINVAL or -EBUSY. */
int vg_group_set_timeout(vg_group *g, unsigned ms);

/**
 * Answers paths that no route matches with `fn(req, arg)` instead of the
 * built-in 404 (a path with routes for other methods still gets 405, and
 * OPTIONS on it 204). It runs like any handler: on a worker, with the app's
 * deadline, a token and the app's middleware; vg_request_route is NULL.
 * NULL fn restores the 404. Returns 0, -EINVAL or -EBUSY.
 */
int vg_app_set_fallback(vg_app *app, vg_handler fn, void *arg);

/**
 * Builds the answer to an error the library gives itself: 400 (a malformed
 * request: README "Conformance"), 404, 405, 413, 415, 431 where
 * libmicrohttpd lets it, 429 (a rate limiter), 500 (a handler returned NULL), 501 (an
 * over-long method no route maps), 503 (busy, or shutting down), 504 (deadline).
 * `detail` is a short static English text ("not found"); `req` is borrowed
 * for the call, and for errors found before the request was parsed its
 * path is NULL (method and vg_request_target are set). The status of what
 * it returns is set to `status`; headers the library needs (Allow,
 * Retry-After, Connection: close) are added. NULL means the built-in
 * plain-text answer. It runs on whichever thread answers: libmicrohttpd's
 * (400, 404/405 without app middleware, 413, 429), a worker (404/405 through
 * middleware, 500), the watcher (504) or the shutdown supervisor (503), so
 * it must be thread-safe and must not block.
 */
typedef vg_result *(*vg_error_fn)(const vg_request *req, unsigned status,
                                  const char *detail, void *arg);

/** Sets the app's error builder (NULL: the built-in plain text). Returns
 *  0, -EINVAL or -EBUSY. */
int vg_app_set_error_handler(vg_app *app, vg_error_fn fn, void *arg);

/**
 * An RFC 9457 problem document: `status` with Content-Type
 * "application/problem+json" and the body {"type":"about:blank",
 * "title":<the status's reason phrase>,"status":status,"detail":detail}
 * (no "detail" member when `detail` is NULL). NULL with errno EINVAL (a
 * status outside 200-999) or ENOMEM. Any thread.
 */
vg_result *vg_problem(unsigned status, const char *detail);

/**
 * Adds (or replaces) the member `member` of a problem result ("type",
 * "title" and "detail" may be replaced; "status" may not, it is the
 * response's); steals `value` in every case. Returns `res`; for a result
 * that is not a problem document, a NULL member or value, "status", or no
 * memory, frees `res` and returns NULL (which answers 500), so calls chain
 * like vg_result_set_header. NULL res returns NULL; the deferred marker is
 * returned unchanged. Any thread.
 */
vg_result *vg_problem_set(vg_result *res, const char *member, json_t *value);

/** Makes every error the library answers a problem document (see
 *  vg_app_set_error_handler): a 504 carries "cancelled": "timeout" and a 503
 *  at shutdown "cancelled": "shutdown". Replaces any error handler. Returns
 *  0, -EINVAL or -EBUSY. */
int vg_app_use_problem_details(vg_app *app);

/** What a completion hook learns about a request that has ended. */
typedef struct {
    const vg_request *req;   /**< borrowed for the call: accessors work */
    const char *method;      /**< as sent ("-" if never read) */
    const char *target;      /**< the request-target as sent ("-" if none) */
    const char *route;       /**< the matched pattern, NULL if none */
    unsigned status;         /**< the status sent, 0 if none was */
    unsigned long long body_bytes; /**< response body bytes handed to the
                                        connection */
    double duration_ms;      /**< from the request line to the end */
    vg_cancel_reason cancelled; /**< why its token fired, or VG_CANCEL_NONE */
} vg_completion;

/** A completion hook; see vg_app_on_complete. */
typedef void (*vg_complete_fn)(const vg_completion *c, void *arg);

/**
 * Calls `fn(c, arg)` once for every request when it has really ended: its
 * answer sent (or the connection lost), a deferred request finished, a
 * stream ended. Runs on an event thread: it must not block (count,
 * log, hand off). Hooks run in registration order; the access log (see
 * vg_app_set_logger) is one of them. Returns as vg_app_use.
 */
int vg_app_on_complete(vg_app *app, vg_complete_fn fn, void *arg);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Requests
 *
 * Everything here reads a request borrowed by a handler; strings stay valid
 * until the handler returns. Any thread may read a request while its
 * handler runs.
 * @{
 */

/** "GET", "POST"... as sent (HEAD requests report "HEAD"). */
const char *vg_request_method(const vg_request *req);
/** The percent-decoded path, without the query. */
const char *vg_request_path(const vg_request *req);
/** The decoded value of the route parameter `{name}` or `{*name}`, or NULL. */
const char *vg_request_param(const vg_request *req, const char *name);
/** The decoded value of query argument `name` (first one wins); "" for a
 *  bare `?name`; NULL if absent. */
const char *vg_request_query(const vg_request *req, const char *name);
/** The value of header `name`, matched case-insensitively (the first field
 *  of that name), or NULL. Several `Cookie` fields (as HTTP/2 gateways send
 *  them) give one value, every field's joined with "; ". For an
 *  absolute-form target ("GET http://host/p HTTP/1.1") `Host` is the
 *  target's authority. Borrowed for the request's life. */
const char *vg_request_header(const vg_request *req, const char *name);
/** The body and its length (`len` may be NULL); never NULL: an empty body is
 *  "" with length 0. The bytes are followed by a NUL not counted in len. */
const void *vg_request_body(const vg_request *req, size_t *len);
/** The body parsed as JSON on first use; borrowed (do not decref); NULL if
 *  the body is empty or not valid JSON. Call from the handler's thread. */
json_t *vg_request_json(vg_request *req);
/** The request's own cancellation token; never NULL; borrowed (take a
 *  vg_token_ref to keep it past the handler). See the token section. */
vg_token *vg_request_token(vg_request *req);

/**
 * Calls `fn(name, value, arg)` for every request header in the order the
 * client sent them, duplicates included (names as sent; two Cookie fields
 * are reported as sent). Stops at the first non-zero return of `fn` and
 * returns that value; returns 0 after the last header, -EINVAL for a NULL
 * argument. The strings are borrowed for the call. Any thread that may read
 * the request.
 */
int vg_request_headers(const vg_request *req,
                       int (*fn)(const char *name, const char *value,
                                 void *arg),
                       void *arg);
/** The client's IP address as text ("127.0.0.1", "::1"; an IPv4-mapped
 *  IPv6 peer is shown as IPv4), or NULL if unknown: the connected peer,
 *  or the client behind it when the peer is a trusted proxy (see
 *  vg_app_use_proxy_trust and vg_request_peer_addr). Borrowed for the
 *  request's life. Any thread that may read the request. */
const char *vg_request_client_addr(const vg_request *req);
/** The request-target exactly as sent ("/users/7?x=1"; an absolute-form
 *  "http://host/users/7" stays so, while vg_request_path gives its path). */
const char *vg_request_target(const vg_request *req);
/** The pattern of the route that matched, as it was mapped (a group's
 *  prefix included: "/api/v1/users/{id}"), or NULL when no route matched
 *  (404, 405, OPTIONS answered by the library, the fallback). Bounded in
 *  number by the app's routes: a good label for metrics. */
const char *vg_request_route(const vg_request *req);
/** The methods the request's path serves, as in an Allow header ("GET,
 *  HEAD, POST, OPTIONS"), or NULL when no route has the path. */
const char *vg_request_allow(const vg_request *req);

/**
 * Attaches `value` to the request under `key`, the address of something of
 * the caller's (a static variable), so that independent middleware never
 * collide. Setting a key again replaces the value (the old one's free_fn
 * runs). `free_fn(value)` (may be NULL) runs once when the request ends:
 * after the handler, or for a deferred or streamed request when it is
 * finished and its connection is done with it, on whichever thread drops
 * the request last. Returns 0, -EINVAL (NULL req or key) or -ENOMEM (then
 * free_fn has run on value). Call it from the thread that runs the
 * request's filters, middleware or handler, never from two threads at once.
 */
int vg_request_set_data(vg_request *req, const void *key, void *value,
                        void (*free_fn)(void *));
/** The value attached under `key`, or NULL. Same threads as
 *  vg_request_set_data. */
void *vg_request_data(const vg_request *req, const void *key);

/**
 * Adds a header (copied) to the response this request will get, whichever
 * it is: the handler's result, a middleware's, an error the library
 * answers itself (404, 405, 504...) or a deferred request's answer. This is
 * how a filter decorates answers it does not make (CORS, request IDs, rate
 * limit headers). Headers added after the answer was built are ignored.
 * Returns 0, -EINVAL (bad name or value, as vg_result_set_header) or
 * -ENOMEM. Any thread that may read the request.
 */
int vg_request_add_response_header(vg_request *req, const char *name,
                                   const char *value);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Forms
 *
 * A body sent as `application/x-www-form-urlencoded` or
 * `multipart/form-data` is decoded by libmicrohttpd's PostProcessor while
 * it arrives, once, whatever the handler later asks; its fields (the
 * urlencoded pairs, the multipart parts without a filename) are kept with
 * the request, in the order sent. The raw body stays available through
 * vg_request_body. A body the decoder refuses (a multipart type without a
 * boundary or with one longer than about 8 KiB, a part or a name longer
 * than about 16 KiB, an unterminated multipart body, bytes after the last
 * boundary) makes the whole form undecodable: the functions below then
 * fail with EBADMSG, and the handler decides what to answer (400, say).
 * Names and values are bytes as sent, percent-decoded for urlencoded
 * bodies; nothing checks that they are UTF-8.
 * @{
 */

/**
 * The value of the first form field called `name` (exact, case-sensitive
 * match), NUL-terminated and borrowed for the request's life; "" for an
 * empty value. A value holding NUL bytes reads short here: use
 * vg_request_form_each for its full length. Returns NULL and sets errno:
 * ENOENT if the body is not a form (another Content-Type, or none) or has
 * no such field, EBADMSG if the form could not be decoded, EINVAL for a
 * NULL argument. Any thread that may read the request.
 */
const char *vg_request_form(vg_request *req, const char *name);

/**
 * Calls `fn(name, value, len, arg)` for every form field in the order
 * sent, repeated names included (`len` is the value's length; the value is
 * also NUL-terminated). Stops at the first non-zero return of `fn` and
 * returns it; returns 0 after the last field, -ENOENT if the body is not a
 * form, -EBADMSG if it could not be decoded, -EINVAL for a NULL `req` or
 * `fn`. The strings are borrowed for the request's life. Any thread that
 * may read the request.
 */
int vg_request_form_each(vg_request *req,
                         int (*fn)(const char *name, const char *value,
                                   size_t len, void *arg),
                         void *arg);

/**
 * What a request body may be, for vg_app_set_body_limits,
 * vg_group_set_body_limits and vg_map_body_limits. A 0 member inherits:
 * a route takes what it does not set from its group, a group from its
 * enclosing group, a group of the app from the app, the app from the
 * defaults; SIZE_MAX means no limit. Every limit is exact: N is accepted,
 * N + 1 answers 413. A breach answers 413 through the error handler as
 * soon as it is seen (a declared Content-Length over `body` before a byte
 * of the body is read), stops reading and closes the connection; no
 * handler runs and the fields and temporary files are dropped.
 */
typedef struct vg_body_limits {
    size_t body;       /**< the whole body, bytes; default: vg_app_set_body_limit (1 MiB) */
    size_t file_size;  /**< one multipart file part, bytes; default: no limit but `body` */
    size_t files;      /**< multipart file parts; default 100 */
    size_t fields;     /**< form fields (urlencoded pairs, multipart text parts); default 10,000 */
    size_t field_size; /**< one field's value, bytes; default 1 MiB */
} vg_body_limits;

/** Sets the app's body limits (the non-zero members of `*lim`, copied;
 *  `body` is the same setting as vg_app_set_body_limit). 0, -EINVAL (NULL
 *  argument), -EBUSY once started, -ENOMEM. The configuring thread. */
int vg_app_set_body_limits(vg_app *app, const vg_body_limits *lim);
/** Sets body limits for the group's routes and its nested groups' (the
 *  non-zero members, copied; a later call adds to an earlier one). Returns
 *  as vg_app_set_body_limits. */
int vg_group_set_body_limits(vg_group *g, const vg_body_limits *lim);
/**
 * Sets body limits for the route already mapped for `method` and
 * `pattern` (same shape; parameter names may differ): the non-zero
 * members of `*lim`, copied, over its groups' and the app's. An upload
 * route takes 1 GiB this way while the app's default stays 1 MiB. A HEAD
 * request answered by a GET route uses the GET route's limits. Returns 0,
 * -EINVAL, -ENOENT (no such route, logged), -EBUSY once started, -ENOMEM.
 * The configuring thread.
 */
int vg_map_body_limits(vg_app *app, const char *method, const char *pattern,
                       const vg_body_limits *lim);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Uploads
 *
 * On a route (or the routes of a group) set to stream uploads, the file
 * parts of a `multipart/form-data` body (parts with a filename) are
 * written to anonymous temporary files as the bytes arrive, through the
 * same PostProcessor that decodes the text fields; memory stays a few
 * buffers per request whatever the size (the largest: 256 KiB gathered
 * per write to the file, held while a file part arrives). The files are
 * `O_TMPFILE` files
 * in the route's directory (or, where the filesystem lacks it, `mkstemp`
 * files unlinked at once), mode 0600: they have no name unless
 * vg_upload_save gives them one, and every file not saved disappears when
 * the request ends, whether it completed, was refused (413) or its client
 * left in the middle of the body (the token and the access log then say
 * client_gone). Such a route keeps no raw body (vg_request_body is
 * empty); its text fields are read with vg_request_form and are kept in
 * memory, so their limits (`fields`, `field_size`) bound what a request
 * can make the server hold. The handler runs
 * once the whole body is stored. A file that cannot be written (disk full)
 * answers 500. Limits: vg_body_limits (files, file_size, body).
 * @{
 */

/** One uploaded file, owned by its request; borrowed for the request's
 *  life. */
typedef struct vg_upload vg_upload;

/**
 * Streams the uploads of the route mapped for `method` and `pattern` to
 * anonymous files in directory `dir` (NULL: $TMPDIR, else /tmp), which
 * must exist and be writable now (checked here; the path is copied).
 * Returns 0, -EINVAL, -ENOENT (no such route or directory, logged),
 * -ENOTDIR, -EACCES, -EBUSY once started, -ENOMEM. The configuring thread.
 */
int vg_map_uploads(vg_app *app, const char *method, const char *pattern,
                   const char *dir);
/** The same for the group's routes and its nested groups' (a route's own
 *  setting wins). Returns as vg_map_uploads. */
int vg_group_set_uploads(vg_group *g, const char *dir);

/** The first uploaded file of form field `name`, or NULL with errno
 *  ENOENT (none, or a route that does not stream uploads) or EINVAL. Any
 *  thread that may read the request. */
const vg_upload *vg_request_upload(vg_request *req, const char *name);
/** Calls `fn(upload, arg)` for every uploaded file in the order sent.
 *  Stops at the first non-zero return of `fn` and returns it; 0 after the
 *  last; -EINVAL for a NULL `req` or `fn`. Any thread that may read the
 *  request. */
int vg_request_uploads(vg_request *req,
                       int (*fn)(const vg_upload *u, void *arg), void *arg);
/** The form field's name the file came in. Borrowed. */
const char *vg_upload_name(const vg_upload *u);
/** The filename exactly as the client sent it, for display only: it may
 *  hold "../", slashes or any bytes, and the library never uses it as a
 *  path (the file on disk has no name). "" if the part had none. */
const char *vg_upload_filename(const vg_upload *u);
/** The part's Content-Type as sent, or NULL if it had none. Borrowed. */
const char *vg_upload_content_type(const vg_upload *u);
/** The file's size in bytes. */
size_t vg_upload_size(const vg_upload *u);
/** The file's descriptor, positioned at its start when the handler runs;
 *  owned by the request (do not close it; dup it to keep it). Reading it
 *  moves the shared offset: prefer pread. -1 for a NULL upload. */
int vg_upload_fd(const vg_upload *u);
/**
 * Keeps the file at `path` (mode 0600), which must not exist: a link to
 * the same inode where possible (linkat of the O_TMPFILE file through
 * /proc/self/fd), else a copy (another filesystem, or the mkstemp
 * fallback); a failed copy leaves nothing at `path`. The request's
 * descriptor stays valid. Returns 0, -EEXIST, -EINVAL, or the failing
 * call's negative errno (-ENOENT for a missing directory, -ENOSPC...).
 * The handler's thread (it may block on a copy).
 */
int vg_upload_save(const vg_upload *u, const char *path);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Results
 *
 * A handler returns a new result and the library owns it from then on. A
 * result returned after the client has gone is discarded. Constructors
 * return NULL with errno ENOMEM (or EINVAL) on failure; returning that NULL
 * from a handler gives the client a 500. Results may be built on any
 * thread; one result is not to be used by two threads at once.
 * @{
 */

/** 200, "text/plain; charset=utf-8", a copy of `text` (NULL: empty). */
vg_result *vg_text(const char *text);
/** Like vg_text with a printf-style format. */
vg_result *vg_textf(const char *fmt, ...) VG_PRINTF(1, 2);
/** 200, "application/json", `value` serialized compactly. Steals the
 *  reference to `value`, even on failure (NULL value: EINVAL). */
vg_result *vg_json(json_t *value);
/** That status (200-999: a final answer; 1xx codes are refused with
 *  EINVAL) with an empty body. */
vg_result *vg_status(unsigned code);
/** Sets the status (200-999). Returns `res`; for another code it frees
 *  `res` and returns NULL (errno EINVAL), which answers 500, so a mistake
 *  shows. NULL res returns NULL. */
vg_result *vg_result_set_status(vg_result *res, unsigned code);
/** Adds a header, copying both strings; "Content-Type" replaces the
 *  default. Returns `res`, or NULL (freeing `res`) if name or value is
 *  invalid (CR, LF, empty name) or memory runs out; NULL res returns NULL,
 *  so calls can be chained and the chain's NULL answers 500. */
vg_result *vg_result_set_header(vg_result *res, const char *name,
                                const char *value);
/** Frees a result that was never returned to the library. NULL is ok. */
void vg_result_free(vg_result *res);

/** The result's status; 0 for NULL and for the marker vg_defer returns.
 *  For middleware that looks at what came back. */
unsigned vg_result_status(const vg_result *res);
/** The value of a header set on the result (case-insensitive; the first
 *  one if set twice; "Content-Type" gives the content type), or NULL.
 *  Borrowed until the result is changed or freed. */
const char *vg_result_header(const vg_result *res, const char *name);
/** Whether `res` is the marker vg_defer returns: the request is answered
 *  later by vg_request_finish, and nothing may be set on it. */
bool vg_result_is_deferred(const vg_result *res);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Static files
 *
 * Files as answers, with what browsers and caches expect: a strong ETag
 * and Last-Modified; If-None-Match (which takes precedence) and
 * If-Modified-Since answered 304; If-Match and If-Unmodified-Since 412;
 * one byte range ("Range: bytes=a-b", "a-", "-n") answered 206 with
 * Content-Range, honoured only while If-Range (if sent) still matches; a
 * range past the end 416 with a Content-Range that gives only the size
 * ("bytes", an asterisk, a slash and the size);
 * several ranges, or a malformed header, the whole file with 200. HEAD
 * gets the GET's headers. Content-Type comes from the name (a built-in
 * table for web types, then /etc/mime.types, read once; "; charset=utf-8"
 * on text types), with "X-Content-Type-Options: nosniff" and
 * "Accept-Ranges: bytes". The body is sent zero-copy (sendfile) from the
 * descriptor opened for the request, which is closed when the answer is
 * done, also when the client leaves mid-download.
 * @{
 */

/**
 * A file as the answer: `path` (the application's own, used as given,
 * symlinks followed; for names that come from a request use
 * vg_app_serve_dir, which never leaves its root) with the validators,
 * ranges and zero-copy sending described above. `content_type` (copied)
 * overrides the type found from the name; NULL finds it. A missing file or
 * one that is not a regular file answers 404, an unreadable one 403, both
 * through the app's error handler. The request's headers decide 304, 206,
 * 412 or 416. Returns a new result (add headers with vg_result_set_header)
 * or NULL with errno EINVAL (NULL req or path) or ENOMEM. The handler's
 * (or its middleware's) thread.
 */
vg_result *vg_file(vg_request *req, const char *path, const char *content_type);

/** Options of vg_app_serve_dir_opts and vg_group_serve_dir. Zero it
 *  (`vg_static_options o = {0};`) for the defaults; strings are copied. */
typedef struct {
    /** The file answered for a directory ("/docs/"); NULL: "index.html".
     *  A directory without one answers 404 (there are no listings). */
    const char *index;
    /** A file under the directory answered with 200 for every path that
     *  names no file (a single-page application's "index.html"); NULL:
     *  404. Refused names (dotfiles, "..") still get 404. */
    const char *spa_fallback;
    /** The Cache-Control value of every answer ("no-cache",
     *  "public, max-age=3600"); NULL: none. */
    const char *cache_control;
    /** Serve names starting with '.' (".well-known", ".env"); by default
     *  any path with such a segment answers 404. */
    bool dotfiles;
    /** Do not look for precompressed siblings. By default, for a type worth
     *  compressing (text, JSON, XML, JavaScript, SVG, wasm), "app.js.br"
     *  or "app.js.gz" next to "app.js" is sent instead (Content-Encoding br
     *  or gzip, its own ETag) when Accept-Encoding takes that coding, and
     *  such answers carry "Vary: Accept-Encoding". */
    bool no_precompressed;
    /** Run on the worker threads. By default the route is inline (see
     *  vg_map_inline): answering takes a few file-system metadata calls and
     *  the bytes go later by sendfile, so the hand-off would cost more than
     *  it saves. Set it for slow (network) file systems. */
    bool on_workers;
} vg_static_options;

/**
 * Serves GET and HEAD requests for `prefix` ("/" or "/static") and
 * everything under it from the files under directory `dir`, never outside
 * it: the path's decoded segments may not be empty, "." or ".." however
 * spelled ("%2e%2e", "%2f" and "\" included) and may not start with '.'
 * (see vg_static_options.dotfiles); a symlink may point anywhere inside
 * `dir` but never out of it (Linux openat2 RESOLVE_BENEATH; where the
 * kernel lacks it every symlink is refused); FIFOs, sockets and devices
 * are never opened for reading. A refused or missing path answers 404, a
 * directory its index ("/docs" answers 301 to "/docs/"). `dir` is opened
 * now (so it may be relative to the current directory) and kept open
 * until vg_app_free. The default options; vg_app_serve_dir_opts takes
 * others. Returns 0, -EINVAL (bad prefix or option), -ENOENT/-ENOTDIR/
 * -EACCES (dir), -ENOMEM, or vg_map's errors (e.g. a route already mapped
 * there), logged. Thread: the configuring thread, before start.
 */
int vg_app_serve_dir(vg_app *app, const char *prefix, const char *dir);
/** vg_app_serve_dir with options (NULL: the defaults). */
int vg_app_serve_dir_opts(vg_app *app, const char *prefix, const char *dir,
                          const vg_static_options *opt);
/** vg_app_serve_dir_opts under a group's prefix, with its middleware and
 *  filters (opt NULL: the defaults); -EINVAL for a NULL group. */
int vg_group_serve_dir(vg_group *g, const char *prefix, const char *dir,
                       const vg_static_options *opt);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Compression
 * @{
 */

/** Options of vg_compress; zero it for the defaults. */
typedef struct {
    /** Smallest body compressed, in bytes; 0: 1024. */
    size_t min_size;
    /** Largest body compressed (it is compressed in memory); 0: 8 MiB. */
    size_t max_size;
    /** zlib level 1-9 for gzip; 0: 6. Values out of range are clamped. */
    int gzip_level;
    /** brotli quality 1-11; 0: 4. Values out of range are clamped. */
    int brotli_quality;
    /** zstd level 1-19; 0: 3. Values out of range are clamped. */
    int zstd_level;
    /** Compress Server-Sent Events streams (text/event-stream) too. Off by
     *  default: an event stream is mostly small events, and some proxies
     *  and clients hold a compressed one back until it ends. */
    bool sse;
} vg_compress_options;

/**
 * A middleware (vg_app_use, vg_group_use) that compresses answers: br
 * (when libvolga was built with brotli), zstd (when built with libzstd)
 * or gzip, as the request's Accept-Encoding prefers by q-value (on a tie
 * br, then zstd, then gzip). Whole bodies of
 * compressible types (text, JSON and +json, XML and +xml, JavaScript, SVG,
 * wasm; not text/event-stream) between min_size and max_size are
 * compressed, file bodies (vg_file, static files on the workers) included;
 * never HEAD, 1xx/204/206/304, ranges, or bodies with a
 * Content-Encoding already (precompressed siblings). Streams
 * (vg_stream_new) of those types are compressed as they are written,
 * whatever their size: each vg_stream_write (or vg_sse_event) is flushed
 * (zlib's Z_SYNC_FLUSH, brotli's and zstd's flush), so the client can
 * decode it at once, and vg_stream_end ends the coding; the stream's limit
 * is checked against the bytes written and vg_stream_buffered counts the
 * compressed bytes queued (what was written before the handler returned
 * is compressed too). Event streams only with vg_compress_options.sse. Such an eligible
 * answer always gets "Vary: Accept-Encoding"; a compressed one gets
 * Content-Encoding and its strong ETag a suffix ("tag-gzip", "tag-br",
 * "tag-zstd", which static files recognise in If-None-Match). No Accept-Encoding, or one that takes
 * no coding we have, answers identity; only when identity is refused too
 * ("identity;q=0", or "*;q=0" without an identity entry) does an eligible
 * answer become 406. Answers that come out no smaller stay identity.
 * Inline routes (vg_map_inline, and static directories unless
 * vg_static_options.on_workers) pass through uncompressed: compression
 * never runs on an event thread. Request bodies with a Content-Encoding
 * are not inflated by it (see vg_decompress). `arg` is a `const
 * vg_compress_options *` that must outlive the app, or NULL for the
 * defaults. The handler's thread.
 */
vg_result *vg_compress(vg_request *req, vg_next *next, void *arg);

/**
 * A middleware (vg_app_use, vg_group_use) that decodes request bodies sent
 * with "Content-Encoding: gzip" (or x-gzip), "deflate" (zlib data; raw
 * deflate too), "br" (when libvolga was built with brotli) or "zstd" (when
 * built with libzstd; windows up to 8 MiB, RFC 9659) before the
 * rest of the chain and the handler read them: vg_request_body and
 * vg_request_json then give the decoded bytes (pointers vg_request_body
 * returned earlier in the chain are invalid afterwards); the request's
 * headers stay as sent. Concatenated gzip members (zstd frames) decode as
 * one body.
 * The *decoded* size counts against the route's body limit
 * (vg_body_limits.body; N decoded bytes are accepted, N + 1 answer 413),
 * checked as the bytes come out: a body that would inflate past the limit
 * costs at most the limit plus the decoder's window, then answers 413.
 * Corrupt or truncated data, or anything after its end, answers 400. A
 * coding it does not decode, or a list of more than one coding, answers
 * 415 with "Accept-Encoding" naming what it takes (RFC 9110 15.5.16);
 * bodies that libmicrohttpd's thread consumes as they arrive (forms:
 * application/x-www-form-urlencoded and multipart/form-data, vg_map_uploads
 * routes) and inline routes answer 415 with "Accept-Encoding: identity".
 * Every error goes through the app's error handler. "identity" and empty
 * bodies pass through. Filters run before it and see the body as sent.
 * Decoding runs on the worker, never on an event thread. `arg` is unused:
 * pass NULL. The handler's thread.
 */
vg_result *vg_decompress(vg_request *req, vg_next *next, void *arg);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name HTTPS
 * @{
 */

/**
 * Serves HTTPS instead of HTTP on the app's socket, with the PEM
 * certificate chain in `cert_pem_file` (the server's certificate first,
 * then intermediates, at most 16) and the PEM private key in
 * `key_pem_file`. Both are read and checked now (the key must belong to
 * the certificate) and again by vg_app_reload_tls. Only TLS 1.2 and 1.3
 * are offered by default (vg_app_set_tls_priorities). Cancellation works
 * as over HTTP: a client's FIN or RST cancels its request's token. Under
 * TLS, file bodies are read through a buffer instead of sendfile. While
 * vg_app_run runs, SIGHUP reloads the files (see vg_app_reload_tls).
 * Clients may resume their sessions: a session ticket (RFC 8446 4.6.1),
 * encrypted under a key made here for the app's lifetime and never
 * written anywhere, lets a client that comes back skip the certificate
 * and the signature of a full handshake. Tickets are not issued when
 * client certificates are asked for (vg_app_set_tls_client_ca), since a
 * resumed session carries no certificate to verify; vg_app_set_tls_tickets
 * turns them off.
 * Returns 0, -EINVAL (NULL argument, set twice, or a file without a
 * usable certificate or key, or a key that does not match), -ENOENT (a
 * file that cannot be read), -ENOMEM, or -EBUSY once started; errors are
 * logged. Thread: the configuring thread, before start.
 */
int vg_app_set_tls(vg_app *app, const char *cert_pem_file,
                   const char *key_pem_file);

/** Replaces the default GnuTLS priority string after vg_app_set_tls.
 *  The default is GnuTLS's NORMAL restricted to TLS 1.2 and 1.3, with
 *  AES-128-GCM as the first cipher and X25519 as the first group, chosen
 *  by the server's order (%SERVER_PRECEDENCE): a TLS 1.3 handshake then
 *  runs on SHA-256, which uses the CPU's SHA extensions, instead of the
 *  SHA-384 that AES-256-GCM brings, and never asks a client for another
 *  key share. Every other NORMAL cipher and group stays offered.
 *  It is checked now: 0, -EINVAL (no TLS set, or GnuTLS refuses it,
 *  logged), -ENOMEM or -EBUSY once started. Thread: the configuring
 *  thread. */
int vg_app_set_tls_priorities(vg_app *app, const char *priorities);

/** Whether the server issues session tickets (default true, see
 *  vg_app_set_tls): false makes every connection a full handshake, for
 *  deployments that want each connection's keys independent of a key the
 *  process holds. Returns 0, -EINVAL (NULL app or no TLS set) or -EBUSY
 *  once started. Thread: the configuring thread, after vg_app_set_tls. */
int vg_app_set_tls_tickets(vg_app *app, bool on);

/**
 * Reads the certificate and key files given to vg_app_set_tls again and
 * uses them for every handshake from now on (a renewed certificate takes
 * effect at once); connections already established are not touched and
 * nothing is dropped. If the new files are unusable the current
 * certificate stays and the error is returned (as vg_app_set_tls's) and
 * logged. vg_app_run calls it on SIGHUP. Any thread, any time after
 * vg_app_set_tls and before vg_app_free.
 */
int vg_app_reload_tls(vg_app *app);

/** Adds "Strict-Transport-Security: max-age=N" (with
 *  "; includeSubDomains" if asked) to every answer of an HTTPS app, the
 *  library's own errors included. 0, -EINVAL (no TLS, or called twice),
 *  -ENOMEM or -EBUSY once started. Thread: the configuring thread. */
int vg_app_use_hsts(vg_app *app, unsigned max_age_s, bool include_subdomains);

/** What an app with a client CA (vg_app_set_tls_client_ca) does with a
 *  client that presents no certificate, or one that does not verify. */
typedef enum {
    VG_TLS_CLIENT_OPTIONAL = 1, /**< serves it; vg_request_tls_peer_subject
                                     is NULL for its requests */
    VG_TLS_CLIENT_REQUIRED      /**< answers each of its requests 403
                                     (a problem document, through the error
                                     handler) with "Connection: close", before
                                     any filter or handler runs */
} vg_tls_client_mode;

/**
 * Asks HTTPS clients for a certificate (mutual TLS) and verifies the one a
 * client presents against the CA certificates in the PEM file
 * `ca_pem_file`: a chain up to one of them, within its validity dates, and
 * usable for TLS client authentication when it lists its purposes. The
 * handshake itself never fails for want of a certificate: the verdict is
 * taken once per connection, before its first request is dispatched, and
 * `mode` says what happens to a client without a verified certificate. A
 * verified client's subject and fingerprint are given to handlers
 * (vg_request_tls_peer_subject, vg_request_tls_peer_fingerprint).
 * Refusals are logged at VG_LOG_INFO with GnuTLS's reason. The file is read
 * once, now (vg_app_reload_tls does not reread it). Returns 0, -EINVAL (no
 * vg_app_set_tls before, NULL file, called twice, a bad mode, or a file
 * with no PEM certificate), -ENOENT (unreadable file), -ENOMEM, or -EBUSY
 * once started. Thread: the configuring thread, before start.
 */
int vg_app_set_tls_client_ca(vg_app *app, const char *ca_pem_file,
                             vg_tls_client_mode mode);

/** The subject DN of the request's verified client certificate, in RFC
 *  4514 form ("CN=alice,O=Example"), or NULL when the connection has none
 *  (no vg_app_set_tls_client_ca, no certificate, or one that did not
 *  verify). Borrowed for the request's life. Any thread that may read the
 *  request. */
const char *vg_request_tls_peer_subject(const vg_request *req);

/** The SHA-256 fingerprint of the request's verified client certificate
 *  (of its DER encoding) as 64 lowercase hex digits, NULL when
 *  vg_request_tls_peer_subject is. A stable key for pinning a client.
 *  Borrowed for the request's life. Any thread that may read the request. */
const char *vg_request_tls_peer_fingerprint(const vg_request *req);

/** Options of vg_app_new_https_redirect; all zero is the default. */
typedef struct {
    /** The port HTTPS is served on, put in every Location; 0 or 443: none
     *  named (the client's own port in Host is never used). */
    unsigned short https_port;
    /** NULL, or a NULL-terminated list of the host names (or IP literals,
     *  "[::1]") without a port that may be redirected to; a request for
     *  another host gets 421 and no Location. Copied. */
    const char *const *hosts;
} vg_https_redirect_options;

/**
 * A new app on `address` (as vg_app_new, plain HTTP) that answers every
 * request, whatever its method and path, 308 Permanent Redirect (which
 * keeps the method and body) to https://HOST[:PORT]PATH?QUERY: HOST is the
 * request's host (its Host field, or an absolute-form target's authority)
 * without its port, PORT is `opts->https_port`, PATH?QUERY is the
 * request-target exactly as sent. The destination is chosen by nothing but
 * the host the client itself asked for, which must be a well-formed name
 * or IP literal (no userinfo, path or percent-encoding: else 400) and, with
 * `opts->hosts`, one of those (else 421), so it is no open redirect; a
 * request without a host gets 400 ("OPTIONS *" gets the library's 200, as
 * from any app). Start, run, stop and
 * free it like any app (typically beside the HTTPS app, on port 80); its
 * settings (logger, limits) may still be changed before start, but it
 * should get no routes: those would answer instead. NULL with errno EINVAL
 * (bad address, or a bad name in `opts->hosts`) or ENOMEM. `opts` is
 * borrowed for the call (NULL: defaults). Thread: any, like vg_app_new.
 */
vg_app *vg_app_new_https_redirect(const char *address,
                                  const vg_https_redirect_options *opts);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Answering later, holding no thread (long-poll, waiting on an event)
 * @{
 */

/**
 * Defers the answer: return what this returns from the handler. The worker
 * is freed at once; the request, its strings and its token stay valid until
 * vg_request_finish. Deadlines still apply (504), the watcher still notices
 * the client leaving (the token is cancelled with VG_CANCEL_CLIENT_GONE) and
 * shutdown cancels it with VG_CANCEL_SHUTDOWN after the grace period, so
 * code that keeps deferred requests should watch their tokens (e.g. with
 * vg_token_on_cancel) and finish them. Once another thread may finish the
 * request, the handler must not touch `req` any more: call vg_defer as the
 * handler's last act, `return vg_defer(req);` (middleware around it then
 * see the marker, and must not touch `req` after vg_next_run returns it
 * either: only read what they copied). Calling it twice is harmless. NULL
 * (EINVAL) if req is NULL, its route is inline, or it is called from a
 * filter. Handler's thread.
 */
vg_result *vg_defer(vg_request *req);

/**
 * Answers a deferred request with `res` (taken in every case; NULL
 * answers 500). Returns 0 if the answer goes to the client, -ECANCELED if
 * the request was already ended (client gone, deadline, shutdown) and the
 * result was dropped, -EINVAL if `req` was not deferred or was already
 * finished. Any thread, exactly once per deferred request: the request may
 * be freed as soon as it returns. vg_app_free waits until every deferred
 * request has been finished.
 */
int vg_request_finish(vg_request *req, vg_result *res);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Streaming responses
 *
 * A handler starts a stream and returns its result; the body is then
 * written from any thread, for as long as the client stays. While nothing
 * is buffered the connection is parked (suspended, holding no thread) and
 * still watched, so the moment the client goes away the request's token is
 * cancelled and writes fail with -EPIPE. Memory is bounded: a write that
 * would take the unsent bytes past the stream's limit is refused with
 * -EAGAIN (back off and retry, e.g. on the next tick). Request deadlines
 * stop at the handler's return: a stream lasts until vg_stream_end or the
 * client leaves (or the app shuts down, cancelling with
 * VG_CANCEL_SHUTDOWN).
 * @{
 */

/**
 * Returns a 200 result for the handler to return (add headers to it with
 * vg_result_set_header) and in `*out` a stream handle owned by the caller,
 * to be released with vg_stream_end exactly once, whatever happens. If the
 * result is never returned (freed instead), writes fail with -EPIPE. NULL
 * (errno EINVAL, e.g. on an inline route or from a filter, or ENOMEM;
 * `*out` NULL) on failure. Handler's (or its middleware's) thread.
 */
vg_result *vg_stream_new(vg_request *req, const char *content_type,
                         vg_stream **out);

/** Queues `len` bytes. 0; -EAGAIN if they would take the unsent bytes past
 *  the limit (nothing queued; a write into an empty buffer is always
 *  taken); -EPIPE once the client is gone, the stream ended or the app
 *  stops; -EINVAL; -ENOMEM. Any thread. */
int vg_stream_write(vg_stream *s, const void *data, size_t len);
/** vg_stream_write of a printf-formatted string. */
int vg_stream_printf(vg_stream *s, const char *fmt, ...) VG_PRINTF(2, 3);
/** Bytes written but not yet handed to the connection. Any thread. */
size_t vg_stream_buffered(vg_stream *s);
/** Sets the unsent-bytes limit (default 64 KiB). 0 or -EINVAL. */
int vg_stream_set_limit(vg_stream *s, size_t bytes);
/** The request's token, borrowed while the handle is held: cancelled with
 *  VG_CANCEL_CLIENT_GONE when the client leaves. */
vg_token *vg_stream_token(vg_stream *s);
/** Ends the body once what is queued is sent, and releases the handle
 *  (which must not be used again). Any thread; NULL is a no-op. */
void vg_stream_end(vg_stream *s);

/**
 * Server-Sent Events: vg_stream_new with "text/event-stream" and
 * "Cache-Control: no-cache". Same ownership as vg_stream_new.
 */
vg_result *vg_sse_new(vg_request *req, vg_stream **out);
/** Queues one event: optional "event:" and "id:" fields (no line breaks:
 *  -EINVAL), then one "data:" line per line of `data`, then a blank line.
 *  All or nothing; return values as vg_stream_write. */
int vg_sse_event(vg_stream *s, const char *event, const char *data,
                 const char *id);
/** Queues a comment line (": text"), e.g. as a keep-alive. */
int vg_sse_comment(vg_stream *s, const char *text);
/** Queues "retry: ms", the client's reconnection delay. */
int vg_sse_retry(vg_stream *s, unsigned ms);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Operations: rate limiting (lib/web/ratelimit.c)
 *
 * A limiter allows `limit` requests per `window_ms` for each key (the
 * client's address by default, see vg_request_client_addr and trusted
 * proxies; or a header; or what a callback says). It is GCRA, a token
 * bucket kept as one timestamp per key: `limit` requests may come at once,
 * then one more every window / limit. The decision is made by a filter on
 * the event thread, before any hand-off to a worker, so a flood never
 * fills the worker queue. A refused request gets 429 through the app's
 * error handler (so it is a problem document under
 * vg_app_use_problem_details) with Retry-After (whole seconds until one
 * more request would be allowed) and the IETF headers
 * (draft-ietf-httpapi-ratelimit-headers) `RateLimit-Policy:
 * "default";q=LIMIT;w=SECONDS` and `RateLimit: "default";r=REMAINING;
 * t=SECONDS`; with vg_ratelimit_set_headers allowed requests carry the
 * same two headers (off by default: two more response headers cost more
 * than the decision).
 *
 * Memory is fixed when the limiter is configured, whatever the number of
 * distinct keys: a table of 16 bytes per key slot (vg_ratelimit_set_capacity,
 * default 65,536 keys: 1 MiB) in sets of 8; a new key evicts the slot of
 * its set whose budget is the most replenished, so with more live keys
 * than slots the least-limited is forgotten (it starts afresh). One
 * limiter attached in several places shares one budget per key. The app
 * borrows a limiter until vg_app_free; free it after.
 * @{
 */

/** A rate limiter; see vg_ratelimit_new. */
typedef struct vg_ratelimit vg_ratelimit;

/** Where a key stands after vg_ratelimit_take. */
typedef struct {
    unsigned limit;          /**< requests per window, as configured */
    unsigned window_ms;      /**< the window, as configured */
    unsigned remaining;      /**< requests that could still come at once */
    unsigned long long reset_ms;       /**< until the budget is whole again */
    unsigned long long retry_after_ms; /**< refused: until one more is
                                            allowed; allowed: 0 */
} vg_ratelimit_info;

/** A new limiter allowing `limit` requests per `window_ms` per key, owned
 *  by the caller (vg_ratelimit_free). NULL with errno EINVAL (0 limit or
 *  window, or more than one request per nanosecond) or ENOMEM. Any
 *  thread. */
vg_ratelimit *vg_ratelimit_new(unsigned limit, unsigned window_ms);
/** Frees a limiter; after vg_app_free of every app it is attached to.
 *  NULL is a no-op. */
void vg_ratelimit_free(vg_ratelimit *rl);
/** Most keys tracked at once (default 65,536; at most 2^26), rounded up
 *  to a power of two sets of 8; 16 bytes each, allocated now. Forgets
 *  every key. Returns 0, -EINVAL, -EBUSY (attached) or -ENOMEM.
 *  Configuring thread. */
int vg_ratelimit_set_capacity(vg_ratelimit *rl, size_t keys);
/** Keys requests by the value of header `name` (an API key, say) instead
 *  of the client's address; a request without it (or with it empty) is
 *  keyed by its address. Returns 0, -EINVAL (not a header name), -EBUSY or
 *  -ENOMEM. Configuring thread. */
int vg_ratelimit_set_key_header(vg_ratelimit *rl, const char *name);
/** A key callback: the request's key, borrowed from the request (a header,
 *  vg_request_data, a route parameter) or static; NULL exempts the request
 *  from this limiter. Runs on an event thread (a filter): must not block. */
typedef const char *(*vg_ratelimit_key_fn)(vg_request *req, void *arg);
/** Keys requests by what `fn(req, arg)` returns. Returns 0, -EINVAL (NULL
 *  fn) or -EBUSY. Configuring thread. */
int vg_ratelimit_set_key_fn(vg_ratelimit *rl, vg_ratelimit_key_fn fn,
                            void *arg);
/** The policy's name in the RateLimit headers (default "default"): a
 *  token of at most 32 characters. Returns 0, -EINVAL, -EBUSY, -ENOMEM. */
int vg_ratelimit_set_name(vg_ratelimit *rl, const char *name);
/** Whether allowed requests carry RateLimit-Policy and RateLimit too
 *  (default false; a 429 always does). Returns 0, -EINVAL or -EBUSY. */
int vg_ratelimit_set_headers(vg_ratelimit *rl, bool on_every_response);
/**
 * Takes one request's worth from the budget of the key `key` (`len` bytes,
 * any bytes), as the filter does: for limits that are not per request
 * (failed logins, say). Returns 0 if allowed, -EAGAIN if over the limit
 * (nothing taken), -EINVAL for a NULL rl or key. Fills `*info` (may be
 * NULL). Lock per shard of the table, never blocks for long. Any thread.
 */
int vg_ratelimit_take(vg_ratelimit *rl, const char *key, size_t len,
                      vg_ratelimit_info *info);
/** Requests (or takes) allowed and refused so far; either pointer may be
 *  NULL. Any thread. */
void vg_ratelimit_counts(const vg_ratelimit *rl, unsigned long long *allowed,
                         unsigned long long *refused);
/** Limits every request the app answers (misses included) with `rl`, as
 *  an app filter (vg_app_filter) in registration order: register trusted
 *  proxies first so the key is the real client. The app borrows `rl`
 *  until vg_app_free; its settings are frozen. Returns 0, -EINVAL (NULL,
 *  or a limiter bound to a route), -EBUSY (started) or -ENOMEM.
 *  Configuring thread. */
int vg_app_use_ratelimit(vg_app *app, vg_ratelimit *rl);
/** Limits the group's routes and its nested groups' with `rl`, as a group
 *  filter. Returns as vg_app_use_ratelimit. */
int vg_group_use_ratelimit(vg_group *g, vg_ratelimit *rl);
/** Limits only requests that route to `method` `pattern` (the pattern as
 *  vg_request_route reports it: as mapped, a group's prefix included; a
 *  GET limiter also counts HEAD). `rl` serves only that route. Returns 0,
 *  -EINVAL, -EBUSY (started, or `rl` already attached) or -ENOMEM.
 *  Configuring thread. */
int vg_map_ratelimit(vg_app *app, const char *method, const char *pattern,
                     vg_ratelimit *rl);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Operations: trusted proxies (lib/web/proxy.c)
 *
 * Behind a reverse proxy (nginx, a load balancer) the peer is the proxy;
 * the client is in the Forwarded (RFC 7239) or X-Forwarded-For header it
 * adds. Anyone can send those, so they are believed only from configured
 * proxies: when the peer is one, the hops are walked from the nearest,
 * each trusted hop handing over to the address it reports; the first hop
 * not trusted is the client, and what lies left of it (the client's own
 * claims) is ignored. An element that is not an address ("unknown", an
 * obfuscated name) ends the walk at the last address known; a malformed
 * Forwarded field is believed in nothing. Forwarded wins when both are
 * present; several lines of a header are one list, in order.
 * vg_request_client_addr then reports the client (canonical text; an
 * IPv4-mapped address as IPv4), for every later filter, middleware, the
 * handler and the rate limiter (register the trust first).
 * @{
 */

/** A set of trusted proxy networks; see vg_app_use_proxy_trust. */
typedef struct vg_proxy_trust vg_proxy_trust;

/** A new, empty set, owned by the caller (vg_proxy_trust_free). NULL with
 *  errno ENOMEM. Any thread. */
vg_proxy_trust *vg_proxy_trust_new(void);
/** Frees a set, after vg_app_free of the apps using it. NULL is a no-op. */
void vg_proxy_trust_free(vg_proxy_trust *t);
/** Trusts an address or network: "127.0.0.1", "10.0.0.0/8", "::1",
 *  "fd00::/8" (host bits below the prefix are ignored). Returns 0, -EINVAL
 *  (not an address, a bad prefix length, a port), -EBUSY (attached) or
 *  -ENOMEM. Configuring thread. */
int vg_proxy_trust_add(vg_proxy_trust *t, const char *cidr);
/** Resolves the client of every request the app answers from the
 *  forwarding headers of trusted peers, as an app filter (vg_app_filter)
 *  in registration order. The app borrows `t` until vg_app_free; it is
 *  frozen. A request from a peer not trusted costs one comparison per
 *  network. Returns 0, -EINVAL (NULL, or an empty set), -EBUSY (started) or
 *  -ENOMEM. Configuring thread. */
int vg_app_use_proxy_trust(vg_app *app, vg_proxy_trust *t);
/** The address of the connected peer (the nearest proxy when the client
 *  came from a forwarding header; otherwise the same as
 *  vg_request_client_addr), borrowed for the request's life. Any thread
 *  that may read the request. */
const char *vg_request_peer_addr(const vg_request *req);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Operations: metrics (lib/web/metrics.c)
 *
 * Prometheus metrics in the text exposition format ("text/plain;
 * version=0.0.4"). Attached to an app (vg_app_use_metrics), a registry
 * counts every request that ends, from a completion hook, lock-free:
 * `volga_requests_total{method,route,status}` (method one of GET, HEAD,
 * POST, PUT, PATCH, DELETE, OPTIONS or "other"; route the pattern as
 * mapped, "none" for misses; status 0 if none was sent; bounded by the
 * app's routes: past 4096 combinations requests are counted in
 * route="overflow"), `volga_request_duration_seconds` (a histogram), and
 * reads at each scrape `volga_cancellations_total{reason}` (client_gone,
 * timeout, shutdown), `volga_app_requests_total` (vg_app_stats),
 * `volga_in_flight`, `volga_queue_depth`, `volga_busy_workers`,
 * `volga_workers` and `volga_open_connections` (vg_app_load). The
 * application adds its own counters, gauges and histograms, whose updates
 * are lock-free atomics, callable from any thread.
 * @{
 */

/** A metrics registry; see vg_metrics_new. */
typedef struct vg_metrics vg_metrics;
/** A monotonically increasing counter, owned by its registry. */
typedef struct vg_counter vg_counter;
/** A value that goes up and down, owned by its registry. */
typedef struct vg_gauge vg_gauge;
/** A histogram with fixed buckets, owned by its registry. */
typedef struct vg_histogram vg_histogram;

/** A new registry, owned by the caller (vg_metrics_free, after vg_app_free
 *  of its app). NULL with errno ENOMEM. Any thread. */
vg_metrics *vg_metrics_new(void);
/** Frees a registry and every metric it made. NULL is a no-op. */
void vg_metrics_free(vg_metrics *m);
/**
 * Counts the app's requests in `m` (a completion hook) and, with a `path`
 * ("/metrics"; NULL for none), maps GET `path` to the text of
 * vg_metrics_result, answered inline on the event thread. One app per
 * registry. Returns 0, -EINVAL, -EBUSY (the app started, or `m` already
 * serves an app), -EEXIST (path already mapped) or -ENOMEM. Configuring
 * thread.
 */
int vg_app_use_metrics(vg_app *app, vg_metrics *m, const char *path);
/** The registry's metrics as text, malloc'd (free it), or NULL with errno
 *  EINVAL or ENOMEM. Any thread. */
char *vg_metrics_text(vg_metrics *m);
/** A 200 result of vg_metrics_text with the format's Content-Type, for a
 *  handler of one's own (behind auth, say). NULL on failure. Any thread. */
vg_result *vg_metrics_result(vg_metrics *m);
/** A new counter `name` ([a-zA-Z_:][a-zA-Z0-9_:]*, with no "_total"
 *  added; names starting with "volga" are the library's) with `help` (may
 *  be NULL), owned by `m`. NULL with errno EINVAL, EEXIST (the name is
 *  taken) or ENOMEM. Any thread. */
vg_counter *vg_metrics_counter(vg_metrics *m, const char *name,
                               const char *help);
/** A new gauge, starting at 0; as vg_metrics_counter. */
vg_gauge *vg_metrics_gauge(vg_metrics *m, const char *name, const char *help);
/** A new histogram with `nbounds` (1-64) finite, increasing upper bounds
 *  (`bounds` copied; +Inf is implied); as vg_metrics_counter. */
vg_histogram *vg_metrics_histogram(vg_metrics *m, const char *name,
                                   const char *help, const double *bounds,
                                   size_t nbounds);
/** Adds `n` to a counter. Lock-free; NULL is a no-op. Any thread. */
void vg_counter_add(vg_counter *c, unsigned long long n);
/** Sets a gauge. Lock-free; NULL is a no-op. Any thread. */
void vg_gauge_set(vg_gauge *g, double v);
/** Adds `d` (may be negative) to a gauge. Lock-free; NULL is a no-op. */
void vg_gauge_add(vg_gauge *g, double d);
/** Records one observation (NaN is ignored). Lock-free; NULL is a no-op.
 *  Any thread. */
void vg_histogram_observe(vg_histogram *h, double v);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Operations: health (lib/web/health.c)
 *
 * Liveness (200 while the process serves, answered inline) and readiness
 * (the application's checks) endpoints for orchestrators and load
 * balancers. Readiness checks run one round at a time on a thread of
 * their own ("vg-health"), never on the probe's: the probe (a handler on
 * a worker) waits for the round up to the health timeout, when the
 * round's token cancels itself (VG_CANCEL_TIMEOUT) and the probe answers
 * 503 {"status":"timeout"} at once, so a hung check cannot hang the
 * probe. A round's answer is cached (1 s by
 * default): 200 {"status":"ok","checks":{"db":"ok"}} or 503 with "fail"
 * or "timeout" for the checks that were not ok. From vg_app_stop on,
 * readiness answers 503 {"status":"stopping"} without running checks;
 * with vg_app_set_drain_delay the app goes on serving meanwhile, so a
 * load balancer polling readiness takes the instance out first.
 * @{
 */

/** A set of readiness checks and the endpoints' settings. */
typedef struct vg_health vg_health;

/**
 * A readiness check: 0 if healthy, anything else if not. Runs on the
 * "vg-health" thread with `tok`, which is cancelled with
 * VG_CANCEL_TIMEOUT when the probe's timeout passes (its
 * vg_token_remaining_ms is the time left, to forward as a statement or
 * request timeout): wait on it (vg_token_wait, vg_token_fd...) rather than
 * blocking blindly; a check that ignores it holds up later rounds (probes
 * still answer, 503) and vg_health_free.
 */
typedef int (*vg_health_check_fn)(vg_token *tok, void *arg);

/** A new set with no checks, timeout 1000 ms and cache 1000 ms, owned by
 *  the caller (vg_health_free, after vg_app_free). NULL with errno ENOMEM.
 *  Any thread. */
vg_health *vg_health_new(void);
/** Stops the health thread, waiting for a check that is still running,
 *  and frees the set. NULL is a no-op. Configuring thread. */
void vg_health_free(vg_health *h);
/** Adds a check named `name` (copied; its key in the JSON report) run as
 *  `fn(tok, arg)`, after the ones added before. Returns 0, -EINVAL, -EBUSY
 *  (attached) or -ENOMEM. Configuring thread. */
int vg_health_add_check(vg_health *h, const char *name, vg_health_check_fn fn,
                        void *arg);
/** How long a probe waits for a round of checks (default 1000 ms; not 0).
 *  Returns 0, -EINVAL or -EBUSY. */
int vg_health_set_timeout(vg_health *h, unsigned ms);
/** How long a round's answer is reused (default 1000 ms; 0: every probe
 *  runs a round, or joins the one under way). Returns 0, -EINVAL or
 *  -EBUSY. */
int vg_health_set_cache(vg_health *h, unsigned ms);
/** Maps GET `livez` (inline) and GET `readyz` (on a worker, without the
 *  app's deadline) for `h`; either may be NULL, not both. Starts the
 *  health thread when `h` has checks. The app borrows `h` until
 *  vg_app_free; its settings are frozen. Returns 0, -EINVAL, -EBUSY (the
 *  app started, or `h` already attached), -EEXIST (a path already mapped)
 *  or -ENOMEM. Configuring thread. */
int vg_app_use_health(vg_app *app, vg_health *h, const char *livez,
                      const char *readyz);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Cancellation tokens
 *
 * A token starts uncancelled and is cancelled at most once, with a reason
 * that never changes afterwards. Every function here may be called from any
 * thread. A request's token is cancelled by the library: with
 * VG_CANCEL_CLIENT_GONE on an event thread, VG_CANCEL_TIMEOUT on the
 * watcher thread, VG_CANCEL_SHUTDOWN on the shutdown supervisor (or an
 * event thread, for a connection closed by the shutdown). A token made by
 * vg_token_child_timeout is cancelled by its timeout on the "vg-timer"
 * thread.
 *
 * Order of a cancellation: first the token and every descendant of it
 * (made by vg_token_child) are marked cancelled, and
 * whoever waits on any of them is woken: vg_token_is_cancelled is true,
 * vg_token_wait returns, vg_token_fd turns readable. Only then do the
 * callbacks of vg_token_on_cancel run, on the cancelling thread: the
 * token's own, in registration order, then its descendants', parents
 * before children. So a handler woken by vg_token_wait may run while a
 * callback is still running, and a slow callback never delays a waiter;
 * a handler that needs a callback's work finished calls vg_token_off on
 * it, which waits for a running callback to return.
 * @{
 */

/** True once cancelled. Lock-free: cheap enough for a tight loop. */
bool vg_token_is_cancelled(const vg_token *tok);

/** Sleeps up to `timeout_ms` (negative: no limit) and returns true as soon
 *  as the token is cancelled (at once if it already is), false on timeout. */
bool vg_token_wait(vg_token *tok, int timeout_ms);

/** A file descriptor that becomes readable once the token is cancelled, for
 *  poll()/select()/epoll together with other fds. Created on first call
 *  (tokens that never ask pay nothing); owned by the token: never read,
 *  write or close it; valid while you hold a reference. -errno on failure
 *  (e.g. -EMFILE). */
int vg_token_fd(vg_token *tok);

/** Why the token was cancelled, or VG_CANCEL_NONE. */
vg_cancel_reason vg_token_reason(const vg_token *tok);

/** A new standalone token with one reference. NULL (ENOMEM) on failure. */
vg_token *vg_token_new(void);

/** A new token (one reference, owned by the caller) cancelled whenever
 *  `parent` is, with the parent's reason; cancelling it never cancels the
 *  parent. Born cancelled if the parent already is. The child keeps the
 *  parent alive. NULL with errno on failure. */
vg_token *vg_token_child(vg_token *parent);

/** Cancels with VG_CANCEL_MANUAL (and its children with it). Idempotent: a
 *  token already cancelled keeps its first reason. Returns at once; it does
 *  not wait for the work watching the token to stop. Callbacks registered
 *  with vg_token_on_cancel run on the calling thread before it returns. */
void vg_token_cancel(vg_token *tok);

/** A cancellation callback: runs once, with the cancelled token. */
typedef void (*vg_cancel_fn)(vg_token *tok, void *arg);

/**
 * Runs `fn(tok, arg)` once when the token is cancelled, on the thread that
 * cancels it, never under a library lock; at once, on this thread, if the
 * token already is cancelled. Returns an id > 0 for vg_token_off (also when
 * fn already ran), 0 (errno ENOMEM/EINVAL) on error.
 */
unsigned long vg_token_on_cancel(vg_token *tok, vg_cancel_fn fn, void *arg);

/**
 * Removes a callback. Returns true if it had not run and now never will;
 * false if it already ran or the id is unknown. If the callback is running
 * on another thread right now, waits for it to return first, so after this
 * call `arg` may be freed (from inside the callback itself it does not wait).
 */
bool vg_token_off(vg_token *tok, unsigned long id);

/**
 * Waits for poll() `events` (POLLIN, POLLOUT...) on `fd` or for the token,
 * whichever comes first: the building block for a client whose work waits
 * on a descriptor (a database socket, a pipe from a child) and should stop
 * when the request is cancelled. Returns fd's revents (> 0; POLLERR and
 * POLLHUP are reported even if not asked for) when it is ready, 0 once
 * `timeout_ms` pass (negative: no limit; 0: just look), -ECANCELED as soon
 * as the token is cancelled (at once if it already is, and also when fd
 * became ready at the same moment), -EBADF for a negative or closed fd,
 * -EINVAL for a NULL token, or another -errno (e.g. -EMFILE when the
 * token's fd cannot be made). A signal does not end the wait early. Does
 * not read or write `fd`. Any thread.
 */
int vg_token_poll(vg_token *tok, int fd, short events, int timeout_ms);

/**
 * Milliseconds until the token's deadline, rounded up; -1 if it has none, 0
 * once it has passed. A request's token has the request's deadline (the
 * app's vg_app_set_request_timeout, or its route's or group's), counted
 * from when its handler was dispatched; a child has the nearest of its own
 * (vg_token_child_timeout) and its ancestors'. Forward it to whatever does
 * the work (a statement timeout, CURLOPT_TIMEOUT_MS) so that the work ends
 * when the answer would no longer be wanted. Lock-free; any thread.
 */
long vg_token_remaining_ms(const vg_token *tok);

/**
 * A child of `parent` (as vg_token_child: one reference, owned by the
 * caller) that also cancels itself with VG_CANCEL_TIMEOUT `ms` milliseconds
 * from now, like Go's context.WithTimeout; its vg_token_remaining_ms is the
 * nearer of that and the parent's deadline. The timeout never cancels the
 * parent. `ms` 0 gives a token born cancelled (VG_CANCEL_TIMEOUT, or the
 * parent's reason if the parent already is cancelled). The timer runs on
 * one thread shared by all such tokens ("vg-timer", started on first use,
 * with every signal blocked), whose callbacks (vg_token_on_cancel) then run
 * on it; dropping the last reference, or a cancel for another reason,
 * removes the timer at once. NULL with errno (EINVAL: no parent; ENOMEM;
 * EAGAIN: no thread) on failure. Any thread.
 */
vg_token *vg_token_child_timeout(vg_token *parent, unsigned ms);

/** Adds a reference; returns `tok`. */
vg_token *vg_token_ref(vg_token *tok);
/** Drops a reference; the last one frees the token. NULL is a no-op. */
void vg_token_unref(vg_token *tok);

/** @} */

/** @name Child processes that stop with the request
 *
 * A handler that runs a program (a converter, a compressor, a report
 * generator) waits for it with vg_proc_wait and the request's token, so
 * that the program is stopped, not left running, when the client leaves,
 * the deadline passes or the app shuts down. Start the child in a process
 * group of its own (`setpgid(0, 0)` in the child, or
 * `posix_spawnattr_setpgroup(&attr, 0)` with POSIX_SPAWN_SETPGROUP) so that
 * the programs it starts in turn are stopped with it, and with SIGTERM at
 * its default action (a SIG_IGN survives exec; POSIX_SPAWN_SETSIGDEF
 * resets it) if it is to have a chance to clean up before the SIGKILL.
 * @{
 */

/**
 * Waits for the child process `pid` (a child of this process, not yet
 * reaped) to exit, or for `tok` to be cancelled, whichever comes first.
 *
 * The child exited first (or exits while the token fires): reaps it, sets
 * `*status` (if not NULL) as waitpid() would and returns 0.
 *
 * The token was cancelled first (at once if it already was): sends SIGTERM
 * to the child's process group (only to the child when it shares the
 * caller's group), waits up to `grace_ms` for the child to exit, then sends
 * SIGKILL to whatever is left of the group (the child, or descendants that
 * outlived it), reaps the child, sets `*status` (e.g. WTERMSIG SIGTERM or
 * SIGKILL) and returns -ECANCELED. The child is never left a zombie.
 *
 * Waits on the child's pidfd together with the token's descriptor where
 * the kernel has pidfd_open (Linux 5.3), so it wakes as soon as either
 * happens; elsewhere it polls with waitpid, every 20 ms at most. Nobody
 * else may reap `pid` meanwhile (a SIGCHLD handler calling waitpid(-1), or
 * SIGCHLD set to SIG_IGN, makes this fail with -ECHILD).
 *
 * Returns 0, -ECANCELED, -EINVAL (pid <= 0 or tok NULL), -ECHILD (pid is
 * not an unreaped child of this process; nothing is signalled), or another
 * -errno. Blocks the calling thread (a handler's worker: fine); any thread.
 */
int vg_proc_wait(int pid, vg_token *tok, unsigned grace_ms, int *status);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Web: CORS (lib/web/cors.c)
 *
 * Cross-Origin Resource Sharing as the Fetch standard defines it, decided
 * by a filter on the event thread (no worker hand-off). A policy is built
 * with vg_cors_new and the setters below, then attached to an app
 * (vg_app_use_cors: every request, misses included) or a group
 * (vg_group_use_cors: its routes). Per request:
 *  - a preflight (OPTIONS with Origin and Access-Control-Request-Method)
 *    from an allowed origin, for a method the path routes (and the policy
 *    allows), is answered 204 at once, whether or not the path has an
 *    OPTIONS route, with Access-Control-Allow-Origin, -Allow-Methods (the
 *    policy's list, or the path's Allow), -Allow-Headers (the policy's
 *    list, or the asked ones echoed), -Allow-Credentials, -Max-Age;
 *  - any other request from an allowed origin goes on as usual and its
 *    answer, whoever makes it (handler, middleware, 404, 504...), gets
 *    Access-Control-Allow-Origin (the origin, or "*" for a policy that
 *    allows any), -Allow-Credentials and -Expose-Headers;
 *  - a request without Origin, from an origin not allowed, or a preflight
 *    for a method the path does not route gets no CORS header (the
 *    browser then blocks the page from reading the answer);
 *  - "Vary: Origin" is added whenever the answer depends on Origin (an
 *    origin list, whatever the Origin was), and a preflight answered with
 *    echoed headers also varies on Access-Control-Request-Headers.
 *
 * Ownership: the caller owns the policy. Attaching freezes it (setters
 * then return -EBUSY) and the app reads it until vg_app_free returns: free
 * it after that. One policy may be attached to several apps and groups.
 * Threads: configure from the configuring thread; the filter reads the
 * frozen policy on every event thread at once, without a lock.
 * @{
 */

/** A CORS policy: what it allows. */
typedef struct vg_cors vg_cors;

/** A new policy that allows no origin yet, no credentials, the path's
 *  methods, no extra request headers, no exposed headers, no max-age.
 *  NULL (errno ENOMEM). Free with vg_cors_free. Any thread. */
vg_cors *vg_cors_new(void);
/** Frees a policy; only once no app that uses it is running (after
 *  vg_app_free). NULL is a no-op. */
void vg_cors_free(vg_cors *c);
/** Allows `origin` as browsers send it: "https://app.example",
 *  "http://127.0.0.1:8080" (scheme, host, optional port; no path, no
 *  trailing '/'), or "null". Compared exactly. Returns 0, -EINVAL (NULL,
 *  malformed, "*": use vg_cors_allow_any_origin), -EBUSY (attached) or
 *  -ENOMEM. */
int vg_cors_allow_origin(vg_cors *c, const char *origin);
/** Allows every origin ("Access-Control-Allow-Origin: *"). -EINVAL with
 *  credentials (a browser ignores "*" on a credentialed request), -EBUSY
 *  once attached, else 0. */
int vg_cors_allow_any_origin(vg_cors *c);
/** Methods a preflight may ask for, a comma-separated list ("GET, PUT");
 *  NULL (the default): whatever the path routes (vg_request_allow). Either
 *  way the path must route the asked method. Returns 0, -EINVAL (not a
 *  token list; "*" with credentials), -EBUSY or -ENOMEM. */
int vg_cors_set_methods(vg_cors *c, const char *methods);
/** Request headers a page may send, a list ("X-Token, Content-Type");
 *  NULL: none beyond the ones browsers always allow (the default).
 *  Replaces vg_cors_echo_headers. Returns as vg_cors_set_methods. */
int vg_cors_set_headers(vg_cors *c, const char *headers);
/** Allows whatever request headers a preflight asks for, by echoing its
 *  Access-Control-Request-Headers. Replaces vg_cors_set_headers. Returns
 *  0, -EINVAL or -EBUSY. */
int vg_cors_echo_headers(vg_cors *c);
/** Response headers the page may read beyond the safelisted ones
 *  ("X-Request-Id, ETag"); NULL: none. Returns as vg_cors_set_methods. */
int vg_cors_set_expose_headers(vg_cors *c, const char *headers);
/** Whether credentialed requests (cookies, HTTP auth: fetch's
 *  credentials: "include") are allowed ("Access-Control-Allow-Credentials:
 *  true"). -EINVAL when turning it on for a policy that allows any origin
 *  or has "*" in a list (refused now, never at request time), -EBUSY once
 *  attached, else 0. */
int vg_cors_set_credentials(vg_cors *c, bool on);
/** Seconds a browser may cache a preflight's answer
 *  (Access-Control-Max-Age); -1 (the default): no header. Returns 0,
 *  -EINVAL (below -1, above 2^31-1) or -EBUSY. */
int vg_cors_set_max_age(vg_cors *c, long seconds);
/** Applies `c` to every request the app answers (misses and the library's
 *  own OPTIONS answers included), as an app filter (vg_app_filter) in
 *  registration order. Freezes `c`; the app borrows it until
 *  vg_app_free. Returns 0, -EINVAL (NULL, or a policy allowing no
 *  origin), -EBUSY (the app started) or -ENOMEM. Configuring thread. */
int vg_app_use_cors(vg_app *app, vg_cors *c);
/** Applies `c` to the group's routes and its nested groups', as a group
 *  filter; a preflight for one of them is answered even when its path has
 *  no OPTIONS route. Returns as vg_app_use_cors (-EINVAL for a NULL
 *  group). Configuring thread. */
int vg_group_use_cors(vg_group *g, vg_cors *c);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Web: request IDs (lib/web/request_id.c)
 *
 * An ID for every request, to follow it through logs and services: a
 * filter keeps a trusted incoming X-Request-Id or makes one, attaches it
 * to the request (vg_request_id), sets it on the response, whoever
 * answers (handler, middleware, 404, a CORS preflight answered by a later
 * filter, 504), and the access log line shows it (" id=ID").
 * @{
 */

/**
 * Gives every request the app answers an ID, as an app filter (register
 * it before filters that may answer at once, such as vg_app_use_cors, so
 * their answers carry it too). With `trust_incoming` an X-Request-Id sent
 * by the client is kept when it is 1-128 characters of letters, digits and
 * "-_.:+/=@~" (a proxy in front sets it); otherwise, or when it is not
 * sane, the ID is 128 random bits (getrandom) as 32 lowercase hex digits.
 * Returns 0, -EINVAL (NULL app), -EBUSY (started) or -ENOMEM.
 * Configuring thread.
 */
int vg_app_use_request_id(vg_app *app, bool trust_incoming);

/**
 * The request's ID (see vg_app_use_request_id), borrowed for the
 * request's life, or NULL when the app does not use request IDs (or the
 * request was answered before its filters ran, such as a 400 for a
 * malformed request). Any thread that may read the request, completion
 * hooks included: the companion libraries forward it upstream.
 */
const char *vg_request_id(const vg_request *req);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Web: cookies, signed ones too (lib/web/cookie.c)
 *
 * Reading follows RFC 6265: the Cookie fields a request carries (one or
 * several, or joined with "; ") are parsed once, on the first lookup, and
 * kept with the request; a pair whose name is not a token or whose value
 * is not cookie-octets (optionally double-quoted) is skipped, as no
 * browser sends one. Setting writes one Set-Cookie header per call, with
 * the attributes of an optional vg_cookie_attrs, reusable across results.
 *
 * Signed cookies carry "VALUE.EXPIRY.MAC": HMAC-SHA256 (nettle) over the
 * name, the value and an optional expiry, in base64url, under the first
 * key of a vg_cookie_keys; every key of it verifies, so keys rotate by
 * adding the new one first and keeping the old ones for as long as their
 * cookies live. A cookie whose MAC does not match (tampered, renamed,
 * signed by an unknown key) or whose expiry has passed reads as absent.
 * The MAC comparison is constant-time.
 * @{
 */

/**
 * The value of cookie `name` (case-sensitive; the first one when the
 * client sent several, which RFC 6265 puts most specific first), with
 * surrounding double quotes removed; NULL when absent or out of memory.
 * Borrowed for the request's life. Call it from the thread that runs the
 * request's filters, middleware or handler (the first call attaches the
 * parsed cookies with vg_request_set_data), never from two at once.
 */
const char *vg_request_cookie(const vg_request *req, const char *name);

/** SameSite attribute values. */
typedef enum {
    VG_SAME_SITE_DEFAULT = 0, /**< no attribute: the browser's default (Lax) */
    VG_SAME_SITE_LAX,         /**< "SameSite=Lax" */
    VG_SAME_SITE_STRICT,      /**< "SameSite=Strict" */
    VG_SAME_SITE_NONE         /**< "SameSite=None", which forces Secure */
} vg_same_site;

/** The attributes of a cookie being set: Path, Domain, Max-Age, Expires,
 *  Secure, HttpOnly, SameSite, Partitioned. */
typedef struct vg_cookie_attrs vg_cookie_attrs;

/** New attributes, all unset (a session cookie for the current path).
 *  NULL (errno ENOMEM). Free with vg_cookie_attrs_free; one set may serve
 *  any number of results, from several threads once no longer changed.
 *  The setters below return 0, -EINVAL or -ENOMEM; any thread that owns
 *  the attributes. */
vg_cookie_attrs *vg_cookie_attrs_new(void);
/** Frees attributes; NULL is a no-op. */
void vg_cookie_attrs_free(vg_cookie_attrs *a);
/** "Path=...": starts with '/', no control characters or ';'; NULL:
 *  none. */
int vg_cookie_attrs_set_path(vg_cookie_attrs *a, const char *path);
/** "Domain=...": a host name (letters, digits, '-', '.'); NULL: none
 *  (host-only cookie). */
int vg_cookie_attrs_set_domain(vg_cookie_attrs *a, const char *domain);
/** "Max-Age=seconds" (0 deletes at once); -1: none (the default). */
int vg_cookie_attrs_set_max_age(vg_cookie_attrs *a, long seconds);
/** "Expires=" the given Unix time as an IMF-fixdate; -1: none (the
 *  default). For old clients; Max-Age wins where both are given. */
int vg_cookie_attrs_set_expires(vg_cookie_attrs *a, long long unix_time);
/** "Secure": sent over HTTPS only. */
int vg_cookie_attrs_set_secure(vg_cookie_attrs *a, bool on);
/** "HttpOnly": hidden from page scripts. */
int vg_cookie_attrs_set_http_only(vg_cookie_attrs *a, bool on);
/** "SameSite=..."; VG_SAME_SITE_NONE also writes Secure (browsers refuse
 *  it otherwise). */
int vg_cookie_attrs_set_same_site(vg_cookie_attrs *a, vg_same_site s);
/** "Partitioned" (CHIPS: a cookie kept per top-level site); also writes
 *  Secure, which it requires. */
int vg_cookie_attrs_set_partitioned(vg_cookie_attrs *a, bool on);

/**
 * Adds "Set-Cookie: name=value" with the attributes `a` (NULL: none), in
 * the order Path, Domain, Max-Age, Expires, Secure, HttpOnly, SameSite,
 * Partitioned. `name` must be a token and `value` cookie-octets (RFC 6265
 * 4.1.1; "" allowed): otherwise, or without memory, frees `res` and
 * returns NULL (errno EINVAL or ENOMEM), which answers 500, as
 * vg_result_set_header does. Returns `res`. Any thread.
 */
vg_result *vg_result_set_cookie(vg_result *res, const char *name,
                                const char *value, const vg_cookie_attrs *a);
/** Deletes cookie `name` on the client: an empty value with Max-Age=0 and
 *  an Expires in 1970, plus `a`'s Path and Domain (which must match the
 *  cookie's). Returns as vg_result_set_cookie. */
vg_result *vg_result_clear_cookie(vg_result *res, const char *name,
                                  const vg_cookie_attrs *a);

/** A set of HMAC-SHA256 keys for signed cookies: the first signs, every
 *  one verifies. */
typedef struct vg_cookie_keys vg_cookie_keys;

/** A key set whose signing key is the `len` bytes at `key` (copied; at
 *  least 32 random bytes). NULL with errno EINVAL (NULL or short key) or
 *  ENOMEM. Free with vg_cookie_keys_free once no app uses it. Read-only
 *  once in use: any number of threads may then sign and verify with it. */
vg_cookie_keys *vg_cookie_keys_new(const void *key, size_t len);
/** Adds a key that verifies but does not sign (an older one, during a
 *  rotation). 0, -EINVAL or -ENOMEM. Not while the keys are in use. */
int vg_cookie_keys_add(vg_cookie_keys *k, const void *key, size_t len);
/** Frees the keys, wiping them; NULL is a no-op. */
void vg_cookie_keys_free(vg_cookie_keys *k);

/**
 * vg_result_set_cookie with a signed value "value.EXPIRY.MAC", under the
 * first key of `k`. `ttl_seconds` > 0 puts an expiry (now + ttl) inside
 * the MAC, so the cookie stops verifying then whatever the client keeps;
 * 0: no expiry. Pair it with a matching Max-Age in `a` to have the client
 * drop it too. Returns as vg_result_set_cookie (NULL k, negative ttl:
 * EINVAL). Any thread.
 */
vg_result *vg_result_set_signed_cookie(vg_result *res, const vg_cookie_keys *k,
                                       const char *name, const char *value,
                                       long ttl_seconds,
                                       const vg_cookie_attrs *a);

/**
 * The value of signed cookie `name` when one of `k`'s keys verifies it and
 * its expiry has not passed; NULL when absent, tampered with, signed by
 * another key or for another name, expired, or out of memory. Borrowed for
 * the request's life; same threads as vg_request_cookie.
 */
const char *vg_request_signed_cookie(const vg_request *req,
                                     const vg_cookie_keys *k,
                                     const char *name);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Web: HTTP authentication (lib/web/auth.c)
 *
 * Reading Basic (RFC 7617) and Bearer (RFC 6750) credentials from the
 * Authorization field, the 401 answers that ask for them, a comparison
 * whose time does not depend on the bytes compared, and a Basic-auth
 * middleware that asks a user callback. Base64 is nettle's.
 * @{
 */

/**
 * The user and password of a Basic Authorization field ("Basic" in any
 * case, then base64 of "user:password"; the password may hold ':'),
 * borrowed for the request's life. Returns 0; -ENOENT when the request has
 * no Authorization field or one of another scheme; -EINVAL when it is
 * malformed (not exactly padded base64, no ':', a NUL or another control
 * character in the decoded text); -ENOMEM. The outputs are set only on 0.
 * Same threads as vg_request_cookie (the decoded text is attached to the
 * request on first use).
 */
int vg_request_basic_auth(const vg_request *req, const char **user,
                          const char **password);

/**
 * The token of a Bearer Authorization field ("Bearer" in any case, then
 * one b64token: letters, digits, "-._~+/", then '='s), borrowed for the
 * request's life. 0, -ENOENT (absent, another scheme), -EINVAL (malformed,
 * or anything after the token). Compare it with vg_secure_equal. Any
 * thread that may read the request.
 */
int vg_request_bearer(const vg_request *req, const char **token);

/**
 * A 401 asking for Basic credentials, with the header
 * `WWW-Authenticate: Basic realm="REALM", charset="UTF-8"` (a double quote
 * or a backslash in the realm escaped with a backslash).
 * NULL with errno EINVAL (NULL realm, or control characters in it) or
 * ENOMEM. Any thread.
 */
vg_result *vg_basic_challenge(const char *realm);

/**
 * The answer to a missing or refused Bearer token (RFC 6750 3): 401, or
 * 400 for `error` "invalid_request" and 403 for "insufficient_scope"
 * ("invalid_token" is 401), with "WWW-Authenticate: Bearer realm="...",
 * error="...", error_description="..."" (each part only when given; NULL
 * error: a request that carried no token). NULL with errno EINVAL for
 * another error code, control characters, or a double quote or backslash
 * in error or description; ENOMEM. Any thread.
 */
vg_result *vg_bearer_challenge(const char *realm, const char *error,
                               const char *description);

/**
 * Whether the `alen` bytes at `a` equal the `blen` bytes at `b`, taking a
 * time that depends on the lengths only, never on where the bytes differ
 * (nettle's memeql_sec): for passwords, tokens, MACs. False if either is
 * NULL. Any thread.
 */
bool vg_secure_equal(const void *a, size_t alen, const void *b, size_t blen);

/**
 * Checks a user's Basic credentials: true lets the request through. Runs
 * on the handler's thread (a worker) for each request of the app or group
 * it guards, so it may block (a database, a slow password hash); compare
 * secrets with vg_secure_equal. `req` is the request being authorised,
 * the strings are borrowed for the request's life, `arg` is the pointer
 * given to vg_basic_auth_new.
 */
typedef bool (*vg_basic_check_fn)(vg_request *req, const char *user,
                                  const char *password, void *arg);

/** A Basic-auth policy: a realm and a user check. */
typedef struct vg_basic_auth vg_basic_auth;

/**
 * A policy answering vg_basic_challenge(realm) to requests without valid
 * Basic credentials (absent, malformed, or refused by `fn`). NULL with
 * errno EINVAL (NULL realm or fn, a realm the challenge cannot carry) or
 * ENOMEM. The caller owns it: free it with vg_basic_auth_free after
 * vg_app_free of every app that uses it. Configuring thread.
 */
vg_basic_auth *vg_basic_auth_new(const char *realm, vg_basic_check_fn fn,
                                 void *arg);
/** Frees a policy; NULL is a no-op. */
void vg_basic_auth_free(vg_basic_auth *b);
/** Guards every request of the app with `b`, as a middleware (vg_app_use):
 *  filters, such as a CORS preflight, run before it. The app borrows `b`
 *  until vg_app_free. Returns as vg_app_use (-EINVAL for NULL b).
 *  Configuring thread. */
int vg_app_use_basic_auth(vg_app *app, vg_basic_auth *b);
/** Guards the group's routes with `b`, as a group middleware. Returns as
 *  vg_group_use (-EINVAL for NULL b). Configuring thread. */
int vg_group_use_basic_auth(vg_group *g, vg_basic_auth *b);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* VOLGA_H */
