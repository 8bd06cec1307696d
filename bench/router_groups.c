/* router_groups.c - what route groups cost at match time: the same 1,000
 * routes mapped flat with vg_map and through 55 groups (5 top groups, each
 * with 10 nested ones holding 20 routes), looked up in alternating rounds.
 * Groups join their prefix into the one router, so both must cost the same.
 *
 * Usage: router_groups [--rounds N] [--lookups N]
 * Prints ns per lookup for each round and the medians. No sockets.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "core/router.h"

#define TOPS 5
#define SUBS 10
#define LEAVES 20
#define NROUTES (TOPS * SUBS * LEAVES)

static vg_result *handler(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return NULL;
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static vg_app *flat_app(void)
{
    vg_app *app = vg_app_new("127.0.0.1:0");
    char pattern[128];
    int t, s, l;

    for (t = 0; t < TOPS; t++)
        for (s = 0; s < SUBS; s++)
            for (l = 0; l < LEAVES; l++) {
                snprintf(pattern, sizeof pattern,
                         "/api%d/svc%d/items%d/{id}", t, s, l);
                if (vg_map_get(app, pattern, handler, NULL) != 0)
                    exit(1);
            }
    return app;
}

static vg_app *grouped_app(void)
{
    vg_app *app = vg_app_new("127.0.0.1:0");
    char prefix[64], pattern[64];
    int t, s, l;

    for (t = 0; t < TOPS; t++) {
        snprintf(prefix, sizeof prefix, "/api%d", t);
        vg_group *top = vg_app_group(app, prefix);
        for (s = 0; s < SUBS; s++) {
            snprintf(prefix, sizeof prefix, "/svc%d", s);
            vg_group *sub = vg_group_group(top, prefix);
            for (l = 0; l < LEAVES; l++) {
                snprintf(pattern, sizeof pattern, "/items%d/{id}", l);
                if (sub == NULL ||
                    vg_group_map_get(sub, pattern, handler, NULL) != 0)
                    exit(1);
            }
        }
    }
    return app;
}

/* The decoded segments of one path per route, plus misses. */
typedef struct {
    char *segs[4];
} path;

static path *paths_new(void)
{
    path *p = calloc(NROUTES, sizeof *p);
    int i;

    for (i = 0; i < NROUTES; i++) {
        int t = i / (SUBS * LEAVES), s = (i / LEAVES) % SUBS, l = i % LEAVES;
        if (asprintf(&p[i].segs[0], "api%d", t) < 0 ||
            asprintf(&p[i].segs[1], "svc%d", s) < 0 ||
            asprintf(&p[i].segs[2], "items%d", l) < 0 ||
            asprintf(&p[i].segs[3], "%d", i) < 0)
            exit(1);
    }
    return p;
}

/* ns per lookup over `n` lookups spread over every route. */
static double measure(const vg_app *app, const path *p, long n)
{
    vg__match m;
    double start = now_ns();
    long i, found = 0;

    for (i = 0; i < n; i++) {
        const path *q = &p[(i * 7919) % NROUTES];
        found += vg__router_match(app->router, "GET",
                                  (const char *const *)q->segs, 4, &m) ==
                 VG__MATCH_FOUND;
    }
    if (found != n) {
        fprintf(stderr, "router_groups: %ld of %ld lookups failed\n",
                n - found, n);
        exit(1);
    }
    return (now_ns() - start) / (double)n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long rounds = 11, lookups = 2000000, r;
    vg_app *flat, *grouped;
    path *p;
    double *f, *g;
    int i;

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0)
            rounds = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--lookups") == 0)
            lookups = strtol(argv[i + 1], NULL, 10);
    }
    if (rounds < 1 || lookups < 1) {
        fprintf(stderr, "usage: router_groups [--rounds N] [--lookups N]\n");
        return 2;
    }
    flat = flat_app();
    grouped = grouped_app();
    p = paths_new();
    f = calloc((size_t)rounds, sizeof *f);
    g = calloc((size_t)rounds, sizeof *g);
    measure(flat, p, lookups / 10); /* warm both */
    measure(grouped, p, lookups / 10);
    for (r = 0; r < rounds; r++) {
        /* Alternate which goes first, so drift favours neither. */
        if (r % 2 == 0) {
            f[r] = measure(flat, p, lookups);
            g[r] = measure(grouped, p, lookups);
        } else {
            g[r] = measure(grouped, p, lookups);
            f[r] = measure(flat, p, lookups);
        }
        printf("round %ld: flat %.1f ns/lookup, groups %.1f ns/lookup\n", r + 1,
               f[r], g[r]);
    }
    qsort(f, (size_t)rounds, sizeof *f, cmp);
    qsort(g, (size_t)rounds, sizeof *g, cmp);
    printf("median: flat %.1f ns, 55 groups %.1f ns (%d routes; ratio %.3f)\n",
           f[rounds / 2], g[rounds / 2], NROUTES, g[rounds / 2] / f[rounds / 2]);
    for (i = 0; i < NROUTES; i++) {
        free(p[i].segs[0]);
        free(p[i].segs[1]);
        free(p[i].segs[2]);
        free(p[i].segs[3]);
    }
    free(p);
    free(f);
    free(g);
    vg_app_free(flat);
    vg_app_free(grouped);
    return 0;
}
