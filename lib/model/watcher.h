/* watcher.h - the registry of suspended requests (DESIGN.md fact 8) and
 * the thread that fires their deadlines (fact 9). */
#ifndef VG_WATCHER_H
#define VG_WATCHER_H

#include <stdbool.h>
#include <stddef.h>

#include "volga.h"
#include "core/log.h"

typedef struct vg__watcher vg__watcher;

/* Runs on the watcher thread when a request's deadline passed. The
 * watcher holds a reference on `req` for the call. */
typedef void (*vg__gone_fn)(vg_request *req);

/* A registry; with `timers` also a thread that calls `expired` for
 * requests still registered when their deadline passes. NULL with errno on
 * failure. */
vg__watcher *vg__watcher_new(bool timers, vg__gone_fn expired,
                             const vg__log *log);

/* Registers a suspended request with a deadline `timeout_ms` from now (0:
 * none; ignored unless created with timers). 0, -ESHUTDOWN once the
 * registry is closed, or -ENOMEM. Any thread. */
int vg__watcher_add(vg__watcher *w, vg_request *req, unsigned timeout_ms);

/* Unregisters `req` if registered; call before resuming its connection.
 * Any thread. */
void vg__watcher_remove(vg__watcher *w, vg_request *req);

/* Closes the registry to new requests and returns every request still
 * registered, each with a reference the caller must drop; `*out` is
 * malloc'd (free it). Returns the count, or 0 with *out NULL. */
size_t vg__watcher_close(vg__watcher *w, vg_request ***out);

/* Stops the thread and frees the watcher. NULL is a no-op. */
void vg__watcher_free(vg__watcher *w);

#endif
