/**
 * @file volga-curl.h
 * @brief libvolga-curl: libcurl transfers that stop when a token is
 * cancelled.
 *
 * A companion library to libvolga (pkg-config name `volga-curl`, which
 * requires `volga` and `libcurl`), so that the core keeps its two
 * dependencies. A handler that calls another service passes its request's
 * token:
 *
 * @code
 * CURL *easy = curl_easy_init();
 * curl_easy_setopt(easy, CURLOPT_URL, "http://127.0.0.1:8081/price");
 * CURLcode rc = vg_curl_perform(easy, vg_request_token(req));
 * if (rc == CURLE_ABORTED_BY_CALLBACK)     // the client left, the deadline
 *     ...                                  // passed, or the app is stopping
 * @endcode
 *
 * When the token is cancelled the transfer stops at once (the wait is a
 * curl_multi_poll() that also watches the token's descriptor) and its
 * connection is closed rather than kept for reuse, so the upstream sees
 * its client leave: an upstream that is itself a libvolga app cancels its
 * own request's token with VG_CANCEL_CLIENT_GONE, and cancellation
 * travels down a chain of services.
 *
 * Threads: every function may be called from any thread, for different
 * easy handles at the same time (libcurl's rule: one easy handle is used
 * by one thread at a time). Each thread keeps one multi handle for its
 * transfers, created on first use and freed when the thread exits (or by
 * vg_curl_thread_cleanup), so that connections to an upstream are kept
 * alive from one call to the next on the same thread, as libcurl's own
 * connection cache would. Call curl_global_init() before starting threads,
 * as libcurl asks.
 *
 * Ownership: the easy handles stay the caller's; they are added to the
 * thread's multi handle only for the duration of a call.
 */
#ifndef VOLGA_CURL_H
#define VOLGA_CURL_H

#include <stddef.h>
#include <curl/curl.h>
#include <volga.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @name Cancellable transfers
 * @{
 */

/** Flags for vg_curl_perform_ex and vg_curl_perform_all. */
enum {
    /** Before starting, set each easy handle's CURLOPT_TIMEOUT_MS to the
     *  token's remaining time (vg_token_remaining_ms), so that libcurl
     *  itself reports CURLE_OPERATION_TIMEDOUT when the deadline passes; a
     *  deadline already passed gives CURLE_OPERATION_TIMEDOUT without
     *  starting. The option stays set on the handle afterwards. Without a
     *  deadline (-1) nothing is set. */
    VG_CURL_DEADLINE = 1u << 0
};

/**
 * curl_easy_perform(easy) that stops when `tok` is cancelled: returns
 * CURLE_ABORTED_BY_CALLBACK as soon as the token is cancelled (at once,
 * without connecting, if it already is), closing the transfer's connection
 * so that the upstream sees its client leave. Otherwise returns what the
 * transfer returned (CURLE_OK, or its error), exactly as
 * curl_easy_perform would; the easy handle's callbacks run on this thread.
 * CURLE_BAD_FUNCTION_ARGUMENT for a NULL easy or token, CURLE_OUT_OF_MEMORY
 * when the thread's multi handle cannot be made. Blocks; any thread.
 */
CURLcode vg_curl_perform(CURL *easy, vg_token *tok);

/** vg_curl_perform with `flags` (VG_CURL_DEADLINE). */
CURLcode vg_curl_perform_ex(CURL *easy, vg_token *tok, unsigned flags);

/**
 * Fan-out: runs the `n` transfers `easies` at the same time, on this
 * thread, until all have finished or `tok` is cancelled; cancelling stops
 * every unfinished one at once and closes its connection. A handler that
 * wants one failure to stop the others passes a child token and cancels
 * it from a write or progress callback.
 *
 * `results` (n entries, may be NULL) receives each transfer's own code,
 * CURLE_ABORTED_BY_CALLBACK for those the cancel stopped. Returns
 * CURLE_OK when every transfer ran to its end (each may still have
 * failed: look at `results`), CURLE_ABORTED_BY_CALLBACK when the token
 * stopped them, CURLE_BAD_FUNCTION_ARGUMENT for NULL arguments, n 0 or an
 * easy handle given twice (nothing is started then), CURLE_OUT_OF_MEMORY.
 * Blocks; any thread.
 */
CURLcode vg_curl_perform_all(CURL *const *easies, size_t n, vg_token *tok,
                             unsigned flags, CURLcode *results);

/**
 * Appends the header "X-Request-Id: ID" with the request's ID
 * (vg_request_id, see vg_app_use_request_id) to `list`, so that an
 * upstream (a libvolga app with vg_app_use_request_id(app, true)) logs the
 * same ID: set the result as CURLOPT_HTTPHEADER and free it with
 * curl_slist_free_all after the transfer. Returns what curl_slist_append
 * returns (the list, or NULL with `list` unchanged and still the caller's
 * when out of memory); `list` itself when the request has no ID or `req` is
 * NULL. Any thread that may read the request.
 */
struct curl_slist *vg_curl_add_request_id(struct curl_slist *list,
                                          const vg_request *req);

/**
 * Frees the calling thread's multi handle (and so closes the connections
 * it keeps alive) now rather than at thread exit; the next call makes a
 * new one. For the main thread, whose thread-exit cleanup never runs, and
 * for leak checkers. Not from inside a transfer's callback. Any thread.
 */
void vg_curl_thread_cleanup(void);

/** @} */

#ifdef __cplusplus
}
#endif

#endif
