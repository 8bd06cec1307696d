/* report.c - a slow SQL report whose query stops on the database server
 * when the browser tab closes (libvolga-pq).
 *
 *   PGDSN='host=/var/run/postgresql dbname=postgres' ./samples/report [address]
 *   curl 'localhost:7878/report?rows=5000000'       # buckets of a big sum
 *   curl --max-time 1 'localhost:7878/report'        # the query stops too
 *
 * The database is PGDSN, or a `dsn` query parameter ("?dsn=host=/tmp
 * dbname=postgres", or a postgres:// URI) restricted to where to connect
 * and as whom, so a client cannot make the server read files (sslkey,
 * passfile, service) it names. Without either, /report answers 503 saying
 * how to configure one. Each request opens its own connection (a real
 * service would keep a pool); the report is CPU work on the server that
 * takes seconds, and the sample logs to stderr how it ended.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <volga.h>
#include <volga-pq.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A text answer with status `code`. */
static vg_result *answer(unsigned code, const char *text)
{
    return vg_result_set_status(vg_text(text), code);
}

/* Whether a client-supplied DSN only says where to connect and as whom;
 * if not, why not, in `why`. */
static bool dsn_is_safe(const char *dsn, char *why, size_t len)
{
    static const char *const allowed[] = {"host", "hostaddr", "port", "dbname",
        "user", "password", "connect_timeout", "application_name", "sslmode", NULL};
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &err);
    bool ok = opts != NULL;

    if (opts == NULL)
        snprintf(why, len, "%s", err ? err : "out of memory");
    for (PQconninfoOption *o = opts; ok && o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        ok = false;
        for (const char *const *a = allowed; *a != NULL; a++)
            ok = ok || strcmp(o->keyword, *a) == 0;
        if (!ok)
            snprintf(why, len, "option \"%s\" is not allowed in ?dsn", o->keyword);
    }
    PQfreemem(err);
    PQconninfoFree(opts);
    return ok;
}

static vg_result *report(vg_request *req, void *arg)
{
    vg_token *tok = vg_request_token(req);
    const char *dsn = vg_request_query(req, "dsn");
    const char *rows = vg_request_query(req, "rows");
    char why[256], *end;

    (void)arg;
    if (rows == NULL)
        rows = "200000000";
    long long n = strtoll(rows, &end, 10);
    if (*end != '\0' || n < 1 || n > 2000000000LL)
        return answer(400, "rows must be a number from 1 to 2000000000\n");
    if (dsn != NULL && !dsn_is_safe(dsn, why, sizeof why))
        return vg_result_set_status(vg_textf("bad dsn: %s\n", why), 400);
    if (dsn == NULL)
        dsn = getenv("PGDSN");
    if (dsn == NULL || *dsn == '\0')
        return answer(503, "no database configured: set PGDSN for the server "
                           "or pass ?dsn=... (e.g. ?dsn=host=/tmp%20dbname=postgres)\n");

    /* The connection itself is not cancellable here (a short connect
     * timeout bounds it); the query, which is where the time goes, is. */
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {dsn, "5", "vg-report", NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        vg_result *r = vg_textf("cannot connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return vg_result_set_status(r, 502);
    }

    /* generate_series in the select list streams its rows; in FROM it
     * would be stored first, spilling big reports to temporary files. */
    const char *params[] = {rows};
    double start = now_s();
    PGresult *res = vg_pq_exec_params(conn, tok,
        "SELECT g % 8 AS bucket, count(*), sum(g) "
        "FROM (SELECT generate_series(1, $1::bigint) AS g) s GROUP BY 1 ORDER BY 1",
        1, params);
    if (res == NULL) {
        int e = errno;
        fprintf(stderr, "report: %s after %.3f s: %s\n",
                e == ECANCELED ? "query stopped on the server" : "query failed",
                now_s() - start,
                e == ECANCELED ? vg_cancel_reason_name(vg_token_reason(tok))
                               : PQerrorMessage(conn));
        PQfinish(conn);
        /* Nobody reads an answer to a cancelled request. */
        return e == ECANCELED ? NULL : answer(502, "query failed\n");
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        vg_result *r = vg_textf("query failed: %s", PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(conn);
        return vg_result_set_status(r, 502);
    }
    json_t *buckets = json_array();
    for (int i = 0; buckets != NULL && i < PQntuples(res); i++)
        json_array_append_new(buckets, json_pack("{s:s, s:s, s:s}",
            "bucket", PQgetvalue(res, i, 0), "count", PQgetvalue(res, i, 1),
            "sum", PQgetvalue(res, i, 2)));
    fprintf(stderr, "report: %lld rows in %.3f s\n", n, now_s() - start);
    PQclear(res);
    PQfinish(conn);
    if (buckets == NULL)
        return NULL;
    return vg_json(json_pack("{s:I, s:o}", "rows", (json_int_t)n, "buckets", buckets));
}

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "localhost:7878";
    vg_app *app = vg_app_new(address);
    int rc;

    if (app == NULL) {
        perror("vg_app_new");
        return 1;
    }
    vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_INFO);
    if (vg_map_get(app, "/report", report, NULL) != 0) {
        vg_app_free(app);
        return 1;
    }
    if (getenv("PGDSN") == NULL || *getenv("PGDSN") == '\0')
        fprintf(stderr, "report: PGDSN is not set: /report needs ?dsn=... "
                        "(or answers 503)\n");
    rc = vg_app_start(app);
    if (rc != 0) {
        fprintf(stderr, "report: cannot start on %s: %s\n", address, strerror(-rc));
        vg_app_free(app);
        return 1;
    }
    printf("report: listening on port %u\n", (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app);
    vg_app_free(app);
    return rc == 0 ? 0 : 1;
}
