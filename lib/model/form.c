/* form.c - the fields of a form body as the request keeps them, and the
 * public getters over them (see form.h for who parses and who stores). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/form.h"
#include "model/request.h"
#include "pipeline/limits.h"

/* One field: name and value malloc'd and NUL-terminated; `len` is the
 * value's real length (a value may hold NUL bytes). */
typedef struct {
    char *name;
    char *value;
    size_t len, cap;
} vg__field;

struct vg__form {
    vg__field *fields;
    size_t n, cap;
    int err; /* 0, or why the body could not be decoded (-EBADMSG...) */
    size_t files;                 /* file parts seen */
    unsigned long long file_len;  /* bytes of the current one */
};

int vg__form_begin(vg_request *req)
{
    if (req->form != NULL)
        return 0;
    req->form = calloc(1, sizeof *req->form);
    return req->form != NULL ? 0 : -ENOMEM;
}

/* Grows the value of `f` to take `size` more bytes (and the NUL). */
static int vg__field_reserve(vg__field *f, size_t size)
{
    size_t need, cap;
    char *grown;

    if (size > SIZE_MAX - 1 - f->len)
        return -ENOMEM;
    need = f->len + size + 1;
    if (need <= f->cap)
        return 0;
    cap = f->cap ? f->cap : 32;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    grown = realloc(f->value, cap);
    if (grown == NULL)
        return -ENOMEM;
    f->value = grown;
    f->cap = cap;
    return 0;
}

/* Appends a new, empty field named `name`. */
static vg__field *vg__form_add(vg__form *form, const char *name)
{
    vg__field *f;

    if (form->n == form->cap) {
        size_t cap = form->cap ? form->cap * 2 : 8;
        vg__field *grown = realloc(form->fields, cap * sizeof *grown);

        if (grown == NULL)
            return NULL;
        form->fields = grown;
        form->cap = cap;
    }
    f = &form->fields[form->n];
    memset(f, 0, sizeof *f);
    f->name = strdup(name);
    if (f->name == NULL || vg__field_reserve(f, 0) != 0) {
        free(f->name);
        return NULL;
    }
    f->value[0] = '\0';
    form->n++;
    return f;
}

enum { VG__FORM_FIELDS, VG__FORM_FIELD_SIZE, VG__FORM_FILES,
       VG__FORM_FILE_SIZE };

/* The route's limit on the number or size of fields; without a route
 * record (requests made by unit tests) the defaults. */
static size_t vg__form_max(const vg_request *req, int which)
{
    const vg__limits *lim = req->limits;

    switch (which) {
    case VG__FORM_FIELDS:
        return lim ? lim->fields : VG__DEFAULT_FIELDS;
    case VG__FORM_FIELD_SIZE:
        return lim ? lim->field_size : VG__DEFAULT_FIELD_SIZE;
    case VG__FORM_FILES:
        return lim ? lim->files : VG__DEFAULT_FILES;
    default:
        return lim ? lim->file_size : SIZE_MAX;
    }
}

int vg__form_feed(vg_request *req, const char *name, const char *data,
                  uint64_t off, size_t size)
{
    vg__form *form = req->form;
    vg__field *f;

    if (form == NULL || form->err != 0)
        return -EBADMSG;
    if (off == 0 && form->n >= vg__form_max(req, VG__FORM_FIELDS))
        return -E2BIG;
    if (off == 0) {
        f = vg__form_add(form, name);
        if (f == NULL)
            return -ENOMEM;
    } else {
        /* A continuation belongs to the last field and starts where it
         * ends; anything else means the decoder lost its place. */
        if (form->n == 0)
            return -EBADMSG;
        f = &form->fields[form->n - 1];
        if (off != f->len || strcmp(f->name, name) != 0)
            return -EBADMSG;
    }
    if (size == 0)
        return 0;
    if (size > vg__form_max(req, VG__FORM_FIELD_SIZE) - f->len)
        return -E2BIG;
    if (vg__field_reserve(f, size) != 0)
        return -ENOMEM;
    memcpy(f->value + f->len, data, size);
    f->len += size;
    f->value[f->len] = '\0';
    return 0;
}

int vg__form_count_file(vg_request *req, uint64_t off, size_t size)
{
    vg__form *form = req->form;

    if (form == NULL || form->err != 0)
        return -EBADMSG;
    if (off == 0) {
        if (form->files >= vg__form_max(req, VG__FORM_FILES))
            return -E2BIG;
        form->files++;
        form->file_len = 0;
    }
    if (size > vg__form_max(req, VG__FORM_FILE_SIZE) - form->file_len)
        return -E2BIG;
    form->file_len += size;
    return 0;
}

void vg__form_fail(vg_request *req, int err)
{
    if (req->form == NULL && vg__form_begin(req) != 0)
        return; /* no memory: vg_request_form then says ENOENT */
    if (req->form->err == 0)
        req->form->err = err;
}

void vg__form_free(vg__form *form)
{
    size_t i;

    if (form == NULL)
        return;
    for (i = 0; i < form->n; i++) {
        free(form->fields[i].name);
        free(form->fields[i].value);
    }
    free(form->fields);
    free(form);
}

/* The request's form if it decoded, else NULL with errno set: ENOENT (the
 * body is not a form), or the decoding error. */
static const vg__form *vg__form_of(const vg_request *req)
{
    if (req == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (req->form == NULL) {
        errno = ENOENT;
        return NULL;
    }
    if (req->form->err != 0) {
        errno = -req->form->err;
        return NULL;
    }
    return req->form;
}

const char *vg_request_form(vg_request *req, const char *name)
{
    const vg__form *form = vg__form_of(req);
    size_t i;

    if (form == NULL)
        return NULL;
    if (name == NULL) {
        errno = EINVAL;
        return NULL;
    }
    for (i = 0; i < form->n; i++)
        if (strcmp(form->fields[i].name, name) == 0)
            return form->fields[i].value;
    errno = ENOENT;
    return NULL;
}

int vg_request_form_each(vg_request *req,
                         int (*fn)(const char *name, const char *value,
                                   size_t len, void *arg),
                         void *arg)
{
    const vg__form *form;
    size_t i;
    int rc;

    if (fn == NULL)
        return -EINVAL;
    form = vg__form_of(req);
    if (form == NULL)
        return -errno;
    for (i = 0; i < form->n; i++) {
        rc = fn(form->fields[i].name, form->fields[i].value,
                form->fields[i].len, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}
