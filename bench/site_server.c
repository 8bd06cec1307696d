/* site_server.c - the libvolga side of bench/run-site: the files of DIR at
 * "/" (vg_app_serve_dir, inline, sendfile) and an inline "/hello", over
 * HTTP or, with --tls, HTTPS. No access log. Binds 127.0.0.1:PORT only;
 * stops on SIGINT/SIGTERM.
 *
 * Usage: site_server PORT DIR [--tls CERT KEY] [--no-tickets] [--compress]
 * --no-tickets: no TLS session tickets (vg_app_set_tls_tickets), so that
 * every connection is a full handshake. --compress adds the vg_compress middleware (gzip level 1, nginx's
 * default gzip_comp_level) and serves the files on the workers, where it
 * can compress them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <volga.h>

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("hello");
}

/* Compared with nginx at its own default level. */
static vg_compress_options level1 = {.gzip_level = 1};

int main(int argc, char **argv)
{
    char address[64];
    vg_static_options files = {0};
    const char *cert = NULL, *key = NULL;
    bool compress = false, tickets = true;
    vg_app *app;
    int i, rc;

    if (argc < 3) {
        fprintf(stderr, "usage: site_server PORT DIR [--tls CERT KEY] [--no-tickets] "
                        "[--compress]\n");
        return 2;
    }
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            cert = argv[++i];
            key = argv[++i];
        } else if (strcmp(argv[i], "--no-tickets") == 0) {
            tickets = false;
        } else if (strcmp(argv[i], "--compress") == 0) {
            compress = true;
        } else {
            fprintf(stderr, "site_server: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    snprintf(address, sizeof address, "127.0.0.1:%s", argv[1]);
    app = vg_app_new(address);
    if (app == NULL) {
        perror("site_server");
        return 1;
    }
    files.on_workers = compress;
    if ((compress && (rc = vg_app_use(app, vg_compress, &level1)) != 0) ||
        (rc = vg_map_get(app, "/hello", hello, NULL)) != 0 ||
        (rc = vg_map_inline(app, "GET", "/hello", true)) != 0 ||
        (rc = vg_app_serve_dir_opts(app, "/", argv[2], &files)) != 0 ||
        (cert != NULL && (rc = vg_app_set_tls(app, cert, key)) != 0) ||
        (cert != NULL && (rc = vg_app_set_tls_tickets(app, tickets)) != 0) ||
        (rc = vg_app_run(app)) != 0) {
        fprintf(stderr, "site_server: %s\n", strerror(-rc));
        vg_app_free(app);
        return 1;
    }
    vg_app_free(app);
    return 0;
}
