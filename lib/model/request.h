/* request.h - the inside of a vg_request: what the glue copies out of
 * libmicrohttpd before dispatch, and the state shared by the threads that
 * race to finish it (worker, watcher, supervisor). */
#ifndef VG_REQUEST_H
#define VG_REQUEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "volga.h"
#include "core/pool.h"
#include "core/router.h"

struct MHD_Connection;
struct MHD_Response;
struct vg__chain;
struct vg__form;
struct vg__limits;
struct MHD_PostProcessor;

/* A value attached with vg_request_set_data; lives in the arena. */
typedef struct vg__datum {
    struct vg__datum *next;
    const void *key;
    void *value;
    void (*free_fn)(void *);
} vg__datum;

typedef struct {
    const char *name;
    const char *value;
} vg__pair;

/* A growable array of name/value pairs whose strings live in the arena. */
typedef struct {
    vg__pair *items;
    size_t n, cap;
} vg__pairs;

/* One chunk of the request's bump allocator. */
typedef struct vg__chunk {
    struct vg__chunk *next;
    size_t used, cap;
    char data[];
} vg__chunk;

/* What the request model asks of the engine that serves the request: the
 * engine installs these on every request it creates (lib/engine/mhd_glue.c), so
 * that request.c and stream.c never call into the engine by name. */
typedef struct {
    int (*park)(vg_request *req);     /* a stream has nothing to send:
                                         suspend; 0 or -ESHUTDOWN */
    void (*wake)(vg_request *req);    /* a stream has data or ended */
    void (*release)(vg_request *req); /* free what the engine attached */
} vg__engine_ops;

/* Where a request is in the access handler's state machine. */
typedef enum {
    VG__REQ_NEW = 0,      /* request line seen (URI log callback) */
    VG__REQ_READING,      /* headers seen; upload data may follow */
    VG__REQ_DISPATCHED,   /* suspended, handed to a worker */
    VG__REQ_ANSWERED      /* a response has been queued */
} vg__req_state;

struct vg_request {
    vg__task task;              /* first: the worker pool's intrusive link */
    atomic_uint refs;           /* MHD's, the worker's, the watcher's batch */
    vg_app *app;
    vg_token *token;
    const vg__engine_ops *engine; /* NULL for requests made without one */

    /* Glue-owned: touched only on libmicrohttpd's thread for this connection. */
    struct MHD_Connection *conn;
    struct vg__conn *conn_ctx;  /* the engine's view of its connection */
    vg__req_state state;
    unsigned head_status;       /* what routing the head found: 0 or 400/500 */
    bool on_worker;             /* ...and whether a worker answers it */
    unsigned long long breach_at; /* body_seen when a limit was breached */

    /* Resume arbitration: `suspended` is true from suspend until the one
     * thread that wins the right to resume clears it; the winner stores the
     * response first. Guarded by `lock`. */
    pthread_mutex_t lock;
    bool suspended;
    bool deferred, finished;    /* vg_defer / vg_request_finish */
    struct MHD_Response *response;
    unsigned status;            /* of `response` */
    unsigned long long response_len; /* its body size */
    unsigned sent_status;       /* what was queued, for the access log; 0: none */
    double start_ms;            /* for the access log; 0 when it is off */

    int watch_slot;             /* the watcher's table index, -1 if none */

    /* Copied out of libmicrohttpd before dispatch (DESIGN.md fact 5). */
    char *raw_uri;              /* as sent, for our own path decoding */
    const char *uri_at;         /* where MHD's URI callback saw it, in MHD's
                                   read buffer: compared, never read
                                   (lib/model/http_strict.h) */
    char *authority;            /* an absolute-form target's host[:port] */
    char *cookies;              /* every Cookie field's value joined with
                                   "; ", when there are several; else NULL */
    const char *method;
    const char *path;           /* decoded, no query */
    char **segs;                /* decoded path segments */
    size_t nseg;
    vg__pairs headers, query, params;
    int bad_query;              /* why copying the query failed, 0 if it did not */
    char *body;                 /* malloc'd, NUL-terminated; NULL when empty */
    size_t body_len, body_cap;
    unsigned long long body_seen; /* upload bytes received, kept or not */
    bool body_too_large;
    /* Forms (lib/model/form.c): the decoded fields, NULL when the body is
     * not a form; `pp` is the engine's decoder while the body arrives
     * (lib/engine/form_glue.c), touched only on libmicrohttpd's thread. */
    struct vg__form *form;
    struct MHD_PostProcessor *pp;
    bool form_started;          /* the glue looked at the Content-Type */
    bool form_urlencoded;       /* ...and found an urlencoded form */
    /* The route's body and form limits (lib/pipeline/limits.c), set when
     * the head is routed; NULL: the app's body limit and the defaults. */
    const struct vg__limits *limits;
    /* Files streamed to disk (lib/model/upload.c), in the order sent;
     * `upload_last` takes the writes. `store_failed`: one could not be
     * written (the answer is then 500). */
    vg_upload *uploads, *upload_last;
    bool store_failed;
    json_t *json;
    bool json_done;

    vg_handler fn;
    void *fn_arg;
    unsigned timeout_ms;        /* this request's deadline, 0: none */
    bool inline_;               /* its handler runs on MHD's thread */
    bool deadline_body;         /* its deadline counts from head_ns */
    uint64_t head_ns;           /* vg__clock_ns when its head was in */

    /* Set by the pipeline when the request is routed (lib/pipeline/pipeline.c). */
    const struct vg__chain *chain; /* filters and middleware around fn */
    const char *route;          /* the matched pattern; borrowed, or NULL */
    const char *allow;          /* the path's Allow string, or NULL */
    int answer;                 /* vg__answer_kind */
    bool running;               /* inside vg__pipeline_run: may defer/stream */
    bool asterisk;              /* "OPTIONS *" */
    bool chunked;               /* a chunked body: trailers to check */

    vg__datum *data;            /* vg_request_set_data */
    /* vg_request_add_response_header; guarded by `lock`, because the
     * watcher may build a 504 while the handler adds one. `nresp` lets
     * the hot path skip the lock when there are none. */
    vg__pairs resp_headers;
    atomic_size_t nresp;

    struct sockaddr_storage peer; /* the client's address, if known */
    socklen_t peer_len;
    char *peer_text;            /* formatted on first use, under `lock` */
    const char *client_text;    /* the client behind a trusted proxy (in the
                                 * arena), under `lock`; NULL: the peer */
    unsigned long long bytes_out; /* response body handed to MHD */
    /* The verified client certificate's subject DN and SHA-256 (hex), in
     * the arena; NULL without one (lib/engine/tls_glue.c, before dispatch). */
    const char *tls_subject, *tls_fingerprint;

    vg__chunk *chunks;          /* arena for the strings above */
};

/* A new request with one reference (libmicrohttpd's) and a fresh token.
 * NULL on ENOMEM. */
vg_request *vg__request_new(vg_app *app);
void vg__request_ref(vg_request *req);
/* Drops a reference; the last frees everything the request holds. */
void vg__request_unref(vg_request *req);

/* A copy of `len` bytes of `s`, NUL-terminated, in the request's arena. */
char *vg__request_strndup(vg_request *req, const char *s, size_t len);

/* Records the raw request-target. 0 or -ENOMEM. */
int vg__request_set_uri(vg_request *req, const char *uri);

/*
 * Splits the raw target's path into percent-decoded segments and sets
 * `path` (decoded, as libmicrohttpd gave it in `url`, copied). Returns 0,
 * -EINVAL if the target is not origin-form ("/..."), or if any segment, the
 * path or the query decodes to a NUL byte (DESIGN.md fact 14), -ENOMEM.
 */
int vg__request_parse_target(vg_request *req, const char *url);

/* Adds a header / query argument (copied). Query values whose decoded
 * length disagrees with their C-string length hold a NUL: -EINVAL. */
int vg__request_add_header(vg_request *req, const char *name, const char *value);
int vg__request_add_query(vg_request *req, const char *name, size_t name_len,
                          const char *value, size_t value_len);

/* Fills `params` from a router match, materialising {*rest} values. */
int vg__request_set_params(vg_request *req, const vg__match *m);

/* Records the client's address (copied). */
void vg__request_set_peer(vg_request *req, const struct sockaddr *sa,
                          socklen_t len);

/* Makes vg_request_client_addr report `addr` (copied into the arena)
 * instead of the peer: the client a trusted proxy forwarded for
 * (lib/web/proxy.c). Strings returned before stay valid. 0 or -ENOMEM.
 * The thread that runs the request's filters. */
int vg__request_set_client_addr(vg_request *req, const char *addr);

/* The client's address as bytes for keying a table (a family byte, then
 * the 4 or 16 address bytes; IPv4-mapped as IPv4): the same client, the
 * same key, whether it came directly or through a trusted proxy, without
 * formatting text. Returns the length, 0 if unknown. Any thread that may
 * read the request. */
size_t vg__request_client_key(const vg_request *req, unsigned char out[17]);

/* Calls `fn` for each header added with vg_request_add_response_header,
 * under the request's lock (fn must not call back into the request).
 * Returns the first non-zero return of fn, else 0. Any thread. */
int vg__request_each_response_header(vg_request *req,
                                     int (*fn)(const char *name,
                                               const char *value, void *arg),
                                     void *arg);

/* Appends upload data; past `limit` marks body_too_large and keeps nothing
 * more. 0 or -ENOMEM. */
int vg__request_append_body(vg_request *req, const char *data, size_t len,
                            size_t limit);
/* Replaces the body with `body` (malloc'd, `len` bytes followed by a NUL;
 * taken), freeing the old body and any JSON parsed from it: what a
 * request body's Content-Encoding decoded to (lib/web/decompress.c).
 * Pointers vg_request_body returned before are invalid afterwards. The
 * handler's thread, before the handler runs. */
void vg__request_replace_body(vg_request *req, char *body, size_t len);
/* Counts upload data that is not kept (an uploads route streams it to
 * disk); past `limit` marks body_too_large. */
void vg__request_count_body(vg_request *req, size_t len, size_t limit);

#endif
