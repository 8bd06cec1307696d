/* metrics.c - Prometheus metrics in the text exposition format (version
 * 0.0.4): what the app does (requests by method, route pattern and status,
 * a duration histogram, cancellations by reason, load gauges) and the
 * application's own counters, gauges and histograms.
 *
 * Requests are counted by a completion hook, on the event threads, several
 * at once, so every update is lock-free: the request series live in a
 * fixed open-addressed table whose slots are claimed with one
 * compare-and-swap on a 64-bit key packing the route pattern's address
 * (a string the app keeps until vg_app_free, bounded in number by its
 * routes), the method's index in a fixed list and the status. A series
 * never moves or disappears, so a scrape reads the table without a lock
 * and sees each counter as some moment's value. When the table is full
 * (more combinations than slots) requests are counted in one overflow
 * series rather than growing memory. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <volga.h>

/* Request series (method x route x status) the table holds. */
#define VG__MX_SERIES 4096
#define VG__MX_MAX_BUCKETS 64

static const char *const vg__mx_methods[] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
};
#define VG__MX_NMETHODS (sizeof vg__mx_methods / sizeof vg__mx_methods[0])

/* The default duration buckets, in seconds (Prometheus client libraries'
 * defaults, with 1 ms and 2.5 ms added: this library answers in µs). */
static const double vg__mx_duration_bounds[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
    5, 10,
};

typedef enum { VG__MX_COUNTER, VG__MX_GAUGE, VG__MX_HISTOGRAM } vg__mx_kind;

struct vg_histogram {
    size_t nb;
    double bounds[VG__MX_MAX_BUCKETS];
    atomic_ullong counts[VG__MX_MAX_BUCKETS + 1]; /* the last: above all */
    atomic_uint_least64_t sum;                    /* a double's bits */
};

struct vg_counter {
    atomic_ullong value;
};

struct vg_gauge {
    atomic_uint_least64_t bits; /* a double's bits */
};

/* A user metric, in registration order. */
typedef struct vg__mx_user {
    struct vg__mx_user *next;
    vg__mx_kind kind;
    char *name, *help;
    union {
        struct vg_counter counter;
        struct vg_gauge gauge;
        struct vg_histogram hist;
    } u;
} vg__mx_user;

typedef struct {
    atomic_uint_least64_t key; /* 0: free */
    atomic_ullong count;
} vg__mx_series;

struct vg_metrics {
    const vg_app *app;          /* set when attached */
    char *prefix;               /* "volga" */
    vg__mx_series series[VG__MX_SERIES];
    atomic_ullong overflow;     /* requests past a full table */
    struct vg_histogram duration;
    pthread_mutex_t lock;       /* the user list; never on an update */
    vg__mx_user *users, **tail;
};

/* ---- Doubles updated without a lock ---- */

static uint64_t vg__mx_bits(double v)
{
    uint64_t b;

    memcpy(&b, &v, sizeof b);
    return b;
}

static double vg__mx_double(uint64_t b)
{
    double v;

    memcpy(&v, &b, sizeof v);
    return v;
}

static void vg__mx_add_double(atomic_uint_least64_t *a, double d)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(
        a, &old, vg__mx_bits(vg__mx_double(old) + d), memory_order_relaxed,
        memory_order_relaxed))
        ;
}

/* ---- Histograms ---- */

static int vg__mx_hist_init(struct vg_histogram *h, const double *bounds,
                            size_t n)
{
    size_t i;

    if (n == 0 || n > VG__MX_MAX_BUCKETS || bounds == NULL)
        return -EINVAL;
    for (i = 0; i < n; i++)
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return -EINVAL;
    memcpy(h->bounds, bounds, n * sizeof *bounds);
    h->nb = n;
    for (i = 0; i <= n; i++)
        atomic_init(&h->counts[i], 0);
    atomic_init(&h->sum, vg__mx_bits(0.0));
    return 0;
}

void vg_histogram_observe(vg_histogram *h, double v)
{
    size_t lo = 0, hi;

    if (h == NULL || isnan(v))
        return;
    /* The first bucket whose upper bound holds v ("le" is inclusive). */
    hi = h->nb;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    vg__mx_add_double(&h->sum, v);
}

void vg_counter_add(vg_counter *c, unsigned long long n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

void vg_gauge_set(vg_gauge *g, double v)
{
    if (g != NULL)
        atomic_store_explicit(&g->bits, vg__mx_bits(v), memory_order_relaxed);
}

void vg_gauge_add(vg_gauge *g, double d)
{
    if (g != NULL)
        vg__mx_add_double(&g->bits, d);
}

/* ---- The registry ---- */

vg_metrics *vg_metrics_new(void)
{
    vg_metrics *m = calloc(1, sizeof *m);

    if (m == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    m->prefix = strdup("volga");
    if (m->prefix == NULL) {
        free(m);
        errno = ENOMEM;
        return NULL;
    }
    vg__mx_hist_init(&m->duration, vg__mx_duration_bounds,
                     sizeof vg__mx_duration_bounds /
                         sizeof vg__mx_duration_bounds[0]);
    pthread_mutex_init(&m->lock, NULL);
    m->tail = &m->users;
    return m;
}

void vg_metrics_free(vg_metrics *m)
{
    vg__mx_user *u, *next;

    if (m == NULL)
        return;
    for (u = m->users; u != NULL; u = next) {
        next = u->next;
        free(u->name);
        free(u->help);
        free(u);
    }
    pthread_mutex_destroy(&m->lock);
    free(m->prefix);
    free(m);
}

/* A metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static bool vg__mx_name_ok(const char *s)
{
    size_t i;

    if (s == NULL || *s == '\0')
        return false;
    for (i = 0; s[i] != '\0'; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              s[i] == '_' || s[i] == ':' || (i > 0 && s[i] >= '0' &&
                                             s[i] <= '9')))
            return false;
    return true;
}

static vg__mx_user *vg__mx_register(vg_metrics *m, vg__mx_kind kind,
                                    const char *name, const char *help)
{
    vg__mx_user *u, *it;

    /* The library's own names are reserved: a user metric that took one
     * would make a second family of that name, which scrapers refuse. */
    if (m == NULL || !vg__mx_name_ok(name) ||
        strncmp(name, m->prefix, strlen(m->prefix)) == 0) {
        errno = EINVAL;
        return NULL;
    }
    u = calloc(1, sizeof *u);
    if (u == NULL || (u->name = strdup(name)) == NULL ||
        (u->help = strdup(help ? help : "")) == NULL) {
        if (u != NULL)
            free(u->name);
        free(u);
        errno = ENOMEM;
        return NULL;
    }
    u->kind = kind;
    pthread_mutex_lock(&m->lock);
    for (it = m->users; it != NULL; it = it->next)
        if (strcmp(it->name, name) == 0)
            break;
    if (it != NULL) {
        pthread_mutex_unlock(&m->lock);
        free(u->name);
        free(u->help);
        free(u);
        errno = EEXIST;
        return NULL;
    }
    *m->tail = u;
    m->tail = &u->next;
    pthread_mutex_unlock(&m->lock);
    return u;
}

vg_counter *vg_metrics_counter(vg_metrics *m, const char *name,
                               const char *help)
{
    vg__mx_user *u = vg__mx_register(m, VG__MX_COUNTER, name, help);

    return u ? &u->u.counter : NULL;
}

vg_gauge *vg_metrics_gauge(vg_metrics *m, const char *name, const char *help)
{
    vg__mx_user *u = vg__mx_register(m, VG__MX_GAUGE, name, help);

    if (u == NULL)
        return NULL;
    atomic_init(&u->u.gauge.bits, vg__mx_bits(0.0));
    return &u->u.gauge;
}

vg_histogram *vg_metrics_histogram(vg_metrics *m, const char *name,
                                   const char *help, const double *bounds,
                                   size_t nbounds)
{
    struct vg_histogram probe;
    vg__mx_user *u;

    /* Checked before registering, so a bad histogram leaves no name. */
    if (vg__mx_hist_init(&probe, bounds, nbounds) != 0) {
        errno = EINVAL;
        return NULL;
    }
    u = vg__mx_register(m, VG__MX_HISTOGRAM, name, help);
    if (u == NULL)
        return NULL;
    vg__mx_hist_init(&u->u.hist, bounds, nbounds);
    return &u->u.hist;
}

/* ---- Counting requests (event threads) ---- */

static unsigned vg__mx_method(const char *m)
{
    unsigned i;

    for (i = 0; i + 1 < VG__MX_NMETHODS; i++)
        if (strcmp(m, vg__mx_methods[i]) == 0)
            return i;
    return VG__MX_NMETHODS - 1;
}

/* The route's address above 14 bits of method (3) and status (10, below
 * 1000); user-space addresses fit in 48 bits. 0 stays free: a request
 * with no route has the bit 1 << 13 set to tell it from a free slot. */
static uint64_t vg__mx_key(const char *route, unsigned method, unsigned status)
{
    return ((uint64_t)(uintptr_t)route << 14) | ((uint64_t)method << 10) |
           (route == NULL ? 1u << 13 : 0) | (status < 1000 ? status : 0);
}

static void vg__mx_count(vg_metrics *m, uint64_t key)
{
    size_t i, at = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 52) %
                   VG__MX_SERIES;
    uint64_t seen;

    for (i = 0; i < VG__MX_SERIES; i++, at = (at + 1) % VG__MX_SERIES) {
        vg__mx_series *s = &m->series[at];
        seen = atomic_load_explicit(&s->key, memory_order_acquire);
        if (seen == 0) {
            uint64_t free_key = 0;
            if (atomic_compare_exchange_strong_explicit(
                    &s->key, &free_key, key, memory_order_acq_rel,
                    memory_order_acquire))
                seen = key;
            else
                seen = free_key; /* another thread claimed it first */
        }
        if (seen == key) {
            atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
            return;
        }
    }
    atomic_fetch_add_explicit(&m->overflow, 1, memory_order_relaxed);
}

static void vg__mx_complete(const vg_completion *c, void *arg)
{
    vg_metrics *m = arg;

    vg__mx_count(m, vg__mx_key(c->route, vg__mx_method(c->method),
                               c->status));
    vg_histogram_observe(&m->duration, c->duration_ms / 1000.0);
}

/* ---- The text format ---- */

/* A label value or HELP text with \, " (labels only) and newlines
 * escaped, as the format requires. */
static void vg__mx_escape(FILE *f, const char *s, bool label)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '"' && label)
            fputs("\\\"", f);
        else
            fputc(*s, f);
    }
}

static void vg__mx_header(FILE *f, const char *prefix, const char *name,
                          const char *help, const char *type)
{
    fprintf(f, "# HELP %s%s%s ", prefix ? prefix : "", prefix ? "_" : "",
            name);
    vg__mx_escape(f, help, false);
    fprintf(f, "\n# TYPE %s%s%s %s\n", prefix ? prefix : "", prefix ? "_" : "",
            name, type);
}

/* The shortest of %.15g and %.17g that reads back as the same double
 * (0.1 stays "0.1"); the format spells the rest +Inf, -Inf and NaN. */
static void vg__mx_value(FILE *f, double v)
{
    char buf[32];

    if (isnan(v)) {
        fputs("NaN", f);
    } else if (isinf(v)) {
        fputs(v > 0 ? "+Inf" : "-Inf", f);
    } else {
        snprintf(buf, sizeof buf, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, sizeof buf, "%.17g", v);
        fputs(buf, f);
    }
}

static void vg__mx_hist(FILE *f, const char *prefix, const char *name,
                        const char *help, struct vg_histogram *h)
{
    const char *p = prefix ? prefix : "", *sep = prefix ? "_" : "";
    unsigned long long cum = 0;
    size_t i;

    vg__mx_header(f, prefix, name, help, "histogram");
    for (i = 0; i <= h->nb; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        fprintf(f, "%s%s%s_bucket{le=\"", p, sep, name);
        if (i < h->nb)
            vg__mx_value(f, h->bounds[i]);
        else
            fputs("+Inf", f);
        fprintf(f, "\"} %llu\n", cum);
    }
    fprintf(f, "%s%s%s_sum ", p, sep, name);
    vg__mx_value(f, vg__mx_double(atomic_load_explicit(&h->sum,
                                                       memory_order_relaxed)));
    fprintf(f, "\n%s%s%s_count %llu\n", p, sep, name, cum);
}

static void vg__mx_requests(FILE *f, vg_metrics *m)
{
    const char *p = m->prefix;
    uint64_t key;
    size_t i;

    vg__mx_header(f, p, "requests_total", "Requests that ended, by method, "
                  "route pattern and status (0: none sent).", "counter");
    for (i = 0; i < VG__MX_SERIES; i++) {
        key = atomic_load_explicit(&m->series[i].key, memory_order_acquire);
        if (key == 0)
            continue;
        const char *route = (const char *)(uintptr_t)(key >> 14);
        fprintf(f, "%s_requests_total{method=\"%s\",route=\"", p,
                vg__mx_methods[(key >> 10) & 7]);
        vg__mx_escape(f, route ? route : "none", true);
        fprintf(f, "\",status=\"%u\"} %llu\n", (unsigned)(key & 1023),
                atomic_load_explicit(&m->series[i].count,
                                     memory_order_relaxed));
    }
    fprintf(f, "%s_requests_total{method=\"other\",route=\"overflow\","
               "status=\"0\"} %llu\n",
            p, atomic_load_explicit(&m->overflow, memory_order_relaxed));
}

static void vg__mx_app(FILE *f, vg_metrics *m)
{
    const char *p = m->prefix;
    vg_stats st;
    vg_load ld;

    vg_app_stats(m->app, &st);
    vg_app_load(m->app, &ld);
    vg__mx_header(f, p, "cancellations_total",
                  "Request tokens cancelled by the library, by reason.",
                  "counter");
    fprintf(f, "%s_cancellations_total{reason=\"client_gone\"} %llu\n", p,
            st.cancelled_client_gone);
    fprintf(f, "%s_cancellations_total{reason=\"timeout\"} %llu\n", p,
            st.cancelled_timeout);
    fprintf(f, "%s_cancellations_total{reason=\"shutdown\"} %llu\n", p,
            st.cancelled_shutdown);
    vg__mx_header(f, p, "app_requests_total",
                  "Requests answered or abandoned (vg_app_stats).", "counter");
    fprintf(f, "%s_app_requests_total %llu\n", p, st.requests);
    vg__mx_header(f, p, "in_flight", "Handlers running or queued now.",
                  "gauge");
    fprintf(f, "%s_in_flight %llu\n", p, st.in_flight);
    vg__mx_header(f, p, "queue_depth", "Requests waiting for a worker.",
                  "gauge");
    fprintf(f, "%s_queue_depth %u\n", p, ld.queued);
    vg__mx_header(f, p, "busy_workers", "Workers running a handler.",
                  "gauge");
    fprintf(f, "%s_busy_workers %u\n", p, ld.busy_workers);
    vg__mx_header(f, p, "workers", "Worker threads.", "gauge");
    fprintf(f, "%s_workers %u\n", p, ld.workers);
    vg__mx_header(f, p, "open_connections", "Connections open now.",
                  "gauge");
    fprintf(f, "%s_open_connections %u\n", p, ld.connections);
}

static void vg__mx_users(FILE *f, vg_metrics *m)
{
    vg__mx_user *u;

    pthread_mutex_lock(&m->lock);
    for (u = m->users; u != NULL; u = u->next) {
        switch (u->kind) {
        case VG__MX_COUNTER:
            vg__mx_header(f, NULL, u->name, u->help, "counter");
            fprintf(f, "%s %llu\n", u->name,
                    atomic_load_explicit(&u->u.counter.value,
                                         memory_order_relaxed));
            break;
        case VG__MX_GAUGE:
            vg__mx_header(f, NULL, u->name, u->help, "gauge");
            fprintf(f, "%s ", u->name);
            vg__mx_value(f, vg__mx_double(atomic_load_explicit(
                                &u->u.gauge.bits, memory_order_relaxed)));
            fputc('\n', f);
            break;
        case VG__MX_HISTOGRAM:
            vg__mx_hist(f, NULL, u->name, u->help, &u->u.hist);
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
}

char *vg_metrics_text(vg_metrics *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    if (m == NULL) {
        errno = EINVAL;
        return NULL;
    }
    f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
    if (m->app != NULL) {
        vg__mx_requests(f, m);
        vg__mx_hist(f, m->prefix, "request_duration_seconds",
                    "Time from the request line to the end of the answer.",
                    &m->duration);
        vg__mx_app(f, m);
    }
    vg__mx_users(f, m);
    if (fclose(f) != 0) {
        free(buf);
        errno = ENOMEM;
        return NULL;
    }
    return buf;
}

vg_result *vg_metrics_result(vg_metrics *m)
{
    char *text = vg_metrics_text(m);
    vg_result *res;

    if (text == NULL)
        return NULL;
    res = vg_result_set_header(vg_text(text), "Content-Type",
                               "text/plain; version=0.0.4; charset=utf-8");
    free(text);
    return res;
}

static vg_result *vg__mx_handler(vg_request *req, void *arg)
{
    (void)req;
    return vg_metrics_result(arg);
}

int vg_app_use_metrics(vg_app *app, vg_metrics *m, const char *path)
{
    int rc;

    if (app == NULL || m == NULL)
        return -EINVAL;
    if (m->app != NULL)
        return -EBUSY; /* one app per registry: its counters are the app's */
    if (path != NULL) {
        rc = vg_map_get(app, path, vg__mx_handler, m);
        /* Rendering never blocks: answered on the event thread. */
        if (rc == 0)
            rc = vg_map_inline(app, "GET", path, true);
        if (rc != 0)
            return rc;
    }
    rc = vg_app_on_complete(app, vg__mx_complete, m);
    if (rc == 0)
        m->app = app;
    return rc;
}
