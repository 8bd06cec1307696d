/**
 * @file volga-pq.h
 * volga-pq.h - libvolga-pq: PostgreSQL queries that stop on the server when
 * a libvolga token is cancelled (pkg-config volga-pq; link -lvolga-pq).
 *
 * Closing a libpq connection does not stop its query: the backend runs it
 * to the end. These calls are libpq's PQexec family with a vg_token: while
 * the query runs they wait on the connection's socket and on the token, and
 * when the token fires they ask the server to cancel the query (PQcancel),
 * read what is left of it, and return NULL with errno ECANCELED, leaving
 * the connection ready for the next query.
 */
#ifndef VOLGA_PQ_H
#define VOLGA_PQ_H

#include <libpq-fe.h>
#include <volga.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @defgroup pq libvolga-pq: cancellable PostgreSQL queries
 *
 * Each call sends its query, then waits for the result on the connection's
 * socket and on `tok`. Nothing else about the connection changes: the
 * caller connects, owns and finishes the PGconn, and may use plain libpq on
 * it between these calls.
 *
 * **Returns.** Like PQexec: the query's last result (or its first error
 * result), owned by the caller, to be freed with PQclear. An error the
 * server reports (a syntax error, a constraint) is a result with status
 * PGRES_FATAL_ERROR, as in libpq. NULL is returned with errno set:
 *  - ECANCELED: `tok` was cancelled, before the query was sent (nothing was
 *    sent) or while it ran and the server stopped it (SQLSTATE 57014,
 *    query_canceled). Inside a transaction block the transaction is then
 *    aborted, as after any error: ROLLBACK before reusing it.
 *  - EINVAL: `conn` or `sql`/`name` is NULL, nparams is negative (or
 *    positive with NULL `values`), or the connection is in pipeline mode.
 *  - EIO: the query could not be sent or the connection failed
 *    (PQerrorMessage(conn) says why).
 *
 * A query that finished on the server before the cancel reached it returns
 * its result as usual, even though `tok` is cancelled: its effects are
 * real and the caller should know them.
 *
 * **Reusing the connection.** A cancel request travels on a connection of
 * its own and reaches the backend later; sent carelessly it can stop the
 * *next* query on the same connection instead (lib/pq#1001). These calls
 * never return while a cancel request they sent could still arrive: every
 * request is sent only while this call's query is in flight, and the call
 * returns only once the server has acknowledged each one (PQcancel has
 * returned, which the server does only after signalling the backend) and
 * the query's end has been read. A backend signalled once it is idle
 * ignores the signal, so the next query on the connection is never
 * cancelled by this one.
 * If the server does not acknowledge a cancel or end the query within
 * VG_PQ_CANCEL_MS of the token firing (an unreachable server), the call
 * shuts the connection's socket down rather than leave a cancel in flight:
 * it returns NULL with ECANCELED and the connection's next use fails
 * (PQreset or PQfinish it).
 *
 * **Threads.** Any thread, one call at a time per connection (libpq's
 * rule). `tok` may be cancelled from any thread. The call blocks its
 * thread. The cancel request is sent from a short-lived thread of its
 * own, so that the wait stays bounded; that thread is started by a
 * vg_token_on_cancel callback on the thread that cancels `tok` (for a
 * client gone, libvolga's event thread), which it never blocks, so the
 * request leaves without waiting for the caller's thread to be scheduled.
 * A call with a token prepares the request (PQgetCancel) and registers
 * that callback before it waits, and removes it before it returns. No
 * library lock is held while waiting.
 *
 * **Mode.** The connection is switched to non-blocking mode for the call
 * and restored afterwards. COPY is not handled: a query that starts a COPY
 * returns its PGRES_COPY_* result at once and the caller continues with
 * libpq's COPY functions (which do not watch the token).
 * @{
 */

/** How long, in milliseconds, after the token fires the server has to
 *  acknowledge the cancel request and end the query before the
 *  connection's socket is shut down. */
#define VG_PQ_CANCEL_MS 5000

/**
 * PQexec with cancellation: runs `sql` (one or more statements, simple
 * query protocol) on `conn` and returns the last result. `tok` may be NULL
 * (never cancelled). See the group's description for returns and threads.
 */
PGresult *vg_pq_exec(PGconn *conn, vg_token *tok, const char *sql);

/**
 * PQexecParams with cancellation: runs the single statement `sql` with
 * `nparams` text parameters `values` ($1, $2...; a NULL entry is SQL NULL;
 * types inferred by the server) and returns text results. `values` is
 * borrowed for the call. `tok` may be NULL.
 */
PGresult *vg_pq_exec_params(PGconn *conn, vg_token *tok, const char *sql,
                            int nparams, const char *const *values);

/**
 * PQprepare with cancellation: creates the prepared statement `name` ("" is
 * the unnamed one) from `sql` with `nparams` parameters of inferred types.
 * Returns its PGRES_COMMAND_OK result (or an error result) as PQprepare.
 */
PGresult *vg_pq_prepare(PGconn *conn, vg_token *tok, const char *name,
                        const char *sql, int nparams);

/**
 * PQexecPrepared with cancellation: runs the prepared statement `name`
 * with `nparams` text parameters `values` (borrowed; NULL entries are SQL
 * NULL) and returns text results.
 */
PGresult *vg_pq_exec_prepared(PGconn *conn, vg_token *tok, const char *name,
                              int nparams, const char *const *values);

/** @} */

#ifdef __cplusplus
}
#endif

#endif
