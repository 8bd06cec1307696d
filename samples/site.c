/* site.c - a small web site: the files of samples/site/ (a page, its CSS,
 * its JavaScript, an image) and a Server-Sent Events clock the page
 * subscribes to, with compression on, over HTTP or HTTPS.
 *
 *   ./samples/site [address] [--dir DIR]
 *                  [--tls CERT KEY [--client-ca CA] [--redirect-from ADDR]]
 *       address  default localhost:7878
 *       --dir    the files to serve (default: samples/site of the sources)
 *       --tls    serve HTTPS with this PEM certificate and key (SIGHUP
 *                reloads them)
 *       --client-ca  require client certificates signed by a CA of this
 *                PEM file (mutual TLS); /whoami shows the subject
 *       --redirect-from  also answer plain HTTP on ADDR (e.g. :8080) with
 *                308 to the same URL over HTTPS
 *
 * Files are answered with ETag and Last-Modified and "Cache-Control:
 * no-cache", so a reload revalidates every asset and gets 304s; text
 * assets are compressed (br or gzip) on the workers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <volga.h>

#ifndef VG_SITE_DIR
#define VG_SITE_DIR "samples/site"
#endif

/* The clock: one ticker thread writes to every open stream. */
typedef struct sub {
    struct sub *next;
    vg_stream *stream;
} sub;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sub *subs;

static vg_result *clock_stream(vg_request *req, void *arg)
{
    sub *s = calloc(1, sizeof *s);
    vg_result *res;

    (void)arg;
    if (s == NULL)
        return NULL;
    res = vg_sse_new(req, &s->stream);
    if (res == NULL) {
        free(s);
        return NULL;
    }
    pthread_mutex_lock(&lock);
    s->next = subs;
    subs = s;
    pthread_mutex_unlock(&lock);
    return res;
}

static void tick(void)
{
    char now[64];
    time_t t = time(NULL);
    struct tm tm;
    sub **pp, *s;

    strftime(now, sizeof now, "%H:%M:%S", localtime_r(&t, &tm));
    pthread_mutex_lock(&lock);
    for (pp = &subs; (s = *pp) != NULL;) {
        int rc = vg_sse_event(s->stream, "tick", now, NULL);
        if (rc == 0 || rc == -EAGAIN) {
            pp = &s->next;
            continue;
        }
        *pp = s->next; /* the client left: its write failed */
        vg_stream_end(s->stream);
        free(s);
    }
    pthread_mutex_unlock(&lock);
}

static void *ticker(void *arg)
{
    while (!vg_token_wait(arg, 1000))
        tick();
    return NULL;
}

static void end_streams(void)
{
    sub *s;

    pthread_mutex_lock(&lock);
    while ((s = subs) != NULL) {
        subs = s->next;
        vg_stream_end(s->stream);
        free(s);
    }
    pthread_mutex_unlock(&lock);
}

static const char *client_ca;     /* --client-ca */
static const char *redirect_from; /* --redirect-from */

/* The plain-HTTP app sending clients to the HTTPS one; NULL if not asked
 * or on failure (reported). */
static vg_app *start_redirect(unsigned short https_port)
{
    vg_https_redirect_options opts = {0};
    vg_app *r;
    int rc;

    if (redirect_from == NULL)
        return NULL;
    opts.https_port = https_port;
    r = vg_app_new_https_redirect(redirect_from, &opts);
    if (r == NULL || (rc = vg_app_start(r)) != 0) {
        fprintf(stderr, "site: no redirect on %s: %s\n", redirect_from,
                strerror(r == NULL ? errno : -rc));
        vg_app_free(r);
        return NULL;
    }
    printf("site: http on port %u redirects to https\n", (unsigned)vg_app_port(r));
    return r;
}

/* GET /whoami: the verified client certificate's subject (--client-ca). */
static vg_result *whoami(vg_request *req, void *arg)
{
    const char *subject = vg_request_tls_peer_subject(req);

    (void)arg;
    return vg_textf("%s\n", subject ? subject : "no client certificate");
}

/* Routes and settings; 0 or a negative errno. */
static int configure(vg_app *app, const char *dir, const char *cert,
                     const char *key)
{
    vg_static_options files = {0};
    int rc;

    files.cache_control = "no-cache";
    files.on_workers = true; /* so that vg_compress may compress them */
    vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_INFO);
    /* Default options: the /clock event stream is sent as it is (an
     * options struct with .sse = true would compress it too, each event
     * flushed); other streams and the assets are compressed. */
    if ((rc = vg_app_use(app, vg_compress, NULL)) != 0 ||
        (rc = vg_map_get(app, "/clock", clock_stream, NULL)) != 0 ||
        (rc = vg_app_serve_dir_opts(app, "/", dir, &files)) != 0)
        return rc;
    if (cert != NULL &&
        ((rc = vg_app_set_tls(app, cert, key)) != 0 ||
         (rc = vg_app_use_hsts(app, 300, false)) != 0))
        return rc;
    if (client_ca != NULL &&
        ((rc = vg_app_set_tls_client_ca(app, client_ca,
                                        VG_TLS_CLIENT_REQUIRED)) != 0 ||
         (rc = vg_map_get(app, "/whoami", whoami, NULL)) != 0))
        return rc;
    return 0;
}

int main(int argc, char **argv)
{
    const char *address = "localhost:7878", *dir = VG_SITE_DIR, *cert = NULL,
               *key = NULL;
    vg_app *app = NULL, *redirect = NULL;
    vg_token *stop = NULL;
    pthread_t thread;
    int i, rc = 1;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            cert = argv[++i];
            key = argv[++i];
        } else if (strcmp(argv[i], "--redirect-from") == 0 && i + 1 < argc) {
            redirect_from = argv[++i];
        } else if (strcmp(argv[i], "--client-ca") == 0 && i + 1 < argc) {
            client_ca = argv[++i];
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (argv[i][0] != '-') {
            address = argv[i];
        } else {
            fprintf(stderr, "usage: %s [address] [--dir DIR] [--tls CERT KEY "
                            "[--client-ca CA] [--redirect-from ADDR]]\n",
                    argv[0]);
            return 2;
        }
    }
    app = vg_app_new(address);
    stop = vg_token_new();
    if (app == NULL || stop == NULL) {
        perror("site");
        goto out;
    }
    if ((rc = configure(app, dir, cert, key)) != 0 ||
        (rc = vg_app_start(app)) != 0) {
        fprintf(stderr, "site: cannot serve %s on %s: %s\n", dir, address,
                strerror(-rc));
        rc = 1;
        goto out;
    }
    if (pthread_create(&thread, NULL, ticker, stop) != 0) {
        rc = 1;
        goto out;
    }
    printf("site: %s on port %u\n", cert ? "https" : "http",
           (unsigned)vg_app_port(app));
    if (cert != NULL)
        redirect = start_redirect(vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app) == 0 ? 0 : 1;
    vg_token_cancel(stop);
    pthread_join(thread, NULL);
out:
    end_streams();
    vg_app_free(redirect);
    vg_app_free(app);
    vg_token_unref(stop);
    return rc;
}
