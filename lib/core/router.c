/*
 * router.c - route patterns compiled into a trie of path segments.
 *
 * Each trie node stands for one position in a path. It has literal children
 * (kept sorted so that matching can binary-search them), at most one {param}
 * child shared by every pattern that has a parameter there whatever its name,
 * and at most one {*rest} child, which is always a leaf. The routes that end
 * at a node are kept in a small array of method entries, together with a
 * precomputed Allow string so that a 405 answer costs nothing to build.
 *
 * Matching walks the trie depth-first and backtracks; it reads the trie only
 * and keeps its state on the caller's stack, so any number of threads may
 * match at once and nothing is allocated.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "core/router.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Data
 */

/* One route: a method mapped at a node. Parameter names belong to the route,
 * not to the node, because "/u/{id}" and "/u/{name}" share their nodes. */
typedef struct {
    char *method;
    vg_handler fn;
    void *arg;
    size_t nnames;
    char *namebuf; /* the names, each NUL-terminated, back to back */
    const char *names[VG__MAX_PARAMS]; /* point into namebuf */
    long timeout_ms; /* the route's own deadline, or -1 for the app's */
    bool inline_;    /* run on libmicrohttpd's thread (vg_map_inline) */
    bool deadline_body; /* the deadline counts from the head (vg_map_deadline_body) */
    char *pattern;   /* as mapped, for logs, metrics and completion hooks */
    void *owner;     /* who mapped it (a group), for the pipeline */
    const void *ext; /* what the pipeline attached at start */
    const void *body; /* body limits and uploads (lib/pipeline/limits.c) */
} route_entry;

typedef struct route_node route_node;
struct route_node {
    char *literal;        /* the segment text, for a literal child only */
    bool is_rest;         /* a {*rest} node: a leaf that takes what is left */
    route_node **lits;    /* literal children, sorted by strcmp on literal */
    size_t nlits;
    route_node *param;    /* the {param} child, or NULL */
    route_node *rest;     /* the {*rest} child, or NULL */
    route_entry *entries; /* routes ending here, in the order mapped */
    size_t nentries;
    char *allow;          /* "GET, HEAD, POST", or NULL without entries */
};

struct vg__router {
    route_node root; /* the path "/" */
};

/* ------------------------------------------------------------------------
 * Patterns
 */

typedef enum { SEG_LITERAL, SEG_PARAM, SEG_REST } seg_kind;

/* One parsed pattern segment. `text` points into the pattern and is not
 * NUL-terminated: it is the literal text, or the parameter's name. */
typedef struct {
    seg_kind kind;
    const char *text;
    size_t len;
} pattern_seg;

/* What validation learns about a whole pattern: its parameter names in
 * order, which become the route's names. */
typedef struct {
    size_t nparams;
    pattern_seg params[VG__MAX_PARAMS];
} pattern_info;

static bool is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

/* Literal bytes exclude what could never reach the router after the path is
 * split, decoded and stripped of its query and fragment ('?', '#'), what
 * would suggest an encoding the router never sees ('%'), what belongs to
 * parameter syntax ('{', '}'), and spaces and control characters. Bytes of
 * 0x80 and above are allowed so that UTF-8 literals work. */
static bool is_literal_char(unsigned char c)
{
    if (c <= 0x20 || c == 0x7f)
        return false;
    return strchr("?#%{}", c) == NULL;
}

/* RFC 9110 tchar, which is what a method token is made of. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool method_is_valid(const char *method)
{
    if (method == NULL || method[0] == '\0')
        return false;
    for (const char *p = method; *p != '\0'; p++)
        if (!is_tchar((unsigned char)*p))
            return false;
    return true;
}

static bool name_is_valid(const char *name, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_name_char((unsigned char)name[i]))
            return false;
    return true;
}

/* Classifies the segment text[0..len), which must be non-empty. A segment is
 * either wholly a parameter ("{id}", "{*rest}") or wholly a literal; anything
 * in between, such as "a{id}" or "{id}x", is rejected because the matcher
 * compares whole segments. Returns 0 or -EINVAL. */
static int seg_classify(const char *text, size_t len, pattern_seg *seg)
{
    if (text[0] == '{') {
        if (len < 2 || text[len - 1] != '}')
            return -EINVAL;
        const char *name = text + 1;
        size_t nlen = len - 2;
        seg->kind = SEG_PARAM;
        if (nlen > 0 && name[0] == '*') {
            seg->kind = SEG_REST;
            name++;
            nlen--;
        }
        if (!name_is_valid(name, nlen))
            return -EINVAL;
        seg->text = name;
        seg->len = nlen;
        return 0;
    }
    for (size_t i = 0; i < len; i++)
        if (!is_literal_char((unsigned char)text[i]))
            return -EINVAL;
    seg->kind = SEG_LITERAL;
    seg->text = text;
    seg->len = len;
    return 0;
}

/* Reads the segment that starts at *p (just past a '/') and advances *p to
 * the '/' or NUL that ends it. Returns 0, or -EINVAL for an empty or
 * malformed segment. */
static int seg_next(const char **p, pattern_seg *seg)
{
    const char *start = *p;
    size_t len = strcspn(start, "/");
    *p = start + len;
    if (len == 0)
        return -EINVAL;
    return seg_classify(start, len, seg);
}

static bool name_is_taken(const pattern_info *info, const pattern_seg *seg)
{
    for (size_t i = 0; i < info->nparams; i++)
        if (info->params[i].len == seg->len &&
            memcmp(info->params[i].text, seg->text, seg->len) == 0)
            return true;
    return false;
}

/* Where the segments of a pattern that starts with '/' begin, for a loop of
 * seg_next calls each past a '/'. The pattern "/" has no segments at all,
 * unlike what its one '/' suggests, so it yields the empty string. */
static const char *pattern_segments(const char *pattern)
{
    return pattern[1] == '\0' ? pattern + 1 : pattern;
}

/* Checks the whole pattern before anything is changed, so that a rejected
 * pattern leaves the router exactly as it was. Returns 0 or -EINVAL. */
static int pattern_validate(const char *pattern, pattern_info *info)
{
    info->nparams = 0;
    if (pattern == NULL || pattern[0] != '/')
        return -EINVAL;
    bool after_rest = false;
    const char *p = pattern_segments(pattern);
    while (*p == '/') {
        p++;
        pattern_seg seg;
        if (seg_next(&p, &seg) < 0 || after_rest)
            return -EINVAL;
        if (seg.kind == SEG_LITERAL)
            continue;
        if (info->nparams == VG__MAX_PARAMS || name_is_taken(info, &seg))
            return -EINVAL;
        info->params[info->nparams++] = seg;
        after_rest = seg.kind == SEG_REST;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Nodes
 */

/* Orders a stored literal against text[0..len) the way strcmp would order
 * it against the NUL-terminated text, so that lookups while adding (which
 * see unterminated pattern text) and while matching (which see request
 * segments) agree on the sort order. */
static int literal_cmp(const char *key, const char *text, size_t len)
{
    int c = strncmp(key, text, len);
    if (c != 0)
        return c;
    return key[len] != '\0';
}

/* Binary-searches the literal children of `n` for text[0..len). Returns the
 * child, or NULL with *pos set to where it would be inserted. */
static route_node *lit_find(const route_node *n, const char *text, size_t len,
                            size_t *pos)
{
    size_t lo = 0, hi = n->nlits;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = literal_cmp(n->lits[mid]->literal, text, len);
        if (c == 0)
            return n->lits[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return NULL;
}

/* The existing child of `n` that `seg` leads to, or NULL. */
static route_node *node_child(const route_node *n, const pattern_seg *seg)
{
    size_t pos;
    switch (seg->kind) {
    case SEG_LITERAL:
        return lit_find(n, seg->text, seg->len, &pos);
    case SEG_PARAM:
        return n->param;
    case SEG_REST:
        return n->rest;
    }
    return NULL;
}

/* Frees what `e` owns and forgets it, so that clearing twice (once where an
 * allocation failed, once when vg__router_add gives up) is harmless. */
static void entry_clear(route_entry *e)
{
    free(e->method);
    free(e->namebuf);
    free(e->pattern);
    e->method = NULL;
    e->namebuf = NULL;
    e->pattern = NULL;
}

static void node_free(route_node *n);

/* Frees what `n` holds, but not `n` itself: the root is embedded in the
 * router. The recursion is as deep as the longest pattern below `n`, never
 * deeper. */
static void node_clear(route_node *n)
{
    for (size_t i = 0; i < n->nlits; i++)
        node_free(n->lits[i]);
    if (n->param != NULL)
        node_free(n->param);
    if (n->rest != NULL)
        node_free(n->rest);
    for (size_t i = 0; i < n->nentries; i++)
        entry_clear(&n->entries[i]);
    free(n->lits);
    free(n->entries);
    free(n->allow);
    free(n->literal);
}

static void node_free(route_node *n)
{
    node_clear(n);
    free(n);
}

/* A new detached node for `seg`, or NULL (ENOMEM). */
static route_node *node_new(const pattern_seg *seg)
{
    route_node *n = calloc(1, sizeof *n);
    if (n == NULL)
        return NULL;
    n->is_rest = seg->kind == SEG_REST;
    if (seg->kind == SEG_LITERAL) {
        n->literal = strndup(seg->text, seg->len);
        if (n->literal == NULL) {
            free(n);
            return NULL;
        }
    }
    return n;
}

/* Makes room for one more literal child of `n`. Only the capacity changes,
 * so a failure later in vg__router_add leaves the routing unchanged. */
static int lits_reserve(route_node *n)
{
    route_node **lits = realloc(n->lits, (n->nlits + 1) * sizeof *lits);
    if (lits == NULL)
        return -ENOMEM;
    n->lits = lits;
    return 0;
}

/* Hangs `child` under `parent` as the kind of child `seg` describes. A
 * literal child needs room reserved with lits_reserve first; linking then
 * cannot fail. */
static void node_link(route_node *parent, route_node *child,
                      const pattern_seg *seg)
{
    size_t pos = 0;
    switch (seg->kind) {
    case SEG_LITERAL:
        lit_find(parent, seg->text, seg->len, &pos);
        memmove(&parent->lits[pos + 1], &parent->lits[pos],
                (parent->nlits - pos) * sizeof *parent->lits);
        parent->lits[pos] = child;
        parent->nlits++;
        break;
    case SEG_PARAM:
        parent->param = child;
        break;
    case SEG_REST:
        parent->rest = child;
        break;
    }
}

/* Builds the detached chain of new nodes for the segments from `first` (just
 * parsed) to the end of the pattern at *p. Returns its head and sets *tail,
 * or returns NULL (ENOMEM) having freed what it built. */
static route_node *chain_build(const pattern_seg *first, const char *p,
                               route_node **tail)
{
    route_node *head = node_new(first);
    if (head == NULL)
        return NULL;
    route_node *last = head;
    while (*p == '/') {
        p++;
        pattern_seg seg;
        seg_next(&p, &seg); /* the pattern is already validated */
        route_node *n = node_new(&seg);
        if (n != NULL && seg.kind == SEG_LITERAL && lits_reserve(last) < 0) {
            node_free(n);
            n = NULL;
        }
        if (n == NULL) {
            node_free(head);
            return NULL;
        }
        node_link(last, n, &seg);
        last = n;
    }
    *tail = last;
    return head;
}

/* ------------------------------------------------------------------------
 * Method entries and the Allow string
 */

/* The entry mapped for exactly `method` at `n`, or NULL. */
static const route_entry *entry_find(const route_node *n, const char *method)
{
    for (size_t i = 0; i < n->nentries; i++)
        if (strcmp(n->entries[i].method, method) == 0)
            return &n->entries[i];
    return NULL;
}

/* The entry that serves `method` at `n`, or NULL. HEAD falls back to GET
 * because every GET route answers HEAD unless HEAD is mapped there itself. */
static const route_entry *entry_lookup(const route_node *n, const char *method)
{
    const route_entry *e = entry_find(n, method);
    if (e == NULL && strcmp(method, "HEAD") == 0)
        e = entry_find(n, "GET");
    return e;
}

/* Fills `e` with copies of the method and the parameter names. Returns 0 or
 * -ENOMEM (then `e` holds nothing to free). */
static int entry_init(route_entry *e, const char *method, const char *pattern,
                      vg_handler fn, void *arg, const pattern_info *info)
{
    memset(e, 0, sizeof *e);
    size_t size = 1; /* never zero, so that malloc's answer is meaningful */
    for (size_t i = 0; i < info->nparams; i++)
        size += info->params[i].len + 1;
    e->method = strdup(method);
    e->pattern = strdup(pattern);
    e->namebuf = malloc(size);
    if (e->method == NULL || e->pattern == NULL || e->namebuf == NULL) {
        entry_clear(e);
        return -ENOMEM;
    }
    char *w = e->namebuf;
    for (size_t i = 0; i < info->nparams; i++) {
        memcpy(w, info->params[i].text, info->params[i].len);
        w[info->params[i].len] = '\0';
        e->names[i] = w;
        w += info->params[i].len + 1;
    }
    e->nnames = info->nparams;
    e->fn = fn;
    e->arg = arg;
    e->timeout_ms = -1;
    return 0;
}

static void str_append(char **w, const char *s)
{
    size_t len = strlen(s);
    memcpy(*w, s, len);
    *w += len;
}

/* The Allow string for a node holding entries e[0..n): the methods in the
 * order mapped, ", "-separated, with HEAD right after GET when GET is mapped
 * and HEAD is not (because GET routes answer HEAD), and OPTIONS last unless
 * it is mapped (the library answers OPTIONS for every routed path). Returns
 * a new string or NULL (ENOMEM). */
static char *allow_build(const route_entry *e, size_t n)
{
    bool has_get = false, has_head = false, has_options = false;
    size_t size = 1 + strlen(", OPTIONS");
    for (size_t i = 0; i < n; i++) {
        has_get = has_get || strcmp(e[i].method, "GET") == 0;
        has_head = has_head || strcmp(e[i].method, "HEAD") == 0;
        has_options = has_options || strcmp(e[i].method, "OPTIONS") == 0;
        size += strlen(e[i].method) + 2;
    }
    bool add_head = has_get && !has_head;
    if (add_head)
        size += strlen(", HEAD");
    char *allow = malloc(size);
    if (allow == NULL)
        return NULL;
    char *w = allow;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            str_append(&w, ", ");
        str_append(&w, e[i].method);
        if (add_head && strcmp(e[i].method, "GET") == 0)
            str_append(&w, ", HEAD");
    }
    if (!has_options)
        str_append(&w, n > 0 ? ", OPTIONS" : "OPTIONS");
    *w = '\0';
    return allow;
}

/* ------------------------------------------------------------------------
 * Router
 */

vg__router *vg__router_new(void)
{
    return calloc(1, sizeof(vg__router));
}

void vg__router_free(vg__router *r)
{
    if (r == NULL)
        return;
    node_clear(&r->root);
    free(r);
}

/* Everything vg__router_add prepares before it changes what matching sees,
 * so that any failure can be undone by freeing it. */
typedef struct {
    route_node *parent; /* the deepest existing node on the pattern's path */
    pattern_seg first;  /* the first segment with no node yet (if chain) */
    route_node *chain;  /* new nodes for the remaining segments, or NULL */
    route_node *leaf;   /* where the route ends: in the chain or existing */
    route_entry entry;
    char *allow;
} add_plan;

/* Allocates everything the route needs while leaving the trie's routing as
 * it was: the new nodes hang in a detached chain, and arrays of existing
 * nodes only grow their capacity. Returns 0 or -ENOMEM. */
static int plan_prepare(add_plan *plan, const char *rest_of_pattern,
                        const char *method, const char *pattern, vg_handler fn,
                        void *arg, const pattern_info *info)
{
    if (plan->chain == NULL && plan->leaf == NULL) {
        plan->chain = chain_build(&plan->first, rest_of_pattern, &plan->leaf);
        if (plan->chain == NULL)
            return -ENOMEM;
    }
    if (entry_init(&plan->entry, method, pattern, fn, arg, info) < 0)
        return -ENOMEM;
    route_node *leaf = plan->leaf;
    route_entry *entries =
        realloc(leaf->entries, (leaf->nentries + 1) * sizeof *entries);
    if (entries == NULL)
        return -ENOMEM;
    leaf->entries = entries;
    /* The new entry sits just past the end, invisible until committed, so
     * that the Allow string can be built over the final list. */
    entries[leaf->nentries] = plan->entry;
    plan->allow = allow_build(entries, leaf->nentries + 1);
    if (plan->allow == NULL)
        return -ENOMEM;
    if (plan->chain != NULL && plan->first.kind == SEG_LITERAL)
        return lits_reserve(plan->parent);
    return 0;
}

static void plan_commit(add_plan *plan)
{
    route_node *leaf = plan->leaf;
    leaf->entries[leaf->nentries++] = plan->entry;
    free(leaf->allow);
    leaf->allow = plan->allow;
    if (plan->chain != NULL)
        node_link(plan->parent, plan->chain, &plan->first);
}

static void plan_discard(add_plan *plan)
{
    entry_clear(&plan->entry);
    free(plan->allow);
    if (plan->chain != NULL)
        node_free(plan->chain);
}

/* Follows the nodes that already exist for `pattern`. Either the whole path
 * exists (plan->leaf is its last node) or plan->first is the first segment
 * without a node, to be created under plan->parent; then the return value
 * points just past that segment in the pattern. */
static const char *plan_locate(add_plan *plan, vg__router *r,
                               const char *pattern)
{
    memset(plan, 0, sizeof *plan);
    plan->parent = &r->root;
    plan->leaf = &r->root;
    const char *p = pattern_segments(pattern);
    while (*p == '/') {
        p++;
        seg_next(&p, &plan->first); /* the pattern is already validated */
        route_node *child = node_child(plan->parent, &plan->first);
        if (child == NULL) {
            plan->leaf = NULL;
            break;
        }
        plan->parent = child;
        plan->leaf = child;
    }
    return p;
}

int vg__router_add(vg__router *r, const char *method, const char *pattern,
                   vg_handler fn, void *arg)
{
    pattern_info info;
    if (r == NULL || fn == NULL || !method_is_valid(method) ||
        pattern_validate(pattern, &info) < 0)
        return -EINVAL;

    add_plan plan;
    const char *rest_of_pattern = plan_locate(&plan, r, pattern);
    /* Only an exact method is a duplicate: HEAD may join a GET route. */
    if (plan.leaf != NULL && entry_find(plan.leaf, method) != NULL)
        return -EEXIST;

    int rc = plan_prepare(&plan, rest_of_pattern, method, pattern, fn, arg,
                          &info);
    if (rc < 0) {
        plan_discard(&plan);
        return rc;
    }
    plan_commit(&plan);
    return 0;
}

/* The entry mapped for exactly `method` and `pattern`'s shape, or NULL. It
 * is the caller's to change: the router is still being configured. */
static route_entry *entry_locate(vg__router *r, const char *method,
                                 const char *pattern, int *rc)
{
    pattern_info info;
    add_plan plan;
    route_entry *e;

    if (r == NULL || !method_is_valid(method) ||
        pattern_validate(pattern, &info) < 0) {
        *rc = -EINVAL;
        return NULL;
    }
    plan_locate(&plan, r, pattern);
    e = plan.leaf ? (route_entry *)entry_find(plan.leaf, method) : NULL;
    *rc = e ? 0 : -ENOENT;
    return e;
}

int vg__router_set_timeout(vg__router *r, const char *method,
                           const char *pattern, long timeout_ms)
{
    int rc;
    route_entry *e = entry_locate(r, method, pattern, &rc);

    if (e != NULL)
        e->timeout_ms = timeout_ms;
    return rc;
}

int vg__router_set_inline(vg__router *r, const char *method,
                          const char *pattern, bool on)
{
    int rc;
    route_entry *e = entry_locate(r, method, pattern, &rc);

    if (e != NULL)
        e->inline_ = on;
    return rc;
}

int vg__router_set_deadline_body(vg__router *r, const char *method,
                                 const char *pattern, bool on)
{
    int rc;
    route_entry *e = entry_locate(r, method, pattern, &rc);

    if (e != NULL)
        e->deadline_body = on;
    return rc;
}

int vg__router_set_body(vg__router *r, const char *method,
                        const char *pattern, const void *body)
{
    int rc;
    route_entry *e = entry_locate(r, method, pattern, &rc);

    if (e != NULL)
        e->body = body;
    return rc;
}

const void *vg__router_body(vg__router *r, const char *method,
                            const char *pattern, int *rc)
{
    route_entry *e = entry_locate(r, method, pattern, rc);

    return e ? e->body : NULL;
}

int vg__router_set_owner(vg__router *r, const char *method,
                         const char *pattern, void *owner)
{
    int rc;
    route_entry *e = entry_locate(r, method, pattern, &rc);

    if (e != NULL)
        e->owner = owner;
    return rc;
}

bool vg__router_pattern_valid(const char *pattern)
{
    pattern_info info;
    return pattern_validate(pattern, &info) == 0;
}

/* Visits the entries of `n` and of every node below it. */
static void node_visit(route_node *n, vg__route_visit_fn fn, void *ctx)
{
    for (size_t i = 0; i < n->nentries; i++) {
        route_entry *e = &n->entries[i];
        vg__route_view v = {e->method, e->pattern, e->owner, &e->timeout_ms,
                            &e->ext, &e->body};
        fn(ctx, &v);
    }
    for (size_t i = 0; i < n->nlits; i++)
        node_visit(n->lits[i], fn, ctx);
    if (n->param != NULL)
        node_visit(n->param, fn, ctx);
    if (n->rest != NULL)
        node_visit(n->rest, fn, ctx);
}

void vg__router_visit(vg__router *r, vg__route_visit_fn fn, void *ctx)
{
    if (r != NULL && fn != NULL)
        node_visit(&r->root, fn, ctx);
}

/* Adds `method` to the comma-separated list in `buf` unless it is there. */
static int methods_add(char **buf, const char *method)
{
    size_t have = *buf ? strlen(*buf) : 0, mlen = strlen(method);
    const char *p = *buf;

    while (p != NULL && *p != '\0') {
        size_t n = strcspn(p, ",");
        if (n == mlen && memcmp(p, method, n) == 0)
            return 0;
        p += n;
        p += strspn(p, ", ");
    }
    char *grown = realloc(*buf, have + mlen + 3);
    if (grown == NULL)
        return -ENOMEM;
    if (have > 0) {
        memcpy(grown + have, ", ", 2);
        have += 2;
    }
    memcpy(grown + have, method, mlen + 1);
    *buf = grown;
    return 0;
}

typedef struct {
    char *list;
    bool get, failed;
} methods_ctx;

static void methods_visit(void *ctx, const vg__route_view *v)
{
    methods_ctx *m = ctx;

    m->get = m->get || strcmp(v->method, "GET") == 0;
    if (!m->failed && methods_add(&m->list, v->method) != 0)
        m->failed = true;
}

char *vg__router_methods(vg__router *r)
{
    methods_ctx m = {NULL, false, false};

    vg__router_visit(r, methods_visit, &m);
    if (!m.failed && m.get)
        m.failed = methods_add(&m.list, "HEAD") != 0;
    if (!m.failed)
        m.failed = methods_add(&m.list, "OPTIONS") != 0;
    if (m.failed) {
        free(m.list);
        return NULL;
    }
    return m.list;
}

/* ------------------------------------------------------------------------
 * Matching
 */

/* The state of one match, on the caller's stack. `caps[i]` is the segment
 * index where the i-th parameter on the current trie path starts. A trie path
 * holds at most VG__MAX_PARAMS parameters because every node lies on some
 * validated pattern, so `caps` cannot overflow. */
typedef struct {
    const char *method;
    const char *const *segs;
    size_t nseg;
    size_t caps[VG__MAX_PARAMS];
    const route_node *no_method; /* the first path match lacking the method */
    vg__match *out;
} match_state;

/* Binary-searches the literal children of `n` for a request segment. */
static const route_node *lit_lookup(const route_node *n, const char *seg)
{
    size_t lo = 0, hi = n->nlits;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(n->lits[mid]->literal, seg);
        if (c == 0)
            return n->lits[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The request path ends at `n` with `ncap` parameters captured. Returns true
 * and fills the result if `n` has a route for the method; otherwise remembers
 * the first such node with other routes, for a 405, and returns false so
 * that the search goes on. */
static bool node_accept(match_state *st, const route_node *n, size_t ncap)
{
    const route_entry *e = entry_lookup(n, st->method);
    if (e == NULL) {
        if (n->nentries > 0 && st->no_method == NULL)
            st->no_method = n;
        return false;
    }
    vg__match *out = st->out;
    out->fn = e->fn;
    out->arg = e->arg;
    out->timeout_ms = e->timeout_ms;
    out->inline_ = e->inline_;
    out->deadline_body = e->deadline_body;
    out->pattern = e->pattern;
    out->ext = e->ext;
    out->body = e->body;
    out->allow = n->allow;
    out->nparams = ncap;
    for (size_t i = 0; i < ncap; i++) {
        out->params[i].name = e->names[i];
        out->params[i].seg = st->caps[i];
        out->params[i].rest = false;
    }
    if (n->is_rest)
        out->params[ncap - 1].rest = true;
    return true;
}

/* Tries to match segments i..nseg-1 below `n`: first the node itself when
 * nothing is left, then a literal child, then the {param} child (which needs
 * a non-empty segment), then the {*rest} child, which takes all that is left
 * at once. Each call descends one trie level, so the recursion is as deep as
 * the longest pattern, however many segments the request has. */
static bool match_node(match_state *st, const route_node *n, size_t i,
                       size_t ncap)
{
    if (i == st->nseg) {
        if (node_accept(st, n, ncap))
            return true;
    } else {
        const route_node *lit = lit_lookup(n, st->segs[i]);
        if (lit != NULL && match_node(st, lit, i + 1, ncap))
            return true;
        if (n->param != NULL && st->segs[i][0] != '\0') {
            st->caps[ncap] = i;
            if (match_node(st, n->param, i + 1, ncap + 1))
                return true;
        }
    }
    if (n->rest != NULL) {
        st->caps[ncap] = i;
        if (node_accept(st, n->rest, ncap + 1))
            return true;
    }
    return false;
}

vg__match_kind vg__router_match(const vg__router *r, const char *method,
                                const char *const *segs, size_t nseg,
                                vg__match *out)
{
    if (out == NULL)
        return VG__MATCH_NO_PATH;
    out->fn = NULL;
    out->arg = NULL;
    out->timeout_ms = -1;
    out->inline_ = false;
    out->deadline_body = false;
    out->pattern = NULL;
    out->ext = NULL;
    out->body = NULL;
    out->allow = NULL;
    out->nparams = 0;
    if (r == NULL || method == NULL || (segs == NULL && nseg > 0))
        return VG__MATCH_NO_PATH;

    match_state st;
    st.method = method;
    st.segs = segs;
    st.nseg = nseg;
    st.no_method = NULL;
    st.out = out;
    if (match_node(&st, &r->root, 0, 0))
        return VG__MATCH_FOUND;
    if (st.no_method != NULL) {
        out->allow = st.no_method->allow;
        return VG__MATCH_NO_METHOD;
    }
    return VG__MATCH_NO_PATH;
}
