/* ratelimit_bench.c - the rate limiter's table alone: decisions per second
 * with many threads, and resident memory after many distinct keys.
 *
 * Usage: ratelimit_bench [--threads N] [--seconds S] [--keys K]
 *                        [--capacity C]
 * N threads (default 16) call vg_ratelimit_take for S seconds (default 5)
 * on keys drawn from K distinct client addresses (default 100,000), in a
 * limiter of C slots (default 65,536); then one thread feeds 1,000,000
 * distinct keys and the resident set size is printed before and after. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <volga.h>

static vg_ratelimit *rl;
static atomic_bool stop;
static unsigned long keys = 100000;

typedef struct {
    unsigned seed;
    unsigned long long done, allowed;
} worker;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    worker *w = arg;
    char key[32];
    unsigned long k;
    int n;

    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        k = (unsigned long)rand_r(&w->seed) % keys;
        n = snprintf(key, sizeof key, "10.%lu.%lu.%lu", (k >> 16) & 255,
                     (k >> 8) & 255, k & 255);
        if (vg_ratelimit_take(rl, key, (size_t)n, NULL) == 0)
            w->allowed++;
        w->done++;
    }
    return NULL;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size, res = 0;

    if (f == NULL)
        return -1;
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (long)(res * (unsigned long)sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv)
{
    unsigned long nthreads = 16, seconds = 5, capacity = 65536, i;
    unsigned long long done = 0, allowed = 0;
    pthread_t th[256];
    worker w[256];
    double t0, t1;
    char key[32];
    long before, after;
    int n, a;

    for (a = 1; a + 1 < argc; a += 2) {
        unsigned long v = strtoul(argv[a + 1], NULL, 10);
        if (strcmp(argv[a], "--threads") == 0 && v >= 1 && v <= 256)
            nthreads = v;
        else if (strcmp(argv[a], "--seconds") == 0 && v >= 1 && v <= 600)
            seconds = v;
        else if (strcmp(argv[a], "--keys") == 0 && v >= 1)
            keys = v;
        else if (strcmp(argv[a], "--capacity") == 0 && v >= 1)
            capacity = v;
        else {
            fprintf(stderr, "ratelimit_bench: bad option %s\n", argv[a]);
            return 2;
        }
    }
    rl = vg_ratelimit_new(100, 1000);
    if (rl == NULL || vg_ratelimit_set_capacity(rl, capacity) != 0) {
        fprintf(stderr, "ratelimit_bench: cannot make the limiter\n");
        return 1;
    }
    for (i = 0; i < nthreads; i++) {
        w[i].seed = (unsigned)i * 7919u + 1;
        w[i].done = w[i].allowed = 0;
    }
    t0 = now_s();
    for (i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, run, &w[i]);
    sleep((unsigned)seconds);
    atomic_store(&stop, true);
    for (i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        done += w[i].done;
        allowed += w[i].allowed;
    }
    t1 = now_s();
    printf("threads %lu, keys %lu, capacity %lu: %.0f decisions/s "
           "(%.1f%% allowed)\n",
           nthreads, keys, capacity, done / (t1 - t0),
           done ? 100.0 * allowed / done : 0);
    vg_ratelimit_free(rl);

    rl = vg_ratelimit_new(100, 1000);
    if (rl == NULL || vg_ratelimit_set_capacity(rl, capacity) != 0)
        return 1;
    before = rss_kib();
    for (i = 0; i < 1000000; i++) {
        n = snprintf(key, sizeof key, "k%lu", i);
        vg_ratelimit_take(rl, key, (size_t)n, NULL);
    }
    after = rss_kib();
    printf("1,000,000 distinct keys, capacity %lu: RSS %ld KiB before, "
           "%ld KiB after (+%ld KiB)\n",
           capacity, before, after, after - before);
    vg_ratelimit_free(rl);
    return 0;
}
