/* web_micro.c - native CPU time of the library side of each web
 * essential (lib/web/), in tight loops without sockets, to put a time on
 * the instruction counts of bench/run-callgrind (bench/RESULTS.md "Web
 * essentials"). Each round builds a request as the engine would (method,
 * a few headers), runs the feature's code on it and frees it; the same
 * loop without the feature is the baseline, and the difference of the
 * fastest rounds of each is the feature's cost:
 *   cors        the CORS filter on a simple request from an allowed origin
 *               (two response headers added)
 *   request-id  the request-ID filter (a generated ID, one header added)
 *   cookie      vg_request_signed_cookie on a three-cookie header (parse
 *               once, one HMAC-SHA256 verification, the value copied)
 * What libmicrohttpd then spends writing the added headers is not in
 * these loops (see RESULTS.md). Rounds alternate baseline and feature.
 *
 * Usage: web_micro [N]   (default 200000 requests per round)
 * Links the convenience library: it builds requests with internal calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <volga.h>
#include "app.h"
#include "model/request.h"

#define ROUNDS 11

static const char cookie_header[] =
    "theme=dark; lang=en-GB; s=user42.0.XIGxkqN550HxJLT1ptmjxvlSjgkdSHxHpMdq-jOqaZ4";

static double cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

typedef enum { NONE, CORS, RID, COOKIE } feature;

/* ns per request of `n` requests with `f` on (or only built and freed). */
static double round_ns(vg_app *app, feature f, bool on, long n,
                       const vg_cookie_keys *keys)
{
    const vg__filter *filt = app->pipe.filters;
    double t0 = cpu_ns();
    long i;

    for (i = 0; i < n; i++) {
        vg_request *req = vg__request_new(app);

        if (req == NULL)
            exit(1);
        req->method = "GET";
        vg__request_add_header(req, "Host", "127.0.0.1:8080");
        vg__request_add_header(req, "User-Agent", "bench");
        vg__request_add_header(req, "Accept", "*/*");
        if (f == CORS)
            vg__request_add_header(req, "Origin", "http://page.example");
        if (f == COOKIE)
            vg__request_add_header(req, "Cookie", cookie_header);
        if (on && (f == CORS || f == RID))
            filt[0].fn(req, filt[0].arg);
        if (on && f == COOKIE && vg_request_signed_cookie(req, keys, "s") == NULL)
            exit(1);
        vg__request_unref(req);
    }
    return (cpu_ns() - t0) / (double)n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Prints the difference of the fastest rounds with and without the
 * feature: on a shared machine noise only ever adds time, so the fastest
 * round is the closest to the code's own cost. */
static void measure(const char *name, vg_app *app, feature f, long n,
                    const vg_cookie_keys *keys)
{
    double on[ROUNDS], base[ROUNDS];
    int r;

    for (r = 0; r < ROUNDS; r++) {
        base[r] = round_ns(app, f, false, n, keys);
        on[r] = round_ns(app, f, true, n, keys);
    }
    qsort(on, ROUNDS, sizeof on[0], cmp);
    qsort(base, ROUNDS, sizeof base[0], cmp);
    printf("web_micro: %-10s +%6.1f ns per request (fastest of %d rounds: "
           "%.1f with, %.1f without; medians %.1f, %.1f)\n", name,
           on[0] - base[0], ROUNDS, on[0], base[0], on[ROUNDS / 2],
           base[ROUNDS / 2]);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    vg_app *cors_app = vg_app_new("127.0.0.1:0"), *rid_app = vg_app_new("127.0.0.1:0");
    vg_cors *c = vg_cors_new();
    vg_cookie_keys *k = vg_cookie_keys_new("bench key, exactly thirty-two b!", 32);

    if (n <= 0 || cors_app == NULL || rid_app == NULL || c == NULL || k == NULL ||
        vg_cors_allow_origin(c, "http://page.example") != 0 ||
        vg_app_use_cors(cors_app, c) != 0 ||
        vg_app_use_request_id(rid_app, false) != 0) {
        fprintf(stderr, "web_micro: cannot set up\n");
        return 1;
    }
    measure("cors", cors_app, CORS, n, k);
    measure("request-id", rid_app, RID, n, k);
    measure("cookie", cors_app, COOKIE, n, k);
    vg_app_free(cors_app);
    vg_app_free(rid_app);
    vg_cors_free(c);
    vg_cookie_keys_free(k);
    return 0;
}
