/*
 * token.c - cancellation tokens.
 *
 * A token is a flag that is set at most once, with a reason, plus the ways
 * to watch it: polling (an atomic load), sleeping (a condition variable), an
 * eventfd for poll()/epoll, and callbacks. Children follow their parent.
 *
 * Locking: each token has one mutex guarding its callback list, its list of
 * children, its eventfd and the record of which callback is running. The
 * reason and the reference count are atomics, so the hot checks take no
 * lock. No thread ever holds two token mutexes at once, so there is no lock
 * order to get wrong, and user callbacks always run with no mutex held.
 *
 * Cancelling never allocates: children to cancel are chained through a link
 * field inside each child, so cancellation cannot fail for lack of memory,
 * and a deep tree is walked with a loop rather than recursion.
 *
 * Deadlines travel with tokens: each token may record one (a request's, set
 * by the watcher; a vg_token_child_timeout's own), and a token's effective
 * deadline is the nearest along its chain of parents, read without locks.
 * A child_timeout token also owns a timer on the shared timer thread
 * (lib/timer.c) that cancels it with VG_CANCEL_TIMEOUT; the timer leaves the
 * heap as soon as the token is cancelled or freed.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/timer.h"
#include "core/token.h"

/* One registered callback, in the token's list in registration order. */
struct vg__cb {
    struct vg__cb *next;
    unsigned long id;
    vg_cancel_fn fn;
    void *arg;
};

struct vg_token {
    atomic_ulong refs;
    atomic_int reason;          /* a vg_cancel_reason; set once, by CAS */
    pthread_mutex_t mu;
    pthread_cond_t cond;        /* CLOCK_MONOTONIC; waiters and vg_token_off */

    /* Everything below is guarded by mu, except where stated. */
    int efd;                    /* -1 until the first vg_token_fd */
    struct vg__cb *cbs;         /* callbacks not yet run */
    struct vg__cb **cbs_tail;   /* where the next registration goes */
    unsigned long running_id;   /* callback being run by the canceller, or 0 */
    pthread_t runner;           /* the canceller; meaningful if running_id */

    vg_token *parent;           /* strong reference; never changes */
    vg_token *kids;             /* children: weak pointers, head of a list */
    vg_token *sib_prev;         /* links in parent->kids, under parent->mu */
    vg_token *sib_next;
    vg_token *queue_next;       /* link in the canceller's queue (below) */

    /* The token's own deadline on CLOCK_MONOTONIC in ns, 0 for none; its
     * effective deadline is the nearest of its own and its ancestors'. */
    _Atomic uint64_t deadline_ns;
    atomic_bool timed;          /* `timer` was armed (child_timeout) */
    vg__timer timer;            /* guarded by the timer module */
};

/*
 * Children still to be marked by one cancelling thread, or marked and
 * waiting for their callbacks to run. Each listed child holds a reference
 * taken for the list. A token is queued at most once in its life (only the
 * single winner of its parent's cancellation queues it) and is in one list
 * at a time, so one link field per token is enough.
 */
typedef struct {
    vg_token *head;
    vg_token **tail;
} vg__queue;

const char *vg_cancel_reason_name(vg_cancel_reason reason)
{
    switch (reason) {
    case VG_CANCEL_NONE:
        return "none";
    case VG_CANCEL_CLIENT_GONE:
        return "client_gone";
    case VG_CANCEL_TIMEOUT:
        return "timeout";
    case VG_CANCEL_SHUTDOWN:
        return "shutdown";
    case VG_CANCEL_MANUAL:
        return "manual";
    }
    return "unknown";
}

/*
 * Callback ids come from one process-wide counter so that an id given for
 * one token can never remove another token's callback by accident. Zero is
 * the error value, so it is skipped even after the counter wraps.
 */
static unsigned long vg__new_id(void)
{
    static atomic_ulong next = 1;
    unsigned long id;

    do
        id = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
    while (id == 0);
    return id;
}

/* A fresh, uncancelled token with one reference, or NULL with errno set. */
static vg_token *vg__token_alloc(void)
{
    vg_token *tok = calloc(1, sizeof *tok);
    int rc;

    if (tok == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&tok->refs, 1);
    atomic_init(&tok->reason, VG_CANCEL_NONE);
    tok->efd = -1;
    tok->cbs_tail = &tok->cbs;
    rc = pthread_mutex_init(&tok->mu, NULL);
    if (rc == 0) {
        rc = vg__cond_init_monotonic(&tok->cond);
        if (rc != 0)
            pthread_mutex_destroy(&tok->mu);
    }
    if (rc != 0) {
        free(tok);
        errno = rc;
        return NULL;
    }
    return tok;
}

vg_token *vg_token_new(void)
{
    return vg__token_alloc();
}

vg_token *vg_token_child(vg_token *parent)
{
    vg_token *kid;

    if (parent == NULL) {
        errno = EINVAL;
        return NULL;
    }
    kid = vg__token_alloc();
    if (kid == NULL)
        return NULL;
    kid->parent = vg_token_ref(parent);

    /* Reading the parent's reason under its mutex closes the gap with a
     * concurrent cancel: either the canceller's locked section comes after
     * ours and finds the child in the list, or the reason is already set
     * here and the child is born cancelled. The child is not visible to
     * anyone else yet, so there is nothing to notify. */
    pthread_mutex_lock(&parent->mu);
    atomic_store_explicit(&kid->reason,
                          atomic_load_explicit(&parent->reason,
                                               memory_order_acquire),
                          memory_order_relaxed);
    kid->sib_next = parent->kids;
    if (parent->kids != NULL)
        parent->kids->sib_prev = kid;
    parent->kids = kid;
    pthread_mutex_unlock(&parent->mu);
    return kid;
}

vg_token *vg_token_ref(vg_token *tok)
{
    if (tok != NULL)
        atomic_fetch_add_explicit(&tok->refs, 1, memory_order_relaxed);
    return tok;
}

/*
 * Takes a reference unless the count already reached zero. A parent's list
 * of children holds weak pointers, and a child whose last reference is being
 * dropped stays in that list until it takes the parent's mutex to unlink
 * itself; such a child must be skipped, not revived.
 */
static bool vg__ref_if_live(vg_token *tok)
{
    unsigned long n = atomic_load_explicit(&tok->refs, memory_order_relaxed);

    while (n != 0) {
        if (atomic_compare_exchange_weak_explicit(&tok->refs, &n, n + 1,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

static void vg__unlink_from_parent(vg_token *tok)
{
    vg_token *parent = tok->parent;

    pthread_mutex_lock(&parent->mu);
    if (tok->sib_prev != NULL)
        tok->sib_prev->sib_next = tok->sib_next;
    else
        parent->kids = tok->sib_next;
    if (tok->sib_next != NULL)
        tok->sib_next->sib_prev = tok->sib_prev;
    pthread_mutex_unlock(&parent->mu);
}

/* Frees a token nobody references. Pending callbacks are dropped without
 * running: the token can no longer be cancelled, so they never would. */
static void vg__token_destroy(vg_token *tok)
{
    struct vg__cb *cb, *next;

    /* The timer thread may be about to fire this token's timer; waiting
     * here keeps the memory alive until it has seen the count at zero. */
    if (atomic_load_explicit(&tok->timed, memory_order_acquire))
        vg__timer_disarm(&tok->timer, true);

    for (cb = tok->cbs; cb != NULL; cb = next) {
        next = cb->next;
        free(cb);
    }
    if (tok->efd >= 0)
        close(tok->efd);
    pthread_cond_destroy(&tok->cond);
    pthread_mutex_destroy(&tok->mu);
    free(tok);
}

/*
 * Dropping a child's last reference drops its reference on the parent,
 * which may be the parent's last one too; the loop walks up the chain
 * instead of recursing so a long chain cannot exhaust the stack.
 */
void vg_token_unref(vg_token *tok)
{
    while (tok != NULL) {
        vg_token *parent;

        /* acq_rel: the thread that frees must see every other thread's
         * writes made before its own unref. */
        if (atomic_fetch_sub_explicit(&tok->refs, 1,
                                      memory_order_acq_rel) != 1)
            return;
        parent = tok->parent;
        if (parent != NULL)
            vg__unlink_from_parent(tok);
        vg__token_destroy(tok);
        tok = parent;
    }
}

bool vg_token_is_cancelled(const vg_token *tok)
{
    return vg_token_reason(tok) != VG_CANCEL_NONE;
}

vg_cancel_reason vg_token_reason(const vg_token *tok)
{
    if (tok == NULL)
        return VG_CANCEL_NONE;
    /* Acquire pairs with the cancelling CAS, so a thread that sees the
     * token cancelled also sees what the canceller wrote before. */
    return (vg_cancel_reason)atomic_load_explicit(&tok->reason,
                                                  memory_order_acquire);
}

/* Makes the eventfd readable for good: it is never read, so one write
 * leaves it readable. EAGAIN would mean the counter is full, which also
 * means readable, so only EINTR is worth a retry. */
static void vg__efd_signal(int fd)
{
    const uint64_t one = 1;
    ssize_t n;

    do
        n = write(fd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
}

/* Wakes every kind of waiter. Called with tok->mu held. */
static void vg__wake_waiters_locked(vg_token *tok)
{
    pthread_cond_broadcast(&tok->cond);
    if (tok->efd >= 0)
        vg__efd_signal(tok->efd);
}

/* Queues a referenced pointer to every live child. Called with tok->mu
 * held, which keeps the listed children from being freed meanwhile. */
static void vg__queue_children_locked(vg_token *tok, vg__queue *q)
{
    vg_token *kid;

    for (kid = tok->kids; kid != NULL; kid = kid->sib_next) {
        if (!vg__ref_if_live(kid))
            continue;
        kid->queue_next = NULL;
        *q->tail = kid;
        q->tail = &kid->queue_next;
    }
}

/*
 * Runs the callbacks in registration order. Called and returns with tok->mu
 * held, but drops it around each callback so that callbacks may use any
 * token function. Callbacks are taken off the list one at a time rather
 * than all at once so that vg_token_off can still remove one that has not
 * started, and knows exactly which one is running.
 */
static void vg__run_callbacks_locked(vg_token *tok)
{
    struct vg__cb *cb;

    tok->runner = pthread_self();
    while ((cb = tok->cbs) != NULL) {
        tok->cbs = cb->next;
        if (tok->cbs == NULL)
            tok->cbs_tail = &tok->cbs;
        tok->running_id = cb->id;
        pthread_mutex_unlock(&tok->mu);

        cb->fn(tok, cb->arg);
        free(cb);

        pthread_mutex_lock(&tok->mu);
        tok->running_id = 0;
        pthread_cond_broadcast(&tok->cond); /* for vg_token_off */
    }
}

/*
 * Marks one token cancelled: the CAS on the reason picks a single winner,
 * which wakes the token's waiters and queues its children. Callbacks are
 * not run here (see vg__token_cancel_with). Returns whether this call did
 * the cancelling.
 */
static bool vg__mark_one(vg_token *tok, vg_cancel_reason reason, vg__queue *q)
{
    int expected = VG_CANCEL_NONE;

    if (!atomic_compare_exchange_strong_explicit(&tok->reason, &expected,
                                                 (int)reason,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire))
        return false;
    pthread_mutex_lock(&tok->mu);
    vg__wake_waiters_locked(tok);
    vg__queue_children_locked(tok, q);
    pthread_mutex_unlock(&tok->mu);
    /* A deadline that can no longer matter gives its heap slot back now
     * rather than at its due time. */
    if (atomic_load_explicit(&tok->timed, memory_order_acquire))
        vg__timer_disarm(&tok->timer, false);
    return true;
}

/* Runs a marked token's callbacks. */
static void vg__run_callbacks(vg_token *tok)
{
    pthread_mutex_lock(&tok->mu);
    vg__run_callbacks_locked(tok);
    pthread_mutex_unlock(&tok->mu);
}

/*
 * Cancelling happens in two passes so that the order volga.h promises
 * holds: first the token and all its descendants are marked, breadth
 * first, each one's waiters woken (vg_token_wait returns, the fd turns
 * readable); only then do callbacks run, the token's own first, then its
 * descendants' in the same order. A slow callback therefore never delays
 * a thread waiting on the token or on any child of it. A descendant this
 * call marked moves from the queue to the `run` list with its reference
 * (the same link: a token leaves the queue before it joins the list).
 */
bool vg__token_cancel_with(vg_token *tok, vg_cancel_reason reason)
{
    vg__queue q, run;
    bool won;

    if (tok == NULL || reason == VG_CANCEL_NONE)
        return false;
    q.head = run.head = NULL;
    q.tail = &q.head;
    run.tail = &run.head;

    /* A callback may drop the last reference the rest of the program had
     * (a callback that owns the token and releases it is a common shape);
     * this one keeps the token alive until cancelling is over. */
    vg_token_ref(tok);
    won = vg__mark_one(tok, reason, &q);
    while (q.head != NULL) {
        vg_token *kid = q.head;

        q.head = kid->queue_next;
        if (q.head == NULL)
            q.tail = &q.head;
        if (!vg__mark_one(kid, reason, &q)) {
            vg_token_unref(kid);
            continue;
        }
        kid->queue_next = NULL;
        *run.tail = kid;
        run.tail = &kid->queue_next;
    }
    if (won)
        vg__run_callbacks(tok);
    while (run.head != NULL) {
        vg_token *kid = run.head;

        run.head = kid->queue_next;
        vg__run_callbacks(kid);
        vg_token_unref(kid);
    }
    vg_token_unref(tok);
    return won;
}

void vg_token_cancel(vg_token *tok)
{
    vg__token_cancel_with(tok, VG_CANCEL_MANUAL);
}

unsigned long vg_token_on_cancel(vg_token *tok, vg_cancel_fn fn, void *arg)
{
    struct vg__cb *cb;
    unsigned long id;

    if (tok == NULL || fn == NULL) {
        errno = EINVAL;
        return 0;
    }
    if (vg_token_is_cancelled(tok)) {
        fn(tok, arg);
        return vg__new_id();
    }
    cb = malloc(sizeof *cb);
    if (cb == NULL) {
        errno = ENOMEM;
        return 0;
    }
    cb->next = NULL;
    cb->id = id = vg__new_id();
    cb->fn = fn;
    cb->arg = arg;

    /* Checked again under the mutex: a cancel may have won its CAS since
     * the check above. If the reason is still unset here, the canceller's
     * locked section comes after ours and will find the callback; if not,
     * the canceller may already have emptied the list, so run it here. */
    pthread_mutex_lock(&tok->mu);
    if (!vg_token_is_cancelled(tok)) {
        *tok->cbs_tail = cb;
        tok->cbs_tail = &cb->next;
        cb = NULL;
    }
    pthread_mutex_unlock(&tok->mu);
    if (cb != NULL) {
        free(cb);
        fn(tok, arg);
    }
    return id;
}

/* Unlinks and frees the pending callback `id`; false if it is not pending.
 * Called with tok->mu held. */
static bool vg__remove_cb_locked(vg_token *tok, unsigned long id)
{
    struct vg__cb **link;

    for (link = &tok->cbs; *link != NULL; link = &(*link)->next) {
        struct vg__cb *cb = *link;

        if (cb->id != id)
            continue;
        *link = cb->next;
        if (tok->cbs_tail == &cb->next)
            tok->cbs_tail = link;
        free(cb);
        return true;
    }
    return false;
}

/*
 * After this returns the callback is neither pending nor running, so its
 * argument may be freed. Waiting is only for that one callback, and never
 * when the canceller itself asks (from inside a callback), which would wait
 * for itself.
 */
bool vg_token_off(vg_token *tok, unsigned long id)
{
    bool removed;

    if (tok == NULL || id == 0)
        return false;
    pthread_mutex_lock(&tok->mu);
    removed = vg__remove_cb_locked(tok, id);
    while (!removed && tok->running_id == id &&
           !pthread_equal(tok->runner, pthread_self()))
        pthread_cond_wait(&tok->cond, &tok->mu);
    pthread_mutex_unlock(&tok->mu);
    return removed;
}

bool vg_token_wait(vg_token *tok, int timeout_ms)
{
    struct timespec deadline;
    bool cancelled;

    if (tok == NULL)
        return false;
    if (vg_token_is_cancelled(tok))
        return true;
    if (timeout_ms == 0)
        return false;
    if (timeout_ms > 0)
        vg__clock_deadline(&deadline, (uint64_t)timeout_ms * 1000000u);

    /* The reason is checked under the mutex and the canceller broadcasts
     * under it after setting the reason, so a wakeup cannot fall between
     * the check and the wait. The loop absorbs spurious wakeups and the
     * broadcasts vg_token_off waiters get. */
    pthread_mutex_lock(&tok->mu);
    for (;;) {
        cancelled = vg_token_is_cancelled(tok);
        if (cancelled)
            break;
        if (timeout_ms < 0) {
            pthread_cond_wait(&tok->cond, &tok->mu);
        } else if (pthread_cond_timedwait(&tok->cond, &tok->mu,
                                          &deadline) == ETIMEDOUT) {
            cancelled = vg_token_is_cancelled(tok);
            break;
        }
    }
    pthread_mutex_unlock(&tok->mu);
    return cancelled;
}

int vg_token_fd(vg_token *tok)
{
    int fd;

    if (tok == NULL)
        return -EINVAL;
    pthread_mutex_lock(&tok->mu);
    if (tok->efd < 0) {
        fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) {
            fd = -errno;
            pthread_mutex_unlock(&tok->mu);
            return fd;
        }
        tok->efd = fd;
        /* A cancel whose locked section came before ours found no fd to
         * signal, so the fd must start out readable. If that section is
         * still to come it signals again, which is harmless. */
        if (vg_token_is_cancelled(tok))
            vg__efd_signal(fd);
    }
    fd = tok->efd;
    pthread_mutex_unlock(&tok->mu);
    return fd;
}

/* ---- Deadlines, and waiting on an fd with the token ---- */

void vg__token_set_deadline(vg_token *tok, uint64_t due_ns)
{
    if (tok != NULL)
        atomic_store_explicit(&tok->deadline_ns, due_ns, memory_order_relaxed);
}

/* The nearest deadline along tok's chain of parents, 0 if none. Parents
 * never change and each child holds its parent, so the walk needs no lock. */
static uint64_t vg__effective_deadline(const vg_token *tok)
{
    uint64_t best = 0;

    for (; tok != NULL; tok = tok->parent) {
        uint64_t d = atomic_load_explicit(&tok->deadline_ns,
                                          memory_order_relaxed);
        if (d != 0 && (best == 0 || d < best))
            best = d;
    }
    return best;
}

long vg_token_remaining_ms(const vg_token *tok)
{
    uint64_t due = vg__effective_deadline(tok), now;

    if (due == 0)
        return -1;
    now = vg__clock_ns();
    if (due <= now)
        return 0;
    /* Rounded up, so that 0 always means "passed": a caller forwarding
     * the rest as a timeout never gets "0 = none" for a deadline that is
     * still ahead. */
    return (long)((due - now + 999999u) / 1000000u);
}

/* Runs on the timer thread. The token may be losing its last reference on
 * another thread right now; that thread then waits in vg__token_destroy
 * for this call to return, so the memory is valid, but it must not be
 * revived. */
static void vg__token_timer_fire(void *arg)
{
    vg_token *tok = arg;

    if (!vg__ref_if_live(tok))
        return;
    vg__token_cancel_with(tok, VG_CANCEL_TIMEOUT);
    vg_token_unref(tok);
}

vg_token *vg_token_child_timeout(vg_token *parent, unsigned ms)
{
    uint64_t due = vg__clock_ns() + (uint64_t)ms * 1000000u;
    vg_token *kid = vg_token_child(parent);
    int rc;

    if (kid == NULL)
        return NULL;
    atomic_store_explicit(&kid->deadline_ns, due, memory_order_relaxed);
    if (ms == 0) {
        /* Go's WithTimeout(0): already past. A parent already cancelled
         * keeps its reason, as for every child. */
        vg__token_cancel_with(kid, VG_CANCEL_TIMEOUT);
        return kid;
    }
    if (vg_token_is_cancelled(kid))
        return kid;
    atomic_store_explicit(&kid->timed, true, memory_order_release);
    rc = vg__timer_arm(&kid->timer, due, vg__token_timer_fire, kid);
    if (rc != 0) {
        atomic_store_explicit(&kid->timed, false, memory_order_relaxed);
        vg_token_unref(kid);
        errno = -rc;
        return NULL;
    }
    /* The parent may have been cancelled between the check above and the
     * arming; its canceller may then have found no timer to disarm. */
    if (vg_token_is_cancelled(kid))
        vg__timer_disarm(&kid->timer, false);
    return kid;
}

/* Remaining milliseconds until `deadline_ns`, at least 0. */
static int vg__ms_left(uint64_t deadline_ns)
{
    uint64_t now = vg__clock_ns();

    if (deadline_ns <= now)
        return 0;
    return (int)((deadline_ns - now + 999999u) / 1000000u);
}

int vg_token_poll(vg_token *tok, int fd, short events, int timeout_ms)
{
    struct pollfd p[2];
    uint64_t deadline = 0;
    int tfd, n, wait_ms = timeout_ms;

    if (tok == NULL)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (vg_token_is_cancelled(tok))
        return -ECANCELED;
    tfd = vg_token_fd(tok);
    if (tfd < 0)
        return tfd;
    if (timeout_ms > 0)
        deadline = vg__clock_ns() + (uint64_t)timeout_ms * 1000000u;
    p[0].fd = fd;
    p[0].events = events;
    p[1].fd = tfd;
    p[1].events = POLLIN;
    for (;;) {
        p[0].revents = p[1].revents = 0;
        n = poll(p, 2, wait_ms);
        if (n < 0 && errno != EINTR)
            return -errno;
        /* Cancellation wins over a ready fd: the caller asked to stop. */
        if (vg_token_is_cancelled(tok))
            return -ECANCELED;
        if (n > 0 && p[0].revents != 0)
            return (p[0].revents & POLLNVAL) ? -EBADF : p[0].revents;
        if (n == 0 && timeout_ms >= 0)
            return 0;
        /* A signal (EINTR): wait for what is left of the timeout. */
        if (timeout_ms > 0)
            wait_ms = vg__ms_left(deadline);
    }
}
