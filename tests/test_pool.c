/* test_pool.c - the worker pool: every task runs exactly once, in FIFO
 * order while workers are busy, the queue bound holds, idle workers are
 * counted, and freeing runs what is still queued. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "core/pool.h"

#define WAIT_MS 10000

/* A gate that tasks can block on until the test opens it, and a count of
 * finished tasks the test can wait for. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    int started, done;
    int order[64];        /* ids in the order they ran */
    pthread_t ran_on[64]; /* the thread each id ran on */
} board;

typedef struct {
    vg__task task;        /* first: the pool hands back this pointer */
    board *b;
    int id;
    bool block;           /* wait for the gate before finishing */
} job;

static void board_init(board *b)
{
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->open = false;
    b->started = b->done = 0;
}

static void board_destroy(board *b)
{
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
}

static void run_job(vg__task *task)
{
    job *j = (job *)task;
    board *b = j->b;

    pthread_mutex_lock(&b->lock);
    b->started++;
    pthread_cond_broadcast(&b->cond);
    while (j->block && !b->open)
        pthread_cond_wait(&b->cond, &b->lock);
    b->order[b->done] = j->id;
    b->ran_on[j->id] = pthread_self();
    b->done++;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

/* Waits until *counter reaches n; false after WAIT_MS. */
static bool board_wait(board *b, const int *counter, int n)
{
    struct timespec dl;
    bool ok = true;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&b->lock);
    while (*counter < n && ok)
        ok = pthread_cond_timedwait(&b->cond, &b->lock, &dl) == 0 || *counter >= n;
    ok = *counter >= n;
    pthread_mutex_unlock(&b->lock);
    return ok;
}

static void board_open(board *b)
{
    pthread_mutex_lock(&b->lock);
    b->open = true;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void job_init(job *j, board *b, int id, bool block)
{
    j->task.run = run_job;
    j->b = b;
    j->id = id;
    j->block = block;
}

/* Waits until all `n` workers are idle; false after WAIT_MS. */
static bool all_idle(vg__pool *pool, unsigned n)
{
    return vg__pool_wait_idle(pool, n, WAIT_MS);
}

START_TEST(test_new_rejects_zero_threads)
{
    errno = 0;
    ck_assert_ptr_null(vg__pool_new(0, 10, 1, 100, false));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(vg__pool_new(2, 10, 0, 100, false));
    ck_assert_int_eq(errno, EINVAL);
    vg__pool_free(NULL); /* a no-op */
}
END_TEST

/* With its only worker held, tasks wait and then run in submission order. */
START_TEST(test_fifo_while_busy)
{
    vg__pool *pool = vg__pool_new(1, 64, 1, 100, false);
    job blocker, jobs[20];
    board b;
    int i;

    ck_assert_ptr_nonnull(pool);
    board_init(&b);
    job_init(&blocker, &b, 63, true);
    ck_assert(all_idle(pool, 1));
    ck_assert(vg__pool_submit(pool, &blocker.task));
    ck_assert(board_wait(&b, &b.started, 1));
    ck_assert_uint_eq(vg__pool_idle(pool), 0);
    for (i = 0; i < 20; i++) {
        job_init(&jobs[i], &b, i, false);
        ck_assert(vg__pool_submit(pool, &jobs[i].task));
    }
    ck_assert_int_eq(b.done, 0);
    board_open(&b);
    ck_assert(board_wait(&b, &b.done, 21));
    ck_assert_int_eq(b.order[0], 63);
    for (i = 0; i < 20; i++)
        ck_assert_int_eq(b.order[i + 1], i);
    ck_assert(all_idle(pool, 1));
    vg__pool_free(pool);
    board_destroy(&b);
}
END_TEST

/* Only max_queued tasks may wait; a task handed to an idle worker does not
 * count, and room comes back as workers take tasks. */
START_TEST(test_queue_bound)
{
    vg__pool *pool = vg__pool_new(2, 3, 1, 100, false);
    job held[2], waiting[4];
    board b;
    int i;

    ck_assert_ptr_nonnull(pool);
    board_init(&b);
    for (i = 0; i < 2; i++) {
        job_init(&held[i], &b, i, true);
        ck_assert(vg__pool_submit(pool, &held[i].task));
    }
    ck_assert(board_wait(&b, &b.started, 2));
    for (i = 0; i < 3; i++) {
        job_init(&waiting[i], &b, 10 + i, false);
        ck_assert(vg__pool_submit(pool, &waiting[i].task));
    }
    job_init(&waiting[3], &b, 13, false);
    ck_assert(!vg__pool_submit(pool, &waiting[3].task));
    board_open(&b);
    ck_assert(board_wait(&b, &b.done, 5));
    ck_assert(vg__pool_submit(pool, &waiting[3].task));
    ck_assert(board_wait(&b, &b.done, 6));
    ck_assert(all_idle(pool, 2));
    vg__pool_free(pool);
    board_destroy(&b);
}
END_TEST



/* A worker that took a task counts as "fresh" for fresh_us, and while it
 * does a new task is queued without waking anyone. If that worker's
 * handler then blocks, the monitor must still wake a sleeping worker for
 * the queued task: here fresh_us is 60 s, so only the monitor can. */
START_TEST(test_blocked_fresh_worker_does_not_starve)
{
    vg__pool *pool = vg__pool_new(3, 64, 1, 60u * 1000 * 1000, false);
    job blocker, next;
    board b;

    ck_assert_ptr_nonnull(pool);
    board_init(&b);
    ck_assert(all_idle(pool, 3));
    job_init(&blocker, &b, 0, true);
    ck_assert(vg__pool_submit(pool, &blocker.task));
    ck_assert(board_wait(&b, &b.started, 1));
    job_init(&next, &b, 1, false);
    ck_assert(vg__pool_submit(pool, &next.task));
    /* Runs on another worker while the first one is still held. */
    ck_assert(board_wait(&b, &b.done, 1));
    ck_assert_int_eq(b.order[0], 1);
    board_open(&b);
    ck_assert(board_wait(&b, &b.done, 2));
    ck_assert(!pthread_equal(b.ran_on[0], b.ran_on[1]));
    vg__pool_free(pool);
    board_destroy(&b);
}
END_TEST

/* Tasks queued while the one fresh worker runs (no wake-up) all run once
 * it is done. */
START_TEST(test_fresh_worker_takes_the_queue)
{
    vg__pool *pool = vg__pool_new(4, 64, 1, 60u * 1000 * 1000, false);
    job blocker, jobs[10];
    board b;
    int i;

    ck_assert_ptr_nonnull(pool);
    board_init(&b);
    ck_assert(all_idle(pool, 4));
    job_init(&blocker, &b, 20, true);
    ck_assert(vg__pool_submit(pool, &blocker.task));
    ck_assert(board_wait(&b, &b.started, 1));
    for (i = 0; i < 10; i++) {
        job_init(&jobs[i], &b, i, false);
        ck_assert(vg__pool_submit(pool, &jobs[i].task));
    }
    board_open(&b);
    ck_assert(board_wait(&b, &b.done, 11));
    /* Each ran exactly once (which threads ran them is not asserted: the
     * monitor may wake helpers on a slow machine). */
    {
        int seen[21] = {0};
        for (i = 0; i < 11; i++)
            seen[b.order[i]]++;
        for (i = 0; i < 10; i++)
            ck_assert_int_eq(seen[i], 1);
        ck_assert_int_eq(seen[20], 1);
    }
    vg__pool_free(pool);
    board_destroy(&b);
}
END_TEST

static atomic_int free_runs;

static void count_run(vg__task *task)
{
    (void)task;
    atomic_fetch_add(&free_runs, 1);
}

/* Freeing the pool runs every task still queued before joining. */
START_TEST(test_free_runs_queued)
{
    vg__pool *pool = vg__pool_new(1, 1000, 1, 100, false);
    job blocker;
    vg__task tasks[500];
    board b;
    int i;

    ck_assert_ptr_nonnull(pool);
    board_init(&b);
    atomic_store(&free_runs, 0);
    job_init(&blocker, &b, 0, true);
    ck_assert(vg__pool_submit(pool, &blocker.task));
    ck_assert(board_wait(&b, &b.started, 1));
    for (i = 0; i < 500; i++) {
        tasks[i].run = count_run;
        ck_assert(vg__pool_submit(pool, &tasks[i]));
    }
    board_open(&b);
    vg__pool_free(pool);
    ck_assert_int_eq(atomic_load(&free_runs), 500);
    ck_assert_int_eq(b.done, 1);
    board_destroy(&b);
}
END_TEST

/* Many submitters at once: every task runs exactly once. */
typedef struct {
    vg__pool *pool;
    vg__task *tasks;
    int n;
} submitter;

static atomic_int stress_runs;

static void stress_run(vg__task *task)
{
    (void)task;
    atomic_fetch_add(&stress_runs, 1);
}

static void *submit_main(void *arg)
{
    submitter *s = arg;
    int i;

    for (i = 0; i < s->n; i++) {
        s->tasks[i].run = stress_run;
        while (!vg__pool_submit(s->pool, &s->tasks[i]))
            sched_yield(); /* queue full: a worker frees room */
    }
    return NULL;
}

START_TEST(test_concurrent_submitters)
{
    enum { THREADS = 4, PER = 5000 };
    vg__pool *pool = vg__pool_new(3, 64, 1, 100, false);
    static vg__task tasks[THREADS][PER];
    submitter s[THREADS];
    pthread_t t[THREADS];
    int i;

    ck_assert_ptr_nonnull(pool);
    atomic_store(&stress_runs, 0);
    for (i = 0; i < THREADS; i++) {
        s[i].pool = pool;
        s[i].tasks = tasks[i];
        s[i].n = PER;
        ck_assert_int_eq(pthread_create(&t[i], NULL, submit_main, &s[i]), 0);
    }
    for (i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    vg__pool_free(pool);
    ck_assert_int_eq(atomic_load(&stress_runs), THREADS * PER);
}
END_TEST

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");

    tcase_add_test(tc, test_new_rejects_zero_threads);
    tcase_add_test(tc, test_fifo_while_busy);
    tcase_add_test(tc, test_queue_bound);
    tcase_add_test(tc, test_blocked_fresh_worker_does_not_starve);
    tcase_add_test(tc, test_fresh_worker_takes_the_queue);
    tcase_add_test(tc, test_free_runs_queued);
    tcase_add_test(tc, test_concurrent_submitters);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pool_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
