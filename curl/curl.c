/*
 * curl.c - libvolga-curl: libcurl transfers that stop when a token is
 * cancelled (see volga-curl.h for the contract).
 *
 * Written against the public APIs of libvolga and libcurl only. A transfer
 * runs on a multi handle and the wait between two curl_multi_perform calls
 * is a curl_multi_poll that also watches the token's eventfd, so a cancel
 * wakes it within a scheduling delay; the transfers still running are then
 * removed from the multi handle, and libcurl closes a connection whose
 * transfer is removed before its end ("premature"), which is what tells
 * the upstream that its client has gone.
 *
 * Each thread keeps one multi handle (a pthread key frees it at thread
 * exit): the multi handle owns libcurl's connection cache, so keeping it
 * lets the next call on the thread reuse a kept-alive connection instead
 * of opening a new one per call. A call made while the thread's handle is
 * in use (from inside a transfer's callback) gets a multi handle of its
 * own, since libcurl forbids re-entering curl_multi_perform.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volga-curl.h"

/* How long one curl_multi_poll may sleep when libcurl has no timer due
 * sooner (it shortens the wait to its own next timeout by itself): only a
 * safety bound, since the transfers' sockets and the token both wake it. */
#define VG__POLL_MS 60000
/* The sleep when the token has neither a descriptor nor room for a
 * callback (out of descriptors and memory): cancellation is then noticed
 * within this long. */
#define VG__POLL_BLIND_MS 20

static pthread_key_t vg__curl_key;
static pthread_once_t vg__curl_once = PTHREAD_ONCE_INIT;
static bool vg__curl_key_ok;
static __thread bool vg__curl_busy;

static void vg__curl_thread_exit(void *multi)
{
    curl_multi_cleanup(multi);
}

static void vg__curl_key_init(void)
{
    vg__curl_key_ok = pthread_key_create(&vg__curl_key, vg__curl_thread_exit) == 0;
}

/* The calling thread's multi handle, made on first use; NULL on ENOMEM. */
static CURLM *vg__curl_thread_multi(void)
{
    CURLM *m;

    pthread_once(&vg__curl_once, vg__curl_key_init);
    if (!vg__curl_key_ok)
        return NULL;
    m = pthread_getspecific(vg__curl_key);
    if (m == NULL) {
        m = curl_multi_init();
        if (m != NULL && pthread_setspecific(vg__curl_key, m) != 0) {
            curl_multi_cleanup(m);
            m = NULL;
        }
    }
    return m;
}

void vg_curl_thread_cleanup(void)
{
    CURLM *m;

    pthread_once(&vg__curl_once, vg__curl_key_init);
    if (!vg__curl_key_ok || vg__curl_busy)
        return;
    m = pthread_getspecific(vg__curl_key);
    if (m != NULL) {
        pthread_setspecific(vg__curl_key, NULL);
        curl_multi_cleanup(m);
    }
}

/* Runs on the cancelling thread when the token's fd could not be had:
 * curl_multi_wakeup is the one multi call libcurl allows from another
 * thread. */
static void vg__curl_wake(vg_token *tok, void *multi)
{
    (void)tok;
    curl_multi_wakeup(multi);
}

/* One fan-out in progress. */
typedef struct {
    CURLM *multi;
    CURL *const *easies;
    size_t n, left;          /* transfers, and those not finished */
    CURLcode *results;
    bool *done;
    size_t added;            /* easies[0..added) are in the multi handle */
} vg__fanout;

static CURLcode vg__code_of(CURLMcode mc)
{
    return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
}

/* Marks every unfinished transfer with `code`. */
static void vg__fanout_fail_rest(vg__fanout *f, CURLcode code)
{
    size_t i;

    for (i = 0; i < f->n; i++)
        if (!f->done[i]) {
            f->results[i] = code;
            f->done[i] = true;
        }
    f->left = 0;
}

/* Collects finished transfers' results. */
static void vg__fanout_collect(vg__fanout *f)
{
    CURLMsg *msg;
    int queued;

    while ((msg = curl_multi_info_read(f->multi, &queued)) != NULL) {
        size_t i;

        if (msg->msg != CURLMSG_DONE)
            continue;
        for (i = 0; i < f->n; i++)
            if (f->easies[i] == msg->easy_handle && !f->done[i]) {
                f->results[i] = msg->data.result;
                f->done[i] = true;
                f->left--;
                break;
            }
    }
}

/* Sets each handle's timeout to the token's remaining time; false if the
 * deadline has already passed. */
static bool vg__forward_deadline(CURL *const *easies, size_t n, vg_token *tok)
{
    long left = vg_token_remaining_ms(tok);
    size_t i;

    if (left < 0)
        return true;
    if (left == 0)
        return false;
    for (i = 0; i < n; i++)
        curl_easy_setopt(easies[i], CURLOPT_TIMEOUT_MS, left);
    return true;
}

/* The wait-perform loop; returns CURLE_OK or CURLE_ABORTED_BY_CALLBACK. */
static CURLcode vg__fanout_run(vg__fanout *f, vg_token *tok)
{
    struct curl_waitfd extra = {.events = CURL_WAIT_POLLIN};
    unsigned long cb = 0;
    int nextra = 0, running, wait_ms = VG__POLL_MS;
    CURLcode rc = CURLE_OK;

    extra.fd = vg_token_fd(tok);
    if (extra.fd >= 0)
        nextra = 1;
    else if ((cb = vg_token_on_cancel(tok, vg__curl_wake, f->multi)) == 0)
        wait_ms = VG__POLL_BLIND_MS;
    for (;;) {
        CURLMcode mc;

        if (vg_token_is_cancelled(tok)) {
            vg__fanout_fail_rest(f, CURLE_ABORTED_BY_CALLBACK);
            rc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        mc = curl_multi_perform(f->multi, &running);
        vg__fanout_collect(f);
        if (mc != CURLM_OK)
            vg__fanout_fail_rest(f, vg__code_of(mc));
        if (f->left == 0)
            break;
        mc = curl_multi_poll(f->multi, &extra, (unsigned)nextra, wait_ms, NULL);
        if (mc != CURLM_OK) {
            vg__fanout_fail_rest(f, vg__code_of(mc));
            break;
        }
    }
    /* After this the callback neither runs nor will: the multi handle may
     * be freed. */
    if (cb != 0)
        vg_token_off(tok, cb);
    return rc;
}

static bool vg__has_duplicates(CURL *const *easies, size_t n)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        if (easies[i] == NULL)
            return true;
        for (j = 0; j < i; j++)
            if (easies[i] == easies[j])
                return true;
    }
    return false;
}

/* Runs the fan-out on `multi`, which holds no transfer. */
static CURLcode vg__perform_on(CURLM *multi, CURL *const *easies, size_t n,
                               vg_token *tok, unsigned flags,
                               CURLcode *results)
{
    vg__fanout f = {.multi = multi, .easies = easies, .n = n, .left = n,
                    .results = results};
    CURLcode rc = CURLE_OK;
    size_t i;

    f.done = calloc(n, sizeof *f.done);
    if (f.done == NULL)
        return CURLE_OUT_OF_MEMORY;
    if (vg_token_is_cancelled(tok)) {
        vg__fanout_fail_rest(&f, CURLE_ABORTED_BY_CALLBACK);
        rc = CURLE_ABORTED_BY_CALLBACK;
        goto out;
    }
    if ((flags & VG_CURL_DEADLINE) && !vg__forward_deadline(easies, n, tok)) {
        vg__fanout_fail_rest(&f, CURLE_OPERATION_TIMEDOUT);
        goto out;
    }
    for (f.added = 0; f.added < n; f.added++) {
        CURLMcode mc = curl_multi_add_handle(multi, easies[f.added]);

        if (mc != CURLM_OK) {
            /* Nothing has run yet: undo and report, as if never started. */
            rc = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY
                                           : CURLE_BAD_FUNCTION_ARGUMENT;
            vg__fanout_fail_rest(&f, rc);
            goto out;
        }
    }
    rc = vg__fanout_run(&f, tok);
out:
    /* Removing a transfer that has not finished closes its connection. */
    for (i = 0; i < f.added; i++)
        curl_multi_remove_handle(multi, easies[i]);
    free(f.done);
    return rc;
}

CURLcode vg_curl_perform_all(CURL *const *easies, size_t n, vg_token *tok,
                             unsigned flags, CURLcode *results)
{
    CURLcode *mine = NULL, rc;
    CURLM *multi;
    bool nested = vg__curl_busy;

    if (easies == NULL || n == 0 || tok == NULL || vg__has_duplicates(easies, n))
        return CURLE_BAD_FUNCTION_ARGUMENT;
    if (results == NULL) {
        results = mine = calloc(n, sizeof *mine);
        if (mine == NULL)
            return CURLE_OUT_OF_MEMORY;
    }
    multi = nested ? curl_multi_init() : vg__curl_thread_multi();
    if (multi == NULL) {
        free(mine);
        return CURLE_OUT_OF_MEMORY;
    }
    vg__curl_busy = true;
    rc = vg__perform_on(multi, easies, n, tok, flags, results);
    vg__curl_busy = nested;
    if (nested)
        curl_multi_cleanup(multi);
    free(mine);
    return rc;
}

CURLcode vg_curl_perform_ex(CURL *easy, vg_token *tok, unsigned flags)
{
    CURLcode result = CURLE_OK, rc;

    if (easy == NULL)
        return CURLE_BAD_FUNCTION_ARGUMENT;
    rc = vg_curl_perform_all(&easy, 1, tok, flags, &result);
    return rc == CURLE_OK ? result : rc;
}

CURLcode vg_curl_perform(CURL *easy, vg_token *tok)
{
    return vg_curl_perform_ex(easy, tok, 0);
}

struct curl_slist *vg_curl_add_request_id(struct curl_slist *list,
                                          const vg_request *req)
{
    const char *id = req != NULL ? vg_request_id(req) : NULL;
    char line[160];

    /* IDs are at most 128 characters of a header-safe alphabet (the
     * request-ID filter checks them), so they fit and need no escaping;
     * anything longer is not forwarded rather than cut. */
    if (id == NULL || strlen(id) > 128)
        return list;
    snprintf(line, sizeof line, "X-Request-Id: %s", id);
    return curl_slist_append(list, line);
}
