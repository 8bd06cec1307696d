/* proxy.h - resolving the client behind trusted proxies, without a request:
 * what the filter does and the fuzz target drives (tests/fuzz/fuzz_forwarded.c).
 * Not installed. */
#ifndef VG_WEB_PROXY_H
#define VG_WEB_PROXY_H

#include <stddef.h>

#include "volga.h"

/* Longest address text written by vg__proxy_resolve, NUL included. */
#define VG__PROXY_ADDR_MAX 46

/*
 * The client of a request from `peer` (address text) that carried the
 * Forwarded field values `forwarded` and X-Forwarded-For values `xff`
 * (each all the header's lines joined by ", ", or NULL when absent). If
 * the peer is trusted, the hops are walked from the nearest: each trusted
 * one hands over to the address it reports, and the first untrusted hop is
 * the client; an element that is not an address ("unknown", an obfuscated
 * name, garbage) ends the walk at the last address known. Forwarded wins
 * when present; a malformed Forwarded is ignored whole (the peer stays
 * the client). Writes canonical text (inet_ntop's; IPv4-mapped as IPv4)
 * to out[VG__PROXY_ADDR_MAX]. Returns 1 when the client came from a
 * header, 0 when it is the peer, -EINVAL when peer is not an address.
 */
int vg__proxy_resolve(const vg_proxy_trust *t, const char *peer,
                      const char *forwarded, const char *xff, char *out);

#endif
