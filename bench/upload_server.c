/* upload_server.c - libvolga receiving uploads for bench/run-upload:
 * POST /upload streams the file parts of a multipart body to anonymous
 * files in DIR (vg_map_uploads) with a body limit of 2 GiB, and answers
 * the first file's size; nothing is kept. Stops on SIGINT/SIGTERM.
 *
 *   bench/upload_server PORT DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <volga.h>

static vg_result *upload(vg_request *req, void *arg)
{
    const vg_upload *u = vg_request_upload(req, "file");

    (void)arg;
    if (u == NULL)
        return vg_result_set_status(vg_text("no file\n"), 400);
    return vg_textf("%zu\n", vg_upload_size(u));
}

int main(int argc, char **argv)
{
    vg_body_limits lim = {.body = (size_t)2 << 30, .file_size = (size_t)2 << 30};
    char address[64];
    vg_app *app;

    if (argc != 3) {
        fprintf(stderr, "usage: upload_server PORT DIR\n");
        return 2;
    }
    snprintf(address, sizeof address, "127.0.0.1:%s", argv[1]);
    app = vg_app_new(address);
    if (app == NULL || vg_map_post(app, "/upload", upload, NULL) != 0 ||
        vg_map_uploads(app, "POST", "/upload", argv[2]) != 0 ||
        vg_map_body_limits(app, "POST", "/upload", &lim) != 0 ||
        vg_app_start(app) != 0) {
        fprintf(stderr, "upload_server: cannot start\n");
        vg_app_free(app);
        return 1;
    }
    printf("port %u\n", (unsigned)vg_app_port(app));
    fflush(stdout);
    if (vg_app_run(app) != 0) {
        vg_app_free(app);
        return 1;
    }
    vg_app_free(app);
    return 0;
}
