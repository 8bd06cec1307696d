/* request_id.c - a request ID for every request (X-Request-Id), as a
 * filter of the pipeline written against the public API only.
 *
 * The filter runs on the event thread for every request the app answers:
 * it keeps a trusted incoming X-Request-Id that looks sane, or makes one
 * of 128 random bits in hex, attaches it to the request (vg_request_id
 * reads it back), and adds it to the response, whichever answers it. The
 * access log shows the response's X-Request-Id (lib/log.c), so the line
 * and the client's copy carry the same ID.
 *
 * Random bits come from getrandom(2), read 512 bytes at a time into a
 * per-thread pool, so a request costs no system call most of the time. A
 * forked child starts with an empty pool (pthread_atfork), so parent and
 * child never hand out the same IDs. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <volga.h>

/* Longest incoming ID kept; longer ones are replaced. */
#define VG__RID_MAX 128
/* Random bytes per ID: 128 bits. */
#define VG__RID_BYTES 16

/* The key of the ID in the request's data (its address is what counts). */
static const char vg__rid_key;
/* Two settings, two filter arguments: what the filter reads is static. */
static const bool vg__rid_trust = true, vg__rid_distrust = false;

static __thread unsigned char vg__rid_pool[512];
static __thread size_t vg__rid_left;
static pthread_once_t vg__rid_once = PTHREAD_ONCE_INIT;

static void vg__rid_forked(void)
{
    vg__rid_left = 0;
}

static void vg__rid_init(void)
{
    pthread_atfork(NULL, NULL, vg__rid_forked);
}

/* Fills `out` with random bytes from the thread's pool. -errno if the
 * kernel has none to give (getrandom failing is all but impossible). */
static int vg__rid_random(unsigned char *out, size_t n)
{
    ssize_t got;
    size_t have = 0;

    if (vg__rid_left < n) {
        while (have < sizeof vg__rid_pool) {
            got = getrandom(vg__rid_pool + have, sizeof vg__rid_pool - have, 0);
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
            have += (size_t)got;
        }
        vg__rid_left = sizeof vg__rid_pool;
    }
    vg__rid_left -= n;
    memcpy(out, vg__rid_pool + vg__rid_left, n);
    /* Bytes handed out are not kept where a later bug could leak them. */
    memset(vg__rid_pool + vg__rid_left, 0, n);
    return 0;
}

/* Whether an incoming ID may be kept as it is: 1 to VG__RID_MAX
 * characters of letters, digits and "-_.:+/=@~", nothing a log line or a
 * header could be confused by. */
static bool vg__rid_sane(const char *id)
{
    size_t n;

    for (n = 0; id[n] != '\0'; n++) {
        char c = id[n];
        if (n >= VG__RID_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("-_.:+/=@~", c) != NULL))
            return false;
    }
    return n > 0;
}

static char *vg__rid_generate(void)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bits[VG__RID_BYTES];
    char *id;
    size_t i;

    if (vg__rid_random(bits, sizeof bits) != 0)
        return NULL;
    id = malloc(2 * sizeof bits + 1);
    if (id == NULL)
        return NULL;
    for (i = 0; i < sizeof bits; i++) {
        id[2 * i] = hex[bits[i] >> 4];
        id[2 * i + 1] = hex[bits[i] & 15];
    }
    id[2 * sizeof bits] = '\0';
    return id;
}

static vg_result *vg__rid_filter(vg_request *req, void *arg)
{
    const bool *trust = arg;
    const char *in = vg_request_header(req, "X-Request-Id");
    char *id;

    if (*trust && in != NULL && vg__rid_sane(in))
        id = strdup(in);
    else
        id = vg__rid_generate();
    /* Without memory (or randomness) the request goes on without an ID:
     * that is better than refusing it. */
    if (id == NULL || vg_request_set_data(req, &vg__rid_key, id, free) != 0)
        return NULL;
    vg_request_add_response_header(req, "X-Request-Id", id);
    return NULL;
}

int vg_app_use_request_id(vg_app *app, bool trust_incoming)
{
    pthread_once(&vg__rid_once, vg__rid_init);
    return vg_app_filter(app, vg__rid_filter,
                         (void *)(trust_incoming ? &vg__rid_trust
                                                 : &vg__rid_distrust));
}

const char *vg_request_id(const vg_request *req)
{
    return vg_request_data(req, &vg__rid_key);
}
