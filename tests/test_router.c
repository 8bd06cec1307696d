/* test_router.c - the route trie: patterns, precedence, 404/405, limits. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/router.h"

/* Handlers are never called here; routes are told apart by their `arg`,
 * which points at tags[i]. */
static char tags[256];
#define TAG(i) ((void *)&tags[(i)])

static vg_result *handler(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return NULL;
}

static vg_result *other_handler(vg_request *req, void *arg)
{
    (void)req;
    (void)arg;
    return NULL;
}

/* Splits a request path the way the caller of vg__router_match does: "/"
 * has no segments and one trailing empty segment is dropped. `buf` and
 * `segs` are the caller's so that threads can use this at once; it asserts
 * nothing, because Check's assertions belong on the test's own thread.
 * Returns the number of segments, or SPLIT_FAILED if they do not fit. */
#define MAX_TEST_SEGS 64
#define SPLIT_FAILED ((size_t)-1)
static size_t split_path_raw(const char *path, char *buf, size_t bufsize,
                             const char **segs)
{
    size_t nseg = 0;
    if (path[0] != '/' || strlen(path) >= bufsize)
        return SPLIT_FAILED;
    strcpy(buf, path + 1);
    if (buf[0] == '\0')
        return 0;
    char *p = buf;
    for (;;) {
        if (nseg == MAX_TEST_SEGS)
            return SPLIT_FAILED;
        segs[nseg++] = p;
        char *slash = strchr(p, '/');
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    if (segs[nseg - 1][0] == '\0')
        nseg--;
    return nseg;
}

static size_t split_path(const char *path, char *buf, size_t bufsize,
                         const char **segs)
{
    size_t nseg = split_path_raw(path, buf, bufsize, segs);
    ck_assert_msg(nseg != SPLIT_FAILED, "test path %s is too long", path);
    return nseg;
}

static vg__match_kind match(const vg__router *r, const char *method,
                            const char *path, vg__match *m)
{
    char buf[512];
    const char *segs[MAX_TEST_SEGS];
    size_t nseg = split_path(path, buf, sizeof buf, segs);
    return vg__router_match(r, method, segs, nseg, m);
}

/* The value a parameter would have, rebuilt from the request path, so that
 * tests can compare seg indices with readable strings. */
static const char *param_value(const char *path, const vg__param *p, char *out,
                               size_t outsize)
{
    char buf[512];
    const char *segs[MAX_TEST_SEGS];
    size_t nseg = split_path(path, buf, sizeof buf, segs);
    out[0] = '\0';
    size_t last = p->rest ? nseg : p->seg + 1;
    ck_assert(p->seg <= nseg && last <= nseg);
    for (size_t i = p->seg; i < last; i++) {
        if (i > p->seg)
            strncat(out, "/", outsize - strlen(out) - 1);
        strncat(out, segs[i], outsize - strlen(out) - 1);
    }
    return out;
}

#define ck_found(r, method, path, tag)                                       \
    do {                                                                     \
        vg__match m_;                                                        \
        ck_assert_msg(match((r), (method), (path), &m_) == VG__MATCH_FOUND,  \
                      "%s %s not found", (method), (path));                  \
        ck_assert_msg(m_.arg == TAG(tag), "%s %s matched the wrong route",   \
                      (method), (path));                                     \
        ck_assert_ptr_nonnull(m_.fn);                                        \
    } while (0)

#define ck_no_path(r, method, path)                                          \
    do {                                                                     \
        vg__match m_;                                                        \
        ck_assert_msg(match((r), (method), (path), &m_) == VG__MATCH_NO_PATH,\
                      "%s %s should be 404", (method), (path));              \
        ck_assert_ptr_null(m_.fn);                                           \
        ck_assert_ptr_null(m_.allow);                                        \
    } while (0)

#define ck_no_method(r, method, path, allow_)                                \
    do {                                                                     \
        vg__match m_;                                                        \
        ck_assert_msg(match((r), (method), (path), &m_) ==                   \
                          VG__MATCH_NO_METHOD,                               \
                      "%s %s should be 405", (method), (path));              \
        ck_assert_ptr_null(m_.fn);                                           \
        ck_assert_str_eq(m_.allow, (allow_));                                \
    } while (0)

#define ck_add(r, method, pattern, tag)                                      \
    ck_assert_int_eq(vg__router_add((r), (method), (pattern), handler,       \
                                    TAG(tag)), 0)

/* ------------------------------------------------------------------------ */

START_TEST(test_new_free)
{
    vg__router *r = vg__router_new();
    ck_assert_ptr_nonnull(r);
    ck_no_path(r, "GET", "/");
    ck_no_path(r, "GET", "/a");
    vg__router_free(r);
    vg__router_free(NULL);
}
END_TEST

START_TEST(test_literal)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/users", 1);
    ck_add(r, "GET", "/users/list", 2);
    ck_add(r, "GET", "/about", 3);
    ck_add(r, "GET", "/a/b/c/d", 4);
    ck_add(r, "GET", "/caf\xc3\xa9", 5);

    ck_found(r, "GET", "/users", 1);
    ck_found(r, "GET", "/users/", 1); /* the caller drops one trailing '/' */
    ck_found(r, "GET", "/users/list", 2);
    ck_found(r, "GET", "/about", 3);
    ck_found(r, "GET", "/a/b/c/d", 4);
    ck_found(r, "GET", "/caf\xc3\xa9", 5);

    vg__match m;
    ck_assert_int_eq(match(r, "GET", "/users", &m), VG__MATCH_FOUND);
    ck_assert_uint_eq(m.nparams, 0);
    ck_assert_str_eq(m.allow, "GET, HEAD, OPTIONS");

    ck_no_path(r, "GET", "/");
    ck_no_path(r, "GET", "/user");
    ck_no_path(r, "GET", "/Users"); /* case-sensitive */
    ck_no_path(r, "GET", "/users/list/more");
    ck_no_path(r, "GET", "/a/b/c"); /* an inner node holds no route */
    ck_no_path(r, "GET", "/a/b/c/d/e");
    vg__router_free(r);
}
END_TEST

START_TEST(test_root)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/", 1);
    ck_add(r, "GET", "/x", 2);
    ck_found(r, "GET", "/", 1);
    ck_found(r, "GET", "/x", 2);
    ck_no_path(r, "GET", "/y");
    ck_no_method(r, "POST", "/", "GET, HEAD, OPTIONS");

    vg__match m;
    ck_assert_int_eq(vg__router_match(r, "GET", NULL, 0, &m), VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(1));
    vg__router_free(r);
}
END_TEST

START_TEST(test_params)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/users/{id}/posts/{post_id}", 1);
    ck_add(r, "GET", "/{A9_z}", 2);

    vg__match m;
    char v[128];
    const char *path = "/users/42/posts/hello%2Fworld";
    ck_assert_int_eq(match(r, "GET", path, &m), VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(1));
    ck_assert_uint_eq(m.nparams, 2);
    ck_assert_str_eq(m.params[0].name, "id");
    ck_assert_uint_eq(m.params[0].seg, 1);
    ck_assert(!m.params[0].rest);
    ck_assert_str_eq(param_value(path, &m.params[0], v, sizeof v), "42");
    ck_assert_str_eq(m.params[1].name, "post_id");
    ck_assert_uint_eq(m.params[1].seg, 3);
    ck_assert(!m.params[1].rest);
    ck_assert_str_eq(param_value(path, &m.params[1], v, sizeof v),
                     "hello%2Fworld");

    ck_assert_int_eq(match(r, "GET", "/anything", &m), VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(2));
    ck_assert_uint_eq(m.nparams, 1);
    ck_assert_str_eq(m.params[0].name, "A9_z");
    ck_assert_uint_eq(m.params[0].seg, 0);

    ck_no_path(r, "GET", "/users/42/posts");
    ck_no_path(r, "GET", "/users/42/comments/1");
    ck_no_path(r, "GET", "/users/42/posts/1/x");
    vg__router_free(r);
}
END_TEST

START_TEST(test_param_names_per_route)
{
    /* Both patterns share the param node, but each reports its own names. */
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/u/{id}/x/{a}", 1);
    ck_add(r, "POST", "/u/{name}/x/{b}", 2);

    vg__match m;
    ck_assert_int_eq(match(r, "GET", "/u/7/x/8", &m), VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(1));
    ck_assert_str_eq(m.params[0].name, "id");
    ck_assert_str_eq(m.params[1].name, "a");
    ck_assert_int_eq(match(r, "POST", "/u/7/x/8", &m), VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(2));
    ck_assert_str_eq(m.params[0].name, "name");
    ck_assert_str_eq(m.params[1].name, "b");
    ck_assert_uint_eq(m.params[1].seg, 3);
    vg__router_free(r);
}
END_TEST

START_TEST(test_rest_segments)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/files/{id}/raw/{*path}", 1);

    vg__match m;
    char v[128];
    /* Zero segments: "/files/3/raw" and "/files/3/raw/" both match. */
    ck_assert_int_eq(match(r, "GET", "/files/3/raw", &m), VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(1));
    ck_assert_uint_eq(m.nparams, 2);
    ck_assert_str_eq(m.params[0].name, "id");
    ck_assert_uint_eq(m.params[0].seg, 1);
    ck_assert(!m.params[0].rest);
    ck_assert_str_eq(m.params[1].name, "path");
    ck_assert_uint_eq(m.params[1].seg, 3);
    ck_assert(m.params[1].rest);
    ck_assert_str_eq(param_value("/files/3/raw", &m.params[1], v, sizeof v),
                     "");
    ck_assert_int_eq(match(r, "GET", "/files/3/raw/", &m), VG__MATCH_FOUND);
    ck_assert_uint_eq(m.params[1].seg, 3);

    /* One segment. */
    ck_assert_int_eq(match(r, "GET", "/files/3/raw/a.txt", &m),
                     VG__MATCH_FOUND);
    ck_assert_uint_eq(m.params[1].seg, 3);
    ck_assert(m.params[1].rest);
    ck_assert_str_eq(
        param_value("/files/3/raw/a.txt", &m.params[1], v, sizeof v), "a.txt");

    /* Many segments, empty ones included. */
    const char *path = "/files/3/raw/a/b//c/d.txt";
    ck_assert_int_eq(match(r, "GET", path, &m), VG__MATCH_FOUND);
    ck_assert_uint_eq(m.params[1].seg, 3);
    ck_assert(m.params[1].rest);
    ck_assert_str_eq(param_value(path, &m.params[1], v, sizeof v),
                     "a/b//c/d.txt");

    ck_no_path(r, "GET", "/files/3");
    ck_no_path(r, "GET", "/files/3/cooked/x");
    vg__router_free(r);
}
END_TEST

START_TEST(test_rest_at_root)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/{*all}", 1);
    vg__match m;
    ck_assert_int_eq(match(r, "GET", "/", &m), VG__MATCH_FOUND);
    ck_assert_uint_eq(m.nparams, 1);
    ck_assert_str_eq(m.params[0].name, "all");
    ck_assert_uint_eq(m.params[0].seg, 0);
    ck_assert(m.params[0].rest);
    ck_assert_int_eq(match(r, "GET", "/x/y/z", &m), VG__MATCH_FOUND);
    ck_assert_uint_eq(m.params[0].seg, 0);

    /* An exact route at the same node beats the empty rest. */
    ck_add(r, "GET", "/", 2);
    ck_found(r, "GET", "/", 2);
    ck_found(r, "GET", "/x", 1);
    vg__router_free(r);
}
END_TEST

START_TEST(test_literal_beats_param)
{
    vg__router *r = vg__router_new();
    /* Mapped param first, so that insertion order cannot be what wins. */
    ck_add(r, "GET", "/users/{id}", 1);
    ck_add(r, "GET", "/users/me", 2);
    ck_found(r, "GET", "/users/me", 2);
    ck_found(r, "GET", "/users/you", 1);
    ck_found(r, "GET", "/users/mee", 1);
    vg__router_free(r);
}
END_TEST

START_TEST(test_param_beats_rest)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/a/{*rest}", 1);
    ck_add(r, "GET", "/a/{x}", 2);
    ck_add(r, "GET", "/a/lit", 3);
    ck_found(r, "GET", "/a/lit", 3);
    ck_found(r, "GET", "/a/other", 2);
    ck_found(r, "GET", "/a/other/more", 1);
    ck_found(r, "GET", "/a", 1);
    ck_found(r, "GET", "/a/lit/more", 1);

    vg__match m;
    ck_assert_int_eq(match(r, "GET", "/a/lit/more", &m), VG__MATCH_FOUND);
    ck_assert_uint_eq(m.params[0].seg, 1);
    ck_assert(m.params[0].rest);
    vg__router_free(r);
}
END_TEST

START_TEST(test_backtracking)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/a/b/c", 1);
    ck_add(r, "GET", "/a/{x}/d", 2);
    ck_add(r, "GET", "/a/{*rest}", 3);
    ck_found(r, "GET", "/a/b/c", 1);

    vg__match m;
    ck_assert_int_eq(match(r, "GET", "/a/b/d", &m), VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(2));
    ck_assert_uint_eq(m.nparams, 1);
    ck_assert_str_eq(m.params[0].name, "x");
    ck_assert_uint_eq(m.params[0].seg, 1);
    ck_assert(!m.params[0].rest);

    /* Neither literal nor param route fits: back up to the rest route, and
     * the capture of the abandoned param branch must not leak into it. */
    ck_assert_int_eq(match(r, "GET", "/a/b/e", &m), VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(3));
    ck_assert_uint_eq(m.nparams, 1);
    ck_assert_str_eq(m.params[0].name, "rest");
    ck_assert_uint_eq(m.params[0].seg, 1);
    ck_assert(m.params[0].rest);
    vg__router_free(r);
}
END_TEST

START_TEST(test_empty_segment)
{
    /* Only {*rest} takes an empty inner segment; {param} needs a value. */
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/a/{x}/b", 1);
    ck_no_path(r, "GET", "/a//b");
    ck_add(r, "GET", "/a/{*r}", 2);
    ck_found(r, "GET", "/a//b", 2);

    const char *segs[] = {"a", ""};
    vg__match m;
    ck_assert_int_eq(vg__router_match(r, "GET", segs, 2, &m), VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(2));
    vg__router_free(r);
}
END_TEST

START_TEST(test_not_found_vs_no_method)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/items", 1);
    ck_add(r, "POST", "/items", 2);
    ck_add(r, "POST", "/upload", 3);
    ck_add(r, "GET", "/a/b/c", 4);

    ck_no_method(r, "DELETE", "/items", "GET, HEAD, POST, OPTIONS");
    ck_no_method(r, "PUT", "/items/", "GET, HEAD, POST, OPTIONS");
    ck_no_method(r, "GET", "/upload", "POST, OPTIONS");
    ck_no_method(r, "HEAD", "/upload", "POST, OPTIONS");
    ck_no_method(r, "POST", "/a/b/c", "GET, HEAD, OPTIONS");
    ck_no_path(r, "DELETE", "/nothing");
    ck_no_path(r, "GET", "/a/b"); /* inner nodes are not paths */
    ck_no_path(r, "POST", "/a/b");
    vg__router_free(r);
}
END_TEST

START_TEST(test_allow_strings)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/g", 1);
    ck_add(r, "GET", "/gp", 2);
    ck_add(r, "POST", "/gp", 3);
    ck_add(r, "POST", "/p", 4);
    ck_add(r, "POST", "/pg", 5);
    ck_add(r, "GET", "/pg", 6);
    ck_add(r, "DELETE", "/pg", 7);
    ck_add(r, "GET", "/gh", 8);
    ck_add(r, "POST", "/gh", 9);
    ck_add(r, "HEAD", "/gh", 10);
    ck_add(r, "HEAD", "/h", 11);
    ck_add(r, "OPTIONS", "/o", 12);

    ck_no_method(r, "PUT", "/g", "GET, HEAD, OPTIONS");
    ck_no_method(r, "PUT", "/gp", "GET, HEAD, POST, OPTIONS");
    ck_no_method(r, "PUT", "/p", "POST, OPTIONS");
    ck_no_method(r, "PUT", "/pg", "POST, GET, HEAD, DELETE, OPTIONS");
    /* An explicit HEAD keeps the place where it was mapped. */
    ck_no_method(r, "PUT", "/gh", "GET, POST, HEAD, OPTIONS");
    ck_no_method(r, "GET", "/h", "HEAD, OPTIONS");
    ck_no_method(r, "GET", "/o", "OPTIONS");

    /* A found match also carries its node's Allow string. */
    vg__match m;
    ck_assert_int_eq(match(r, "GET", "/gp", &m), VG__MATCH_FOUND);
    ck_assert_str_eq(m.allow, "GET, HEAD, POST, OPTIONS");
    vg__router_free(r);
}
END_TEST

START_TEST(test_no_method_keeps_searching)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/a/{x}", 1);
    ck_add(r, "POST", "/a/b", 2);
    ck_found(r, "POST", "/a/b", 2);
    ck_found(r, "GET", "/a/b", 1);
    ck_found(r, "HEAD", "/a/b", 1);
    ck_found(r, "GET", "/a/c", 1);
    ck_no_method(r, "POST", "/a/c", "GET, HEAD, OPTIONS");
    /* No branch has DELETE: the most specific path's methods are reported. */
    ck_no_method(r, "DELETE", "/a/b", "POST, OPTIONS");

    /* The same through a rest route. */
    ck_add(r, "PUT", "/a/{*rest}", 3);
    ck_found(r, "PUT", "/a/b", 3);
    ck_found(r, "PUT", "/a", 3);
    ck_no_method(r, "GET", "/a", "PUT, OPTIONS");
    ck_no_method(r, "PATCH", "/a/z", "GET, HEAD, OPTIONS");
    vg__router_free(r);
}
END_TEST

START_TEST(test_head)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/implicit", 1);
    ck_add(r, "GET", "/explicit", 2);
    ck_add(r, "HEAD", "/explicit", 3);
    ck_add(r, "HEAD", "/only-head", 4);
    ck_add(r, "GET", "/p/{id}", 5);

    ck_found(r, "HEAD", "/implicit", 1);
    ck_found(r, "GET", "/explicit", 2);
    ck_found(r, "HEAD", "/explicit", 3);
    ck_found(r, "HEAD", "/only-head", 4);
    ck_no_method(r, "GET", "/only-head", "HEAD, OPTIONS");

    vg__match m;
    ck_assert_int_eq(match(r, "HEAD", "/p/9", &m), VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(5));
    ck_assert_str_eq(m.params[0].name, "id");
    ck_assert_uint_eq(m.params[0].seg, 1);

    /* GET does not borrow a HEAD route, and methods are case-sensitive. */
    ck_no_method(r, "head", "/implicit", "GET, HEAD, OPTIONS");
    vg__router_free(r);
}
END_TEST

static const char *const invalid_patterns[] = {
    "",
    "a",
    "users/{id}",
    "//",
    "/a//b",
    "//a",
    "/a/",
    "/a/b/",
    "/{id}/",
    "/{",
    "/}",
    "/a{",
    "/a}b",
    "/{id",
    "/id}",
    "/{id}}",
    "/{{id}}",
    "/{}",
    "/{*}",
    "/{**a}",
    "/{i d}",
    "/{i-d}",
    "/{i.d}",
    "/{caf\xc3\xa9}",
    "/{id}/{id}",
    "/{id}/x/{*id}",
    "/{*rest}/a",
    "/{*rest}/{x}",
    "/{*a}/{*b}",
    "/a{id}",
    "/{id}a",
    "/a/x{*rest}",
    "/{*{x}}",
    "/a?b",
    "/a?",
    "/a#b",
    "/a%20b",
    "/%2F",
    "/a b",
    "/ ",
    "/a\tb",
    "/a\nb",
    "/a\x7f",
    "/a/b\x01",
    /* 17 parameters, one over VG__MAX_PARAMS. */
    "/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}/{p9}/{p10}/{p11}/{p12}/{p13}"
    "/{p14}/{p15}/{p16}/{p17}",
    "/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}/{p9}/{p10}/{p11}/{p12}/{p13}"
    "/{p14}/{p15}/{p16}/{*p17}",
};

/* Requests that a partly applied invalid pattern could change. */
static const char *const probe_paths[] = {
    "/", "/a", "/a/b", "/a/b/c", "/x", "/x/y", "/users/1", "/a/x", "/id",
    "/1/2", "/1/x/2", "/rest/a", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q",
    "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17",
    "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16",
};

typedef struct {
    vg__match_kind kind;
    void *arg;
    const char *allow;
} probe_result;

static void probe_all(const vg__router *r,
                      probe_result out[sizeof probe_paths / sizeof *probe_paths])
{
    for (size_t i = 0; i < sizeof probe_paths / sizeof *probe_paths; i++) {
        vg__match m;
        out[i].kind = match(r, "GET", probe_paths[i], &m);
        out[i].arg = m.arg;
        out[i].allow = m.allow;
    }
}

START_TEST(test_invalid_patterns)
{
    enum { NPROBE = sizeof probe_paths / sizeof *probe_paths };
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/a", 1);
    ck_add(r, "POST", "/a/{x}", 2);
    ck_add(r, "GET", "/x/{*rest}", 3);

    probe_result before[NPROBE], after[NPROBE];
    probe_all(r, before);
    ck_assert_int_eq(vg__router_add(r, "GET", NULL, handler, TAG(9)), -EINVAL);
    for (size_t i = 0; i < sizeof invalid_patterns / sizeof *invalid_patterns;
         i++) {
        const char *pat = invalid_patterns[i];
        ck_assert_msg(vg__router_add(r, "GET", pat, handler, TAG(9)) ==
                          -EINVAL,
                      "pattern \"%s\" was accepted", pat);
        probe_all(r, after);
        for (size_t k = 0; k < NPROBE; k++) {
            ck_assert_msg(after[k].kind == before[k].kind &&
                              after[k].arg == before[k].arg &&
                              after[k].allow == before[k].allow,
                          "pattern \"%s\" changed the routing of %s", pat,
                          probe_paths[k]);
        }
    }

    /* The limits themselves are accepted. */
    ck_add(r, "GET",
           "/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}/{p9}/{p10}/{p11}/{p12}"
           "/{p13}/{p14}/{p15}/{p16}",
           4);
    ck_add(r, "GET",
           "/z/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}/{p8}/{p9}/{p10}/{p11}/{p12}"
           "/{p13}/{p14}/{p15}/{*p16}",
           5);
    vg__match m;
    ck_assert_int_eq(match(r, "GET", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16",
                           &m),
                     VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(4));
    ck_assert_uint_eq(m.nparams, VG__MAX_PARAMS);
    ck_assert_str_eq(m.params[15].name, "p16");
    ck_assert_uint_eq(m.params[15].seg, 15);
    ck_assert_int_eq(
        match(r, "GET", "/z/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/a/b/c", &m),
        VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(5));
    ck_assert_uint_eq(m.nparams, VG__MAX_PARAMS);
    ck_assert_uint_eq(m.params[15].seg, 16);
    ck_assert(m.params[15].rest);
    ck_add(r, "GET", "/*/-._~!$&'()*+,;=:@/\xc3\xa9", 6);
    ck_found(r, "GET", "/*/-._~!$&'()*+,;=:@/\xc3\xa9", 6);
    vg__router_free(r);
}
END_TEST

START_TEST(test_duplicates)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/u/{id}", 1);
    ck_add(r, "GET", "/u/{id}/f/{*path}", 2);
    ck_add(r, "GET", "/", 3);
    ck_add(r, "GET", "/lit", 4);

    ck_assert_int_eq(vg__router_add(r, "GET", "/u/{id}", handler, TAG(9)),
                     -EEXIST);
    ck_assert_int_eq(vg__router_add(r, "GET", "/u/{name}", other_handler,
                                    TAG(9)),
                     -EEXIST);
    ck_assert_int_eq(vg__router_add(r, "GET", "/u/{x}/f/{*rest}", handler,
                                    TAG(9)),
                     -EEXIST);
    ck_assert_int_eq(vg__router_add(r, "GET", "/", handler, TAG(9)), -EEXIST);
    ck_assert_int_eq(vg__router_add(r, "GET", "/lit", handler, TAG(9)),
                     -EEXIST);

    /* A failed add changes nothing, and the first route keeps its names. */
    vg__match m;
    ck_assert_int_eq(match(r, "GET", "/u/5", &m), VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(1));
    ck_assert_ptr_eq(m.fn, handler);
    ck_assert_str_eq(m.params[0].name, "id");
    ck_assert_str_eq(m.allow, "GET, HEAD, OPTIONS");

    /* Different shapes are not duplicates. */
    ck_add(r, "GET", "/u/{id}/f", 5);
    ck_add(r, "GET", "/u/{*all}", 6);
    ck_add(r, "GET", "/{lit}", 7);
    ck_found(r, "GET", "/u/5/f", 5);
    ck_found(r, "GET", "/u/5/g", 6);
    ck_found(r, "GET", "/other", 7);
    ck_found(r, "GET", "/lit", 4);
    vg__router_free(r);
}
END_TEST

START_TEST(test_two_methods)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/items/{id}", 1);
    ck_add(r, "PUT", "/items/{id}", 2);
    ck_add(r, "DELETE", "/items/{id}", 3);
    ck_add(r, "PATCH", "/items/{item}", 4);
    ck_found(r, "GET", "/items/1", 1);
    ck_found(r, "PUT", "/items/1", 2);
    ck_found(r, "DELETE", "/items/1", 3);
    ck_found(r, "PATCH", "/items/1", 4);
    ck_no_method(r, "POST", "/items/1", "GET, HEAD, PUT, DELETE, PATCH, OPTIONS");
    vg__router_free(r);
}
END_TEST

START_TEST(test_custom_methods)
{
    vg__router *r = vg__router_new();
    ck_add(r, "OPTIONS", "/x", 1);
    ck_add(r, "REPORT", "/x", 2);
    ck_add(r, "M-SEARCH", "/x", 3);
    ck_add(r, "!#$%&'*+-.^_`|~09azAZ", "/x", 4);
    ck_add(r, "get", "/x", 5); /* methods are case-sensitive */
    ck_found(r, "OPTIONS", "/x", 1);
    ck_found(r, "REPORT", "/x", 2);
    ck_found(r, "M-SEARCH", "/x", 3);
    ck_found(r, "!#$%&'*+-.^_`|~09azAZ", "/x", 4);
    ck_found(r, "get", "/x", 5);
    ck_no_method(r, "GET", "/x",
                 "OPTIONS, REPORT, M-SEARCH, !#$%&'*+-.^_`|~09azAZ, get");
    ck_assert_int_eq(vg__router_add(r, "OPTIONS", "/x", handler, TAG(9)),
                     -EEXIST);
    vg__router_free(r);
}
END_TEST

START_TEST(test_bad_arguments)
{
    static const char *const bad_methods[] = {
        "GE T", "", "GET\n", "G(E)T", "GET/", "G\"ET", "GE:T", "GET\x80",
        "[GET]", "G,T", "G;T", "G@T", "G=T", "G?T", "G{T}", "G\\T",
    };
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/x", 1);
    for (size_t i = 0; i < sizeof bad_methods / sizeof *bad_methods; i++)
        ck_assert_msg(vg__router_add(r, bad_methods[i], "/y", handler,
                                     TAG(9)) == -EINVAL,
                      "method \"%s\" was accepted", bad_methods[i]);
    ck_assert_int_eq(vg__router_add(r, NULL, "/y", handler, TAG(9)), -EINVAL);
    ck_assert_int_eq(vg__router_add(r, "GET", "/y", NULL, TAG(9)), -EINVAL);
    ck_assert_int_eq(vg__router_add(NULL, "GET", "/y", handler, TAG(9)),
                     -EINVAL);
    ck_no_path(r, "GET", "/y");
    ck_no_method(r, "GE T", "/x", "GET, HEAD, OPTIONS");

    /* A NULL arg is a valid route argument. */
    ck_assert_int_eq(vg__router_add(r, "GET", "/null", handler, NULL), 0);
    vg__match m;
    ck_assert_int_eq(match(r, "GET", "/null", &m), VG__MATCH_FOUND);
    ck_assert_ptr_null(m.arg);

    /* Matching with NULL arguments finds nothing and does not crash. */
    ck_assert_int_eq(vg__router_match(NULL, "GET", NULL, 0, &m),
                     VG__MATCH_NO_PATH);
    ck_assert_int_eq(vg__router_match(r, NULL, NULL, 0, &m),
                     VG__MATCH_NO_PATH);
    ck_assert_int_eq(vg__router_match(r, "GET", NULL, 1, &m),
                     VG__MATCH_NO_PATH);
    ck_assert_int_eq(vg__router_match(r, "GET", NULL, 0, NULL),
                     VG__MATCH_NO_PATH);
    vg__router_free(r);
}
END_TEST

/* 200 routes in four shapes, keyed by number, mapped in a scrambled order so
 * that the sorted literal arrays see inserts at every position. */
enum { NROUTES = 200 };

static void many_pattern(int i, char *buf, size_t size)
{
    switch (i % 4) {
    case 0:
        snprintf(buf, size, "/s%d", i);
        break;
    case 1:
        snprintf(buf, size, "/s%d/{id}", i);
        break;
    case 2:
        snprintf(buf, size, "/s%d/x/{id}/y", i);
        break;
    default:
        snprintf(buf, size, "/s%d/{*rest}", i);
        break;
    }
}

START_TEST(test_many_routes)
{
    vg__router *r = vg__router_new();
    char pat[64], path[64];
    for (int k = 0; k < NROUTES; k++) {
        int i = (k * 73) % NROUTES; /* 73 is coprime with 200 */
        many_pattern(i, pat, sizeof pat);
        ck_add(r, (i % 8 < 4) ? "GET" : "POST", pat, i);
    }
    for (int i = 0; i < NROUTES; i++) {
        const char *method = (i % 8 < 4) ? "GET" : "POST";
        vg__match m;
        switch (i % 4) {
        case 0:
            snprintf(path, sizeof path, "/s%d", i);
            break;
        case 1:
            snprintf(path, sizeof path, "/s%d/v%d", i, i);
            break;
        case 2:
            snprintf(path, sizeof path, "/s%d/x/v%d/y", i, i);
            break;
        default:
            snprintf(path, sizeof path, "/s%d/a/b", i);
            break;
        }
        ck_assert_msg(match(r, method, path, &m) == VG__MATCH_FOUND,
                      "%s %s not found", method, path);
        ck_assert_msg(m.arg == TAG(i), "%s matched the wrong route", path);
        ck_assert_uint_eq(m.nparams, i % 4 == 0 ? 0 : 1);
        if (i % 4 == 1 || i % 4 == 2) {
            ck_assert_str_eq(m.params[0].name, "id");
            ck_assert_uint_eq(m.params[0].seg, i % 4 == 1 ? 1 : 2);
        } else if (i % 4 == 3) {
            ck_assert_str_eq(m.params[0].name, "rest");
            ck_assert_uint_eq(m.params[0].seg, 1);
            ck_assert(m.params[0].rest);
        }
        ck_no_method(r, "PUT", path,
                     (i % 8 < 4) ? "GET, HEAD, OPTIONS" : "POST, OPTIONS");
    }
    ck_no_path(r, "GET", "/s200");
    ck_no_path(r, "GET", "/s");
    ck_no_path(r, "GET", "/s0/x");
    vg__router_free(r);
}
END_TEST

enum { LONG_SEGS = 10000 };

static const char **long_request(const char *first)
{
    const char **segs = malloc(LONG_SEGS * sizeof *segs);
    ck_assert_ptr_nonnull(segs);
    for (size_t i = 0; i < LONG_SEGS; i++)
        segs[i] = "x";
    segs[0] = first;
    return segs;
}

START_TEST(test_long_request)
{
    const char **segs = long_request("x");
    vg__match m;

    /* Literal and param routes end long before the request does. */
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/x", 1);
    ck_add(r, "GET", "/x/x/x", 2);
    ck_add(r, "GET", "/{a}/{b}", 3);
    ck_add(r, "GET", "/x/{a}/x/{b}", 4);
    ck_assert_int_eq(vg__router_match(r, "GET", segs, LONG_SEGS, &m),
                     VG__MATCH_NO_PATH);
    ck_assert_int_eq(vg__router_match(r, "POST", segs, LONG_SEGS, &m),
                     VG__MATCH_NO_PATH);
    ck_assert_int_eq(vg__router_match(r, "GET", segs, 3, &m), VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(2));

    /* A rest route takes the whole remainder at once. */
    ck_add(r, "GET", "/x/{*rest}", 5);
    ck_assert_int_eq(vg__router_match(r, "GET", segs, LONG_SEGS, &m),
                     VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(5));
    ck_assert_uint_eq(m.nparams, 1);
    ck_assert_uint_eq(m.params[0].seg, 1);
    ck_assert(m.params[0].rest);
    ck_assert_int_eq(vg__router_match(r, "POST", segs, LONG_SEGS, &m),
                     VG__MATCH_NO_METHOD);
    ck_assert_str_eq(m.allow, "GET, HEAD, OPTIONS");
    vg__router_free(r);

    /* Only a rest route, under another literal. */
    free(segs);
    segs = long_request("files");
    r = vg__router_new();
    ck_add(r, "GET", "/files/{*path}", 6);
    ck_assert_int_eq(vg__router_match(r, "GET", segs, LONG_SEGS, &m),
                     VG__MATCH_FOUND);
    ck_assert_ptr_eq(m.arg, TAG(6));
    ck_assert_uint_eq(m.params[0].seg, 1);
    vg__router_free(r);
    free(segs);
}
END_TEST

/* Concurrent matching: readers share the router and keep their state on
 * their stacks. Failures are counted, because Check's assertions belong on
 * the test's own thread. */
enum { NTHREADS = 4, ITERATIONS = 20000 };

typedef struct {
    const vg__router *r;
    int failures;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *ra = p;
    static const struct {
        const char *method, *path;
        vg__match_kind kind;
        int tag;
    } cases[] = {
        {"GET", "/users/7", VG__MATCH_FOUND, 1},
        {"GET", "/users/me", VG__MATCH_FOUND, 2},
        {"HEAD", "/users/7/files/a/b", VG__MATCH_FOUND, 3},
        {"POST", "/users/7", VG__MATCH_NO_METHOD, -1},
        {"GET", "/nope", VG__MATCH_NO_PATH, -1},
    };
    for (int it = 0; it < ITERATIONS; it++) {
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            char buf[128];
            const char *segs[MAX_TEST_SEGS];
            size_t nseg =
                split_path_raw(cases[c].path, buf, sizeof buf, segs);
            if (nseg == SPLIT_FAILED) {
                ra->failures++;
                continue;
            }
            vg__match m;
            vg__match_kind k =
                vg__router_match(ra->r, cases[c].method, segs, nseg, &m);
            if (k != cases[c].kind ||
                (cases[c].tag >= 0 && m.arg != TAG(cases[c].tag)))
                ra->failures++;
        }
    }
    return NULL;
}

START_TEST(test_concurrent)
{
    vg__router *r = vg__router_new();
    ck_add(r, "GET", "/users/{id}", 1);
    ck_add(r, "GET", "/users/me", 2);
    ck_add(r, "GET", "/users/{id}/files/{*path}", 3);

    pthread_t threads[NTHREADS];
    reader_arg args[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        args[i].r = r;
        args[i].failures = 0;
        ck_assert_int_eq(pthread_create(&threads[i], NULL, reader, &args[i]),
                         0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
        ck_assert_int_eq(args[i].failures, 0);
    }
    vg__router_free(r);
}
END_TEST

static Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("patterns");
    tcase_add_test(tc, test_new_free);
    tcase_add_test(tc, test_literal);
    tcase_add_test(tc, test_root);
    tcase_add_test(tc, test_params);
    tcase_add_test(tc, test_param_names_per_route);
    tcase_add_test(tc, test_rest_segments);
    tcase_add_test(tc, test_rest_at_root);
    tcase_add_test(tc, test_invalid_patterns);
    tcase_add_test(tc, test_duplicates);
    tcase_add_test(tc, test_two_methods);
    tcase_add_test(tc, test_custom_methods);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("precedence");
    tcase_add_test(tc, test_literal_beats_param);
    tcase_add_test(tc, test_param_beats_rest);
    tcase_add_test(tc, test_backtracking);
    tcase_add_test(tc, test_empty_segment);
    suite_add_tcase(s, tc);

    tc = tcase_create("methods");
    tcase_add_test(tc, test_not_found_vs_no_method);
    tcase_add_test(tc, test_allow_strings);
    tcase_add_test(tc, test_no_method_keeps_searching);
    tcase_add_test(tc, test_head);
    suite_add_tcase(s, tc);

    tc = tcase_create("scale");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_many_routes);
    tcase_add_test(tc, test_long_request);
    tcase_add_test(tc, test_concurrent);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(router_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
