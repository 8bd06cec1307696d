/* static.c - files as answers: vg_file for handlers and vg_app_serve_dir
 * for a whole directory. Written against the public API plus one model
 * primitive, vg__result_fd, whose body the engine sends zero-copy.
 *
 * Safety first: a request names a file only through its decoded path
 * segments, each checked here ("", ".", "..", dotfiles, backslashes
 * refused), and the file is opened relative to the root's descriptor with
 * openat2(RESOLVE_BENEATH), so no symlink can lead out of the root; where
 * the kernel lacks openat2 a component-by-component O_NOFOLLOW walk refuses
 * every symlink. The file is opened once, checked with fstat on that same
 * descriptor (a regular file, never a FIFO or a device) and that
 * descriptor becomes the body: nothing can be swapped in between. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/openat2.h>
#endif

#include "app.h"
#include "core/log.h"
#include "model/result.h"
#include "pipeline/group.h"
#include "pipeline/pipeline.h"
#include "web/mime.h"
#include "web/static.h"

bool vg__static_force_walk;

/* ---- Parsers ---- */

static const char *vg__skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Reads a decimal number; false on no digits or overflow. */
static bool vg__read_num(const char **p, unsigned long long *out)
{
    unsigned long long v = 0;
    const char *s = *p;

    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (~0ULL - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

vg__range_kind vg__range_parse(const char *hdr, unsigned long long size,
                               unsigned long long *first,
                               unsigned long long *last)
{
    const char *p;
    unsigned long long a = 0, b = 0;
    bool has_a, has_b;

    if (hdr == NULL)
        return VG__RANGE_WHOLE;
    p = vg__skip_ows(hdr);
    if (strncasecmp(p, "bytes=", 6) != 0)
        return VG__RANGE_WHOLE; /* another unit: ignored, as RFC 9110 allows */
    p = vg__skip_ows(p + 6);
    if (strchr(p, ',') != NULL)
        return VG__RANGE_WHOLE; /* several ranges: the whole file instead */
    has_a = vg__read_num(&p, &a);
    if (*p++ != '-')
        return VG__RANGE_WHOLE;
    has_b = vg__read_num(&p, &b);
    if (*vg__skip_ows(p) != '\0' || (!has_a && !has_b))
        return VG__RANGE_WHOLE;
    if (!has_a) { /* "-n": the last n bytes */
        if (b == 0 || size == 0)
            return VG__RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return VG__RANGE_ONE;
    }
    if (has_b && b < a)
        return VG__RANGE_WHOLE; /* invalid syntax: ignored */
    if (a >= size)
        return VG__RANGE_UNSATISFIABLE;
    *first = a;
    *last = !has_b || b >= size ? size - 1 : b;
    return VG__RANGE_ONE;
}

/* One entity-tag from a list: [W/]"chars". Advances *p past it; false if
 * the list is malformed from here on. */
static bool vg__next_etag(const char **p, const char **tag, size_t *len,
                          bool *weak)
{
    const char *s = vg__skip_ows(*p), *end;

    while (*s == ',' || *s == ' ' || *s == '\t')
        s++;
    if (*s == '\0')
        return false;
    *weak = strncmp(s, "W/", 2) == 0;
    if (*weak)
        s += 2;
    if (*s != '"')
        return false;
    end = strchr(s + 1, '"');
    if (end == NULL)
        return false;
    *tag = s;
    *len = (size_t)(end + 1 - s);
    *p = end + 1;
    return true;
}

bool vg__etag_match(const char *list, const char *etag, bool weak)
{
    const char *p = list, *tag;
    bool tweak, eweak;
    size_t len, elen;

    if (list == NULL || etag == NULL)
        return false;
    if (strcmp(vg__skip_ows(list), "*") == 0)
        return true;
    eweak = strncmp(etag, "W/", 2) == 0;
    if (eweak)
        etag += 2;
    if (eweak && !weak)
        return false;
    elen = strlen(etag);
    while (vg__next_etag(&p, &tag, &len, &tweak)) {
        if (tweak && !weak)
            continue;
        if (len == elen && memcmp(tag, etag, len) == 0)
            return true;
    }
    return false;
}

bool vg__http_date_parse(const char *s, time_t *out)
{
    struct tm tm;
    const char *end;

    if (s == NULL)
        return false;
    memset(&tm, 0, sizeof tm);
    end = strptime(vg__skip_ows(s), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *vg__skip_ows(end) != '\0')
        return false;
    *out = timegm(&tm);
    return *out != (time_t)-1;
}

/* Whether the coding token at p (length n) names `coding`. */
static bool vg__coding_is(const char *p, size_t n, const char *coding)
{
    return strlen(coding) == n && strncasecmp(p, coding, n) == 0;
}

/* Parses ";q=0.5" parameters after a coding; 1000 when absent, -2 when
 * malformed (the entry is then ignored). */
static int vg__parse_q(const char *p, const char *end)
{
    int q = 1000, scale = 100;

    while (p < end) {
        p = vg__skip_ows(p);
        if (*p != ';')
            return p >= end ? q : -2;
        p = vg__skip_ows(p + 1);
        if (end - p < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=')
            return -2;
        p += 2;
        if (*p == '0' || *p == '1') {
            q = (*p == '1') ? 1000 : 0;
            p++;
            if (p < end && *p == '.') {
                for (p++; p < end && *p >= '0' && *p <= '9' && scale > 0;
                     p++, scale /= 10)
                    q += (*p - '0') * scale;
            }
            if (q > 1000)
                return -2;
        } else {
            return -2;
        }
    }
    return q;
}

int vg__accept_q(const char *ae, const char *coding)
{
    int own = -1, star = -1;
    const char *p = ae;

    if (ae == NULL)
        return -1;
    while (*p != '\0') {
        const char *start = vg__skip_ows(p), *end = strchr(start, ',');
        size_t n;
        int q;

        if (end == NULL)
            end = start + strlen(start);
        n = strcspn(start, " \t;,");
        q = vg__parse_q(start + n, end);
        if (n > 0 && q >= 0) {
            if (vg__coding_is(start, n, coding))
                own = q;
            else if (vg__coding_is(start, n, "*"))
                star = q;
        }
        p = *end ? end + 1 : end;
    }
    return own >= 0 ? own : star;
}

/* ---- Answering with an open file ---- */

typedef struct {
    const char *ctype;         /* Content-Type; NULL: from the name */
    const char *encoding;      /* Content-Encoding of a precompressed sibling */
    const char *cache_control;
    bool vary;                 /* add Vary: Accept-Encoding */
} vg__file_meta;

static void vg__etag_of(const struct stat *st, char *buf, size_t len)
{
    snprintf(buf, len, "\"%llx-%llx-%llx\"", (unsigned long long)st->st_mtim.tv_sec,
             (unsigned long long)st->st_mtim.tv_nsec,
             (unsigned long long)st->st_size);
}

static void vg__http_date(time_t t, char *buf, size_t len)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* The validators and caching headers every file answer carries, 304s
 * included (RFC 9110 15.4.5). */
static vg_result *vg__add_validators(vg_result *res, const char *etag,
                                     const char *lastmod,
                                     const vg__file_meta *m)
{
    res = vg_result_set_header(res, "ETag", etag);
    res = vg_result_set_header(res, "Last-Modified", lastmod);
    if (m->cache_control != NULL)
        res = vg_result_set_header(res, "Cache-Control", m->cache_control);
    if (m->vary)
        res = vg_result_set_header(res, "Vary", "Accept-Encoding");
    return res;
}

/* If-None-Match compares weakly: the copy a client holds may be the one
 * vg_compress made ("tag-gzip", "tag-br", "tag-zstd"), the same file in
 * other bytes. */
static bool vg__inm_match(const char *inm, const char *etag)
{
    static const char *const suffixes[] = {"-gzip\"", "-br\"", "-zstd\""};
    char tagged[96];
    size_t i, n = strlen(etag);

    if (vg__etag_match(inm, etag, true))
        return true;
    for (i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(tagged, sizeof tagged, "%.*s%s", (int)(n - 1), etag,
                 suffixes[i]);
        if (vg__etag_match(inm, tagged, true))
            return true;
    }
    return false;
}

/* RFC 9110 13.2.2, steps 1-4 for GET and HEAD: 412, 304, or 0 to go on. */
static unsigned vg__preconditions(vg_request *req, const char *etag,
                                  time_t mtime)
{
    const char *im = vg_request_header(req, "If-Match");
    const char *ius = vg_request_header(req, "If-Unmodified-Since");
    const char *inm = vg_request_header(req, "If-None-Match");
    const char *ims = vg_request_header(req, "If-Modified-Since");
    time_t t;

    if (im != NULL) {
        if (!vg__etag_match(im, etag, false))
            return 412;
    } else if (vg__http_date_parse(ius, &t) && mtime > t) {
        return 412;
    }
    if (inm != NULL) /* takes precedence: If-Modified-Since is ignored */
        return vg__inm_match(inm, etag) ? 304 : 0;
    if (vg__http_date_parse(ims, &t) && mtime <= t)
        return 304;
    return 0;
}

/* If-Range (RFC 9110 13.1.5): the range applies only if the client's copy
 * is this one: a strong ETag match, or exactly our Last-Modified date. */
static bool vg__if_range_ok(vg_request *req, const char *etag, time_t mtime)
{
    const char *ir = vg_request_header(req, "If-Range");
    time_t t;

    if (ir == NULL)
        return true;
    if (vg__skip_ows(ir)[0] == '"' || strncmp(vg__skip_ows(ir), "W/", 2) == 0)
        return vg__etag_match(ir, etag, false);
    return vg__http_date_parse(ir, &t) && t == mtime;
}

static vg_result *vg__status_with(vg_result *res, unsigned code)
{
    return vg_result_set_status(res, code);
}

/* Up to this many bytes are read into memory rather than sent with
 * sendfile: libmicrohttpd then writes the head and the body with one
 * writev, where a file body costs a send for the head and a sendfile for
 * the body (bench/RESULTS.md: 1 KiB files). */
#define VG__SMALL_FILE (16 * 1024)

/* A body of `len` bytes of fd from `off`: read now if small, else the fd
 * itself (taken in both cases). */
static vg_result *vg__small_body(int fd, unsigned long long off,
                                 unsigned long long len)
{
    vg_result *res;
    char *buf;
    ssize_t n;

    if (len > VG__SMALL_FILE)
        return vg__result_fd(fd, off, len);
    buf = malloc((size_t)len);
    n = buf ? pread(fd, buf, (size_t)len, (off_t)off) : -1;
    if (n != (ssize_t)len) { /* short (the file shrank) or failed: let the
                                zero-copy path report it */
        free(buf);
        return vg__result_fd(fd, off, len);
    }
    close(fd);
    res = vg_status(200);
    if (res == NULL) {
        free(buf);
        return NULL;
    }
    vg__result_set_body(res, buf, (size_t)len);
    return res;
}

/* The answer for `fd` (a regular file, taken), `st` its fstat. */
static vg_result *vg__answer_fd(vg_request *req, int fd, const struct stat *st,
                                const char *name, const vg__file_meta *m)
{
    unsigned long long size = (unsigned long long)st->st_size, first = 0,
                       last = size ? size - 1 : 0;
    char etag[80], lastmod[40], crange[80];
    vg__range_kind rk = VG__RANGE_WHOLE;
    unsigned pre;
    vg_result *res;

    vg__etag_of(st, etag, sizeof etag);
    vg__http_date(st->st_mtim.tv_sec, lastmod, sizeof lastmod);
    pre = vg__preconditions(req, etag, st->st_mtim.tv_sec);
    if (pre != 0) {
        close(fd);
        res = vg_status(pre);
        return pre == 304 ? vg__add_validators(res, etag, lastmod, m) : res;
    }
    if (vg__if_range_ok(req, etag, st->st_mtim.tv_sec))
        rk = vg__range_parse(vg_request_header(req, "Range"), size, &first,
                             &last);
    if (rk == VG__RANGE_UNSATISFIABLE) {
        close(fd);
        snprintf(crange, sizeof crange, "bytes */%llu", size);
        res = vg_result_set_header(vg_status(416), "Content-Range", crange);
        return vg__add_validators(res, etag, lastmod, m);
    }
    if (size == 0) {
        close(fd);
        res = vg_status(200);
    } else {
        res = vg__small_body(fd, first, last - first + 1);
    }
    if (rk == VG__RANGE_ONE) {
        snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", first, last,
                 size);
        res = vg_result_set_header(vg__status_with(res, 206), "Content-Range",
                                   crange);
    }
    res = vg_result_set_header(res, "Content-Type",
                               m->ctype ? m->ctype : vg__mime_for(name));
    res = vg_result_set_header(res, "Accept-Ranges", "bytes");
    res = vg_result_set_header(res, "X-Content-Type-Options", "nosniff");
    if (m->encoding != NULL)
        res = vg_result_set_header(res, "Content-Encoding", m->encoding);
    return vg__add_validators(res, etag, lastmod, m);
}

/* The library's own error answer (the app's error handler, problem
 * details), as for an unrouted path. */
static vg_result *vg__not_found(vg_request *req)
{
    return vg__pipeline_error(req, 404, "no such file");
}

vg_result *vg_file(vg_request *req, const char *path, const char *content_type)
{
    vg__file_meta m = {content_type, NULL, NULL, false};
    struct stat st;
    int fd;

    if (req == NULL || path == NULL) {
        errno = EINVAL;
        return NULL;
    }
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno == EACCES ? vg__pipeline_error(req, 403, "forbidden")
                               : vg__not_found(req);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return vg__not_found(req);
    }
    return vg__answer_fd(req, fd, &st, path, &m);
}

/* ---- Serving a directory ---- */

typedef struct {
    vg_app *app;
    int root;                 /* O_PATH descriptor of the directory */
    char *index;
    char *spa;
    char *cache_control;
    bool dotfiles;
    bool precompressed;
} vg__dir;

static void vg__dir_free(void *arg)
{
    vg__dir *d = arg;

    if (d->root >= 0)
        close(d->root);
    free(d->index);
    free(d->spa);
    free(d->cache_control);
    free(d);
}

/* The component-by-component walk: every intermediate directory and the
 * last name opened with O_NOFOLLOW, so a symlink anywhere is refused. The
 * components were checked (no "..", no "."), so nothing climbs out. */
static int vg__open_walk(int dirfd, const char *rel, int flags)
{
    char buf[4096], *comp, *save;
    int cur = dirfd, fd = -1;

    if (strlen(rel) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, rel);
    comp = strtok_r(buf, "/", &save);
    while (comp != NULL) {
        char *next = strtok_r(NULL, "/", &save);
        int f = next ? O_PATH | O_DIRECTORY : flags;
        fd = openat(cur, comp, f | O_NOFOLLOW | O_CLOEXEC);
        if (cur != dirfd)
            close(cur);
        if (fd < 0)
            return -1;
        cur = fd;
        comp = next;
    }
    if (cur == dirfd) { /* empty path: the directory itself */
        fd = openat(dirfd, ".", flags | O_CLOEXEC);
    }
    return fd;
}

/* Opens `rel` (relative, already checked) under dirfd, never outside it. */
static int vg__open_beneath(int dirfd, const char *rel, int flags)
{
    flags |= O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
#if defined(SYS_openat2) && defined(RESOLVE_BENEATH)
    if (!vg__static_force_walk) {
        struct open_how how;
        long fd;

        memset(&how, 0, sizeof how);
        how.flags = (unsigned long long)flags;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        fd = syscall(SYS_openat2, dirfd, *rel ? rel : ".", &how, sizeof how);
        if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
            return (int)fd;
    }
#endif
    return vg__open_walk(dirfd, rel, flags);
}

/* Whether a decoded {*path} may name a file: no empty, "." or ".."
 * segment (whatever spelling produced it: %2e%2e and %2f arrive decoded),
 * no backslash, no control character, no dotfile unless allowed. */
static bool vg__rel_ok(const char *rel, bool dotfiles)
{
    const char *p = rel;

    if (*rel == '\0')
        return true;
    for (;;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (p[0] == '.' && !dotfiles)
            return false;
        p += n;
        if (*p == '\0')
            return true;
        p++;
        if (*p == '\0')
            return true; /* one trailing '/': a directory asked for */
    }
}

static bool vg__rel_chars_ok(const char *rel)
{
    const unsigned char *p;

    for (p = (const unsigned char *)rel; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            return false;
    return true;
}

/* "/dir" names a directory: 301 to "/dir/" (query kept), so that relative
 * links inside its index resolve. The target as sent is reused, which is
 * safe: the router refused anything but an absolute path, and an empty
 * segment ("//host") never gets here. */
static vg_result *vg__redirect_slash(vg_request *req)
{
    const char *t = vg_request_target(req), *q = strchr(t, '?');
    size_t n = q ? (size_t)(q - t) : strlen(t);
    char *loc;
    vg_result *res;

    if (asprintf(&loc, "%.*s/%s", (int)n, t, q ? q : "") < 0)
        return NULL;
    res = vg_result_set_header(vg_status(301), "Location", loc);
    free(loc);
    return res;
}

/* Opens a precompressed sibling (name + ".br"/".gz") if the client takes
 * its encoding and it is a regular file; -1 otherwise. */
static int vg__open_sibling(const vg__dir *d, const char *rel, const char *ae,
                            struct stat *st, const char **enc)
{
    static const struct {
        const char *suffix, *coding;
    } kinds[] = {{".br", "br"}, {".gz", "gzip"}};
    char name[4200];
    size_t i;

    for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        int fd;
        if (vg__accept_q(ae, kinds[i].coding) <= 0)
            continue;
        if ((size_t)snprintf(name, sizeof name, "%s%s", rel, kinds[i].suffix) >=
            sizeof name)
            return -1;
        fd = vg__open_beneath(d->root, name, O_RDONLY);
        if (fd < 0)
            continue;
        if (fstat(fd, st) == 0 && S_ISREG(st->st_mode)) {
            *enc = kinds[i].coding;
            return fd;
        }
        close(fd);
    }
    return -1;
}

/* Answers the regular file `fd` found at `rel`, or a sibling of it. */
static vg_result *vg__answer_found(vg_request *req, const vg__dir *d, int fd,
                                   struct stat *st, const char *rel)
{
    vg__file_meta m = {NULL, NULL, d->cache_control, false};
    const char *ctype = vg__mime_for(rel);

    if (d->precompressed && vg__mime_compressible(ctype)) {
        struct stat sst;
        int sfd = vg__open_sibling(d, rel, vg_request_header(req,
                                                             "Accept-Encoding"),
                                   &sst, &m.encoding);
        m.vary = true;
        if (sfd >= 0) {
            close(fd);
            fd = sfd;
            *st = sst;
        }
    }
    m.ctype = ctype;
    return vg__answer_fd(req, fd, st, rel, &m);
}

/* Opens the file for rel: a regular file, or a directory's index. */
static int vg__lookup(vg_request *req, const vg__dir *d, const char *rel,
                      char *path, size_t cap, struct stat *st, bool *redirect)
{
    size_t n = strlen(rel);
    int fd;
    const char *p = vg_request_path(req);

    *redirect = false;
    if (n >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, rel, n + 1);
    while (n > 0 && path[n - 1] == '/')
        path[--n] = '\0';
    fd = vg__open_beneath(d->root, path, O_RDONLY);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0)
        goto refuse;
    if (S_ISDIR(st->st_mode)) {
        int ifd;
        if (p[strlen(p) - 1] != '/') {
            *redirect = true;
            goto refuse;
        }
        if ((size_t)snprintf(path + n, cap - n, "%s%s", n ? "/" : "",
                             d->index) >= cap - n)
            goto refuse;
        ifd = vg__open_beneath(fd, d->index, O_RDONLY);
        close(fd);
        if (ifd < 0 || fstat(ifd, st) != 0 || !S_ISREG(st->st_mode)) {
            if (ifd >= 0)
                close(ifd);
            errno = ENOENT;
            return -1;
        }
        return ifd;
    }
    if (S_ISREG(st->st_mode))
        return fd;
refuse: /* FIFOs, sockets and devices are never served */
    close(fd);
    errno = ENOENT;
    return -1;
}

static vg_result *vg__serve(vg_request *req, void *arg)
{
    const vg__dir *d = arg;
    const char *rel = vg_request_param(req, "path");
    char path[4200];
    struct stat st;
    bool redirect;
    int fd;

    if (rel == NULL || !vg__rel_chars_ok(rel) || !vg__rel_ok(rel, d->dotfiles))
        return vg__not_found(req);
    fd = vg__lookup(req, d, rel, path, sizeof path, &st, &redirect);
    if (redirect)
        return vg__redirect_slash(req);
    if (fd < 0 && d->spa != NULL && errno != EACCES) {
        snprintf(path, sizeof path, "%s", d->spa);
        fd = vg__open_beneath(d->root, path, O_RDONLY);
        if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0)
        return errno == EACCES ? vg__pipeline_error(req, 403, "forbidden")
                               : vg__not_found(req);
    return vg__answer_found(req, d, fd, &st, path);
}

/* A file name from the options: one plain name or relative path, checked
 * like a request's. */
static bool vg__opt_name_ok(const char *name)
{
    return name != NULL && *name != '\0' && name[strlen(name) - 1] != '/' &&
           vg__rel_chars_ok(name) && vg__rel_ok(name, true);
}

static vg__dir *vg__dir_new(vg_app *app, const char *dir,
                            const vg_static_options *opt)
{
    vg_static_options none;
    vg__dir *d;

    if (opt == NULL) {
        memset(&none, 0, sizeof none);
        opt = &none;
    }
    if ((opt->index && !vg__opt_name_ok(opt->index)) ||
        (opt->spa_fallback && !vg__opt_name_ok(opt->spa_fallback)) ||
        (opt->cache_control &&
         !vg__result_header_ok("Cache-Control", opt->cache_control))) {
        errno = EINVAL;
        return NULL;
    }
    d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->app = app;
    d->root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    d->index = strdup(opt->index ? opt->index : "index.html");
    d->spa = opt->spa_fallback ? strdup(opt->spa_fallback) : NULL;
    d->cache_control = opt->cache_control ? strdup(opt->cache_control) : NULL;
    d->dotfiles = opt->dotfiles;
    d->precompressed = !opt->no_precompressed;
    if (d->root < 0 || d->index == NULL ||
        (opt->spa_fallback && d->spa == NULL) ||
        (opt->cache_control && d->cache_control == NULL)) {
        int e = d->root < 0 ? errno : ENOMEM;
        vg__dir_free(d);
        errno = e;
        return NULL;
    }
    return d;
}

/* "/static" + "/{*path}"; "/" gives "/{*path}". */
static char *vg__pattern_for(const char *prefix)
{
    size_t n = strlen(prefix);
    char *out;

    while (n > 0 && prefix[n - 1] == '/')
        n--;
    if (asprintf(&out, "%.*s/{*path}", (int)n, prefix) < 0)
        return NULL;
    return out;
}

/* Shared by the app and group forms: `group` NULL maps on the app. */
static int vg__serve_dir(vg_app *app, vg_group *group, const char *prefix,
                         const char *dir, const vg_static_options *opt)
{
    char *pattern = NULL, *joined = NULL;
    vg__dir *d;
    int rc;

    if (app == NULL || prefix == NULL || prefix[0] != '/' || dir == NULL)
        return -EINVAL;
    d = vg__dir_new(app, dir, opt);
    if (d == NULL) {
        rc = -errno;
        vg__logf(&app->log, VG_LOG_ERROR, "cannot serve %s at %s: %s", dir,
                 prefix, strerror(errno));
        return rc;
    }
    /* Owned by the app from here on, so that a route mapped below never
     * outlives it, even when a later step fails. */
    if (vg__app_add_cleanup(app, vg__dir_free, d) != 0) {
        vg__dir_free(d);
        return -ENOMEM;
    }
    pattern = vg__pattern_for(prefix);
    if (pattern == NULL)
        return -ENOMEM;
    rc = group ? vg_group_map_get(group, pattern, vg__serve, d)
               : vg_map_get(app, pattern, vg__serve, d);
    if (rc == 0 && (opt == NULL || !opt->on_workers)) {
        /* The handler makes a few metadata system calls and never blocks
         * on the network; the bytes go later, by sendfile. */
        if (group != NULL && asprintf(&joined, "%s%s", group->prefix,
                                      pattern) < 0)
            rc = -ENOMEM;
        else
            rc = vg_map_inline(app, "GET", joined ? joined : pattern, true);
    }
    free(joined);
    free(pattern);
    return rc;
}

int vg_app_serve_dir(vg_app *app, const char *prefix, const char *dir)
{
    return vg__serve_dir(app, NULL, prefix, dir, NULL);
}

int vg_app_serve_dir_opts(vg_app *app, const char *prefix, const char *dir,
                          const vg_static_options *opt)
{
    return vg__serve_dir(app, NULL, prefix, dir, opt);
}

int vg_group_serve_dir(vg_group *g, const char *prefix, const char *dir,
                       const vg_static_options *opt)
{
    if (g == NULL)
        return -EINVAL;
    return vg__serve_dir(g->app, g, prefix, dir, opt);
}
