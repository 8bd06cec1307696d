/*
 * fuzz_forwarded.c - libFuzzer target for the trusted-proxy walk over
 * Forwarded (RFC 7239) and X-Forwarded-For (lib/web/proxy.c).
 *
 * The input is three "\n"-separated parts: the peer's address, the
 * Forwarded value (empty: absent) and the X-Forwarded-For value (the rest;
 * empty: absent). Bytes after a NUL are ignored (headers are C strings).
 * The trusted networks are fixed: 127.0.0.0/8, 10.0.0.0/8, ::1, fd00::/8.
 *
 * Checked whatever the input: the answer is a valid address in canonical
 * form (it parses and formats back to itself); a peer that is not trusted
 * is always its own client (0, the peer's own text); an answer that is not
 * from a header is the peer; the walk is deterministic (same answer twice).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/proxy.h"

#include "fuzz_check.h"

static vg_proxy_trust *trust, *nobody;

static void init(void)
{
    trust = vg_proxy_trust_new();
    CHECK(trust != NULL);
    CHECK(vg_proxy_trust_add(trust, "127.0.0.0/8") == 0);
    CHECK(vg_proxy_trust_add(trust, "10.0.0.0/8") == 0);
    CHECK(vg_proxy_trust_add(trust, "::1") == 0);
    CHECK(vg_proxy_trust_add(trust, "fd00::/8") == 0);
    nobody = vg_proxy_trust_new();
    CHECK(nobody != NULL);
}

/* Canonical: parses as IPv4 or IPv6 and formats back to the same text. */
static void check_canonical(const char *s)
{
    unsigned char a[16];
    char back[INET6_ADDRSTRLEN];
    int family = strchr(s, ':') ? AF_INET6 : AF_INET;

    CHECK(inet_pton(family, s, a) == 1);
    CHECK(inet_ntop(family, a, back, sizeof back) != NULL);
    CHECK(strcmp(back, s) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *peer, *fwd, *xff, *nl;
    char out[VG__PROXY_ADDR_MAX], again[VG__PROXY_ADDR_MAX],
        self[VG__PROXY_ADDR_MAX];
    int rc, rc2, rself;

    if (trust == NULL)
        init();
    CHECK(buf != NULL);
    memcpy(buf, data, size);
    buf[size] = '\0';
    peer = buf;
    fwd = xff = NULL;
    if ((nl = strchr(peer, '\n')) != NULL) {
        *nl = '\0';
        fwd = nl + 1;
        if ((nl = strchr(fwd, '\n')) != NULL) {
            *nl = '\0';
            xff = nl + 1;
        }
    }
    if (fwd != NULL && *fwd == '\0')
        fwd = NULL;
    if (xff != NULL && *xff == '\0')
        xff = NULL;

    rc = vg__proxy_resolve(trust, peer, fwd, xff, out);
    CHECK(rc == 0 || rc == 1 || rc == -EINVAL);
    rself = vg__proxy_resolve(nobody, peer, fwd, xff, self);
    CHECK(rself == (rc == -EINVAL ? -EINVAL : 0));
    if (rc != -EINVAL) {
        check_canonical(out);
        check_canonical(self);
        rc2 = vg__proxy_resolve(trust, peer, fwd, xff, again);
        CHECK(rc2 == rc && strcmp(again, out) == 0);
        if (rc == 0)
            CHECK(strcmp(out, self) == 0);
        /* Headers never matter for a peer nobody trusts. */
        CHECK(vg__proxy_resolve(trust, self, NULL, NULL, again) == 0);
        CHECK(strcmp(again, self) == 0);
    }
    free(buf);
    return 0;
}
