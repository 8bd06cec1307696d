/* mhd_head_model.h - a model of how libmicrohttpd 0.9.75 parses a request
 * head in place (src/microhttpd/connection.c: get_next_header_line,
 * parse_initial_message_line, process_header_line, process_broken_line),
 * for testing lib/model/http_strict.c without a socket: it leaves the strings
 * where libmicrohttpd would (CR, LF, the first space and the colon turned
 * into NULs, an obs-fold continuation glued onto the *name*, which moves
 * to a new block of the pool and is zeroed where it was), and it knows
 * what the bytes held, which the checks only infer.
 *
 * Shared by tests/test_http_strict.c and tests/fuzz/fuzz_strict.c; all
 * static, include once per program.
 */
#ifndef VG_MHD_HEAD_MODEL_H
#define VG_MHD_HEAD_MODEL_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_MAX_FIELDS 64

typedef struct {
    char *pool;             /* the read buffer, then room for moved names */
    size_t pool_len, pos;   /* pos: the next free byte after the buffer */
    const char *method, *uri, *version, *head_end;
    size_t uri_len;         /* strlen(uri) when the URI callback ran */
    const char *names[MODEL_MAX_FIELDS], *values[MODEL_MAX_FIELDS];
    size_t n;
    /* What the bytes held (the truth the checks must infer). */
    bool folded;            /* a continuation line was glued on */
    bool nul;               /* a NUL in the head that is not one a CR
                               before an LF could stand for, nor in an
                               end of the head as short as a real one */
    bool empty_name_end;    /* libmicrohttpd took ": v" for the end (but
                               not a bare ":" line that, with the line
                               end before it, is as long as an empty
                               line's: out of reach, README
                               "Conformance") */
} model_head;

/* Finds the next line at *at: zeroes its CRLF or bare LF, returns its
 * start and length; NULL when no line end is left (head incomplete). */
static char *model_line(model_head *m, size_t end, size_t *at, size_t *len)
{
    size_t p;

    for (p = *at; p < end; p++) {
        if (m->pool[p] == '\r' && p + 1 < end && m->pool[p + 1] == '\n') {
            char *line = m->pool + *at;
            *len = p - *at;
            m->pool[p] = m->pool[p + 1] = '\0';
            *at = p + 2;
            return line;
        }
        if (m->pool[p] == '\n') {
            char *line = m->pool + *at;
            *len = p - *at;
            m->pool[p] = '\0';
            *at = p + 1;
            return line;
        }
    }
    return NULL;
}

/* Whether bytes [from, to) of the original input hold a NUL that is not
 * right before an LF (where it reads exactly as a CR would). */
static bool model_has_nul(const char *in, size_t from, size_t to)
{
    size_t i;

    for (i = from; i < to; i++)
        if (in[i] == '\0' && !(i + 1 < to && in[i + 1] == '\n'))
            return true;
    return false;
}

/* Where the run of NUL, CR and LF bytes that ends [from, to) begins. */
static size_t model_end_run(const char *in, size_t from, size_t to)
{
    while (to > from && (in[to - 1] == '\0' || in[to - 1] == '\r' ||
                         in[to - 1] == '\n'))
        to--;
    return to;
}

static void model_add(model_head *m, const char *name, const char *value)
{
    if (m->n < MODEL_MAX_FIELDS) {
        m->names[m->n] = name;
        m->values[m->n] = value;
        m->n++;
    }
}

/* Parses `len` bytes. Returns 1 when libmicrohttpd would call the access
 * handler with this head, 0 when it would refuse it itself (or the head
 * is incomplete, or has too many fields for the model). m->pool must be
 * freed with model_free. */
static int model_parse(model_head *m, const char *in, size_t len)
{
    size_t at = 0, llen, start, prev_end;
    const char *last_end;
    char *line, *sp, *uri, *v, *last = NULL, *colon = NULL;
    bool first = true;
    /* A line whose only NULs end it: whether they are out of reach depends
     * on the next line (see below). */
    bool tail_pending = false;
    size_t tail_from = 0;

    memset(m, 0, sizeof *m);
    m->pool_len = 2 * len + 64;
    m->pool = calloc(1, m->pool_len);
    if (m->pool == NULL)
        return 0;
    memcpy(m->pool, in, len);
    m->pos = len + 1;
    /* Empty lines before the request line are tolerated. */
    do {
        start = at;
        line = model_line(m, len, &at, &llen);
        if (line == NULL)
            return 0;
    } while (line[0] == '\0');
    sp = memchr(line, ' ', llen);
    if (sp == NULL)
        return 0;
    *sp = '\0';
    m->method = line;
    uri = sp + 1;
    while (*uri == ' ' && (size_t)(uri - line) < llen)
        uri++;
    if ((size_t)(uri - line) == llen)
        return 0; /* no target and no version: HTTP/0.9, refused */
    v = line + llen - 1;
    while (*v == ' ' && v > uri)
        v--;
    while (*v != ' ' && v > uri)
        v--;
    if (v <= uri)
        return 0; /* no version */
    *v = '\0';
    m->version = v + 1;
    if ((size_t)(line + llen - m->version) != 8 ||
        memcmp(m->version, "HTTP/1.", 7) != 0 ||
        (m->version[7] != '0' && m->version[7] != '1'))
        return 0; /* parse_http_version */
    m->uri = uri;
    m->uri_len = strlen(uri);
    last_end = line + llen;
    m->nul = model_has_nul(in, start, at);
    for (;;) {
        /* Where the previous line's content ended (its CR or LF). */
        prev_end = (size_t)(last_end - m->pool);
        start = at;
        line = model_line(m, len, &at, &llen);
        if (line == NULL)
            return 0;
        /* NULs that end the last field's line, with the end of the head,
         * are as out of reach as the case below when the bytes from the
         * first of them to the end of the head are no more than a real
         * line end and empty line's 4. */
        if (tail_pending && !(line[0] == '\0' && at - tail_from <= 4))
            m->nul = true;
        tail_pending = false;
        /* A NUL in the line that ends the head is out of reach when that
         * end is no longer than an empty line's (2 to 4 bytes of NULs
         * either way): README "Conformance". */
        if (model_has_nul(in, start, at) &&
            !(line[0] == '\0' && at - prev_end <= 4)) {
            size_t run = model_end_run(in, start, at);

            if (line[0] != '\0' && !model_has_nul(in, start, run)) {
                tail_pending = true;
                tail_from = run;
            } else {
                m->nul = true;
            }
        }
        if (first) {
            if (line[0] == '\0') {
                m->head_end = m->pool + at;
                return 1;
            }
        } else if (line[0] == ' ' || line[0] == '\t') {
            /* process_broken_line: the continuation goes onto `last`, the
             * name, which moves to a new block; the old bytes are zeroed. */
            const char *tmp = line;
            size_t a = strlen(last), b;
            char *moved;

            while (*tmp == ' ' || *tmp == '\t')
                tmp++;
            b = strlen(tmp);
            if (m->pos + a + b + 1 > m->pool_len)
                return 0; /* 431 */
            if (last + a + 1 == m->pool + m->pos) {
                /* Already moved: the last block grows in place. */
                memcpy(last + a, tmp, b + 1);
                m->pos += b;
            } else {
                moved = m->pool + m->pos;
                memcpy(moved, last, a);
                memcpy(moved + a, tmp, b + 1);
                memset(last, 0, a + 1);
                m->pos += a + b + 1;
                last = moved;
            }
            m->folded = true;
            last_end = line + llen;
            continue;
        } else {
            model_add(m, last, colon);
            if (line[0] == '\0') {
                m->head_end = m->pool + at;
                return m->n < MODEL_MAX_FIELDS;
            }
        }
        /* process_header_line */
        colon = strchr(line, ':');
        if (colon == NULL)
            return 0;
        *colon++ = '\0';
        while (*colon == ' ' || *colon == '\t')
            colon++;
        last = line;
        last_end = line + llen;
        if (!first && line[0] == '\0') {
            /* The state machine looks at line[0] again after this, and the
             * colon it just zeroed reads as the empty line. */
            /* Out of reach: a bare ':' (NULs after it read as the CR a
             * real line end could have) whose line, with the line end
             * before it, is as long as an empty line's. */
            size_t j = 1;

            while (j < llen && line[j] == '\0')
                j++;
            m->empty_name_end = !(j == llen && at - prev_end <= 4);
            m->head_end = m->pool + at;
            return m->n < MODEL_MAX_FIELDS;
        }
        first = false;
    }
}

static void model_free(model_head *m)
{
    free(m->pool);
    m->pool = NULL;
}

#endif
