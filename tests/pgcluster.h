/* pgcluster.h - a private PostgreSQL cluster for tests and benchmarks:
 * initdb in a fresh temporary directory, the server started on a Unix
 * socket in that directory (no TCP listener at all), removed at the end.
 *
 * initdb and postgres refuse to run as root, so when the caller is root the
 * cluster runs as the system user "postgres" (which Debian's postgresql
 * package creates); otherwise as the caller. The server is a child of the
 * calling thread and is killed if that thread dies first, so a test that
 * crashes leaves no server behind (its directory may stay). */
#ifndef VG_PGCLUSTER_H
#define VG_PGCLUSTER_H

#include <stddef.h>

typedef struct pgc_cluster pgc_cluster;

/* Creates and starts a cluster and waits (up to 60 s x VG_TIME_SCALE) until
 * it accepts connections. Returns 0 with *out set; 77 (the automake SKIP
 * code) when no PostgreSQL server is installed or there is no unprivileged
 * user to run it as; -1 on any other failure. On 77 and -1 a sentence
 * saying why is in `why`. Extra server settings ("name=value", NULL-ended,
 * may be NULL) go on the server's command line as -c options. */
int pgc_start(pgc_cluster **out, const char *const *settings, char *why,
              size_t why_len);

/* A libpq connection string for the cluster's "postgres" database as its
 * superuser; owned by the cluster. */
const char *pgc_conninfo(const pgc_cluster *c);

/* The server's log so far (malloc'd, NUL-terminated, at most the last 8 KiB;
 * NULL if unreadable), for failure messages. */
char *pgc_log_tail(const pgc_cluster *c);

/* Stops the server (fast shutdown, SIGKILL after 10 s), removes the
 * directory and frees `c`. NULL is a no-op. */
void pgc_stop(pgc_cluster *c);

#endif
