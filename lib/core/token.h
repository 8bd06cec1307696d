/* token.h - internal side of cancellation tokens (see volga.h for the API). */
#ifndef VG_TOKEN_H
#define VG_TOKEN_H

#include <stdint.h>

#include "volga.h"

/*
 * Cancels `tok` (and, recursively, its children) with `reason`, which must
 * not be VG_CANCEL_NONE. Returns true if this call did the cancelling, false
 * if the token was already cancelled (its first reason stays). Callbacks run
 * on the calling thread before it returns, never under a lock. Any thread.
 */
bool vg__token_cancel_with(vg_token *tok, vg_cancel_reason reason);

/*
 * Records `due_ns` (CLOCK_MONOTONIC, ns; 0: none) as the token's own
 * deadline, for vg_token_remaining_ms and the children's. It does not arm
 * anything: whoever sets it enforces it (the watcher, for a request's
 * token). Any thread.
 */
void vg__token_set_deadline(vg_token *tok, uint64_t due_ns);

#endif
