/* pool.c - the worker threads that run handlers while their connections are
 * suspended. A mutex-protected intrusive FIFO: submitting never allocates,
 * and a worker is woken only when one is idle. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "pool.h"

struct vg__pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    vg__task *head, *tail;
    unsigned idle;        /* workers waiting on `wake` */
    unsigned queued, max_queued;
    bool closing;
    unsigned nthreads;
    pthread_t threads[];
};

/* Takes the next task, or NULL once the pool closes with nothing queued. */
static vg__task *vg__pool_next(vg__pool *pool)
{
    vg__task *task;

    pthread_mutex_lock(&pool->lock);
    while (pool->head == NULL && !pool->closing) {
        pool->idle++;
        pthread_cond_wait(&pool->wake, &pool->lock);
        pool->idle--;
    }
    task = pool->head;
    if (task != NULL) {
        pool->queued--;
        pool->head = task->next;
        if (pool->head == NULL)
            pool->tail = NULL;
    }
    pthread_mutex_unlock(&pool->lock);
    return task;
}

static void *vg__pool_main(void *arg)
{
    vg__pool *pool = arg;
    vg__task *task;

    while ((task = vg__pool_next(pool)) != NULL)
        task->run(task);
    return NULL;
}

bool vg__pool_submit(vg__pool *pool, vg__task *task)
{
    bool signal;

    task->next = NULL;
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
    /* A busy worker takes the task when it returns for more, so waking
     * another thread would only cost a futex call. */
    signal = pool->idle > 0;
    pthread_mutex_unlock(&pool->lock);
    if (signal)
        pthread_cond_signal(&pool->wake);
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

static void vg__pool_close(vg__pool *pool, unsigned started)
{
    unsigned i;

    pthread_mutex_lock(&pool->lock);
    pool->closing = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (i = 0; i < started; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

vg__pool *vg__pool_new(unsigned nthreads, unsigned max_queued)
{
    vg__pool *pool;
    unsigned i;
    int rc;

    if (nthreads == 0) {
        errno = EINVAL;
        return NULL;
    }
    pool = calloc(1, sizeof *pool + nthreads * sizeof(pthread_t));
    if (pool == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->nthreads = nthreads;
    pool->max_queued = max_queued;
    for (i = 0; i < nthreads; i++) {
        rc = pthread_create(&pool->threads[i], NULL, vg__pool_main, pool);
        if (rc != 0) {
            vg__pool_close(pool, i);
            errno = rc;
            return NULL;
        }
    }
    return pool;
}

void vg__pool_free(vg__pool *pool)
{
    if (pool != NULL)
        vg__pool_close(pool, pool->nthreads);
}
