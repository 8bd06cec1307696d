/*
 * test_token.c - unit tests for cancellation tokens (lib/core/token.c).
 *
 * Nothing here sleeps to synchronise: threads meet through condition
 * variables, barriers, pthread_join, vg_token_wait and poll(). Time limits
 * are generous upper bounds only. Helper threads never call ck_assert
 * (Check cannot report from them in no-fork mode); they record what they
 * saw and the test thread asserts after joining them. Run under ASan,
 * TSan and valgrind to check for leaks and races as well.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "volga.h"
#include "core/token.h"

/* Iterations of the race tests: enough to make TSan see interleavings. */
#define RACE_ROUNDS 2000

/* ------------------------------------------------------------------------
 * Helpers
 */

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A one-shot event a thread can wait for, with an optional time limit. */
struct flag {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool set;
};

static void flag_init(struct flag *f)
{
    pthread_condattr_t attr;

    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &attr);
    pthread_condattr_destroy(&attr);
    f->set = false;
}

static void flag_destroy(struct flag *f)
{
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
}

static void flag_set(struct flag *f)
{
    pthread_mutex_lock(&f->mu);
    f->set = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void flag_wait(struct flag *f)
{
    pthread_mutex_lock(&f->mu);
    while (!f->set)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
}

/* Returns whether the flag was set within `ms` milliseconds. */
static bool flag_wait_for(struct flag *f, int ms)
{
    struct timespec deadline;
    bool set;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->mu);
    while (!f->set &&
           pthread_cond_timedwait(&f->cv, &f->mu, &deadline) == 0)
        ;
    set = f->set;
    pthread_mutex_unlock(&f->mu);
    return set;
}

/* Reads a counter; a function rather than the atomic_load macro so that a
 * failed assertion prints something readable. */
static int loadi(atomic_int *a)
{
    return atomic_load(a);
}

/* A callback that counts its calls in an atomic_int. */
static void count_cb(vg_token *tok, void *arg)
{
    (void)tok;
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* What a callback saw when it ran. */
struct seen {
    atomic_int calls;
    vg_token *tok;
    pthread_t thread;
    vg_cancel_reason reason;
};

static void record_cb(vg_token *tok, void *arg)
{
    struct seen *s = arg;

    s->tok = tok;
    s->thread = pthread_self();
    s->reason = vg_token_reason(tok);
    atomic_fetch_add(&s->calls, 1);
}

/* Callbacks that append a number to a shared log, to check order. */
struct order_log {
    int seq[16];
    int n;
};

struct order_entry {
    struct order_log *log;
    int value;
};

static void order_cb(vg_token *tok, void *arg)
{
    struct order_entry *e = arg;

    (void)tok;
    if (e->log->n < 16)
        e->log->seq[e->log->n++] = e->value;
}

static bool poll_readable(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/* ------------------------------------------------------------------------
 * Reasons and plain cancelling
 */

START_TEST(test_reason_names)
{
    ck_assert_str_eq(vg_cancel_reason_name(VG_CANCEL_NONE), "none");
    ck_assert_str_eq(vg_cancel_reason_name(VG_CANCEL_CLIENT_GONE),
                     "client_gone");
    ck_assert_str_eq(vg_cancel_reason_name(VG_CANCEL_TIMEOUT), "timeout");
    ck_assert_str_eq(vg_cancel_reason_name(VG_CANCEL_SHUTDOWN), "shutdown");
    ck_assert_str_eq(vg_cancel_reason_name(VG_CANCEL_MANUAL), "manual");
    ck_assert_str_eq(vg_cancel_reason_name((vg_cancel_reason)99), "unknown");
    ck_assert_str_eq(vg_cancel_reason_name((vg_cancel_reason)-1), "unknown");
}
END_TEST

START_TEST(test_new_is_not_cancelled)
{
    vg_token *tok = vg_token_new();

    ck_assert_ptr_nonnull(tok);
    ck_assert(!vg_token_is_cancelled(tok));
    ck_assert_int_eq(vg_token_reason(tok), VG_CANCEL_NONE);
    ck_assert(!vg_token_wait(tok, 0));
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_cancel_is_manual)
{
    vg_token *tok = vg_token_new();

    vg_token_cancel(tok);
    ck_assert(vg_token_is_cancelled(tok));
    ck_assert_int_eq(vg_token_reason(tok), VG_CANCEL_MANUAL);
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_cancel_idempotent_keeps_first_reason)
{
    vg_token *tok = vg_token_new();

    ck_assert(vg__token_cancel_with(tok, VG_CANCEL_TIMEOUT));
    ck_assert_int_eq(vg_token_reason(tok), VG_CANCEL_TIMEOUT);
    ck_assert(!vg__token_cancel_with(tok, VG_CANCEL_SHUTDOWN));
    vg_token_cancel(tok);
    vg_token_cancel(tok);
    ck_assert(vg_token_is_cancelled(tok));
    ck_assert_int_eq(vg_token_reason(tok), VG_CANCEL_TIMEOUT);
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_cancel_with_none_is_refused)
{
    vg_token *tok = vg_token_new();

    ck_assert(!vg__token_cancel_with(tok, VG_CANCEL_NONE));
    ck_assert(!vg_token_is_cancelled(tok));
    ck_assert(!vg__token_cancel_with(NULL, VG_CANCEL_MANUAL));
    vg_token_cancel(NULL);
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_ref_counting)
{
    vg_token *tok = vg_token_new();
    int i;

    ck_assert_ptr_eq(vg_token_ref(tok), tok);
    for (i = 0; i < 4; i++)
        ck_assert_ptr_eq(vg_token_ref(tok), tok);
    /* Five references taken above, six in all: after five unrefs the
     * token must still be fully usable (ASan/valgrind would catch a use
     * after free), and the sixth frees it (a leak checker would catch a
     * missing free). */
    for (i = 0; i < 5; i++)
        vg_token_unref(tok);
    vg_token_cancel(tok);
    ck_assert(vg_token_is_cancelled(tok));
    ck_assert(vg_token_wait(tok, 0));
    vg_token_unref(tok);

    ck_assert_ptr_null(vg_token_ref(NULL));
    vg_token_unref(NULL);
}
END_TEST

/* ------------------------------------------------------------------------
 * Children
 */

START_TEST(test_children_follow_parent)
{
    vg_token *p = vg_token_new();
    vg_token *c = vg_token_child(p);
    vg_token *g = vg_token_child(c);
    struct order_log log = { .n = 0 };
    struct order_entry ep = { &log, 1 }, ec = { &log, 2 }, eg = { &log, 3 };

    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(g);
    ck_assert(!vg_token_is_cancelled(c));
    ck_assert(!vg_token_is_cancelled(g));
    /* Registered deepest first: the order below is the tree's, not ours. */
    ck_assert_uint_gt(vg_token_on_cancel(g, order_cb, &eg), 0);
    ck_assert_uint_gt(vg_token_on_cancel(c, order_cb, &ec), 0);
    ck_assert_uint_gt(vg_token_on_cancel(p, order_cb, &ep), 0);

    ck_assert(vg__token_cancel_with(p, VG_CANCEL_CLIENT_GONE));
    ck_assert_int_eq(vg_token_reason(p), VG_CANCEL_CLIENT_GONE);
    ck_assert_int_eq(vg_token_reason(c), VG_CANCEL_CLIENT_GONE);
    ck_assert_int_eq(vg_token_reason(g), VG_CANCEL_CLIENT_GONE);
    /* A parent's callbacks run before its children are cancelled. */
    ck_assert_int_eq(log.n, 3);
    ck_assert_int_eq(log.seq[0], 1);
    ck_assert_int_eq(log.seq[1], 2);
    ck_assert_int_eq(log.seq[2], 3);

    vg_token_unref(g);
    vg_token_unref(c);
    vg_token_unref(p);
}
END_TEST

START_TEST(test_child_born_cancelled)
{
    vg_token *p = vg_token_new();
    vg_token *c, *g;
    struct seen s = { .calls = 0 };

    vg__token_cancel_with(p, VG_CANCEL_SHUTDOWN);
    c = vg_token_child(p);
    ck_assert_ptr_nonnull(c);
    ck_assert(vg_token_is_cancelled(c));
    ck_assert_int_eq(vg_token_reason(c), VG_CANCEL_SHUTDOWN);
    ck_assert(vg_token_wait(c, 0));
    ck_assert(poll_readable(vg_token_fd(c), 0));
    ck_assert_uint_gt(vg_token_on_cancel(c, record_cb, &s), 0);
    ck_assert_int_eq(loadi(&s.calls), 1);
    ck_assert_int_eq(s.reason, VG_CANCEL_SHUTDOWN);

    g = vg_token_child(c);
    ck_assert_int_eq(vg_token_reason(g), VG_CANCEL_SHUTDOWN);
    /* Born cancelled means cancelled: a later cancel changes nothing. */
    ck_assert(!vg__token_cancel_with(g, VG_CANCEL_TIMEOUT));
    ck_assert_int_eq(vg_token_reason(g), VG_CANCEL_SHUTDOWN);

    vg_token_unref(g);
    vg_token_unref(c);
    vg_token_unref(p);
}
END_TEST

START_TEST(test_child_never_cancels_parent)
{
    vg_token *p = vg_token_new();
    vg_token *c1 = vg_token_child(p);
    vg_token *c2 = vg_token_child(p);
    vg_token *g1 = vg_token_child(c1);

    ck_assert(vg__token_cancel_with(c1, VG_CANCEL_TIMEOUT));
    ck_assert(vg_token_is_cancelled(g1));
    ck_assert(!vg_token_is_cancelled(p));
    ck_assert(!vg_token_is_cancelled(c2));

    ck_assert(vg__token_cancel_with(p, VG_CANCEL_SHUTDOWN));
    ck_assert_int_eq(vg_token_reason(c2), VG_CANCEL_SHUTDOWN);
    /* Already cancelled children keep their own first reason. */
    ck_assert_int_eq(vg_token_reason(c1), VG_CANCEL_TIMEOUT);
    ck_assert_int_eq(vg_token_reason(g1), VG_CANCEL_TIMEOUT);

    vg_token_unref(g1);
    vg_token_unref(c1);
    vg_token_unref(c2);
    vg_token_unref(p);
}
END_TEST

START_TEST(test_unref_child_before_parent)
{
    vg_token *p = vg_token_new();
    vg_token *c = vg_token_child(p);
    vg_token *keep = vg_token_child(p);
    atomic_int ran = 0;

    ck_assert_uint_gt(vg_token_on_cancel(c, count_cb, &ran), 0);
    /* The freed child must have left the parent's list: cancelling the
     * parent afterwards must not touch it (ASan would see it). */
    vg_token_unref(c);
    vg_token_cancel(p);
    ck_assert_int_eq(loadi(&ran), 0);
    ck_assert(vg_token_is_cancelled(keep));
    vg_token_unref(keep);
    vg_token_unref(p);
}
END_TEST

START_TEST(test_unref_parent_before_child)
{
    vg_token *p = vg_token_new();
    vg_token *c = vg_token_child(p);
    vg_token *g;
    atomic_int parent_ran = 0;

    ck_assert_uint_gt(vg_token_on_cancel(p, count_cb, &parent_ran), 0);
    /* Only the child holds the parent now; it must stay alive, since the
     * child still reaches it to create grandchildren and to unlink. */
    vg_token_unref(p);
    g = vg_token_child(c);
    ck_assert_ptr_nonnull(g);
    vg_token_cancel(c);
    ck_assert(vg_token_is_cancelled(g));
    vg_token_unref(c);
    vg_token_unref(g);
    /* The parent was freed with its callback pending: it never runs. */
    ck_assert_int_eq(loadi(&parent_ran), 0);
}
END_TEST

START_TEST(test_child_null_parent)
{
    errno = 0;
    ck_assert_ptr_null(vg_token_child(NULL));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_long_chain)
{
    enum { DEPTH = 20000 };
    vg_token *root = vg_token_new();
    vg_token *leaf = root, *next;
    int i;

    /* Each link keeps only its child's reference on it, so the whole
     * chain hangs off the leaf. Cancelling and freeing it must not
     * recurse once per level. */
    for (i = 0; i < DEPTH; i++) {
        next = vg_token_child(leaf);
        ck_assert_ptr_nonnull(next);
        if (leaf != root)
            vg_token_unref(leaf);
        leaf = next;
    }
    vg__token_cancel_with(root, VG_CANCEL_SHUTDOWN);
    ck_assert_int_eq(vg_token_reason(leaf), VG_CANCEL_SHUTDOWN);
    vg_token_unref(root);
    vg_token_unref(leaf);
}
END_TEST

/* ------------------------------------------------------------------------
 * Callbacks
 */

START_TEST(test_callback_runs_once)
{
    vg_token *tok = vg_token_new();
    struct seen s = { .calls = 0 };

    ck_assert_uint_gt(vg_token_on_cancel(tok, record_cb, &s), 0);
    ck_assert_int_eq(loadi(&s.calls), 0);
    vg__token_cancel_with(tok, VG_CANCEL_TIMEOUT);
    ck_assert_int_eq(loadi(&s.calls), 1);
    ck_assert_ptr_eq(s.tok, tok);
    ck_assert(pthread_equal(s.thread, pthread_self()));
    ck_assert_int_eq(s.reason, VG_CANCEL_TIMEOUT);
    vg_token_cancel(tok);
    vg__token_cancel_with(tok, VG_CANCEL_SHUTDOWN);
    ck_assert_int_eq(loadi(&s.calls), 1);
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_callback_at_once_when_cancelled)
{
    vg_token *tok = vg_token_new();
    struct seen s = { .calls = 0 };
    unsigned long id;

    vg_token_cancel(tok);
    s.thread = (pthread_t)0;
    id = vg_token_on_cancel(tok, record_cb, &s);
    ck_assert_uint_gt(id, 0);
    ck_assert_int_eq(loadi(&s.calls), 1);
    ck_assert(pthread_equal(s.thread, pthread_self()));
    ck_assert_ptr_eq(s.tok, tok);
    ck_assert_int_eq(s.reason, VG_CANCEL_MANUAL);
    /* It already ran, so it cannot be removed. */
    ck_assert(!vg_token_off(tok, id));
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_callbacks_in_registration_order)
{
    vg_token *tok = vg_token_new();
    struct order_log log = { .n = 0 };
    struct order_entry e[6];
    int i;

    for (i = 0; i < 6; i++) {
        e[i].log = &log;
        e[i].value = i;
        ck_assert_uint_gt(vg_token_on_cancel(tok, order_cb, &e[i]), 0);
    }
    vg_token_cancel(tok);
    ck_assert_int_eq(log.n, 6);
    for (i = 0; i < 6; i++)
        ck_assert_int_eq(log.seq[i], i);
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_off_removes_callback)
{
    vg_token *tok = vg_token_new();
    atomic_int a = 0, b = 0, c = 0;
    unsigned long ida, idb, idc;

    ida = vg_token_on_cancel(tok, count_cb, &a);
    idb = vg_token_on_cancel(tok, count_cb, &b);
    idc = vg_token_on_cancel(tok, count_cb, &c);
    /* Middle, last, then register again: the list's tail must stay right. */
    ck_assert(vg_token_off(tok, idb));
    ck_assert(vg_token_off(tok, idc));
    ck_assert(!vg_token_off(tok, idc));
    idc = vg_token_on_cancel(tok, count_cb, &c);
    ck_assert_uint_gt(idc, 0);
    vg_token_cancel(tok);
    ck_assert_int_eq(loadi(&a), 1);
    ck_assert_int_eq(loadi(&b), 0);
    ck_assert_int_eq(loadi(&c), 1);
    ck_assert(!vg_token_off(tok, ida));
    ck_assert(!vg_token_off(tok, idb));
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_off_unknown_id)
{
    vg_token *tok = vg_token_new();
    vg_token *other = vg_token_new();
    atomic_int ran = 0;
    unsigned long id = vg_token_on_cancel(other, count_cb, &ran);

    ck_assert(!vg_token_off(tok, 0));
    ck_assert(!vg_token_off(tok, id));  /* another token's id */
    ck_assert(!vg_token_off(NULL, id));
    vg_token_cancel(other);
    ck_assert_int_eq(loadi(&ran), 1);
    vg_token_unref(other);
    vg_token_unref(tok);
}
END_TEST

/* A callback that removes itself and a later callback of its token. */
struct self_off {
    unsigned long own_id;
    unsigned long later_id;
    int own_result;
    int later_result;
};

static void self_off_cb(vg_token *tok, void *arg)
{
    struct self_off *so = arg;

    so->own_result = vg_token_off(tok, so->own_id);
    so->later_result = vg_token_off(tok, so->later_id);
}

START_TEST(test_off_inside_callback)
{
    vg_token *tok = vg_token_new();
    struct self_off so = { 0, 0, -1, -1 };
    atomic_int later_ran = 0;

    so.own_id = vg_token_on_cancel(tok, self_off_cb, &so);
    so.later_id = vg_token_on_cancel(tok, count_cb, &later_ran);
    vg_token_cancel(tok); /* would hang if off waited for itself */
    ck_assert_int_eq(so.own_result, 0);
    ck_assert_int_eq(so.later_result, 1);
    ck_assert_int_eq(loadi(&later_ran), 0);
    vg_token_unref(tok);
}
END_TEST

/* A callback that blocks until the test releases it. */
struct blocker {
    struct flag entered;
    struct flag release;
    atomic_int finished;
};

static void blocking_cb(vg_token *tok, void *arg)
{
    struct blocker *b = arg;

    (void)tok;
    flag_set(&b->entered);
    flag_wait(&b->release);
    atomic_store(&b->finished, 1);
}

static void *cancel_thread(void *arg)
{
    vg_token_cancel(arg);
    return NULL;
}

struct off_call {
    vg_token *tok;
    unsigned long id;
    struct blocker *b;
    struct flag started;
    struct flag returned;
    bool result;
    int finished_at_return;
};

static void *off_thread(void *arg)
{
    struct off_call *o = arg;

    flag_set(&o->started);
    o->result = vg_token_off(o->tok, o->id);
    o->finished_at_return = loadi(&o->b->finished);
    flag_set(&o->returned);
    return NULL;
}

START_TEST(test_off_waits_for_running_callback)
{
    vg_token *tok = vg_token_new();
    struct blocker b;
    struct off_call o;
    pthread_t canceller, offer;

    flag_init(&b.entered);
    flag_init(&b.release);
    atomic_init(&b.finished, 0);
    flag_init(&o.started);
    flag_init(&o.returned);
    o.tok = tok;
    o.b = &b;
    o.id = vg_token_on_cancel(tok, blocking_cb, &b);
    ck_assert_uint_gt(o.id, 0);

    ck_assert_int_eq(pthread_create(&canceller, NULL, cancel_thread, tok), 0);
    flag_wait(&b.entered);
    ck_assert_int_eq(pthread_create(&offer, NULL, off_thread, &o), 0);
    flag_wait(&o.started);
    /* Not synchronisation but a negative check: while the callback is
     * held, vg_token_off must not come back, however long we look. */
    ck_assert(!flag_wait_for(&o.returned, 200));
    ck_assert_int_eq(loadi(&b.finished), 0);
    flag_set(&b.release);
    pthread_join(offer, NULL);
    pthread_join(canceller, NULL);

    ck_assert(!o.result);
    ck_assert_int_eq(o.finished_at_return, 1);

    flag_destroy(&o.returned);
    flag_destroy(&o.started);
    flag_destroy(&b.release);
    flag_destroy(&b.entered);
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_off_pending_while_another_runs)
{
    vg_token *tok = vg_token_new();
    struct blocker b;
    atomic_int later_ran = 0;
    unsigned long later;
    pthread_t canceller;

    flag_init(&b.entered);
    flag_init(&b.release);
    atomic_init(&b.finished, 0);
    ck_assert_uint_gt(vg_token_on_cancel(tok, blocking_cb, &b), 0);
    later = vg_token_on_cancel(tok, count_cb, &later_ran);

    ck_assert_int_eq(pthread_create(&canceller, NULL, cancel_thread, tok), 0);
    flag_wait(&b.entered);
    /* The first callback is running: the second has not started, so it
     * can still be removed, and that does not wait for the first. */
    ck_assert(vg_token_off(tok, later));
    flag_set(&b.release);
    pthread_join(canceller, NULL);
    ck_assert_int_eq(loadi(&later_ran), 0);

    flag_destroy(&b.release);
    flag_destroy(&b.entered);
    vg_token_unref(tok);
}
END_TEST

/* A callback that uses other token functions on the cancelling thread. */
struct reentrant {
    vg_token *other;
    vg_token *owned;        /* a reference the callback owns and drops */
    atomic_int late_ran;
    bool saw_cancelled;
};

static void reentrant_cb(vg_token *tok, void *arg)
{
    struct reentrant *r = arg;
    vg_token *extra = vg_token_ref(tok);

    r->saw_cancelled = vg_token_is_cancelled(extra) && vg_token_wait(tok, 0);
    vg_token_unref(extra);
    vg_token_cancel(r->other);
    vg_token_cancel(tok);
    vg_token_on_cancel(tok, count_cb, &r->late_ran);
    vg_token_unref(r->owned);
}

START_TEST(test_callback_may_use_tokens)
{
    vg_token *tok = vg_token_new();
    struct reentrant r = { .late_ran = 0 };
    atomic_int other_ran = 0;

    r.other = vg_token_new();
    r.owned = vg_token_ref(tok);
    ck_assert_uint_gt(vg_token_on_cancel(r.other, count_cb, &other_ran), 0);
    ck_assert_uint_gt(vg_token_on_cancel(tok, reentrant_cb, &r), 0);
    vg_token_cancel(tok);
    ck_assert(r.saw_cancelled);
    ck_assert(vg_token_is_cancelled(r.other));
    ck_assert_int_eq(loadi(&other_ran), 1);
    ck_assert_int_eq(loadi(&r.late_ran), 1);
    vg_token_unref(r.other);
    vg_token_unref(tok);
}
END_TEST

static void unref_self_cb(vg_token *tok, void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    vg_token_unref(tok);
}

START_TEST(test_callback_drops_last_reference)
{
    vg_token *tok = vg_token_new();
    vg_token *p = vg_token_new();
    vg_token *c = vg_token_child(p);
    atomic_int ran = 0;

    /* The callback owns the token's only reference; the cancel below uses
     * a borrowed pointer, and must not touch the token after the callback
     * freed it (ASan and valgrind watch). */
    ck_assert_uint_gt(vg_token_on_cancel(tok, unref_self_cb, &ran), 0);
    vg_token_cancel(tok);
    ck_assert_int_eq(loadi(&ran), 1);

    /* Likewise for a child whose only reference is dropped while its
     * parent's cancellation is still walking it. */
    ck_assert_uint_gt(vg_token_on_cancel(c, unref_self_cb, &ran), 0);
    vg_token_cancel(p);
    ck_assert_int_eq(loadi(&ran), 2);
    vg_token_unref(p);
}
END_TEST

START_TEST(test_callback_ids_distinct)
{
    enum { N = 64 };
    vg_token *a = vg_token_new();
    vg_token *b = vg_token_new();
    unsigned long ids[N];
    atomic_int ran = 0;
    int i, j;

    vg_token_cancel(b);
    for (i = 0; i < N; i++) {
        /* Alternate a live token and one that runs the callback at once. */
        ids[i] = vg_token_on_cancel(i % 2 ? b : a, count_cb, &ran);
        ck_assert_uint_gt(ids[i], 0);
    }
    for (i = 0; i < N; i++)
        for (j = i + 1; j < N; j++)
            ck_assert_uint_ne(ids[i], ids[j]);
    ck_assert_int_eq(loadi(&ran), N / 2);
    vg_token_cancel(a);
    ck_assert_int_eq(loadi(&ran), N);
    vg_token_unref(a);
    vg_token_unref(b);
}
END_TEST

START_TEST(test_pending_callbacks_freed_unrun)
{
    vg_token *tok = vg_token_new();
    atomic_int ran = 0;
    int i;

    for (i = 0; i < 8; i++)
        ck_assert_uint_gt(vg_token_on_cancel(tok, count_cb, &ran), 0);
    vg_token_unref(tok); /* the leak checkers see the list is freed */
    ck_assert_int_eq(loadi(&ran), 0);
}
END_TEST

START_TEST(test_on_cancel_null_args)
{
    vg_token *tok = vg_token_new();
    atomic_int ran = 0;

    errno = 0;
    ck_assert_uint_eq(vg_token_on_cancel(NULL, count_cb, &ran), 0);
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_uint_eq(vg_token_on_cancel(tok, NULL, &ran), 0);
    ck_assert_int_eq(errno, EINVAL);
    vg_token_cancel(tok);
    errno = 0;
    ck_assert_uint_eq(vg_token_on_cancel(tok, NULL, &ran), 0);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(loadi(&ran), 0);
    vg_token_unref(tok);
}
END_TEST

/* ------------------------------------------------------------------------
 * Waiting
 */

START_TEST(test_wait_times_out)
{
    vg_token *tok = vg_token_new();
    long long t0 = now_ms();

    ck_assert(!vg_token_wait(tok, 120));
    ck_assert_int_ge(now_ms() - t0, 120);
    t0 = now_ms();
    ck_assert(!vg_token_wait(tok, 1));
    ck_assert_int_ge(now_ms() - t0, 1);
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_wait_zero)
{
    vg_token *tok = vg_token_new();

    ck_assert(!vg_token_wait(tok, 0));
    vg_token_cancel(tok);
    ck_assert(vg_token_wait(tok, 0));
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_wait_when_already_cancelled)
{
    vg_token *tok = vg_token_new();
    long long t0;

    vg_token_cancel(tok);
    t0 = now_ms();
    ck_assert(vg_token_wait(tok, 60000));
    ck_assert(vg_token_wait(tok, -1));
    ck_assert_int_lt(now_ms() - t0, 10000);
    vg_token_unref(tok);
}
END_TEST

struct waiter {
    vg_token *tok;
    int timeout_ms;
    struct flag *started;
    bool result;
    long long elapsed_ms;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    long long t0 = now_ms();

    flag_set(w->started);
    w->result = vg_token_wait(w->tok, w->timeout_ms);
    w->elapsed_ms = now_ms() - t0;
    return NULL;
}

/* Starts `n` threads waiting on `wait_on`, cancels `cancel`, joins them. */
static void wait_woken_by(vg_token *wait_on, vg_token *cancel, int timeout_ms,
                          struct waiter *w, int n)
{
    pthread_t th[8];
    struct flag started[8];
    int i;

    for (i = 0; i < n; i++) {
        flag_init(&started[i]);
        w[i].tok = wait_on;
        w[i].timeout_ms = timeout_ms;
        w[i].started = &started[i];
        w[i].result = false;
        ck_assert_int_eq(pthread_create(&th[i], NULL, wait_thread, &w[i]), 0);
    }
    for (i = 0; i < n; i++)
        flag_wait(&started[i]);
    vg_token_cancel(cancel);
    for (i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        flag_destroy(&started[i]);
    }
}

START_TEST(test_wait_forever_woken_by_cancel)
{
    vg_token *tok = vg_token_new();
    struct waiter w[4];
    int i;

    wait_woken_by(tok, tok, -1, w, 4);
    for (i = 0; i < 4; i++)
        ck_assert(w[i].result);
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_wait_timed_woken_by_parent)
{
    vg_token *p = vg_token_new();
    vg_token *c = vg_token_child(p);
    struct waiter w[1];

    wait_woken_by(c, p, 60000, w, 1);
    ck_assert(w[0].result);
    ck_assert_int_lt(w[0].elapsed_ms, 30000);
    vg_token_unref(c);
    vg_token_unref(p);
}
END_TEST

/* ------------------------------------------------------------------------
 * File descriptor
 */

START_TEST(test_fd_readable_on_cancel)
{
    vg_token *tok = vg_token_new();
    int fd = vg_token_fd(tok);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(vg_token_fd(tok), fd);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    ck_assert(!poll_readable(fd, 0));
    vg_token_cancel(tok);
    ck_assert(poll_readable(fd, 0));
    ck_assert(poll_readable(fd, 0)); /* stays readable */
    ck_assert_int_eq(vg_token_fd(tok), fd);
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_fd_after_cancel_readable)
{
    vg_token *tok = vg_token_new();
    int fd;

    vg__token_cancel_with(tok, VG_CANCEL_CLIENT_GONE);
    fd = vg_token_fd(tok);
    ck_assert_int_ge(fd, 0);
    ck_assert(poll_readable(fd, 0));
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_fd_child_readable_when_parent_cancelled)
{
    vg_token *p = vg_token_new();
    vg_token *c = vg_token_child(p);
    int fd = vg_token_fd(c);

    ck_assert_int_ge(fd, 0);
    ck_assert(!poll_readable(fd, 0));
    vg_token_cancel(p);
    ck_assert(poll_readable(fd, 0));
    vg_token_unref(c);
    vg_token_unref(p);
}
END_TEST

START_TEST(test_fd_out_of_descriptors)
{
    vg_token *tok = vg_token_new();
    struct rlimit saved, none;
    int fd;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    none = saved;
    none.rlim_cur = 0;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &none), 0);
    fd = vg_token_fd(tok);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
    ck_assert_int_eq(fd, -EMFILE);

    /* The failure is not remembered: a later call gets a working fd. */
    fd = vg_token_fd(tok);
    ck_assert_int_ge(fd, 0);
    vg_token_cancel(tok);
    ck_assert(poll_readable(fd, 0));
    vg_token_unref(tok);
}
END_TEST

START_TEST(test_fd_null)
{
    ck_assert_int_eq(vg_token_fd(NULL), -EINVAL);
}
END_TEST

struct poller {
    int fd;
    struct flag started;
    int rc;
    short revents;
};

static void *poll_thread(void *arg)
{
    struct poller *pl = arg;
    struct pollfd p = { .fd = pl->fd, .events = POLLIN };

    flag_set(&pl->started);
    /* The limit only keeps a broken token from hanging the test. */
    pl->rc = poll(&p, 1, 30000);
    pl->revents = p.revents;
    return NULL;
}

START_TEST(test_fd_wakes_poller)
{
    vg_token *tok = vg_token_new();
    struct poller pl = { .rc = -2 };
    pthread_t th;

    pl.fd = vg_token_fd(tok);
    ck_assert_int_ge(pl.fd, 0);
    flag_init(&pl.started);
    ck_assert_int_eq(pthread_create(&th, NULL, poll_thread, &pl), 0);
    flag_wait(&pl.started);
    vg_token_cancel(tok);
    pthread_join(th, NULL);
    ck_assert_int_eq(pl.rc, 1);
    ck_assert(pl.revents & POLLIN);
    flag_destroy(&pl.started);
    vg_token_unref(tok);
}
END_TEST

/* The order volga.h promises: the token and its children are seen
 * cancelled, by vg_token_wait and the fd, while a callback of the token is
 * still running. The callback is held until the test has looked; if
 * waiters were woken only after callbacks, the waits below would time out
 * (bounded) and the test would fail instead of hanging. */
START_TEST(test_waiters_woken_before_callbacks_run)
{
    vg_token *tok = vg_token_new();
    vg_token *kid = vg_token_child(tok);
    struct blocker b;
    struct pollfd p;
    pthread_t canceller;
    unsigned long id;

    ck_assert_ptr_nonnull(kid);
    flag_init(&b.entered);
    flag_init(&b.release);
    atomic_init(&b.finished, 0);
    id = vg_token_on_cancel(tok, blocking_cb, &b);
    ck_assert_uint_gt(id, 0);
    p.fd = vg_token_fd(kid);
    ck_assert_int_ge(p.fd, 0);
    p.events = POLLIN;

    ck_assert_int_eq(pthread_create(&canceller, NULL, cancel_thread, tok), 0);
    ck_assert(vg_token_wait(tok, 10000));
    ck_assert(vg_token_wait(kid, 10000));
    ck_assert_int_eq(poll(&p, 1, 10000), 1);
    ck_assert_int_eq(loadi(&b.finished), 0);

    /* The canceller may not have reached the callback yet: let it start
     * (else vg_token_off would remove it unrun), then let it finish. */
    flag_wait(&b.entered);
    flag_set(&b.release);
    ck_assert(!vg_token_off(tok, id)); /* returns once the callback has */
    ck_assert_int_eq(loadi(&b.finished), 1);
    pthread_join(canceller, NULL);

    flag_destroy(&b.release);
    flag_destroy(&b.entered);
    vg_token_unref(kid);
    vg_token_unref(tok);
}
END_TEST

struct depth_log {
    atomic_int next;
    int parent_at, kid_at, grandkid_at;
};

static void log_parent(vg_token *tok, void *arg)
{
    struct depth_log *l = arg;
    (void)tok;
    l->parent_at = atomic_fetch_add(&l->next, 1);
}

static void log_kid(vg_token *tok, void *arg)
{
    struct depth_log *l = arg;
    (void)tok;
    l->kid_at = atomic_fetch_add(&l->next, 1);
}

static void log_grandkid(vg_token *tok, void *arg)
{
    struct depth_log *l = arg;
    (void)tok;
    l->grandkid_at = atomic_fetch_add(&l->next, 1);
}

/* Callbacks run parents before children, whatever order they were
 * registered in. */
START_TEST(test_callbacks_run_parents_first)
{
    vg_token *tok = vg_token_new();
    vg_token *kid = vg_token_child(tok);
    vg_token *grandkid = vg_token_child(kid);
    struct depth_log l = { .parent_at = -1, .kid_at = -1, .grandkid_at = -1 };

    atomic_init(&l.next, 0);
    ck_assert_uint_gt(vg_token_on_cancel(grandkid, log_grandkid, &l), 0);
    ck_assert_uint_gt(vg_token_on_cancel(kid, log_kid, &l), 0);
    ck_assert_uint_gt(vg_token_on_cancel(tok, log_parent, &l), 0);
    vg_token_cancel(tok);
    ck_assert_int_eq(l.parent_at, 0);
    ck_assert_int_eq(l.kid_at, 1);
    ck_assert_int_eq(l.grandkid_at, 2);
    ck_assert_int_eq(vg_token_reason(grandkid), VG_CANCEL_MANUAL);
    vg_token_unref(grandkid);
    vg_token_unref(kid);
    vg_token_unref(tok);
}
END_TEST

/* ------------------------------------------------------------------------
 * Races
 */

struct racer {
    vg_token *tok;
    pthread_barrier_t *go;
    vg_cancel_reason reason;
    bool won;
    bool cancelled_after;
};

static void *race_cancel_thread(void *arg)
{
    struct racer *r = arg;

    pthread_barrier_wait(r->go);
    r->won = vg__token_cancel_with(r->tok, r->reason);
    r->cancelled_after = vg_token_is_cancelled(r->tok);
    return NULL;
}

START_TEST(test_race_cancel_eight_threads)
{
    enum { THREADS = 8 };
    static const vg_cancel_reason reasons[] = {
        VG_CANCEL_CLIENT_GONE, VG_CANCEL_TIMEOUT, VG_CANCEL_SHUTDOWN,
        VG_CANCEL_MANUAL
    };
    int round, i;

    for (round = 0; round < 100; round++) {
        vg_token *tok = vg_token_new();
        vg_token *kid = vg_token_child(tok);
        pthread_barrier_t go;
        pthread_t th[THREADS];
        struct racer r[THREADS];
        atomic_int ran = 0, kid_ran = 0;
        int winners = 0;
        vg_cancel_reason winner = VG_CANCEL_NONE;

        vg_token_on_cancel(tok, count_cb, &ran);
        vg_token_on_cancel(kid, count_cb, &kid_ran);
        pthread_barrier_init(&go, NULL, THREADS);
        for (i = 0; i < THREADS; i++) {
            r[i].tok = tok;
            r[i].go = &go;
            r[i].reason = reasons[i % 4];
            ck_assert_int_eq(pthread_create(&th[i], NULL, race_cancel_thread,
                                            &r[i]), 0);
        }
        for (i = 0; i < THREADS; i++)
            pthread_join(th[i], NULL);
        for (i = 0; i < THREADS; i++) {
            ck_assert(r[i].cancelled_after);
            if (r[i].won) {
                winners++;
                winner = r[i].reason;
            }
        }
        ck_assert_int_eq(winners, 1);
        ck_assert_int_eq(vg_token_reason(tok), winner);
        ck_assert_int_eq(vg_token_reason(kid), winner);
        ck_assert_int_eq(loadi(&ran), 1);
        ck_assert_int_eq(loadi(&kid_ran), 1);
        pthread_barrier_destroy(&go);
        vg_token_unref(kid);
        vg_token_unref(tok);
    }
}
END_TEST

/*
 * One side makes children of a shared parent and drops them at once, back
 * to back until it sees the parent cancelled (so that some child is being
 * freed just as the canceller walks the parent's list), keeping the first
 * and the last; the other cancels the parent. Both drop their references to
 * the parent, so it is freed by whichever token lets go of it last.
 */
struct kid_maker {
    vg_token *parent;
    pthread_barrier_t *go;
    vg_token *kept[2];
    atomic_int kept_ran[2];
    atomic_int dropped_ran;
    int dropped;
};

static void *make_kids_thread(void *arg)
{
    struct kid_maker *m = arg;
    bool last = false;
    int i;

    pthread_barrier_wait(m->go);
    for (i = 0; !last; i++) {
        vg_token *kid = vg_token_child(m->parent);

        last = i > 0 && (vg_token_is_cancelled(m->parent) || i == 1000);
        if (i == 0 || last) {
            vg_token_on_cancel(kid, count_cb, &m->kept_ran[i == 0 ? 0 : 1]);
            m->kept[i == 0 ? 0 : 1] = kid;
        } else {
            vg_token_on_cancel(kid, count_cb, &m->dropped_ran);
            vg_token_unref(kid);
            m->dropped++;
        }
    }
    vg_token_unref(m->parent);
    return NULL;
}

struct parent_canceller {
    vg_token *parent;
    pthread_barrier_t *go;
};

static void *cancel_parent_thread(void *arg)
{
    struct parent_canceller *pc = arg;

    pthread_barrier_wait(pc->go);
    vg__token_cancel_with(pc->parent, VG_CANCEL_SHUTDOWN);
    vg_token_unref(pc->parent);
    return NULL;
}

START_TEST(test_race_children_vs_parent_cancel)
{
    int round, i;

    for (round = 0; round < RACE_ROUNDS; round++) {
        vg_token *parent = vg_token_new();
        pthread_barrier_t go;
        pthread_t maker, canceller;
        struct kid_maker m = { .kept_ran = { 0, 0 }, .dropped_ran = 0,
                               .dropped = 0 };
        struct parent_canceller pc;

        pthread_barrier_init(&go, NULL, 2);
        m.parent = vg_token_ref(parent);
        m.go = &go;
        pc.parent = vg_token_ref(parent);
        pc.go = &go;
        vg_token_unref(parent); /* from here on the threads own it */
        ck_assert_int_eq(pthread_create(&maker, NULL, make_kids_thread, &m),
                         0);
        ck_assert_int_eq(pthread_create(&canceller, NULL,
                                        cancel_parent_thread, &pc), 0);
        pthread_join(maker, NULL);
        pthread_join(canceller, NULL);

        ck_assert_int_le(loadi(&m.dropped_ran), m.dropped);
        for (i = 0; i < 2; i++) {
            ck_assert_int_eq(vg_token_reason(m.kept[i]), VG_CANCEL_SHUTDOWN);
            ck_assert_int_eq(loadi(&m.kept_ran[i]), 1);
        }
        vg_token_unref(m.kept[0]);
        vg_token_unref(m.kept[1]); /* frees the parent */
        pthread_barrier_destroy(&go);
    }
}
END_TEST

/*
 * Registers callbacks back to back until the token is cancelled, then one
 * more, so that some registration is likely to straddle the cancel: each
 * one must run exactly once, whichever side of it the cancel falls.
 */
struct registrar {
    vg_token *tok;
    pthread_barrier_t *go;
    atomic_int *ran;
    int registered;
    bool bad_id;
};

static void *register_thread(void *arg)
{
    struct registrar *rg = arg;
    bool last = false;

    pthread_barrier_wait(rg->go);
    while (!last && rg->registered < 1000) {
        last = vg_token_is_cancelled(rg->tok);
        if (vg_token_on_cancel(rg->tok, count_cb, rg->ran) == 0)
            rg->bad_id = true;
        rg->registered++;
    }
    return NULL;
}

static void *barrier_cancel_thread(void *arg)
{
    struct parent_canceller *pc = arg;

    pthread_barrier_wait(pc->go);
    vg_token_cancel(pc->parent);
    return NULL;
}

START_TEST(test_race_on_cancel_vs_cancel)
{
    int round;

    for (round = 0; round < RACE_ROUNDS; round++) {
        vg_token *tok = vg_token_new();
        pthread_barrier_t go;
        pthread_t reg, can;
        atomic_int ran = 0;
        struct registrar rg = { tok, &go, &ran, 0, false };
        struct parent_canceller pc = { tok, &go };

        pthread_barrier_init(&go, NULL, 2);
        ck_assert_int_eq(pthread_create(&reg, NULL, register_thread, &rg), 0);
        ck_assert_int_eq(pthread_create(&can, NULL, barrier_cancel_thread,
                                        &pc), 0);
        pthread_join(reg, NULL);
        pthread_join(can, NULL);
        ck_assert(!rg.bad_id);
        ck_assert_int_eq(loadi(&ran), rg.registered);
        pthread_barrier_destroy(&go);
        vg_token_unref(tok);
    }
}
END_TEST

struct offer {
    vg_token *tok;
    pthread_barrier_t *go;
    atomic_int *ran;
    unsigned long id;
    bool removed;
    int ran_at_return;
};

static void *race_off_thread(void *arg)
{
    struct offer *o = arg;

    pthread_barrier_wait(o->go);
    o->removed = vg_token_off(o->tok, o->id);
    o->ran_at_return = loadi(o->ran);
    return NULL;
}

START_TEST(test_race_off_vs_cancel)
{
    int round;

    for (round = 0; round < RACE_ROUNDS; round++) {
        vg_token *tok = vg_token_new();
        pthread_barrier_t go;
        pthread_t off, can;
        atomic_int ran = 0;
        struct offer o = { tok, &go, &ran, 0, false, -1 };
        struct parent_canceller pc = { tok, &go };

        o.id = vg_token_on_cancel(tok, count_cb, &ran);
        pthread_barrier_init(&go, NULL, 2);
        ck_assert_int_eq(pthread_create(&off, NULL, race_off_thread, &o), 0);
        ck_assert_int_eq(pthread_create(&can, NULL, barrier_cancel_thread,
                                        &pc), 0);
        pthread_join(off, NULL);
        pthread_join(can, NULL);
        /* Removed, or ran to completion before off returned: never both,
         * never neither. */
        ck_assert_int_eq((int)o.removed + loadi(&ran), 1);
        ck_assert_int_eq(o.ran_at_return, o.removed ? 0 : 1);
        pthread_barrier_destroy(&go);
        vg_token_unref(tok);
    }
}
END_TEST

/* ------------------------------------------------------------------------
 * Suite
 */

static Suite *token_suite(void)
{
    Suite *s = suite_create("token");
    TCase *tc;

    tc = tcase_create("cancel");
    tcase_add_test(tc, test_reason_names);
    tcase_add_test(tc, test_new_is_not_cancelled);
    tcase_add_test(tc, test_cancel_is_manual);
    tcase_add_test(tc, test_cancel_idempotent_keeps_first_reason);
    tcase_add_test(tc, test_cancel_with_none_is_refused);
    tcase_add_test(tc, test_ref_counting);
    suite_add_tcase(s, tc);

    tc = tcase_create("children");
    tcase_add_test(tc, test_children_follow_parent);
    tcase_add_test(tc, test_child_born_cancelled);
    tcase_add_test(tc, test_child_never_cancels_parent);
    tcase_add_test(tc, test_unref_child_before_parent);
    tcase_add_test(tc, test_unref_parent_before_child);
    tcase_add_test(tc, test_child_null_parent);
    tcase_add_test(tc, test_long_chain);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("callbacks");
    tcase_add_test(tc, test_callback_runs_once);
    tcase_add_test(tc, test_callback_at_once_when_cancelled);
    tcase_add_test(tc, test_callbacks_in_registration_order);
    tcase_add_test(tc, test_off_removes_callback);
    tcase_add_test(tc, test_off_unknown_id);
    tcase_add_test(tc, test_off_inside_callback);
    tcase_add_test(tc, test_off_waits_for_running_callback);
    tcase_add_test(tc, test_waiters_woken_before_callbacks_run);
    tcase_add_test(tc, test_callbacks_run_parents_first);
    tcase_add_test(tc, test_off_pending_while_another_runs);
    tcase_add_test(tc, test_callback_may_use_tokens);
    tcase_add_test(tc, test_callback_drops_last_reference);
    tcase_add_test(tc, test_callback_ids_distinct);
    tcase_add_test(tc, test_pending_callbacks_freed_unrun);
    tcase_add_test(tc, test_on_cancel_null_args);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("wait");
    tcase_add_test(tc, test_wait_times_out);
    tcase_add_test(tc, test_wait_zero);
    tcase_add_test(tc, test_wait_when_already_cancelled);
    tcase_add_test(tc, test_wait_forever_woken_by_cancel);
    tcase_add_test(tc, test_wait_timed_woken_by_parent);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("fd");
    tcase_add_test(tc, test_fd_readable_on_cancel);
    tcase_add_test(tc, test_fd_after_cancel_readable);
    tcase_add_test(tc, test_fd_child_readable_when_parent_cancelled);
    tcase_add_test(tc, test_fd_null);
    tcase_add_test(tc, test_fd_out_of_descriptors);
    tcase_add_test(tc, test_fd_wakes_poller);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("races");
    tcase_add_test(tc, test_race_cancel_eight_threads);
    tcase_add_test(tc, test_race_children_vs_parent_cancel);
    tcase_add_test(tc, test_race_on_cancel_vs_cancel);
    tcase_add_test(tc, test_race_off_vs_cancel);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(token_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
