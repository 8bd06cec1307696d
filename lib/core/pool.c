/* pool.c - the worker threads that run handlers while their connections are
 * suspended. A mutex-protected intrusive FIFO: submitting never allocates.
 *
 * Waking a sleeping worker costs a futex call and two context switches, a
 * good part of a fast request's hand-off. So a task is queued without a
 * wake-up when enough workers are "fresh": woken and about to look at the
 * queue, or running a task that started less than `fresh_ns` ago (a fast
 * handler, soon back for more), and the queue is under half full. Under load a few awake workers then take
 * task after task without sleeping. A fresh worker whose handler turns out
 * to block would leave such a task waiting, so a monitor thread checks the
 * queue every millisecond while the pool is busy and wakes a worker for a
 * task that has waited that long. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
#include "core/pool.h"
#include "core/thread.h"

/* How often the monitor looks while busy, and how long a queued task may
 * wait before it wakes a worker whatever the fresh ones do. */
#define VG__MONITOR_NS (1000 * 1000)
/* The monitor parks after this long without a skipped wake-up. */
#define VG__MONITOR_IDLE_NS (100ull * 1000 * 1000)

typedef struct {
    uint64_t started_ns;      /* when its current task started */
    bool running;
    struct vg__pool *pool;
} vg__worker;

struct vg__pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* workers wait here */
    pthread_cond_t tick;      /* the monitor waits here */
    pthread_cond_t idled;     /* vg__pool_wait_idle waits here */
    unsigned idle_waiters;
    vg__task *head, *tail;
    unsigned idle;            /* workers waiting on `wake` */
    unsigned woken;           /* signalled, not yet back at the queue */
    unsigned queued, max_queued;
    unsigned fresh_enough;    /* fresh workers that make a wake-up useless */
    uint64_t fresh_ns;
    bool batch;               /* workers run under SCHED_BATCH */
    uint64_t last_skip_ns;    /* last time a task was queued without a wake */
    bool monitor_parked;      /* waiting on `tick` with no timeout */
    bool closing;
    pthread_t monitor;
    bool monitor_started;
    unsigned nthreads, started;
    vg__worker *workers;
    pthread_t threads[];
};

/* Workers that will look at the queue soon without being woken. Called
 * with the lock held. */
static unsigned vg__fresh(const vg__pool *pool, uint64_t now)
{
    unsigned i, n = pool->woken;

    for (i = 0; i < pool->started && n < pool->fresh_enough; i++)
        if (pool->workers[i].running &&
            now - pool->workers[i].started_ns < pool->fresh_ns)
            n++;
    return n;
}

/* Whether a new task needs a sleeping worker: yes unless enough workers
 * are fresh, and always once the queue is half full, so that a burst
 * reaches the sleeping workers before it meets the queue limit (and 503s).
 * Called with the lock held, the task already queued. */
static bool vg__must_wake(const vg__pool *pool, uint64_t now)
{
    return pool->queued * 2 >= pool->max_queued ||
           vg__fresh(pool, now) < pool->fresh_enough;
}

/* Takes the next task, or NULL once the pool closes with nothing queued.
 * Called with the lock held. */
static vg__task *vg__pool_next(vg__pool *pool, vg__worker *self)
{
    vg__task *task;

    self->running = false;
    while (pool->head == NULL && !pool->closing) {
        pool->idle++;
        if (pool->idle_waiters > 0)
            pthread_cond_broadcast(&pool->idled);
        pthread_cond_wait(&pool->wake, &pool->lock);
        pool->idle--;
        if (pool->woken > 0)
            pool->woken--;
    }
    task = pool->head;
    if (task != NULL) {
        pool->queued--;
        pool->head = task->next;
        if (pool->head == NULL)
            pool->tail = NULL;
        self->running = true;
        self->started_ns = vg__clock_ns();
    }
    return task;
}

static void *vg__pool_main(void *arg)
{
    vg__worker *self = arg;
    vg__pool *pool = self->pool;
    vg__task *task;

    vg__thread_name("vg-worker");
    if (pool->batch)
        (void)vg__thread_batch();
    pthread_mutex_lock(&pool->lock);
    while ((task = vg__pool_next(pool, self)) != NULL) {
        pthread_mutex_unlock(&pool->lock);
        task->run(task);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* Wakes one sleeping worker; the lock is held. */
static void vg__wake_one(vg__pool *pool)
{
    pool->woken++;
    pthread_cond_signal(&pool->wake);
}

static void *vg__monitor_main(void *arg)
{
    vg__pool *pool = arg;
    struct timespec until;
    uint64_t now;

    vg__thread_name("vg-monitor");
    pthread_mutex_lock(&pool->lock);
    while (!pool->closing) {
        now = vg__clock_ns();
        if (pool->head != NULL && pool->idle > pool->woken &&
            now - pool->head->queued_ns >= VG__MONITOR_NS)
            vg__wake_one(pool);
        if (pool->head == NULL && now - pool->last_skip_ns > VG__MONITOR_IDLE_NS) {
            pool->monitor_parked = true;
            pthread_cond_wait(&pool->tick, &pool->lock);
            pool->monitor_parked = false;
            continue;
        }
        vg__clock_deadline(&until, VG__MONITOR_NS);
        pthread_cond_timedwait(&pool->tick, &pool->lock, &until);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

bool vg__pool_submit(vg__pool *pool, vg__task *task)
{
    uint64_t now = vg__clock_ns();

    task->next = NULL;
    task->queued_ns = now;
    pthread_mutex_lock(&pool->lock);
    /* A bound on waiting work keeps memory bounded under overload; the
     * caller answers 503 instead. */
    if (pool->queued >= pool->max_queued) {
        pthread_mutex_unlock(&pool->lock);
        return false;
    }
    pool->queued++;
    if (pool->tail != NULL)
        pool->tail->next = task;
    else
        pool->head = task;
    pool->tail = task;
    if (pool->idle > pool->woken && vg__must_wake(pool, now)) {
        vg__wake_one(pool);
    } else if (pool->idle > pool->woken) {
        /* Skipped: make sure the monitor is watching in case the fresh
         * worker's handler blocks. Only a parked monitor costs a wake. */
        pool->last_skip_ns = now;
        if (pool->monitor_parked)
            pthread_cond_signal(&pool->tick);
    }
    pthread_mutex_unlock(&pool->lock);
    return true;
}

unsigned vg__pool_idle(vg__pool *pool)
{
    unsigned n;

    pthread_mutex_lock(&pool->lock);
    n = pool->idle;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

bool vg__pool_wait_idle(vg__pool *pool, unsigned n, int ms)
{
    struct timespec until;
    bool ok;

    vg__clock_deadline(&until, (uint64_t)ms * 1000000u);
    pthread_mutex_lock(&pool->lock);
    pool->idle_waiters++;
    while (pool->idle != n &&
           pthread_cond_timedwait(&pool->idled, &pool->lock, &until) == 0)
        ;
    pool->idle_waiters--;
    ok = pool->idle == n;
    pthread_mutex_unlock(&pool->lock);
    return ok;
}

static void vg__pool_close(vg__pool *pool)
{
    unsigned i;

    pthread_mutex_lock(&pool->lock);
    pool->closing = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_cond_broadcast(&pool->tick);
    pthread_mutex_unlock(&pool->lock);
    for (i = 0; i < pool->started; i++)
        pthread_join(pool->threads[i], NULL);
    if (pool->monitor_started)
        pthread_join(pool->monitor, NULL);
    pthread_cond_destroy(&pool->idled);
    pthread_cond_destroy(&pool->tick);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool->workers);
    free(pool);
}

vg__pool *vg__pool_new(unsigned nthreads, unsigned max_queued,
                       unsigned fresh_enough, unsigned fresh_us, bool batch)
{
    vg__pool *pool;
    unsigned i;
    int rc;

    if (nthreads == 0 || fresh_enough == 0) {
        errno = EINVAL;
        return NULL;
    }
    pool = calloc(1, sizeof *pool + nthreads * sizeof(pthread_t));
    if (pool == NULL || (pool->workers = calloc(nthreads, sizeof(vg__worker))) == NULL) {
        free(pool);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    vg__cond_init_monotonic(&pool->tick);
    vg__cond_init_monotonic(&pool->idled);
    pthread_cond_init(&pool->wake, NULL);
    pool->nthreads = nthreads;
    pool->max_queued = max_queued;
    pool->fresh_enough = fresh_enough;
    pool->fresh_ns = (uint64_t)fresh_us * 1000;
    pool->batch = batch;
    rc = pthread_create(&pool->monitor, NULL, vg__monitor_main, pool);
    if (rc != 0)
        goto fail;
    pool->monitor_started = true;
    for (i = 0; i < nthreads; i++) {
        pool->workers[i].pool = pool;
        /* Under the lock: vg__fresh reads `started` while workers start. */
        pthread_mutex_lock(&pool->lock);
        rc = pthread_create(&pool->threads[i], NULL, vg__pool_main,
                            &pool->workers[i]);
        if (rc == 0)
            pool->started++;
        pthread_mutex_unlock(&pool->lock);
        if (rc != 0)
            goto fail;
    }
    return pool;
fail:
    vg__pool_close(pool);
    errno = rc;
    return NULL;
}

void vg__pool_free(vg__pool *pool)
{
    if (pool != NULL)
        vg__pool_close(pool);
}
