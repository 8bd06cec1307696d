/* upload.c - a request's uploaded files and the public vg_upload getters
 * (see upload.h for how the files come and go). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/request.h"
#include "model/upload.h"

struct vg_upload {
    vg_upload *next;
    char *name;      /* the form field's name */
    char *filename;  /* as sent; never used as a path */
    char *ctype;     /* as sent, or NULL */
    int fd;          /* an anonymous file, owned by the request */
    size_t size;     /* bytes taken, buffered ones included */
    char *wbuf;      /* VG__UPLOAD_WBUF bytes, only while being written */
    size_t wlen;     /* bytes in wbuf not yet written */
};

/* Bytes gathered before each write(2) of a file being received. The
 * PostProcessor hands over pieces of a little under 16 KiB (what
 * libmicrohttpd read, minus the bytes it holds back in case they start a
 * boundary), so written as they come every write ends inside a page and
 * starts inside the next: the kernel zeroes the rest of each new page
 * first (ext4 block_write_begin, tmpfs shmem_write_end), then the next
 * write copies over it. Gathered into 256 KiB, a power of two, every write
 * but a file's last covers whole pages at a page-aligned offset, and there
 * are 16 times fewer of them: on ext4 0.69 -> 0.25 ms of CPU per MiB
 * written, on tmpfs about 10% less (bench/RESULTS.md, "Uploads"). One such
 * buffer per request, held only while a file part is arriving. */
#define VG__UPLOAD_WBUF (256 * 1024)

bool vg__upload_no_tmpfile = false;

/* A new anonymous file in `dir`: O_TMPFILE where the filesystem has it
 * (never visible in the directory at all), else mkstemp and an immediate
 * unlink (visible for the few instructions in between). */
static int vg__tmpfile(const char *dir)
{
    char path[4096];
    int fd;

    if (!vg__upload_no_tmpfile) {
        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        /* Anything but "no O_TMPFILE here" is a real failure. */
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
            return -errno;
    }
    if (snprintf(path, sizeof path, "%s/.volga-upload-XXXXXX", dir) >=
        (int)sizeof path)
        return -ENAMETOOLONG;
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (unlink(path) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/* Writes all of data[0..size) to fd. 0 or a negative errno. */
static int vg__write_all(int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

/* Writes out what `u` has gathered. 0 or a negative errno. */
static int vg__upload_flush(vg_upload *u)
{
    int rc = 0;

    if (u->wlen > 0)
        rc = vg__write_all(u->fd, u->wbuf, u->wlen);
    u->wlen = 0;
    return rc;
}

/* The part `u` is complete: its last bytes go to the file and its buffer
 * is handed on (to `to`, the next part, if given) or freed. */
static int vg__upload_end(vg_upload *u, vg_upload *to)
{
    int rc = vg__upload_flush(u);

    if (to != NULL && to->wbuf == NULL)
        to->wbuf = u->wbuf;
    else
        free(u->wbuf);
    u->wbuf = NULL;
    return rc;
}

static void vg__upload_free(vg_upload *u)
{
    free(u->wbuf);
    if (u->fd >= 0)
        close(u->fd);
    free(u->name);
    free(u->filename);
    free(u->ctype);
    free(u);
}

int vg__upload_begin(vg_request *req, const char *dir, const char *name,
                     const char *filename, const char *content_type)
{
    vg_upload *u = calloc(1, sizeof *u), **tail;
    int fd, rc;

    if (u == NULL)
        return -ENOMEM;
    u->fd = -1;
    u->name = strdup(name ? name : "");
    u->filename = strdup(filename ? filename : "");
    u->ctype = content_type ? strdup(content_type) : NULL;
    if (u->name == NULL || u->filename == NULL ||
        (content_type != NULL && u->ctype == NULL)) {
        vg__upload_free(u);
        return -ENOMEM;
    }
    fd = vg__tmpfile(dir);
    if (fd < 0) {
        vg__upload_free(u);
        return fd;
    }
    u->fd = fd;
    for (tail = &req->uploads; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = u;
    /* The part before is complete: the PostProcessor delivers parts one
     * after the other. Its buffer is this one's. */
    rc = req->upload_last != NULL ? vg__upload_end(req->upload_last, u) : 0;
    req->upload_last = u;
    return rc;
}

int vg__upload_write(vg_request *req, const char *data, size_t size)
{
    vg_upload *u = req->upload_last;
    size_t k;
    int rc;

    if (u == NULL)
        return -EBADF;
    if (u->wbuf == NULL && (u->wbuf = malloc(VG__UPLOAD_WBUF)) == NULL)
        return -ENOMEM;
    while (size > 0) {
        k = VG__UPLOAD_WBUF - u->wlen;
        if (k > size)
            k = size;
        memcpy(u->wbuf + u->wlen, data, k);
        u->wlen += k;
        u->size += k;
        data += k;
        size -= k;
        if (u->wlen == VG__UPLOAD_WBUF && (rc = vg__upload_flush(u)) != 0)
            return rc;
    }
    return 0;
}

int vg__uploads_done(vg_request *req)
{
    vg_upload *u;
    int rc = 0;

    if (req->upload_last != NULL)
        rc = vg__upload_end(req->upload_last, NULL);
    for (u = req->uploads; u != NULL; u = u->next)
        (void)lseek(u->fd, 0, SEEK_SET);
    return rc;
}

void vg__uploads_free(vg_upload *head)
{
    vg_upload *next;

    for (; head != NULL; head = next) {
        next = head->next;
        vg__upload_free(head);
    }
}

/* ---- Public ---- */

const vg_upload *vg_request_upload(vg_request *req, const char *name)
{
    vg_upload *u;

    if (req == NULL || name == NULL) {
        errno = EINVAL;
        return NULL;
    }
    for (u = req->uploads; u != NULL; u = u->next)
        if (strcmp(u->name, name) == 0)
            return u;
    errno = ENOENT;
    return NULL;
}

int vg_request_uploads(vg_request *req,
                       int (*fn)(const vg_upload *u, void *arg), void *arg)
{
    vg_upload *u;
    int rc;

    if (req == NULL || fn == NULL)
        return -EINVAL;
    for (u = req->uploads; u != NULL; u = u->next) {
        rc = fn(u, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

const char *vg_upload_name(const vg_upload *u)
{
    return u ? u->name : NULL;
}

const char *vg_upload_filename(const vg_upload *u)
{
    return u ? u->filename : NULL;
}

const char *vg_upload_content_type(const vg_upload *u)
{
    return u ? u->ctype : NULL;
}

size_t vg_upload_size(const vg_upload *u)
{
    return u ? u->size : 0;
}

int vg_upload_fd(const vg_upload *u)
{
    return u ? u->fd : -1;
}

/* Copies the whole file to a new file at `path` (another filesystem, or a
 * file made by the mkstemp fallback, which has no inode link left). */
static int vg__upload_copy(const vg_upload *u, const char *path)
{
    char *buf = malloc(64 * 1024);
    off_t off = 0;
    int out, err = 0;

    if (buf == NULL)
        return -ENOMEM;
    out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        err = -errno;
        free(buf);
        return err;
    }
    for (;;) {
        ssize_t n = pread(u->fd, buf, 64 * 1024, off), w = 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = -errno;
            break;
        }
        if (n == 0)
            break;
        while (w < n) {
            ssize_t k = write(out, buf + w, (size_t)(n - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                err = -errno;
                break;
            }
            w += k;
        }
        if (err != 0)
            break;
        off += n;
    }
    if (close(out) != 0 && err == 0)
        err = -errno;
    if (err != 0)
        unlink(path); /* no half copy left behind */
    free(buf);
    return err;
}

int vg_upload_save(const vg_upload *u, const char *path)
{
    char proc[64];

    if (u == NULL || path == NULL || u->fd < 0)
        return -EINVAL;
    /* An O_TMPFILE file gets its first name with one link: no copy. */
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", u->fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    if (errno == EEXIST)
        return -EEXIST;
    /* EXDEV (another filesystem), ENOENT (the fallback's unlinked file, or
     * no /proc): copy instead. */
    return vg__upload_copy(u, path);
}
