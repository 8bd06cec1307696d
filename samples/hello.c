/* hello.c - the main sample: a small app with text and JSON routes.
 *
 *   ./samples/hello [address] [--reuse-port]   (default localhost:7878)
 *
 * With --reuse-port several copies can serve the same port (the kernel
 * spreads connections among them). Started by systemd socket activation, it
 * serves the socket systemd passed and ignores the address.
 *   curl localhost:7878/hello
 *   curl localhost:7878/hello/Ada
 *   curl localhost:7878/json
 *   curl -d '{"a":1}' localhost:7878/echo
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <volga.h>

static vg_result *hello(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_text("Hello, World!");
}

static vg_result *hello_name(vg_request *req, void *arg)
{
    (void)arg;
    return vg_textf("Hello, %s!", vg_request_param(req, "name"));
}

static vg_result *json(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return vg_json(json_pack("{s:s, s:i}", "message", "Hello, World!",
                             "answer", 42));
}

/* Answers the request's JSON body back, or 400 if it is not JSON. */
static vg_result *echo(vg_request *req, void *arg)
{
    json_t *body = vg_request_json(req);

    (void)arg;
    if (body == NULL)
        return vg_result_set_status(vg_text("expected a JSON body\n"), 400);
    return vg_json(json_pack("{s:O}", "echo", body));
}

/* Serves the socket systemd passed if there is one, else binds `address`. */
static vg_app *hello_app_new(const char *address, bool reuse_port)
{
    int fd = vg_systemd_listen_fd();
    vg_app *app = vg_app_new(fd >= 0 ? NULL : address);

    if (app == NULL) {
        perror("vg_app_new");
        return NULL;
    }
    if ((fd >= 0 && vg_app_set_listen_fd(app, fd) != 0) ||
        vg_app_set_reuse_port(app, reuse_port) != 0) {
        fprintf(stderr, "hello: cannot use the socket systemd passed\n");
        vg_app_free(app);
        return NULL;
    }
    return app;
}

int main(int argc, char **argv)
{
    const char *address = "localhost:7878";
    bool reuse_port = false;
    vg_app *app;
    int i, rc;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reuse-port") == 0)
            reuse_port = true;
        else
            address = argv[i];
    }
    app = hello_app_new(address, reuse_port);
    if (app == NULL)
        return 1;
    /* Warnings and one access-log line per request, to stderr. */
    vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_INFO);
    if (vg_map_get(app, "/", hello, NULL) != 0 ||
        vg_map_get(app, "/hello", hello, NULL) != 0 ||
        vg_map_get(app, "/hello/{name}", hello_name, NULL) != 0 ||
        vg_map_get(app, "/json", json, NULL) != 0 ||
        vg_map_post(app, "/echo", echo, NULL) != 0) {
        vg_app_free(app);
        return 1;
    }
    rc = vg_app_start(app);
    if (rc != 0) {
        fprintf(stderr, "hello: cannot start on %s: %s\n", address,
                strerror(-rc));
        vg_app_free(app);
        return 1;
    }
    printf("hello: listening on http://%s (port %u); Ctrl-C stops\n",
           vg_systemd_listen_fd() >= 0 ? "(socket from systemd)" : address,
           (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app);
    vg_app_free(app);
    return rc == 0 ? 0 : 1;
}
