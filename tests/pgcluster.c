/*
 * pgcluster.c - a private PostgreSQL cluster in a temporary directory, for
 * the tests and benchmarks of libvolga-pq (see pgcluster.h).
 *
 * The server is started as `postgres` itself rather than through
 * `pg_ctl start`: pg_ctl daemonises the server, so a test that crashed would
 * leave it running; as our own child it gets PR_SET_PDEATHSIG and dies with
 * us. Readiness is asked with PQping, the libpq call made for that (the
 * server has no readiness notification a client could wait on), every 10 ms.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "pgcluster.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct pgc_cluster {
    char dir[64];            /* the temporary directory: socket and log */
    char data[96];           /* dir/data */
    char log[96];            /* dir/server.log */
    char conninfo[160];
    pid_t pid;               /* the postmaster */
};

static void say(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double time_scale(void)
{
    const char *s = getenv("VG_TIME_SCALE");
    double v = s ? atof(s) : 1.0;

    return v >= 1.0 ? v : 1.0;
}

/* The bin directory of the newest installed server: PG_BINDIR if set, else
 * the highest /usr/lib/postgresql/N/bin that has a postgres binary. */
static int find_bindir(char *out, size_t len)
{
    const char *env = getenv("PG_BINDIR");
    glob_t g;
    long best = -1;

    if (env != NULL && *env != '\0') {
        snprintf(out, len, "%s", env);
        return 0;
    }
    if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0)
        return -1;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        long v = strtol(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"), NULL, 10);
        if (v > best && access(g.gl_pathv[i], X_OK) == 0) {
            best = v;
            snprintf(out, len, "/usr/lib/postgresql/%ld/bin", v);
        }
    }
    globfree(&g);
    return best < 0 ? -1 : 0;
}

/* Forks `argv` with stdout and stderr on `log_fd`, as `pw` when that is not
 * NULL (root dropping to the postgres user), dying with the caller. */
static pid_t spawn_as(const struct passwd *pw, char *const argv[], int log_fd,
                      const char *cwd)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
        dup2(null, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    if (pw != NULL) {
        if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
            setuid(pw->pw_uid) != 0)
            _exit(126);
        setenv("HOME", pw->pw_dir, 1);
        setenv("USER", pw->pw_name, 1);
    }
    /* After setuid: a credential change clears the parent-death signal. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(126);
    if (chdir(cwd) != 0)
        _exit(126);
    setenv("LC_ALL", "C", 1);
    unsetenv("PGDATA");
    execv(argv[0], argv);
    _exit(127);
}

/* Reaps `pid` if it exits within `ms`: 0, else -1. Waits on a pidfd, which
 * becomes readable when the process exits. */
static int wait_child(pid_t pid, double ms, int *status)
{
    static bool no_pidfd;   /* ENOSYS once (old kernel, valgrind): never again */
    double end = now_ms() + ms;
    int pfd = no_pidfd ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);

    if (pfd < 0 && errno == ENOSYS)
        no_pidfd = true;

    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR) || now_ms() > end) {
            if (pfd >= 0)
                close(pfd);
            return r == pid ? 0 : -1;
        }
        int left = (int)(end - now_ms()) + 1;
        if (pfd >= 0) {
            struct pollfd p = {.fd = pfd, .events = POLLIN};
            poll(&p, 1, left);
        } else {
            /* Kernels before 5.3 have no pidfd: look every 5 ms. */
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

static void remove_tree(const char *path)
{
    pid_t pid = fork();

    /* rm -rf is what removing a cluster's many files takes; nftw would do
     * the same in more lines. */
    if (pid == 0) {
        execl("/bin/rm", "rm", "-rf", "--", path, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) {
        int st;
        waitpid(pid, &st, 0);
    }
}

char *pgc_log_tail(const pgc_cluster *c)
{
    FILE *f = fopen(c->log, "r");
    char *buf;
    size_t n;

    if (f == NULL)
        return NULL;
    if (fseek(f, -8192, SEEK_END) != 0)
        rewind(f);
    buf = malloc(8193);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, 8192, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int fail(pgc_cluster *c, char *why, size_t len, const char *what)
{
    char *tail = pgc_log_tail(c);

    say(why, len, "%s; server log:\n%s", what, tail ? tail : "(none)");
    free(tail);
    if (c->pid > 0) {
        int st;
        kill(c->pid, SIGKILL);
        waitpid(c->pid, &st, 0);
    }
    remove_tree(c->dir);
    free(c);
    return -1;
}

int pgc_start(pgc_cluster **out, const char *const *settings, char *why,
              size_t why_len)
{
    char bindir[PATH_MAX], initdb[PATH_MAX + 16], postgres[PATH_MAX + 16];
    const struct passwd *pw = NULL;
    pgc_cluster *c;
    int log_fd, st;

    *out = NULL;
    if (find_bindir(bindir, sizeof bindir) != 0) {
        say(why, why_len, "no PostgreSQL server installed "
            "(/usr/lib/postgresql/*/bin/postgres; apt-get install postgresql)");
        return 77;
    }
    snprintf(initdb, sizeof initdb, "%s/initdb", bindir);
    snprintf(postgres, sizeof postgres, "%s/postgres", bindir);
    if (access(initdb, X_OK) != 0 || access(postgres, X_OK) != 0) {
        say(why, why_len, "%s lacks initdb or postgres", bindir);
        return 77;
    }
    if (geteuid() == 0 && (pw = getpwnam("postgres")) == NULL) {
        say(why, why_len, "running as root and there is no user \"postgres\" "
            "to run the server as (initdb refuses root)");
        return 77;
    }
    if ((c = calloc(1, sizeof *c)) == NULL) {
        say(why, why_len, "out of memory");
        return -1;
    }
    /* /tmp rather than TMPDIR: the socket's path must fit sun_path. */
    snprintf(c->dir, sizeof c->dir, "/tmp/vg-pg-XXXXXX");
    if (mkdtemp(c->dir) == NULL) {
        say(why, why_len, "mkdtemp: %s", strerror(errno));
        free(c);
        return -1;
    }
    snprintf(c->data, sizeof c->data, "%s/data", c->dir);
    snprintf(c->log, sizeof c->log, "%s/server.log", c->dir);
    snprintf(c->conninfo, sizeof c->conninfo,
             "host=%s dbname=postgres user=postgres connect_timeout=10", c->dir);
    if (pw != NULL && chown(c->dir, pw->pw_uid, pw->pw_gid) != 0)
        return fail(c, why, why_len, "chown of the cluster directory failed");
    log_fd = open(c->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0)
        return fail(c, why, why_len, "cannot create the server log");

    char *init_argv[] = {initdb, "-D", c->data, "-U", "postgres", "-A", "trust",
                         "-E", "UTF8", "--locale=C", "--no-sync", NULL};
    pid_t pid = spawn_as(pw, init_argv, log_fd, c->dir);
    if (pid < 0 || wait_child(pid, 120e3 * time_scale(), &st) != 0 ||
        !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        close(log_fd);
        return fail(c, why, why_len, "initdb failed");
    }

    /* No TCP listener, the socket in our directory; fsync off: the cluster
     * is thrown away. Enough connections for the concurrency tests. */
    char *argv[64];
    int n = 0;
    argv[n++] = postgres;
    argv[n++] = "-D";
    argv[n++] = c->data;
    argv[n++] = "-k";
    argv[n++] = c->dir;
    const char *base[] = {"listen_addresses=", "fsync=off", "max_connections=250",
                          "shared_buffers=32MB", "unix_socket_permissions=0777",
                          NULL};
    for (const char *const *s = base; *s; s++) {
        argv[n++] = "-c";
        argv[n++] = (char *)*s;
    }
    for (const char *const *s = settings; s && *s && n < 60; s++) {
        argv[n++] = "-c";
        argv[n++] = (char *)*s;
    }
    argv[n] = NULL;
    c->pid = spawn_as(pw, argv, log_fd, c->dir);
    close(log_fd);
    if (c->pid < 0)
        return fail(c, why, why_len, "fork of postgres failed");

    double end = now_ms() + 60e3 * time_scale();
    while (PQping(c->conninfo) != PQPING_OK) {
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
            c->pid = 0;
            return fail(c, why, why_len, "postgres exited at start");
        }
        if (now_ms() > end)
            return fail(c, why, why_len, "postgres did not accept connections in time");
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    *out = c;
    return 0;
}

const char *pgc_conninfo(const pgc_cluster *c)
{
    return c->conninfo;
}

void pgc_stop(pgc_cluster *c)
{
    int st;

    if (c == NULL)
        return;
    if (c->pid > 0) {
        /* SIGINT: fast shutdown, open sessions are ended. */
        kill(c->pid, SIGINT);
        if (wait_child(c->pid, 10e3 * time_scale(), &st) != 0) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
        }
    }
    remove_tree(c->dir);
    free(c);
}
