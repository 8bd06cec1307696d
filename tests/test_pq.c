/*
 * test_pq.c - libvolga-pq against a real PostgreSQL server: a private
 * cluster (tests/pgcluster.c) started once for the whole suite, in a
 * temporary directory, listening on a Unix socket only.
 *
 * Without a PostgreSQL server the suite is skipped (exit 77) with a message.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgcluster.h"
#include "testutil.h"

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

    tcase_add_test(tc, test_cluster_listens_on_its_socket_only);
    tcase_add_test(tc, test_cluster_stop_removes_everything);
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
