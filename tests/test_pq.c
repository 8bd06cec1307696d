/*
 * test_pq.c - libvolga-pq against a real PostgreSQL server: a private
 * cluster (tests/pgcluster.c) started once for the whole suite, in a
 * temporary directory, listening on a Unix socket only.
 *
 * What a cancelled query did on the server is read where the server shows
 * it, in pg_stat_activity, from a second connection. The view has no
 * change notification, so waits on it look every 2 ms with a bound that
 * only catches failures (wait_backend). Handlers and the test meet through
 * tu_latch and pthread_join; nothing sleeps to synchronise. The race test
 * varies the moment a token is cancelled with nanosleep: there time itself
 * is what is varied.
 *
 * VG_TIME_SCALE stretches the bounds (sanitizers, valgrind); under
 * valgrind's scale the concurrent and race tests run fewer rounds.
 * Without a PostgreSQL server the suite is skipped (exit 77) with a message.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <jansson.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pgcluster.h"
#include "testutil.h"
#include "volga-pq.h"

/* How long the test waits for what should take milliseconds. */
#define HANG_MS 10000

static pgc_cluster *cluster;

static PGconn *connect_db(void)
{
    PGconn *c = PQconnectdb(pgc_conninfo(cluster));

    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    return c;
}

/* The single value of a one-row, one-column query. */
static char *query_value(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    char *v;

    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQresultErrorMessage(r));
    ck_assert_int_eq(PQntuples(r), 1);
    v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static double scale(void)
{
    const char *s = getenv("VG_TIME_SCALE");
    double v = s ? atof(s) : 1.0;

    return v >= 1.0 ? v : 1.0;
}

/* Rounds of the heavier tests: fewer where everything runs 8x slower. */
static int rounds(int n)
{
    return scale() >= 8 ? (n / 5 > 0 ? n / 5 : 1) : n;
}

/* Backends (other than admin's own) whose state is `state` and whose query
 * contains `tag`. */
static long count_backends(PGconn *admin, const char *state, const char *tag)
{
    const char *v[2] = {state, tag};
    PGresult *r = PQexecParams(admin,
        "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
        "AND state = $1 AND strpos(query, $2) > 0", 2, NULL, v, NULL, NULL, 0);
    long n;

    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

/* The state of backend `pid` ("active", "idle"...), malloc'd; NULL if gone. */
static char *backend_state(PGconn *admin, int pid)
{
    char p[16];
    const char *v[1] = {p};
    PGresult *r;
    char *st = NULL;

    snprintf(p, sizeof p, "%d", pid);
    r = PQexecParams(admin, "SELECT state FROM pg_stat_activity WHERE pid = $1",
                     1, NULL, v, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    if (PQntuples(r) == 1)
        st = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return st;
}

/* Waits up to `ms` until backend `pid` is in `state`; returns the ms it
 * took, or -1. */
static double wait_backend(PGconn *admin, int pid, const char *state, double ms)
{
    double start = tu_now_ms();

    for (;;) {
        char *st = backend_state(admin, pid);
        bool there = st != NULL && strcmp(st, state) == 0;
        free(st);
        if (there)
            return tu_now_ms() - start;
        if (tu_now_ms() - start > ms)
            return -1;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static char *result_value(PGresult *r)
{
    char *v;

    ck_assert_msg(r != NULL, "no result: %s", strerror(errno));
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* ------------------------------------------------------------------------ */
/* Queries that are not cancelled behave like libpq's. */

START_TEST(test_exec_variants_return_results)
{
    PGconn *c = connect_db();
    vg_token *tok = vg_token_new();
    const char *vals[2] = {"20", "22"};
    char *v;

    v = result_value(vg_pq_exec(c, tok, "SELECT 1; SELECT 'last'"));
    ck_assert_str_eq(v, "last");
    free(v);
    v = result_value(vg_pq_exec_params(c, tok, "SELECT $1::int + $2::int", 2, vals));
    ck_assert_str_eq(v, "42");
    free(v);
    PGresult *r = vg_pq_prepare(c, tok, "add", "SELECT $1::int * $2::int", 2);
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    v = result_value(vg_pq_exec_prepared(c, tok, "add", 2, vals));
    ck_assert_str_eq(v, "440");
    free(v);
    /* NULL token: never cancelled. */
    v = result_value(vg_pq_exec(c, NULL, "SELECT 'no token'"));
    ck_assert_str_eq(v, "no token");
    free(v);
    ck_assert(!PQisnonblocking(c));
    vg_token_unref(tok);
    PQfinish(c);
}
END_TEST

/* A server error is an error result, as in libpq; the connection goes on. */
START_TEST(test_server_error_is_a_result)
{
    PGconn *c = connect_db();
    PGresult *r = vg_pq_exec(c, NULL, "SELECT * FROM no_such_table");
    char *v;

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42P01");
    PQclear(r);
    /* The first error wins over later results, as PQexec. */
    r = vg_pq_exec(c, NULL, "SELECT 1/0; SELECT 2");
    ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22012");
    PQclear(r);
    v = result_value(vg_pq_exec(c, NULL, "SELECT 1"));
    ck_assert_str_eq(v, "1");
    free(v);
    PQfinish(c);
}
END_TEST

START_TEST(test_bad_arguments_are_einval)
{
    PGconn *c = connect_db();
    const char *vals[1] = {"1"};

    errno = 0;
    ck_assert_ptr_null(vg_pq_exec(NULL, NULL, "SELECT 1"));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(vg_pq_exec(c, NULL, NULL));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(vg_pq_exec_params(c, NULL, "SELECT $1", -1, vals));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(vg_pq_exec_params(c, NULL, "SELECT $1", 1, NULL));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(vg_pq_prepare(c, NULL, NULL, "SELECT 1", 0));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(vg_pq_exec_prepared(c, NULL, NULL, 0, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(PQenterPipelineMode(c), 1);
    errno = 0;
    ck_assert_ptr_null(vg_pq_exec_params(c, NULL, "SELECT 1", 0, NULL));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(PQexitPipelineMode(c), 1);
    free(result_value(vg_pq_exec(c, NULL, "SELECT 1")));
    PQfinish(c);
}
END_TEST

/* A token cancelled before the call: nothing is sent (the prepared
 * statement is not created). */
START_TEST(test_cancelled_token_sends_nothing)
{
    PGconn *c = connect_db();
    vg_token *tok = vg_token_new();
    PGresult *r;

    vg_token_cancel(tok);
    errno = 0;
    ck_assert_ptr_null(vg_pq_prepare(c, tok, "never", "SELECT 1", 0));
    ck_assert_int_eq(errno, ECANCELED);
    r = vg_pq_exec_prepared(c, NULL, "never", 0, NULL);
    ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "26000");
    PQclear(r);
    vg_token_unref(tok);
    PQfinish(c);
}
END_TEST

/* A broken connection is NULL with EIO, not a hang. */
START_TEST(test_dead_connection_is_eio)
{
    PGconn *c = connect_db();
    PGconn *admin = connect_db();
    char sql[64];
    PGresult *r;

    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", PQbackendPID(c));
    free(result_value(PQexec(admin, sql)));
    r = vg_pq_exec(c, NULL, "SELECT 1");
    if (r != NULL) {
        /* libpq reports the server's goodbye as an error result. */
        ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
        PQclear(r);
    } else {
        ck_assert_int_eq(errno, EIO);
    }
    ck_assert_int_eq(PQstatus(c), CONNECTION_BAD);
    PQfinish(admin);
    PQfinish(c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* A cancelled token stops the query on the server. */

struct bg_exec {
    PGconn *conn;
    vg_token *tok;
    const char *sql;
    PGresult *res;
    int err;
    double returned_ms;
};

static void *bg_exec_main(void *arg)
{
    struct bg_exec *b = arg;

    b->res = vg_pq_exec(b->conn, b->tok, b->sql);
    b->err = b->res ? 0 : errno;
    b->returned_ms = tu_now_ms();
    return NULL;
}

START_TEST(test_cancel_stops_query_on_server)
{
    PGconn *c = connect_db(), *admin = connect_db();
    struct bg_exec b = {.conn = c, .tok = vg_token_new(), .sql = "SELECT pg_sleep(30)"};
    pthread_t th;
    double t0, idle_ms;
    char *v;

    ck_assert_int_eq(pthread_create(&th, NULL, bg_exec_main, &b), 0);
    ck_assert_msg(wait_backend(admin, PQbackendPID(c), "active", HANG_MS) >= 0,
                  "the query never ran");
    t0 = tu_now_ms();
    vg_token_cancel(b.tok);
    idle_ms = wait_backend(admin, PQbackendPID(c), "idle", 1000 * scale());
    pthread_join(th, NULL);
    ck_assert_msg(idle_ms >= 0, "backend still busy 1 s after the cancel");
    ck_assert_ptr_null(b.res);
    ck_assert_int_eq(b.err, ECANCELED);
    ck_assert_msg(b.returned_ms - t0 < 1000 * scale(), "returned after %.0f ms",
                  b.returned_ms - t0);
    v = result_value(vg_pq_exec(c, NULL, "SELECT 1"));
    ck_assert_str_eq(v, "1");
    free(v);
    vg_token_unref(b.tok);
    PQfinish(admin);
    PQfinish(c);
}
END_TEST

/* Inside a transaction block the cancel aborts the transaction, as any
 * error does; after ROLLBACK the connection is as before. */
START_TEST(test_cancel_in_transaction_aborts_it)
{
    PGconn *c = connect_db(), *admin = connect_db();
    struct bg_exec b = {.conn = c, .tok = vg_token_new(), .sql = "SELECT pg_sleep(30)"};
    pthread_t th;
    char *v;

    PQclear(vg_pq_exec(c, NULL, "BEGIN"));
    ck_assert_int_eq(pthread_create(&th, NULL, bg_exec_main, &b), 0);
    ck_assert(wait_backend(admin, PQbackendPID(c), "active", HANG_MS) >= 0);
    vg_token_cancel(b.tok);
    pthread_join(th, NULL);
    ck_assert_ptr_null(b.res);
    ck_assert_int_eq(b.err, ECANCELED);
    ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_INERROR);
    PQclear(vg_pq_exec(c, NULL, "ROLLBACK"));
    ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);
    v = result_value(vg_pq_exec(c, NULL, "SELECT 2"));
    ck_assert_str_eq(v, "2");
    free(v);
    vg_token_unref(b.tok);
    PQfinish(admin);
    PQfinish(c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Through a real app: the request's token. */

struct slow_route {
    PGconn *conn;                 /* shared: one request at a time */
    const char *sql;
    int err;
    vg_cancel_reason reason;
    bool after_ok;                /* the same conn then answered SELECT 1 */
    tu_latch done;
};

static vg_result *slow_handler(vg_request *req, void *arg)
{
    struct slow_route *s = arg;
    vg_token *tok = vg_request_token(req);
    PGresult *r = vg_pq_exec(s->conn, tok, s->sql);

    s->err = r ? 0 : errno;
    PQclear(r);
    s->reason = vg_token_reason(tok);
    r = vg_pq_exec(s->conn, NULL, "SELECT 1");
    s->after_ok = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK &&
                  strcmp(PQgetvalue(r, 0, 0), "1") == 0;
    PQclear(r);
    tu_latch_add(&s->done, 1);
    return vg_text("finished");
}

START_TEST(test_client_leaves_query_stops)
{
    struct slow_route s = {.conn = connect_db(), .sql = "SELECT pg_sleep(30)"};
    PGconn *admin = connect_db();
    int pid = PQbackendPID(s.conn);
    vg_app *app = tu_app_new();
    const char *req = "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n";
    double idle_ms;

    tu_latch_init(&s.done);
    ck_assert_int_eq(vg_map_get(app, "/slow", slow_handler, &s), 0);
    tu_start(app);
    int fd = tu_connect(vg_app_port(app));
    ck_assert(tu_send_all(fd, req, strlen(req)));
    ck_assert_msg(wait_backend(admin, pid, "active", HANG_MS) >= 0, "query never ran");
    close(fd);
    idle_ms = wait_backend(admin, pid, "idle", 1000 * scale());
    ck_assert_msg(idle_ms >= 0, "backend still running 1 s after the client left");
    ck_assert(tu_latch_wait(&s.done, 1, HANG_MS));
    ck_assert_int_eq(s.err, ECANCELED);
    ck_assert_int_eq(s.reason, VG_CANCEL_CLIENT_GONE);
    ck_assert(s.after_ok);
    vg_app_free(app);
    tu_latch_destroy(&s.done);
    PQfinish(admin);
    PQfinish(s.conn);
}
END_TEST

START_TEST(test_deadline_cancels_query_504)
{
    struct slow_route s = {.conn = connect_db(), .sql = "SELECT pg_sleep(30)"};
    PGconn *admin = connect_db();
    vg_app *app = tu_app_new();
    double t0;

    tu_latch_init(&s.done);
    ck_assert_int_eq(vg_app_set_request_timeout(app, 200), 0);
    ck_assert_int_eq(vg_map_get(app, "/slow", slow_handler, &s), 0);
    tu_start(app);
    t0 = tu_now_ms();
    tu_response r = tu_get(vg_app_port(app), "/slow");
    ck_assert_int_eq(r.status, 504);
    ck_assert_msg(tu_now_ms() - t0 < 200 + 1000 * scale(), "504 after %.0f ms",
                  tu_now_ms() - t0);
    tu_response_free(&r);
    ck_assert(tu_latch_wait(&s.done, 1, HANG_MS));
    ck_assert_int_eq(s.err, ECANCELED);
    ck_assert_int_eq(s.reason, VG_CANCEL_TIMEOUT);
    ck_assert(s.after_ok);
    ck_assert(wait_backend(admin, PQbackendPID(s.conn), "idle", 1000 * scale()) >= 0);
    vg_app_free(app);
    tu_latch_destroy(&s.done);
    PQfinish(admin);
    PQfinish(s.conn);
}
END_TEST

/* Many slow queries at once, each on its own connection, all clients
 * leave: none is left running. */
struct many_route {
    atomic_int cancelled;
    atomic_int other;
    tu_latch done;
};

#define MANY_TAG "vg-many-slow"

static vg_result *many_handler(vg_request *req, void *arg)
{
    struct many_route *m = arg;
    PGconn *c = PQconnectdb(pgc_conninfo(cluster));
    PGresult *r = NULL;

    if (PQstatus(c) == CONNECTION_OK)
        r = vg_pq_exec(c, vg_request_token(req), "SELECT pg_sleep(30) /* " MANY_TAG " */");
    if (r == NULL && errno == ECANCELED)
        atomic_fetch_add(&m->cancelled, 1);
    else
        atomic_fetch_add(&m->other, 1);
    PQclear(r);
    PQfinish(c);
    tu_latch_add(&m->done, 1);
    return vg_text("finished");
}

START_TEST(test_many_clients_leave_none_left_running)
{
    int n = rounds(100);
    struct many_route m = {0};
    PGconn *admin = connect_db();
    vg_app *app = tu_app_new();
    const char *req = "GET /many HTTP/1.1\r\nHost: t\r\n\r\n";
    int *fds = calloc((size_t)n, sizeof *fds);
    double start;
    long running = -1;

    tu_latch_init(&m.done);
    ck_assert_int_eq(vg_app_set_workers(app, (unsigned)n + 8), 0);
    ck_assert_int_eq(vg_map_get(app, "/many", many_handler, &m), 0);
    tu_start(app);
    for (int i = 0; i < n; i++) {
        fds[i] = tu_connect(vg_app_port(app));
        ck_assert(tu_send_all(fds[i], req, strlen(req)));
    }
    start = tu_now_ms();
    while ((running = count_backends(admin, "active", MANY_TAG)) < n &&
           tu_now_ms() - start < HANG_MS * scale()) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(running == n, "only %ld of %d queries ran", running, n);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    start = tu_now_ms();
    while ((running = count_backends(admin, "active", MANY_TAG)) > 0 &&
           tu_now_ms() - start < 2000 * scale()) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(running == 0, "%ld queries still running %.0f ms after the clients left",
                  running, tu_now_ms() - start);
    ck_assert(tu_latch_wait(&m.done, n, HANG_MS * scale()));
    ck_assert_int_eq(atomic_load(&m.cancelled), n);
    ck_assert_int_eq(atomic_load(&m.other), 0);
    vg_app_free(app);
    tu_latch_destroy(&m.done);
    free(fds);
    PQfinish(admin);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The lib/pq#1001 race: a cancel that arrives as the query finishes must
 * never stop the next query on the same connection. The token is cancelled
 * at a random moment around the end of a 5 ms query; the next query sleeps
 * 20 ms, long enough for a late cancel request to land in it. */

struct late_cancel {
    vg_token *tok;
    long delay_us;
};

static void *late_cancel_main(void *arg)
{
    struct late_cancel *l = arg;
    struct timespec ts = {0, l->delay_us * 1000};

    nanosleep(&ts, NULL);
    vg_token_cancel(l->tok);
    return NULL;
}

START_TEST(test_late_cancel_never_hits_next_query)
{
    PGconn *c = connect_db();
    int n = rounds(150), cancelled = 0, finished = 0;
    unsigned seed = (unsigned)time(NULL);
    double slowest = 0;

    /* The cancel moments span twice the query's time here, measured (a
     * slow machine or valgrind stretches the client's part), so that both
     * outcomes happen. */
    for (int i = 0; i < 5; i++) {
        double t0 = tu_now_ms();
        PQclear(vg_pq_exec(c, NULL, "SELECT pg_sleep(0.005)"));
        if (tu_now_ms() - t0 > slowest)
            slowest = tu_now_ms() - t0;
    }
    long span_us = (long)(2000 * slowest) + 1;

    for (int i = 0; i < n; i++) {
        struct late_cancel l = {.tok = vg_token_new(),
                                .delay_us = rand_r(&seed) % span_us};
        pthread_t th;
        PGresult *r;

        ck_assert_int_eq(pthread_create(&th, NULL, late_cancel_main, &l), 0);
        r = vg_pq_exec(c, l.tok, "SELECT pg_sleep(0.005)");
        if (r == NULL) {
            ck_assert_int_eq(errno, ECANCELED);
            cancelled++;
        } else {
            ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "round %d: %s", i,
                          PQresultErrorMessage(r));
            finished++;
        }
        PQclear(r);
        pthread_join(th, NULL);
        r = vg_pq_exec(c, NULL, "SELECT pg_sleep(0.02)");
        ck_assert_msg(r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK,
                      "round %d (cancel after %ld us): the next query failed: %s", i,
                      l.delay_us, r ? PQresultErrorMessage(r) : strerror(errno));
        PQclear(r);
        vg_token_unref(l.tok);
    }
    /* Both outcomes must have happened, or the race was not exercised. */
    ck_assert_msg(cancelled > 0 && finished > 0, "cancelled %d, finished %d "
                  "(cancels within %ld us)", cancelled, finished, span_us);
    PQfinish(c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* A cancel the server never acknowledges. A proxy on a Unix socket of its
 * own forwards the first connection (the query's) to the cluster and holds
 * every later one (cancel requests) open without a word, so PQcancel
 * blocks. The call must still return within VG_PQ_CANCEL_MS, and must cut
 * the connection rather than leave a cancel in flight. */

struct hold_proxy {
    char dir[64];
    int listen_fd;
    int stop_pipe[2];
    int held[64];
    int nheld;
    pthread_t thread;
};

static int unix_connect(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *hold_proxy_main(void *arg)
{
    struct hold_proxy *p = arg;
    char server_path[100], buf[16384];
    int client = -1, server = -1;
    const char *host = strstr(pgc_conninfo(cluster), "host=") + 5;

    snprintf(server_path, sizeof server_path, "%.*s/.s.PGSQL.5432",
             (int)strcspn(host, " "), host);
    for (;;) {
        struct pollfd f[4] = {{.fd = p->stop_pipe[0], .events = POLLIN},
                              {.fd = p->listen_fd, .events = POLLIN},
                              {.fd = client, .events = POLLIN},
                              {.fd = server, .events = POLLIN}};
        if (poll(f, 4, -1) < 0 || f[0].revents)
            break;
        if (f[1].revents) {
            int fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0 && client < 0) {
                client = fd;
                server = unix_connect(server_path);
            } else if (fd >= 0 && p->nheld < 64) {
                p->held[p->nheld++] = fd;
            } else if (fd >= 0) {
                close(fd);
            }
        }
        for (int i = 2; i < 4; i++) {
            if (!f[i].revents)
                continue;
            ssize_t n = read(f[i].fd, buf, sizeof buf);
            int to = i == 2 ? server : client;
            if (n <= 0 || write(to, buf, (size_t)n) != n) {
                close(client);
                close(server);
                client = server = -1;
                break;
            }
        }
    }
    if (client >= 0)
        close(client);
    if (server >= 0)
        close(server);
    return NULL;
}

static void hold_proxy_start(struct hold_proxy *p)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};

    snprintf(p->dir, sizeof p->dir, "/tmp/vg-pq-proxy-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(p->dir));
    snprintf(a.sun_path, sizeof a.sun_path, "%s/.s.PGSQL.5432", p->dir);
    p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(p->listen_fd, 0);
    ck_assert_int_eq(bind(p->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(p->listen_fd, 16), 0);
    ck_assert_int_eq(pipe2(p->stop_pipe, O_CLOEXEC), 0);
    ck_assert_int_eq(pthread_create(&p->thread, NULL, hold_proxy_main, p), 0);
}

static void hold_proxy_stop(struct hold_proxy *p)
{
    ck_assert_int_eq(write(p->stop_pipe[1], "x", 1), 1);
    pthread_join(p->thread, NULL);
    for (int i = 0; i < p->nheld; i++)
        close(p->held[i]);
    close(p->listen_fd);
    close(p->stop_pipe[0]);
    close(p->stop_pipe[1]);
    tu_remove_tree(p->dir);
}

START_TEST(test_unacknowledged_cancel_cuts_connection)
{
    struct hold_proxy proxy = {0};
    PGconn *admin = connect_db();
    char info[256];

    hold_proxy_start(&proxy);
    snprintf(info, sizeof info, "host=%s dbname=postgres user=postgres", proxy.dir);
    PGconn *c = PQconnectdb(info);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    int pid = PQbackendPID(c);
    struct bg_exec b = {.conn = c, .tok = vg_token_new(), .sql = "SELECT pg_sleep(30)"};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, bg_exec_main, &b), 0);
    ck_assert(wait_backend(admin, pid, "active", HANG_MS) >= 0);
    double t0 = tu_now_ms();
    vg_token_cancel(b.tok);
    pthread_join(th, NULL);
    double took = b.returned_ms - t0;
    ck_assert_ptr_null(b.res);
    ck_assert_int_eq(b.err, ECANCELED);
    ck_assert_msg(took >= VG_PQ_CANCEL_MS - 50 && took < VG_PQ_CANCEL_MS + 2000 * scale(),
                  "returned after %.0f ms", took);
    /* The cut connection refuses the next query instead of running it. */
    PGresult *r = vg_pq_exec(c, NULL, "SELECT 1");
    ck_assert(r == NULL || PQresultStatus(r) == PGRES_FATAL_ERROR);
    PQclear(r);
    ck_assert_int_eq(PQstatus(c), CONNECTION_BAD);
    /* The query the cancel never reached still runs: end it. */
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", pid);
    PQclear(PQexec(admin, sql));
    hold_proxy_stop(&proxy);
    vg_token_unref(b.tok);
    PQfinish(c);
    PQfinish(admin);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* samples/report: a slow SQL report that stops when the tab closes. */

#define REPORT_TAG "generate_series(1, $1::bigint) AS g) s GROUP BY"

/* Reads `fd` until `needle` has appeared or `ms` pass. */
static bool read_until(int fd, const char *needle, int ms, char *buf, size_t len)
{
    size_t got = strlen(buf);
    double start = tu_now_ms();

    while (strstr(buf, needle) == NULL) {
        int left = ms - (int)(tu_now_ms() - start);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || got + 1 >= len || poll(&p, 1, left) != 1)
            return false;
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n <= 0)
            return false;
        got += (size_t)n;
        buf[got] = '\0';
    }
    return true;
}

START_TEST(test_report_without_database_says_so)
{
    tu_sample s;

    unsetenv("PGDSN");
    tu_sample_start(&s, "report", false);
    tu_response r = tu_get(s.port, "/report");
    ck_assert_int_eq(r.status, 503);
    ck_assert_msg(strstr(r.body, "no database configured") && strstr(r.body, "PGDSN"),
                  "%s", r.body);
    tu_response_free(&r);
    /* A client's DSN may only say where to connect, never name files. */
    r = tu_get(s.port, "/report?dsn=host=/tmp%20sslkey=/etc/shadow");
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "sslkey"));
    tu_response_free(&r);
    tu_sample_stop(&s);
}
END_TEST

START_TEST(test_report_answers_buckets)
{
    tu_sample s;

    setenv("PGDSN", pgc_conninfo(cluster), 1);
    tu_sample_start(&s, "report", false);
    tu_response r = tu_get(s.port, "/report?rows=1000");
    ck_assert_int_eq(r.status, 200);
    json_t *doc = json_loads(r.body, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    json_t *b = json_object_get(doc, "buckets");
    ck_assert_int_eq(json_array_size(b), 8);
    long long sum = 0, count = 0;
    for (size_t i = 0; i < json_array_size(b); i++) {
        sum += atoll(json_string_value(json_object_get(json_array_get(b, i), "sum")));
        count += atoll(json_string_value(json_object_get(json_array_get(b, i), "count")));
    }
    ck_assert_int_eq(count, 1000);
    ck_assert_int_eq(sum, 1000LL * 1001 / 2);
    json_decref(doc);
    tu_response_free(&r);
    tu_sample_stop(&s);
    unsetenv("PGDSN");
}
END_TEST

START_TEST(test_report_stops_when_tab_closes)
{
    tu_sample s;
    PGconn *admin = connect_db();
    const char *req = "GET /report?rows=2000000000 HTTP/1.1\r\nHost: t\r\n\r\n";
    char log[8192] = "";
    double start;
    long running;

    setenv("PGDSN", pgc_conninfo(cluster), 1);
    tu_sample_start(&s, "report", true);
    int fd = tu_connect(s.port);
    ck_assert(tu_send_all(fd, req, strlen(req)));
    start = tu_now_ms();
    while ((running = count_backends(admin, "active", REPORT_TAG)) < 1 &&
           tu_now_ms() - start < HANG_MS) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(running == 1, "the report never ran");
    close(fd);
    start = tu_now_ms();
    while ((running = count_backends(admin, "active", REPORT_TAG)) > 0 &&
           tu_now_ms() - start < 1000 * scale()) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(running == 0, "the report still runs 1 s after the tab closed");
    ck_assert_msg(read_until(s.err, "query stopped on the server", HANG_MS, log,
                             sizeof log), "%s", log);
    ck_assert_msg(read_until(s.err, "s: client_gone\n", HANG_MS, log, sizeof log),
                  "%s", log);
    tu_sample_stop(&s);
    unsetenv("PGDSN");
    PQfinish(admin);
}
END_TEST

/* The cluster the suite runs against is private: no TCP listener, its
 * socket in its own directory, and queries work. */
START_TEST(test_cluster_listens_on_its_socket_only)
{
    PGconn *c = connect_db();
    char *listen = query_value(c, "SHOW listen_addresses");
    char *dirs = query_value(c, "SHOW unix_socket_directories");
    char *one = query_value(c, "SELECT 1");

    ck_assert_str_eq(listen, "");
    ck_assert_msg(strncmp(dirs, "/tmp/vg-pg-", 11) == 0, "socket dir %s", dirs);
    ck_assert_str_eq(one, "1");
    free(listen);
    free(dirs);
    free(one);
    PQfinish(c);
}
END_TEST

/* pgc_stop ends the server and removes its directory. */
START_TEST(test_cluster_stop_removes_everything)
{
    pgc_cluster *c;
    char why[512], dir[128];
    const char *host;

    ck_assert_msg(pgc_start(&c, NULL, why, sizeof why) == 0, "%s", why);
    host = strstr(pgc_conninfo(c), "host=") + 5;
    snprintf(dir, sizeof dir, "%.*s", (int)strcspn(host, " "), host);
    char *info = strdup(pgc_conninfo(c));
    struct stat st;
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(PQping(info), PQPING_OK);
    pgc_stop(c);
    ck_assert_int_ne(PQping(info), PQPING_OK);
    ck_assert_int_eq(stat(dir, &st), -1);
    ck_assert_int_eq(errno, ENOENT);
    free(info);
}
END_TEST

static Suite *pq_suite(void)
{
    Suite *s = suite_create("pq");
    TCase *tc = tcase_create("cluster");

    /* Starting a second cluster takes seconds (initdb). */
    tcase_set_timeout(tc, 120);

    tcase_add_test(tc, test_cluster_listens_on_its_socket_only);
    tcase_add_test(tc, test_cluster_stop_removes_everything);
    suite_add_tcase(s, tc);

    tc = tcase_create("exec");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_exec_variants_return_results);
    tcase_add_test(tc, test_server_error_is_a_result);
    tcase_add_test(tc, test_bad_arguments_are_einval);
    tcase_add_test(tc, test_cancelled_token_sends_nothing);
    tcase_add_test(tc, test_dead_connection_is_eio);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cancel_stops_query_on_server);
    tcase_add_test(tc, test_cancel_in_transaction_aborts_it);
    tcase_add_test(tc, test_client_leaves_query_stops);
    tcase_add_test(tc, test_deadline_cancels_query_504);
    tcase_add_test(tc, test_many_clients_leave_none_left_running);
    tcase_add_test(tc, test_late_cancel_never_hits_next_query);
    tcase_add_test(tc, test_unacknowledged_cancel_cuts_connection);
    suite_add_tcase(s, tc);

    tc = tcase_create("report");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_report_without_database_says_so);
    tcase_add_test(tc, test_report_answers_buckets);
    tcase_add_test(tc, test_report_stops_when_tab_closes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    char why[4096];
    int rc = pgc_start(&cluster, NULL, why, sizeof why);

    if (rc == 77) {
        fprintf(stderr, "SKIP test_pq: %s\n", why);
        return 77;
    }
    if (rc != 0) {
        fprintf(stderr, "test_pq: cannot start PostgreSQL: %s\n", why);
        return EXIT_FAILURE;
    }
    rc = tu_main(pq_suite());
    pgc_stop(cluster);
    return rc;
}
