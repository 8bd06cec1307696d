/* testutil.h - helpers shared by the integration suites: a started app on
 * 127.0.0.1:0, libcurl requests, raw sockets, and waiting on conditions. */
#ifndef VG_TESTUTIL_H
#define VG_TESTUTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <volga.h>

/* A response as libcurl saw it. */
typedef struct {
    long status;       /* 0 if the transfer failed */
    int curl_code;     /* CURLcode */
    char *body;        /* NUL-terminated, malloc'd */
    size_t body_len;
    char *headers;     /* raw header block, NUL-terminated, malloc'd */
} tu_response;

/* Starts `app` (already configured) and fails the test if it cannot. */
void tu_start(vg_app *app);
/* A new app on 127.0.0.1:0 with a quiet logger (errors only to stderr). */
vg_app *tu_app_new(void);

/* Performs `method` on http://127.0.0.1:PORT`path` with an optional body
 * (len bytes; content_type may be NULL) and extra header lines (NULL-ended
 * array, may be NULL). Times out after 10 s. */
tu_response tu_request(unsigned short port, const char *method,
                       const char *path, const char *body, size_t len,
                       const char *const *headers);
tu_response tu_get(unsigned short port, const char *path);
/* Performs a request on a libcurl easy handle (a CURL *) that the caller
 * owns and may have configured (method, upload, header list...): sets the
 * URL http://127.0.0.1:PORT`path`, path-as-is, no signals, a 10 s timeout
 * and the body and header collectors, then performs it. Reusing the handle
 * reuses its connection (keep-alive). */
tu_response tu_curl_perform(void *easy, unsigned short port, const char *path);
void tu_response_free(tu_response *r);
/* Value of header `name` in r->headers (case-insensitive), malloc'd, or NULL. */
char *tu_header(const tu_response *r, const char *name);

/* A blocking TCP socket connected to 127.0.0.1:port, with 10 s I/O timeouts;
 * fails the test if it cannot connect. */
int tu_connect(unsigned short port);
/* The same, returning -1 instead of failing: for helper threads and for
 * tests where refusal is a possible outcome. */
int tu_try_connect(unsigned short port);
/* Writes all of `s`. */
bool tu_send_all(int fd, const char *s, size_t len);
/* Reads until the peer closes, `len - 1` bytes are read, or the 10 s
 * timeout; returns bytes read, NUL-terminated. */
size_t tu_recv_all(int fd, char *buf, size_t len);
/* Reads one whole HTTP response with Content-Length framing; returns its
 * total length or 0. */
size_t tu_recv_response(int fd, char *buf, size_t len);
/* Closes with RST instead of FIN (SO_LINGER 0). */
void tu_close_rst(int fd);

/* A latch: threads wait until a count reaches a target. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int count;
} tu_latch;
void tu_latch_init(tu_latch *l);
void tu_latch_destroy(tu_latch *l);
void tu_latch_add(tu_latch *l, int n);
/* Waits until count >= target or `ms` pass; returns whether it got there. */
bool tu_latch_wait(tu_latch *l, int target, int ms);

/* Child processes (nginx, python3...). tu_spawn starts the program at the
 * path argv[0] with stdin, stdout and stderr on the given descriptors (-1:
 * /dev/null) and returns its pid, or -1 with errno set. The child is killed
 * (SIGKILL) if the calling thread's process dies first, so a test that fails
 * or times out leaves no server running behind it. */
pid_t tu_spawn(char *const argv[], int in_fd, int out_fd, int err_fd);
/* Waits up to `ms` for `pid` to exit and reaps it: true with *status set,
 * or false if it is still running. */
bool tu_wait_exit(pid_t pid, int ms, int *status);
/* Makes a self-signed EC (P-256) certificate for 127.0.0.1 and localhost,
 * subject CN=`cn`, valid two days, with /usr/bin/openssl req: PEM files at
 * the paths `cert` and `key`. True when openssl succeeded within 20 s. */
bool tu_make_cert(const char *cert, const char *key, const char *cn);
/* Sends `sig`, waits up to `ms` for the exit, then SIGKILLs and reaps.
 * Returns the wait status; -1 if the child had to be killed. */
int tu_stop_child(pid_t pid, int sig, int ms);

/* A sample program (samples/NAME under $top_builddir) run as a process. */
typedef struct {
    pid_t pid;
    int out;              /* its stdout, a pipe */
    int err;              /* its stderr, a pipe, or -1 (then /dev/null) */
    unsigned short port;
} tu_sample;
/* Starts samples/NAME on 127.0.0.1:0 (stderr on a pipe if want_err) and
 * waits, up to 10 s, for the "port N" it prints on stdout; fails the test
 * if it cannot. */
void tu_sample_start(tu_sample *s, const char *name, bool want_err);
/* SIGTERM; the sample must exit 0 within 10 s. Closes its pipes. */
void tu_sample_stop(tu_sample *s);

/* Waits up to `ms` until `app` has accounted for at least `requests`
 * requests and has none in flight (the library is done with them); copies
 * the last counters read into *st. The counters have no change
 * notification, so this looks every millisecond: use it after the event a
 * test really waits for (a latch, a reply), to let the books close. */
bool tu_wait_settled(vg_app *app, unsigned long long requests, int ms,
                     vg_stats *st);

/* Removes the directory tree at `path` (a test's temporary files), best
 * effort: what cannot be removed stays. */
void tu_remove_tree(const char *path);

/* Runs `suite` with libcurl initialised; returns the process exit code. */
struct Suite;
int tu_main(struct Suite *suite);

/* Milliseconds from a monotonic clock. */
double tu_now_ms(void);

#endif
