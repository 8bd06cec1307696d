/*
 * pq_cancel.c - what libvolga-pq saves the database when clients leave.
 *
 *   bench/pq_cancel [--aborts N] [--go PATH] [--burn-clients K]
 *                   [--burn-rounds R] [--burn-seconds S] [--hangup-ms MS]
 *
 * Starts a private PostgreSQL cluster (tests/pgcluster.c: a temporary
 * directory, Unix socket only, removed at the end), a libvolga app on
 * 127.0.0.1:0 and, with --go, the anchor bench/peers/pq_sleep (Go's
 * net/http + database/sql + lib/pq, QueryContext with r.Context()), then:
 *
 * 1. Client leaves -> backend idle. N times per server, alternating
 *    (libvolga as configured by default, libvolga with SCHED_BATCH off,
 *    the Go anchor): a
 *    client asks for SELECT pg_sleep(30), the bench waits until the query
 *    runs (pg_stat_activity), closes the connection and times how long the
 *    backend stays active. pg_stat_activity has no notification, so it is
 *    read in a loop (one query every 0.5 ms): the times include up to
 *    ~1 ms of looking. p50/p90/p99/max; goal p99 <= 20 ms, libvolga ahead.
 *    A Go query that ends before its client left (a late cancel from the
 *    previous request hitting it: lib/pq#1001) is counted, not timed.
 *
 * 2. Database CPU on abandoned work. K clients ask for a CPU-bound query
 *    calibrated to S seconds (a sum over generate_series in the select
 *    list, so that nothing is materialised or spilled) and hang up after
 *    MS ms; the CPU the database server spent (utime+stime of the
 *    postmaster and all its children, live or reaped, from /proc) is
 *    summed once the queries are over. Modes: libvolga with the request's token
 *    ("cancel"), libvolga passing no token ("ignore": what a plain PQexec
 *    does), and the Go anchor. Goal: cancel <= 10% of ignore.
 *
 * Everything is on loopback or Unix sockets and bounded in time.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <volga.h>

#include "pgcluster.h"
#include "volga-pq.h"

#define POOL_MAX 64
#define GO_SLEEP_TAG "vg-bench-go"
#define VOLGA_SLEEP_TAG "vg-bench-volga"
#define BURN_TAG "vg-bench-burn"

static pgc_cluster *cluster;
static PGconn *admin;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (long)(ms / 1000) * 1000) * 1e6)};
    nanosleep(&ts, NULL);
}

static void die(const char *what)
{
    fprintf(stderr, "pq_cancel: %s\n", what);
    pgc_stop(cluster);
    exit(1);
}

/* ------------------------------------------------------------------------ */
/* The libvolga server: a pool of connections, as database/sql keeps one. */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    PGconn *free[POOL_MAX];
    int nfree;
    PGconn *all[POOL_MAX];
    int nall;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, {0}, 0};

static PGconn *pool_take(void)
{
    PGconn *c;

    pthread_mutex_lock(&pool.lock);
    while (pool.nfree == 0)
        pthread_cond_wait(&pool.cond, &pool.lock);
    c = pool.free[--pool.nfree];
    pthread_mutex_unlock(&pool.lock);
    return c;
}

static void pool_give(PGconn *c)
{
    pthread_mutex_lock(&pool.lock);
    pool.free[pool.nfree++] = c;
    pthread_cond_signal(&pool.cond);
    pthread_mutex_unlock(&pool.lock);
}

static vg_result *run_query(vg_request *req, vg_token *tok, const char *sql,
                            const char *param)
{
    PGconn *c = pool_take();
    const char *vals[1] = {param};
    PGresult *r = vg_pq_exec_params(c, tok, sql, param ? 1 : 0, param ? vals : NULL);
    bool ok = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK;

    PQclear(r);
    pool_give(c);
    (void)req;
    return ok ? vg_text("done\n") : vg_status(500);
}

static vg_result *sleep_handler(vg_request *req, void *arg)
{
    (void)arg;
    return run_query(req, vg_request_token(req),
                     "SELECT pg_sleep(30) /* " VOLGA_SLEEP_TAG " */", NULL);
}

/* arg != NULL: pass the request's token; NULL: ignore it. */
static vg_result *burn_handler(vg_request *req, void *arg)
{
    return run_query(req, arg ? vg_request_token(req) : NULL,
                     "SELECT sum(g) /* " BURN_TAG " */ FROM (SELECT generate_series(1, $1::bigint) g) s",
                     vg_request_query(req, "rows"));
}

/* ------------------------------------------------------------------------ */
/* The Go anchor, a child process. */

static pid_t go_start(const char *path, unsigned short *port)
{
    int out[2];
    char dsn[256], buf[256] = "";
    size_t got = 0;
    pid_t parent = getpid(), pid;

    snprintf(dsn, sizeof dsn, "%s sslmode=disable", pgc_conninfo(cluster));
    if (pipe(out) != 0)
        return -1;
    if ((pid = fork()) == 0) {
        dup2(out[1], 1);
        close(out[0]);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(126);
        execl(path, path, dsn, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    while (pid > 0 && strstr(buf, "port ") == NULL) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        ssize_t n;
        if (poll(&p, 1, 10000) != 1 || (n = read(out[0], buf + got, sizeof buf - 1 - got)) <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(out[0]);
            return -1;
        }
        got += (size_t)n;
        buf[got] = '\0';
    }
    close(out[0]);
    *port = (unsigned short)atoi(strstr(buf, "port ") + 5);
    return pid;
}

/* ------------------------------------------------------------------------ */
/* Clients and what the server shows. */

static int client_send(unsigned short port, const char *path)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    char req[256];

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("cannot connect to the server under test");
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n)
        die("cannot send the request");
    return fd;
}

/* The pid of the one active backend running a query tagged `tag`, or 0. */
static int active_backend(const char *tag)
{
    const char *v[1] = {tag};
    PGresult *r = PQexecParams(admin,
        "SELECT pid FROM pg_stat_activity WHERE state = 'active' "
        "AND pid <> pg_backend_pid() AND strpos(query, $1) > 0", 1, NULL, v, NULL, NULL, 0);
    int pid = 0;

    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        pid = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return pid;
}

static long count_active(const char *tag)
{
    const char *v[1] = {tag};
    PGresult *r = PQexecParams(admin,
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        "AND pid <> pg_backend_pid() AND strpos(query, $1) > 0", 1, NULL, v, NULL, NULL, 0);
    long n = PQresultStatus(r) == PGRES_TUPLES_OK ? atol(PQgetvalue(r, 0, 0)) : -1;

    PQclear(r);
    return n;
}

static bool backend_active(int pid)
{
    char p[16];
    const char *v[1] = {p};
    PGresult *r;
    bool active;

    snprintf(p, sizeof p, "%d", pid);
    r = PQexecParams(admin, "SELECT state = 'active' FROM pg_stat_activity WHERE pid = $1",
                     1, NULL, v, NULL, NULL, 0);
    active = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
             strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return active;
}

/* One abort: ms from the client's close to its backend no longer active;
 * -1 when the query ended before the client left (counted apart); dies
 * after 10 s. */
static double one_abort(unsigned short port, const char *tag)
{
    int fd = client_send(port, "/sleep"), pid = 0;
    double start = now_ms();

    while ((pid = active_backend(tag)) == 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) == 1) {
            close(fd);
            return -1;
        }
        if (now_ms() - start > 10000)
            die("the query never ran");
        sleep_ms(0.5);
    }
    double t0 = now_ms();
    close(fd);
    while (backend_active(pid)) {
        if (now_ms() - t0 > 10000)
            die("a backend kept running 10 s after its client left");
        sleep_ms(0.5);
    }
    return now_ms() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* ------------------------------------------------------------------------ */
/* CPU of the backends. */

/* utime+stime of `pid` in seconds, plus its reaped children's (cutime+
 * cstime) if `children`; *ppid set when not NULL. 0 if it is gone. */
static double proc_cpu_s(int pid, bool children, int *ppid)
{
    char path[64], buf[1024];
    unsigned long ut = 0, st = 0;
    long cut = 0, cst = 0;
    int pp = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    /* After the command: state, ppid, 4 ids, flags, 4 fault counts, then
     * utime, stime, cutime, cstime (proc(5)). */
    if (p == NULL || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld",
                            &pp, &ut, &st, &cut, &cst) != 5)
        return 0;
    if (ppid != NULL)
        *ppid = pp;
    return (double)(ut + st + (children ? (unsigned long)(cut + cst) : 0)) /
           (double)sysconf(_SC_CLK_TCK);
}

/* CPU of the whole database server: the postmaster and every child of
 * it (backends, background processes), plus the children it has already
 * reaped (cutime+cstime), so that a backend whose connection was closed,
 * and which exited, still counts. A zombie's times are still in its stat
 * file until it is reaped. */
static double all_backends_cpu_s(void)
{
    char path[96], buf[16384];
    int postmaster = 0;
    double s;
    FILE *f;

    proc_cpu_s(PQbackendPID(admin), false, &postmaster);
    if (postmaster <= 1)
        die("cannot find the postmaster");
    s = proc_cpu_s(postmaster, true, NULL);
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", postmaster, postmaster);
    if ((f = fopen(path, "r")) == NULL)
        die("no /proc/PID/task/PID/children (CONFIG_PROC_CHILDREN)");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (char *p = strtok(buf, " \n"); p != NULL; p = strtok(NULL, " \n"))
        s += proc_cpu_s(atoi(p), false, NULL);
    return s;
}

/* K clients start the burn and hang up after hangup_ms; returns the CPU
 * seconds the backends spent until every one is idle again. */
static double burn_round(unsigned short port, const char *path, int k, double hangup_ms)
{
    int fds[POOL_MAX];
    double before = all_backends_cpu_s(), start;

    for (int i = 0; i < k; i++)
        fds[i] = client_send(port, path);
    sleep_ms(hangup_ms);
    for (int i = 0; i < k; i++)
        close(fds[i]);
    start = now_ms();
    /* Let the last queries appear before waiting for none. */
    sleep_ms(5);
    while (count_active(BURN_TAG) > 0) {
        if (now_ms() - start > 120000)
            die("burn queries still running after 120 s");
        sleep_ms(5);
    }
    double cpu = all_backends_cpu_s() - before;
    if (getenv("PQ_CANCEL_VERBOSE") != NULL)
        fprintf(stderr, "  round %s: %.2f s CPU, idle after %.0f ms\n", path, cpu,
                now_ms() - start + hangup_ms);
    return cpu;
}

/* Rows of generate_series that one backend sums in about `seconds` of
 * CPU (clock ticks are 10 ms: the last try takes a second or more). */
static long long calibrate_rows(double seconds)
{
    long long rows = 2000000;
    char sql[160];

    for (int i = 0; i < 6; i++) {
        snprintf(sql, sizeof sql, "SELECT sum(g) FROM (SELECT generate_series(1, %lld) g) s", rows);
        /* CPU, not wall time: the machine may be busy. */
        double c0 = proc_cpu_s(PQbackendPID(admin), false, NULL);
        PQclear(PQexec(admin, sql));
        double took = proc_cpu_s(PQbackendPID(admin), false, NULL) - c0;
        if (took > 0.5 * seconds || (i == 5 && took > 0))
            return (long long)(rows * seconds / took);
        rows *= 2;
    }
    return rows;
}

int main(int argc, char **argv)
{
    int aborts = 200, burn_clients = 6, burn_rounds = 2;
    double burn_seconds = 2, hangup_ms = 100;
    const char *go = NULL;
    char why[4096];

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--aborts") == 0) aborts = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--go") == 0) go = argv[i + 1];
        else if (strcmp(argv[i], "--burn-clients") == 0) burn_clients = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--burn-rounds") == 0) burn_rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--burn-seconds") == 0) burn_seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--hangup-ms") == 0) hangup_ms = atof(argv[i + 1]);
        else {
            fprintf(stderr, "pq_cancel: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (aborts < 1 || burn_clients < 1 || burn_clients > POOL_MAX - 8 || burn_rounds < 1) {
        fprintf(stderr, "pq_cancel: bad counts\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* One process per query: parallel workers would hide CPU elsewhere. */
    const char *settings[] = {"max_parallel_workers_per_gather=0", NULL};
    int rc = pgc_start(&cluster, settings, why, sizeof why);
    if (rc == 77) {
        printf("pq_cancel: SKIP: %s\n", why);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "pq_cancel: %s\n", why);
        return 1;
    }
    admin = PQconnectdb(pgc_conninfo(cluster));
    if (PQstatus(admin) != CONNECTION_OK)
        die("cannot connect");
    int npool = burn_clients + 4;
    for (int i = 0; i < npool; i++) {
        PGconn *c = PQconnectdb(pgc_conninfo(cluster));
        if (PQstatus(c) != CONNECTION_OK)
            die("cannot fill the pool");
        pool.all[pool.nall++] = c;
        pool_give(c);
    }
    vg_app *app = vg_app_new("127.0.0.1:0");
    int on = 1;
    if (app == NULL || vg_app_set_workers(app, (unsigned)npool + 8) != 0 ||
        vg_map_get(app, "/sleep", sleep_handler, NULL) != 0 ||
        vg_map_get(app, "/burn", burn_handler, &on) != 0 ||
        vg_map_get(app, "/burn-ignore", burn_handler, NULL) != 0 ||
        vg_app_start(app) != 0)
        die("cannot start the libvolga app");
    /* The same app with its threads under SCHED_OTHER: on a busy machine
     * SCHED_BATCH can delay noticing the client by a time slice. */
    vg_app *app2 = vg_app_new("127.0.0.1:0");
    if (app2 == NULL || vg_app_set_workers(app2, (unsigned)npool + 8) != 0 ||
        vg_app_set_batch_scheduling(app2, false) != 0 ||
        vg_map_get(app2, "/sleep", sleep_handler, NULL) != 0 ||
        vg_app_start(app2) != 0)
        die("cannot start the second libvolga app");
    unsigned short vport = vg_app_port(app), v2port = vg_app_port(app2), gport = 0;
    pid_t gpid = -1;
    if (go != NULL && (gpid = go_start(go, &gport)) < 0)
        die("cannot start the Go anchor");

    /* 1. Client leaves -> backend idle. */
    double *vt = calloc((size_t)aborts, sizeof *vt), *gt = calloc((size_t)aborts, sizeof *gt);
    double *ot = calloc((size_t)aborts, sizeof *ot);
    int nv = 0, no = 0, ng = 0, go_early = 0;
    for (int i = 0; i < aborts; i++) {
        double t = one_abort(vport, VOLGA_SLEEP_TAG);
        if (t < 0)
            die("a libvolga query ended before its client left");
        vt[nv++] = t;
        if ((t = one_abort(v2port, VOLGA_SLEEP_TAG)) < 0)
            die("a libvolga query ended before its client left");
        ot[no++] = t;
        if (gpid > 0) {
            t = one_abort(gport, GO_SLEEP_TAG);
            if (t < 0)
                go_early++;
            else
                gt[ng++] = t;
        }
    }
    qsort(vt, (size_t)nv, sizeof *vt, cmp_double);
    qsort(ot, (size_t)no, sizeof *ot, cmp_double);
    qsort(gt, (size_t)ng, sizeof *gt, cmp_double);
    printf("client leaves -> backend idle (ms; %d aborts each, alternating; "
           "pg_stat_activity read every 0.5 ms)\n", aborts);
    printf("  %-26s %7s %7s %7s %7s\n", "server", "p50", "p90", "p99", "max");
    printf("  %-26s %7.2f %7.2f %7.2f %7.2f\n", "libvolga + libvolga-pq",
           pct(vt, nv, .5), pct(vt, nv, .9), pct(vt, nv, .99), vt[nv - 1]);
    printf("  %-26s %7.2f %7.2f %7.2f %7.2f\n", "  the same, no SCHED_BATCH",
           pct(ot, no, .5), pct(ot, no, .9), pct(ot, no, .99), ot[no - 1]);
    if (ng > 0)
        printf("  %-26s %7.2f %7.2f %7.2f %7.2f\n", "Go net/http + lib/pq",
               pct(gt, ng, .5), pct(gt, ng, .9), pct(gt, ng, .99), gt[ng - 1]);
    if (gpid > 0)
        printf("  Go queries that ended before their client left: %d of %d\n",
               go_early, aborts);
    printf("  goal p99 <= 20 ms: %s", pct(vt, nv, .99) <= 20 ? "met" : "MISSED");
    if (ng > 0)
        printf("; libvolga ahead of Go at p99: %s",
               pct(vt, nv, .99) < pct(gt, ng, .99) ? "yes" : "NO");
    printf("\n");

    /* 2. Database CPU on abandoned work. */
    long long rows = calibrate_rows(burn_seconds);
    char vpath[64], ipath[64];
    snprintf(vpath, sizeof vpath, "/burn?rows=%lld", rows);
    snprintf(ipath, sizeof ipath, "/burn-ignore?rows=%lld", rows);
    double cpu_cancel = 0, cpu_ignore = 0, cpu_go = 0;
    for (int r = 0; r < burn_rounds; r++) {
        cpu_cancel += burn_round(vport, vpath, burn_clients, hangup_ms);
        cpu_ignore += burn_round(vport, ipath, burn_clients, hangup_ms);
        if (gpid > 0)
            cpu_go += burn_round(gport, vpath, burn_clients, hangup_ms);
    }
    int n = burn_rounds * burn_clients;
    printf("database CPU on abandoned queries (%d queries of ~%.1f s CPU each, "
           "%lld rows; clients hang up after %.0f ms)\n", n, burn_seconds, rows, hangup_ms);
    printf("  %-34s %8.2f s  (%.3f s per query)\n", "libvolga-pq, request token", cpu_cancel,
           cpu_cancel / n);
    printf("  %-34s %8.2f s  (%.3f s per query)\n", "same query, no token (PQexec)", cpu_ignore,
           cpu_ignore / n);
    if (gpid > 0)
        printf("  %-34s %8.2f s  (%.3f s per query)\n", "Go lib/pq QueryContext", cpu_go,
               cpu_go / n);
    printf("  cancel / ignore: %.1f%% (goal <= 10%%): %s\n", 100 * cpu_cancel / cpu_ignore,
           cpu_cancel <= 0.10 * cpu_ignore ? "met" : "MISSED");

    if (gpid > 0) {
        kill(gpid, SIGTERM);
        waitpid(gpid, NULL, 0);
    }
    vg_app_free(app);
    vg_app_free(app2);
    for (int i = 0; i < pool.nall; i++)
        PQfinish(pool.all[i]);
    PQfinish(admin);
    pgc_stop(cluster);
    free(vt);
    free(gt);
    free(ot);
    return 0;
}
