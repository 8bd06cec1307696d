/*
 * pq.c - libvolga-pq: libpq queries that a vg_token cancels on the server.
 *
 * One call runs one query through three phases on the calling thread:
 * send (non-blocking PQsend*, then PQflush until the query is out), wait
 * (vg_token_poll on PQsocket and the token until PQisBusy is false), collect
 * (PQgetResult until NULL). When the token fires in any phase, a cancel
 * thread is started (struct canceller) and the token is no longer watched;
 * the phases go on reading the connection, which is how the query's end
 * (SQLSTATE 57014, or its normal result if it won the race) arrives. The
 * thread is started by a vg_token_on_cancel callback, on the thread that
 * cancels the token (an event thread when the client leaves), so that the
 * request leaves without waiting for the caller's thread to be scheduled
 * (libvolga's workers run under SCHED_BATCH); the caller's thread starts it
 * itself if the callback could not.
 *
 * Why a thread: libpq 15's PQcancel blocks (connect, send, wait for the
 * server to close) with no timeout, and the caller's wait must stay
 * bounded. Why it repeats: a cancel that reaches the backend before it has
 * read the query is discarded, so until the query's end is read the thread
 * sends another request now and then (20 ms, doubling up to 200 ms). That
 * is safe only because the query is still ours: the call does not return
 * before the thread has stopped and every request it sent has been
 * acknowledged, so no request can land on the connection's next query.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "volga-pq.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define SQLSTATE_QUERY_CANCELED "57014"
#define RESEND_FIRST_MS 20
#define RESEND_MAX_MS 200

/* ------------------------------------------------------------------------ */
/* The cancel thread. Shared by the call and the thread, two references;
 * whichever drops the last one frees it (the call may give up waiting on
 * a thread stuck in PQcancel). */

struct canceller {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    PGcancel *cancel;
    int refs;
    bool stop;        /* the call has read the query's end: send no more */
    bool done;        /* the thread sends no more and none is in flight */
};

static void canceller_unref(struct canceller *c)
{
    bool last;

    pthread_mutex_lock(&c->lock);
    last = --c->refs == 0;
    pthread_mutex_unlock(&c->lock);
    if (!last)
        return;
    PQfreeCancel(c->cancel);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static struct timespec abs_after_ms(long ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void *canceller_main(void *arg)
{
    struct canceller *c = arg;
    long backoff = RESEND_FIRST_MS;
    char err[256];

    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        pthread_mutex_unlock(&c->lock);
        /* A failed request (err says why) is tried again like one the
         * backend discarded; the call's bound ends the attempts. */
        (void)PQcancel(c->cancel, err, sizeof err);
        pthread_mutex_lock(&c->lock);
        struct timespec until = abs_after_ms(backoff);
        while (!c->stop &&
               pthread_cond_timedwait(&c->cond, &c->lock, &until) != ETIMEDOUT)
            ;
        backoff = backoff * 2 > RESEND_MAX_MS ? RESEND_MAX_MS : backoff * 2;
    }
    c->done = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    canceller_unref(c);
    return NULL;
}

/* Starts the thread with `pc`, which it then owns; NULL (pc still the
 * caller's) if it cannot. Any thread: it does not touch the connection. */
static struct canceller *canceller_start(PGcancel *pc)
{
    struct canceller *c = calloc(1, sizeof *c);
    pthread_condattr_t attr;
    pthread_attr_t tattr;
    pthread_t th;

    if (c == NULL)
        return NULL;
    c->cancel = pc;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&c->lock, NULL);
    c->refs = 2;
    pthread_attr_init(&tattr);
    pthread_attr_setdetachstate(&tattr, PTHREAD_CREATE_DETACHED);
    /* libvolga's workers run under SCHED_BATCH, which a new thread would
     * inherit: a batch thread does not preempt, and the cancel is what the
     * client leaving waits for. The default policy needs no privilege. */
    struct sched_param sp = {.sched_priority = 0};
    int policy;
    if (pthread_getschedparam(pthread_self(), &policy, &(struct sched_param){0}) == 0 &&
        policy == SCHED_BATCH &&
        (pthread_attr_setinheritsched(&tattr, PTHREAD_EXPLICIT_SCHED) != 0 ||
         pthread_attr_setschedpolicy(&tattr, SCHED_OTHER) != 0 ||
         pthread_attr_setschedparam(&tattr, &sp) != 0))
        pthread_attr_setinheritsched(&tattr, PTHREAD_INHERIT_SCHED);
    if (pthread_create(&th, &tattr, canceller_main, c) != 0) {
        pthread_attr_destroy(&tattr);
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    pthread_attr_destroy(&tattr);
    return c;
}

/* Tells the thread to stop and waits until it has, at most until
 * `deadline`. Returns whether it did; drops the call's reference. */
static bool canceller_finish(struct canceller *c, const struct timespec *deadline)
{
    bool done;

    pthread_mutex_lock(&c->lock);
    c->stop = true;
    pthread_cond_broadcast(&c->cond);
    while (!c->done &&
           pthread_cond_timedwait(&c->cond, &c->lock, deadline) != ETIMEDOUT)
        ;
    done = c->done;
    pthread_mutex_unlock(&c->lock);
    canceller_unref(c);
    return done;
}

/* ------------------------------------------------------------------------ */
/* One call. */

struct call {
    PGconn *conn;
    vg_token *tok;            /* NULL: never cancelled */
    unsigned long cb;         /* vg_token_on_cancel id, 0 if none */
    bool cut;                 /* we shut the socket down (caller's thread) */
    /* The token's callback runs on the thread that cancels it; these are
     * shared with it, under `lock`. */
    pthread_mutex_t lock;
    PGcancel *pc;             /* made before sending, so that the callback
                                 never touches the connection */
    struct canceller *canceller;
    bool cancelling;          /* the token fired: cancel requested */
    struct timespec deadline; /* VG_PQ_CANCEL_MS after the token fired */
};

static long ms_until(const struct timespec *t)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : ms + 1;
}

/* Marks the call cancelling and starts the cancel thread with the
 * PGcancel made beforehand; `lock` held. Returns false when the request
 * still has to be sent by the caller's thread (no thread could be made). */
static bool call_start_cancel_locked(struct call *k)
{
    if (!k->cancelling) {
        k->cancelling = true;
        k->deadline = abs_after_ms(VG_PQ_CANCEL_MS);
        if (k->pc != NULL && (k->canceller = canceller_start(k->pc)) != NULL)
            k->pc = NULL;
    }
    return k->canceller != NULL;
}

/* The token's callback, on the thread that cancels it (an event thread for
 * a client gone): the cancel request leaves at once, without waiting for
 * the caller's thread to wake up. It only starts a thread; it never blocks
 * its own. */
static void call_on_cancel(vg_token *tok, void *arg)
{
    struct call *k = arg;

    (void)tok;
    pthread_mutex_lock(&k->lock);
    (void)call_start_cancel_locked(k);
    pthread_mutex_unlock(&k->lock);
}

/* The caller's thread saw the token fire: starts cancelling if the
 * callback has not. If no thread can be started the request is sent from
 * here (blocking, once), so the query still stops. */
static void call_cancel(struct call *k)
{
    PGcancel *pc = NULL;
    bool started;

    pthread_mutex_lock(&k->lock);
    if (!k->cancelling && k->pc == NULL)
        k->pc = PQgetCancel(k->conn);
    started = call_start_cancel_locked(k);
    if (!started) {
        pc = k->pc;
        k->pc = NULL;
    }
    pthread_mutex_unlock(&k->lock);
    if (pc != NULL) {
        char err[256];
        (void)PQcancel(pc, err, sizeof err);
        PQfreeCancel(pc);
    }
}

/* Whether the cancel has started, and its deadline. */
static bool call_cancelling(struct call *k, struct timespec *deadline)
{
    bool c;

    pthread_mutex_lock(&k->lock);
    c = k->cancelling;
    if (deadline != NULL)
        *deadline = k->deadline;
    pthread_mutex_unlock(&k->lock);
    return c;
}

/* Gives up on the connection: the only way to be sure a cancel that the
 * server has not acknowledged never stops a later query on it. */
static void call_cut(struct call *k)
{
    if (!k->cut && PQsocket(k->conn) >= 0)
        shutdown(PQsocket(k->conn), SHUT_RDWR);
    k->cut = true;
}

/* poll() on the socket alone, retried after signals; 0 on timeout. */
static int poll_socket(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;

    while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -errno;
    if (n > 0 && (p.revents & POLLNVAL))
        return -EBADF;
    return n > 0 ? p.revents : 0;
}

/* Waits for `events` on the connection's socket and, until the cancel has
 * started, on the token. Returns the socket's revents (> 0), 0 when the
 * cancel's deadline passed, -ECANCELED when the token fired, -errno. */
static int call_wait(struct call *k, short events)
{
    int fd = PQsocket(k->conn), r;
    struct timespec deadline;
    bool cancelling = call_cancelling(k, &deadline);

    if (fd < 0)
        return -EBADF;
    if (k->tok != NULL && !cancelling) {
        for (;;) {
            r = vg_token_poll(k->tok, fd, events, -1);
            if (r > 0 || r == -ECANCELED || r == -EBADF)
                return r;
            /* The token has no descriptor (-EMFILE...): look at it
             * every 50 ms instead. */
            if ((r = poll_socket(fd, events, 50)) != 0)
                return r;
            if (vg_token_is_cancelled(k->tok))
                return -ECANCELED;
        }
    }
    if (!cancelling)
        return poll_socket(fd, events, -1);
    for (;;) {
        long left = ms_until(&deadline);
        if (left == 0)
            return 0;
        if ((r = poll_socket(fd, events, (int)left)) != 0)
            return r;
    }
}

/* Reacts to one wait: the token fired (start cancelling), the deadline
 * passed (cut), or the socket is ready (read what came). False when the
 * connection can no longer be read. */
static bool call_step(struct call *k, short events)
{
    int r = call_wait(k, events);

    if (r == -ECANCELED) {
        call_cancel(k);
        return true;
    }
    if (r == 0 || r < 0) {
        call_cut(k);
        return false;
    }
    if ((r & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(k->conn))
        return false;
    return true;
}

/* Pushes the query out. The token is watched meanwhile but the message is
 * finished even after it fires: a half-sent message would break the
 * protocol, and the cancel is started at once anyway. */
static void call_flush(struct call *k)
{
    int f;

    while ((f = PQflush(k->conn)) == 1)
        if (!call_step(k, POLLIN | POLLOUT))
            return;
}

static bool is_query_canceled(const PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

    return PQresultStatus(r) == PGRES_FATAL_ERROR && state != NULL &&
           strcmp(state, SQLSTATE_QUERY_CANCELED) == 0;
}

/* Reads results until libpq has no more; keeps the last one, or the first
 * error. Sets *stopped when the server reported the cancel. */
static PGresult *call_collect(struct call *k, bool *stopped)
{
    PGresult *keep = NULL, *r;

    for (;;) {
        while (PQisBusy(k->conn))
            if (!call_step(k, POLLIN))
                break;
        if ((r = PQgetResult(k->conn)) == NULL)
            break;
        ExecStatusType st = PQresultStatus(r);
        if (is_query_canceled(r) && call_cancelling(k, NULL))
            *stopped = true;
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            PQclear(keep);
            return r;
        }
        if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(r);
        } else {
            PQclear(keep);
            keep = r;
        }
        /* A connection we cut yields error results forever; stop. */
        if (k->cut || PQstatus(k->conn) == CONNECTION_BAD)
            break;
    }
    return keep;
}

typedef int (*send_fn)(PGconn *conn, const void *arg);

/* Sets the call up to be cancelled from the token's callback: the
 * PGcancel is made here, on the caller's thread, because the connection
 * is not to be touched from another one. Without it (out of memory) the
 * caller's thread still cancels when it wakes. */
static void call_watch(struct call *k)
{
    if (k->tok == NULL)
        return;
    k->pc = PQgetCancel(k->conn);
    if (k->pc != NULL)
        k->cb = vg_token_on_cancel(k->tok, call_on_cancel, k);
}

/* Stops the callback and the cancel thread: after this no cancel request
 * of this call can still reach the server. Returns whether a cancel was
 * started. */
static bool call_unwatch(struct call *k)
{
    struct timespec deadline;
    struct canceller *c;
    bool cancelling;

    /* Returns only once a callback running elsewhere has returned. */
    if (k->cb != 0)
        (void)vg_token_off(k->tok, k->cb);
    pthread_mutex_lock(&k->lock);
    c = k->canceller;
    k->canceller = NULL;
    cancelling = k->cancelling;
    deadline = k->deadline;
    PQfreeCancel(k->pc);
    k->pc = NULL;
    pthread_mutex_unlock(&k->lock);
    if (c != NULL && !canceller_finish(c, &deadline))
        call_cut(k);
    return cancelling;
}

static PGresult *run(PGconn *conn, vg_token *tok, send_fn send, const void *arg)
{
    struct call k = {.conn = conn, .tok = tok};
    bool stopped = false, cancelled;
    int was_nonblocking, err = 0;
    PGresult *res;

    if (tok != NULL && vg_token_is_cancelled(tok)) {
        errno = ECANCELED;
        return NULL;
    }
    /* In pipeline mode results come per sync point, not per call. */
    if (PQpipelineStatus(conn) != PQ_PIPELINE_OFF) {
        errno = EINVAL;
        return NULL;
    }
    was_nonblocking = PQisnonblocking(conn);
    if (!was_nonblocking && PQsetnonblocking(conn, 1) != 0) {
        errno = EIO;
        return NULL;
    }
    if (!send(conn, arg)) {
        if (!was_nonblocking)
            PQsetnonblocking(conn, 0);
        errno = EIO;
        return NULL;
    }
    pthread_mutex_init(&k.lock, NULL);
    /* From here until call_unwatch the query is ours: cancel requests sent
     * meanwhile can only reach it (or an idle backend, which drops them). */
    call_watch(&k);
    call_flush(&k);
    res = call_collect(&k, &stopped);
    cancelled = call_unwatch(&k);
    pthread_mutex_destroy(&k.lock);
    if (!was_nonblocking)
        (void)PQsetnonblocking(conn, 0);
    if (cancelled && (stopped || k.cut)) {
        PQclear(res);
        res = NULL;
        err = ECANCELED;
    } else if (res == NULL) {
        err = EIO;
    }
    if (res == NULL)
        errno = err;
    return res;
}

/* ------------------------------------------------------------------------ */
/* The public calls: each packs its arguments for its PQsend function. */

struct params {
    const char *sql_or_name;
    const char *sql;
    int nparams;
    const char *const *values;
};

static int send_query(PGconn *conn, const void *arg)
{
    return PQsendQuery(conn, ((const struct params *)arg)->sql);
}

static int send_params(PGconn *conn, const void *arg)
{
    const struct params *p = arg;

    return PQsendQueryParams(conn, p->sql, p->nparams, NULL, p->values, NULL,
                             NULL, 0);
}

static int send_prepare(PGconn *conn, const void *arg)
{
    const struct params *p = arg;

    return PQsendPrepare(conn, p->sql_or_name, p->sql, p->nparams, NULL);
}

static int send_prepared(PGconn *conn, const void *arg)
{
    const struct params *p = arg;

    return PQsendQueryPrepared(conn, p->sql_or_name, p->nparams, p->values,
                               NULL, NULL, 0);
}

static bool bad_args(PGconn *conn, const char *s, int nparams,
                     const char *const *values)
{
    if (conn == NULL || s == NULL || nparams < 0 || (nparams > 0 && values == NULL)) {
        errno = EINVAL;
        return true;
    }
    return false;
}

PGresult *vg_pq_exec(PGconn *conn, vg_token *tok, const char *sql)
{
    struct params p = {.sql = sql};

    if (bad_args(conn, sql, 0, NULL))
        return NULL;
    return run(conn, tok, send_query, &p);
}

PGresult *vg_pq_exec_params(PGconn *conn, vg_token *tok, const char *sql,
                            int nparams, const char *const *values)
{
    struct params p = {.sql = sql, .nparams = nparams, .values = values};

    if (bad_args(conn, sql, nparams, values))
        return NULL;
    return run(conn, tok, send_params, &p);
}

PGresult *vg_pq_prepare(PGconn *conn, vg_token *tok, const char *name,
                        const char *sql, int nparams)
{
    struct params p = {.sql_or_name = name, .sql = sql, .nparams = nparams};

    if (bad_args(conn, name, 0, NULL) || bad_args(conn, sql, 0, NULL))
        return NULL;
    if (nparams < 0) {
        errno = EINVAL;
        return NULL;
    }
    return run(conn, tok, send_prepare, &p);
}

PGresult *vg_pq_exec_prepared(PGconn *conn, vg_token *tok, const char *name,
                              int nparams, const char *const *values)
{
    struct params p = {.sql_or_name = name, .nparams = nparams, .values = values};

    if (bad_args(conn, name, nparams, values))
        return NULL;
    return run(conn, tok, send_prepared, &p);
}
