/* mime.c - Content-Type from a file name. The built-in table is consulted
 * first so that the types that matter for a site (html, css, js, json,
 * svg, wasm) do not depend on what the system file says; everything else
 * comes from /etc/mime.types, read once. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web/mime.h"

typedef struct {
    const char *ext;
    const char *type;
} vg__mime_entry;

static const vg__mime_entry vg__builtin[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/vnd.microsoft.icon"},
    {"wasm", "application/wasm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"pdf", "application/pdf"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
};

static const char vg__octet[] = "application/octet-stream";

/* /etc/mime.types, sorted by extension for bsearch; kept for the life of
 * the process (it is read once and shared by every app). */
static vg__mime_entry *vg__sys;
static size_t vg__nsys;
static pthread_once_t vg__sys_once = PTHREAD_ONCE_INIT;

static int vg__entry_cmp(const void *a, const void *b)
{
    return strcmp(((const vg__mime_entry *)a)->ext,
                  ((const vg__mime_entry *)b)->ext);
}

/* A text type gets its charset: the files a site serves are UTF-8. */
static char *vg__type_dup(const char *type)
{
    char *out;

    if (strncmp(type, "text/", 5) != 0)
        return strdup(type);
    if (asprintf(&out, "%s; charset=utf-8", type) < 0)
        return NULL;
    return out;
}

static int vg__sys_add(size_t *cap, const char *ext, const char *type)
{
    vg__mime_entry e;
    char *p;

    if (vg__nsys == *cap) {
        size_t ncap = *cap ? *cap * 2 : 512;
        vg__mime_entry *grown = realloc(vg__sys, ncap * sizeof *grown);
        if (grown == NULL)
            return -1;
        vg__sys = grown;
        *cap = ncap;
    }
    e.ext = strdup(ext);
    e.type = vg__type_dup(type);
    if (e.ext == NULL || e.type == NULL) {
        free((char *)e.ext);
        free((char *)e.type);
        return -1;
    }
    for (p = (char *)e.ext; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    vg__sys[vg__nsys++] = e;
    return 0;
}

/* Lines are "type ext ext ..."; '#' starts a comment. */
static void vg__sys_load(void)
{
    FILE *f = fopen("/etc/mime.types", "re");
    char line[1024], *save, *type, *ext;
    size_t cap = 0;

    if (f == NULL)
        return; /* the built-in table still answers */
    while (fgets(line, sizeof line, f) != NULL) {
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        type = strtok_r(line, " \t\r\n", &save);
        if (type == NULL || strchr(type, '/') == NULL)
            continue;
        while ((ext = strtok_r(NULL, " \t\r\n", &save)) != NULL)
            if (vg__sys_add(&cap, ext, type) != 0)
                goto done;
    }
done:
    fclose(f);
    if (vg__nsys > 0)
        qsort(vg__sys, vg__nsys, sizeof *vg__sys, vg__entry_cmp);
}

const char *vg__mime_for(const char *name)
{
    const char *dot = name ? strrchr(name, '.') : NULL;
    char ext[16];
    size_t i, n;
    vg__mime_entry key, *hit;

    if (dot == NULL || strchr(dot, '/') != NULL)
        return vg__octet;
    n = strlen(dot + 1);
    if (n == 0 || n >= sizeof ext)
        return vg__octet;
    for (i = 0; i <= n; i++)
        ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    for (i = 0; i < sizeof vg__builtin / sizeof vg__builtin[0]; i++)
        if (strcmp(vg__builtin[i].ext, ext) == 0)
            return vg__builtin[i].type;
    pthread_once(&vg__sys_once, vg__sys_load);
    key.ext = ext;
    hit = vg__nsys ? bsearch(&key, vg__sys, vg__nsys, sizeof *vg__sys,
                             vg__entry_cmp)
                   : NULL;
    return hit ? hit->type : vg__octet;
}

/* Compares the media type (before any ';') of ctype with `want`. */
static int vg__type_is(const char *ctype, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(ctype, want, len) == 0;
}

int vg__mime_compressible(const char *ctype)
{
    size_t len;

    if (ctype == NULL)
        return 0;
    len = strcspn(ctype, "; \t");
    if (len >= 5 && strncasecmp(ctype, "text/", 5) == 0)
        return !vg__type_is(ctype, len, "text/event-stream");
    if (len > 5 && (strncasecmp(ctype + len - 5, "+json", 5) == 0 ||
                    strncasecmp(ctype + len - 4, "+xml", 4) == 0))
        return 1;
    return vg__type_is(ctype, len, "application/json") ||
           vg__type_is(ctype, len, "application/xml") ||
           vg__type_is(ctype, len, "application/javascript") ||
           vg__type_is(ctype, len, "application/wasm") ||
           vg__type_is(ctype, len, "image/svg+xml");
}
