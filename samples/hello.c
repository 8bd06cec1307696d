/* hello.c - the main sample: a small app with text and JSON routes.
 *
 *   ./samples/hello [address]        (default localhost:7878)
 *   curl localhost:7878/hello
 *   curl localhost:7878/hello/Ada
 *   curl localhost:7878/json
 *   curl -d '{"a":1}' localhost:7878/echo
 */
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

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "localhost:7878";
    vg_app *app = vg_app_new(address);
    int rc;

    if (app == NULL) {
        perror("vg_app_new");
        return 1;
    }
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
    printf("hello: listening on http://%s (port %u); Ctrl-C stops\n", address,
           (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app);
    vg_app_free(app);
    return rc == 0 ? 0 : 1;
}
