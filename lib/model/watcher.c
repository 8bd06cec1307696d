/* watcher.c - the registry of suspended requests and their deadlines.
 *
 * Everything suspended (a handler running, a deferred answer, a parked
 * stream) is registered here, so that shutdown can walk what is left and
 * resume each request exactly once (DESIGN.md fact 8).
 *
 * It also enforces request deadlines (libmicrohttpd never times out a
 * suspended connection, DESIGN.md fact 9). Requests that share a timeout
 * value expire in the order they were registered, so one FIFO list per
 * distinct value (the app's, and each route override in use) threaded
 * through the table is all the timer needs: O(1) to add and to remove, and
 * the next expiry is the earliest of a handful of list heads. A thread
 * ("vg-watcher", under the default scheduling policy so that deadlines are
 * not delayed) sleeps until the next one and exists only when some route
 * has a deadline.
 *
 * Clients leaving are noticed by the event threads themselves
 * (lib/engine/engine.c): every connection's socket is in its thread's epoll set
 * for its whole life, so no socket is added or removed here per request.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "model/request.h"
#include "core/thread.h"
#include "core/token.h"
#include "model/watcher.h"

#define VG__STOP_KEY UINT64_MAX
#define VG__WAKE_KEY (UINT64_MAX - 1)
#define VG__BATCH 64
#define VG__UNLINKED (-2)

typedef struct {
    vg_request *req;     /* NULL when free */
    uint32_t gen;        /* bumped on every removal */
    int next_free;
    int prev, next;      /* deadline list; VG__UNLINKED when not on it */
    int list;            /* index in `lists` while linked */
    uint64_t deadline;   /* CLOCK_MONOTONIC, ms */
} vg__slot;

/* The requests registered with one timeout value, oldest first. */
typedef struct {
    unsigned timeout_ms;
    int head, tail;      /* -1 when empty */
} vg__dlist;

struct vg__watcher {
    pthread_mutex_t lock;     /* guards the table and `closed` */
    vg__slot *slots;
    int nslots, cap, free_head, used;
    bool closed;

    bool timers;              /* deadlines may be used */
    vg__dlist *lists;         /* one per distinct timeout value seen */
    int nlists;

    int epfd, stop_fd, wake_fd;
    pthread_t thread;
    bool thread_started;
    vg__gone_fn expired;
    const vg__log *log;
};

static uint64_t vg__clock_ms(void)
{
    return vg__clock_ns() / 1000000u;
}

/* The list for `timeout_ms`, created on first use; -1 on ENOMEM. */
static int vg__dl_find(vg__watcher *w, unsigned timeout_ms)
{
    vg__dlist *grown;
    int i;

    for (i = 0; i < w->nlists; i++)
        if (w->lists[i].timeout_ms == timeout_ms)
            return i;
    grown = realloc(w->lists, (size_t)(w->nlists + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    w->lists = grown;
    w->lists[i].timeout_ms = timeout_ms;
    w->lists[i].head = w->lists[i].tail = -1;
    w->nlists++;
    return i;
}

/* Appends `slot` to its timeout's list; the caller holds the lock. Returns
 * true if that list was empty, i.e. the watcher may be sleeping without
 * this deadline armed and must be woken. */
static bool vg__dl_append(vg__watcher *w, int slot, unsigned timeout_ms)
{
    int li = vg__dl_find(w, timeout_ms);
    vg__dlist *l;
    bool was_empty;

    if (li < 0) {
        vg__logf(w->log, VG_LOG_ERROR, "no memory for a request deadline");
        return false;
    }
    l = &w->lists[li];
    was_empty = l->head < 0;
    w->slots[slot].deadline = vg__clock_ms() + timeout_ms;
    /* The token learns the deadline this watcher enforces, so that the
     * handler can pass what is left of it on (vg_token_remaining_ms). */
    vg__token_set_deadline(w->slots[slot].req->token,
                           w->slots[slot].deadline * 1000000u);
    w->slots[slot].list = li;
    w->slots[slot].prev = l->tail;
    w->slots[slot].next = -1;
    if (was_empty)
        l->head = slot;
    else
        w->slots[l->tail].next = slot;
    l->tail = slot;
    return was_empty;
}

static void vg__dl_unlink(vg__watcher *w, int slot)
{
    vg__slot *s = &w->slots[slot];
    vg__dlist *l;

    if (s->prev == VG__UNLINKED)
        return;
    l = &w->lists[s->list];
    if (s->prev >= 0)
        w->slots[s->prev].next = s->next;
    else
        l->head = s->next;
    if (s->next >= 0)
        w->slots[s->next].prev = s->prev;
    else
        l->tail = s->prev;
    s->prev = s->next = VG__UNLINKED;
}

static int vg__table_grow(vg__watcher *w)
{
    int cap = w->cap ? w->cap * 2 : 256, i;
    vg__slot *grown = realloc(w->slots, (size_t)cap * sizeof *grown);

    if (grown == NULL)
        return -ENOMEM;
    for (i = w->cap; i < cap; i++) {
        grown[i].req = NULL;
        grown[i].gen = 0;
        grown[i].next_free = i + 1 < cap ? i + 1 : -1;
        grown[i].prev = grown[i].next = VG__UNLINKED;
    }
    w->free_head = w->cap;
    w->slots = grown;
    w->cap = cap;
    return 0;
}

int vg__watcher_add(vg__watcher *w, vg_request *req, unsigned timeout_ms)
{
    int slot, rc = 0;
    bool wake = false;

    pthread_mutex_lock(&w->lock);
    if (w->closed) {
        rc = -ESHUTDOWN;
        goto out;
    }
    if (w->free_head < 0 && (rc = vg__table_grow(w)) != 0)
        goto out;
    slot = w->free_head;
    w->free_head = w->slots[slot].next_free;
    w->slots[slot].req = req;
    w->used++;
    req->watch_slot = slot;
    if (timeout_ms > 0 && w->timers)
        wake = vg__dl_append(w, slot, timeout_ms);
out:
    pthread_mutex_unlock(&w->lock);
    if (wake) {
        uint64_t one = 1;
        if (write(w->wake_fd, &one, sizeof one) < 0)
            vg__logf(w->log, VG_LOG_ERROR, "watcher: cannot wake: %s",
                     strerror(errno));
    }
    return rc;
}

/* Frees `slot`; the caller holds the lock. */
static void vg__slot_release(vg__watcher *w, int slot)
{
    vg__dl_unlink(w, slot);
    w->slots[slot].req = NULL;
    w->slots[slot].gen++;
    w->slots[slot].next_free = w->free_head;
    w->free_head = slot;
    w->used--;
}

void vg__watcher_remove(vg__watcher *w, vg_request *req)
{
    int slot;

    pthread_mutex_lock(&w->lock);
    slot = req->watch_slot;
    if (slot >= 0 && w->slots[slot].req == req)
        vg__slot_release(w, slot);
    req->watch_slot = -1;
    pthread_mutex_unlock(&w->lock);
}

size_t vg__watcher_close(vg__watcher *w, vg_request ***out)
{
    vg_request **list = NULL;
    size_t n = 0;
    int i;

    pthread_mutex_lock(&w->lock);
    w->closed = true;
    if (w->used > 0)
        list = malloc((size_t)w->used * sizeof *list);
    for (i = 0; list != NULL && i < w->cap; i++) {
        if (w->slots[i].req != NULL) {
            vg__request_ref(w->slots[i].req);
            list[n++] = w->slots[i].req;
        }
    }
    pthread_mutex_unlock(&w->lock);
    *out = list;
    return n;
}

/* The list whose head expires first, or -1 if every list is empty; the
 * caller holds the lock. */
static int vg__dl_earliest(const vg__watcher *w)
{
    int i, best = -1;

    for (i = 0; i < w->nlists; i++) {
        int h = w->lists[i].head;
        if (h >= 0 && (best < 0 || w->slots[h].deadline <
                                       w->slots[w->lists[best].head].deadline))
            best = i;
    }
    return best;
}

/* Milliseconds until the earliest deadline (0 if passed), -1 if there is
 * none. */
static int vg__next_timeout(vg__watcher *w)
{
    uint64_t now, due;
    int ms = -1, li;

    pthread_mutex_lock(&w->lock);
    li = vg__dl_earliest(w);
    if (li >= 0) {
        now = vg__clock_ms();
        due = w->slots[w->lists[li].head].deadline;
        ms = due <= now ? 0 : (int)(due - now);
    }
    pthread_mutex_unlock(&w->lock);
    return ms;
}

/* Takes every request whose deadline passed off its list (they stay
 * registered until their resume winner removes them) and reports each to
 * `expired`, holding a reference for the call. */
static void vg__fire_deadlines(vg__watcher *w)
{
    vg_request *batch[VG__BATCH];
    size_t n, i;
    uint64_t now = vg__clock_ms();
    int li;

    do {
        n = 0;
        pthread_mutex_lock(&w->lock);
        while (n < VG__BATCH && (li = vg__dl_earliest(w)) >= 0 &&
               w->slots[w->lists[li].head].deadline <= now) {
            int slot = w->lists[li].head;
            vg__dl_unlink(w, slot);
            batch[n] = w->slots[slot].req;
            vg__request_ref(batch[n++]);
        }
        pthread_mutex_unlock(&w->lock);
        for (i = 0; i < n; i++) {
            w->expired(batch[i]);
            vg__request_unref(batch[i]);
        }
    } while (n == VG__BATCH);
}

static void *vg__watcher_main(void *arg)
{
    vg__watcher *w = arg;
    struct epoll_event evs[VG__BATCH];
    uint64_t drain;
    int n, i;

    vg__thread_name("vg-watcher");
    for (;;) {
        n = epoll_wait(w->epfd, evs, VG__BATCH, vg__next_timeout(w));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            vg__logf(w->log, VG_LOG_ERROR, "watcher: epoll_wait: %s",
                     strerror(errno));
            return NULL;
        }
        for (i = 0; i < n; i++) {
            if (evs[i].data.u64 == VG__STOP_KEY)
                return NULL;
            if (evs[i].data.u64 == VG__WAKE_KEY &&
                read(w->wake_fd, &drain, sizeof drain) < 0)
                continue; /* already drained: nothing to do */
        }
        vg__fire_deadlines(w);
    }
}

/* Adds an eventfd to the epoll set under `key`. */
static int vg__watch_eventfd(vg__watcher *w, int *fd, uint64_t key)
{
    struct epoll_event ev;

    *fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (*fd < 0)
        return -1;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = key;
    return epoll_ctl(w->epfd, EPOLL_CTL_ADD, *fd, &ev);
}

vg__watcher *vg__watcher_new(bool timers, vg__gone_fn expired,
                             const vg__log *log)
{
    vg__watcher *w = calloc(1, sizeof *w);
    int rc;

    if (w == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    w->free_head = -1;
    w->epfd = w->stop_fd = w->wake_fd = -1;
    w->timers = timers;
    w->expired = expired;
    w->log = log;
    /* Without deadlines to keep, the registry alone serves shutdown and no
     * thread is needed. */
    if (!timers)
        return w;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0 || vg__watch_eventfd(w, &w->stop_fd, VG__STOP_KEY) != 0 ||
        vg__watch_eventfd(w, &w->wake_fd, VG__WAKE_KEY) != 0)
        goto fail;
    rc = pthread_create(&w->thread, NULL, vg__watcher_main, w);
    if (rc != 0) {
        errno = rc;
        goto fail;
    }
    w->thread_started = true;
    return w;
fail:
    rc = errno;
    vg__watcher_free(w);
    errno = rc;
    return NULL;
}

void vg__watcher_free(vg__watcher *w)
{
    uint64_t one = 1;

    if (w == NULL)
        return;
    if (w->thread_started) {
        if (write(w->stop_fd, &one, sizeof one) < 0)
            vg__logf(w->log, VG_LOG_ERROR, "watcher: cannot signal stop");
        pthread_join(w->thread, NULL);
    }
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    free(w->slots);
    free(w->lists);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
