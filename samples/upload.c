/* upload.c - an upload page: several files and a note sent with one form,
 * streamed to disk as they arrive, listed with their size and SHA-256, and
 * downloadable.
 *
 *   ./samples/upload [address]        (default localhost:7879)
 *
 * Files are kept in $UPLOAD_STORE (default ./upload-store, created), under
 * names the server makes up (1, 2, ...): the filename a browser sends is
 * shown, HTML-escaped, but never used as a path.
 *   curl -F note=hi -F file=@a.txt -F file=@b.png localhost:7879/upload
 *   curl localhost:7879/            the page and the list
 *   curl localhost:7879/files/1     the first file back
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/sha2.h>
#include <volga.h>

#define MAX_FILES 1000

typedef struct {
    char *shown;   /* the filename as sent, HTML-escaped */
    size_t size;
    char sha[2 * SHA256_DIGEST_SIZE + 1];
} stored;

static const char *store = "upload-store";
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static stored files[MAX_FILES];
static size_t nfiles;
static char note[256] = ""; /* the last note sent, escaped */

/* A malloc'd copy of `s` safe inside HTML text and attributes. */
static char *html_escape(const char *s)
{
    size_t n = 1;
    const char *p;
    char *out, *w;

    for (p = s; *p; p++)
        n += strchr("<>&\"'", *p) ? 6 : 1;
    out = w = malloc(n);
    if (out == NULL)
        return NULL;
    for (p = s; *p; p++) {
        switch (*p) {
        case '<': w += sprintf(w, "&lt;"); break;
        case '>': w += sprintf(w, "&gt;"); break;
        case '&': w += sprintf(w, "&amp;"); break;
        case '"': w += sprintf(w, "&quot;"); break;
        case '\'': w += sprintf(w, "&#39;"); break;
        default: *w++ = *p;
        }
    }
    *w = '\0';
    return out;
}

/* SHA-256 of the file behind `fd` as hex; 0 or -errno. */
static int sha256_fd(int fd, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE], buf[64 * 1024];
    off_t off = 0;
    ssize_t n;
    size_t i;

    sha256_init(&ctx);
    while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
        sha256_update(&ctx, (size_t)n, buf);
        off += n;
    }
    if (n < 0)
        return -errno;
    sha256_digest(&ctx, sizeof digest, digest);
    for (i = 0; i < sizeof digest; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[2 * sizeof digest] = '\0';
    return 0;
}

/* Keeps one uploaded file as the next number in the store. */
static int keep_file(const vg_upload *u, void *arg)
{
    char path[4096], sha[2 * SHA256_DIGEST_SIZE + 1];
    int *kept = arg, rc;
    char *shown;
    size_t id;

    if (sha256_fd(vg_upload_fd(u), sha) != 0)
        return -EIO;
    shown = html_escape(vg_upload_filename(u));
    if (shown == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&lock);
    if (nfiles == MAX_FILES) {
        pthread_mutex_unlock(&lock);
        free(shown);
        return -ENOSPC;
    }
    id = nfiles + 1;
    snprintf(path, sizeof path, "%s/%zu", store, id);
    rc = vg_upload_save(u, path);
    if (rc == 0) {
        files[nfiles].shown = shown;
        files[nfiles].size = vg_upload_size(u);
        memcpy(files[nfiles].sha, sha, sizeof sha);
        nfiles++;
        (*kept)++;
    }
    pthread_mutex_unlock(&lock);
    if (rc != 0)
        free(shown);
    return rc;
}

static vg_result *upload(vg_request *req, void *arg)
{
    const char *text = vg_request_form(req, "note");
    int kept = 0, rc;

    (void)arg;
    if (text != NULL) {
        char *escaped = html_escape(text);
        if (escaped == NULL)
            return NULL;
        pthread_mutex_lock(&lock);
        snprintf(note, sizeof note, "%s", escaped);
        pthread_mutex_unlock(&lock);
        free(escaped);
    }
    rc = vg_request_uploads(req, keep_file, &kept);
    if (rc != 0)
        return vg_result_set_status(
            vg_textf("could not keep the files: %s\n", strerror(-rc)), 500);
    /* Back to the page, which now lists them (Post/Redirect/Get). */
    return vg_result_set_header(
        vg_result_set_status(vg_textf("kept %d file(s)\n", kept), 303),
        "Location", "/");
}

static vg_result *page(vg_request *req, void *arg)
{
    char *html = NULL;
    size_t len = 0, i;
    FILE *f = open_memstream(&html, &len);
    vg_result *res;

    (void)req;
    (void)arg;
    if (f == NULL)
        return NULL;
    fputs("<!doctype html><meta charset=utf-8><title>Uploads</title>\n"
          "<h1>Uploads</h1>\n"
          "<form method=post action=/upload enctype=multipart/form-data>\n"
          "<input type=text name=note placeholder=note>\n"
          "<input type=file name=file multiple>\n"
          "<button type=submit>Upload</button>\n</form>\n", f);
    pthread_mutex_lock(&lock);
    fprintf(f, "<p id=note>%s</p>\n<table id=files>\n", note);
    for (i = 0; i < nfiles; i++)
        fprintf(f, "<tr><td><a href=\"/files/%zu\">%s</a><td>%zu<td>%s\n",
                i + 1, files[i].shown, files[i].size, files[i].sha);
    pthread_mutex_unlock(&lock);
    fputs("</table>\n", f);
    fclose(f);
    res = vg_result_set_header(vg_text(html), "Content-Type",
                               "text/html; charset=utf-8");
    free(html);
    return res;
}

/* Sends a stored file back, read whole (the files are at most 16 MiB). */
static vg_result *download(vg_request *req, void *arg)
{
    const char *id = vg_request_param(req, "id");
    char path[4096], *end, buf[64 * 1024];
    unsigned long n = strtoul(id, &end, 10);
    vg_stream *s;
    vg_result *res;
    struct stat st;
    ssize_t got;
    int fd;

    (void)arg;
    pthread_mutex_lock(&lock);
    if (*id == '\0' || *end != '\0' || n == 0 || n > nfiles) {
        pthread_mutex_unlock(&lock);
        return vg_status(404);
    }
    pthread_mutex_unlock(&lock);
    snprintf(path, sizeof path, "%s/%lu", store, n);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return vg_status(404);
    }
    res = vg_stream_new(req, "application/octet-stream", &s);
    if (res == NULL) {
        close(fd);
        return NULL;
    }
    vg_stream_set_limit(s, (size_t)st.st_size + 1);
    while ((got = read(fd, buf, sizeof buf)) > 0)
        if (vg_stream_write(s, buf, (size_t)got) != 0)
            break;
    close(fd);
    vg_stream_end(s);
    return res;
}

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "localhost:7879";
    vg_body_limits lim = {.body = 64 << 20, .file_size = 16 << 20,
                          .files = 20, .fields = 10};
    vg_app *app;
    int rc;

    if (getenv("UPLOAD_STORE") != NULL)
        store = getenv("UPLOAD_STORE");
    if (mkdir(store, 0700) != 0 && errno != EEXIST) {
        perror(store);
        return 1;
    }
    app = vg_app_new(address);
    if (app == NULL) {
        perror("vg_app_new");
        return 1;
    }
    vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_INFO);
    /* Uploads go to the store's own filesystem, so that keeping one is a
     * link, not a copy. */
    if (vg_map_get(app, "/", page, NULL) != 0 ||
        vg_map_post(app, "/upload", upload, NULL) != 0 ||
        vg_map_uploads(app, "POST", "/upload", store) != 0 ||
        vg_map_body_limits(app, "POST", "/upload", &lim) != 0 ||
        /* Ten minutes for an upload, its body included: a client that
         * trickles bytes is cut off then, not only by the idle timeout. */
        vg_map_timeout(app, "POST", "/upload", 10 * 60 * 1000) != 0 ||
        vg_map_deadline_body(app, "POST", "/upload", true) != 0 ||
        vg_map_get(app, "/files/{id}", download, NULL) != 0) {
        vg_app_free(app);
        return 1;
    }
    rc = vg_app_start(app);
    if (rc != 0) {
        fprintf(stderr, "upload: cannot start on %s: %s\n", address,
                strerror(-rc));
        vg_app_free(app);
        return 1;
    }
    printf("upload: listening on http://%s (port %u), files in %s\n", address,
           (unsigned)vg_app_port(app), store);
    fflush(stdout);
    rc = vg_app_run(app);
    vg_app_free(app);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i].shown);
    return rc == 0 ? 0 : 1;
}
