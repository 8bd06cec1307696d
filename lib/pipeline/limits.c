/* limits.c - body and form limits (and upload settings) per app, group and
 * route, resolved at start into one record per route (see limits.h). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "app.h"
#include "pipeline/group.h"
#include "pipeline/limits.h"
#include "core/log.h"

typedef struct {
    const vg_group *g;
    vg__limits lim;
} vg__group_limits;

struct vg__limits_reg {
    vg__limits app_own;       /* vg_app_set_body_limits */
    vg__limits app;           /* resolved at start */
    vg__group_limits *groups; /* vg_group_set_body_limits */
    size_t ngroups;
    vg__limits **owned;       /* every route record, own and resolved */
    size_t nowned;
    char **dirs;              /* copies of upload directories */
    size_t ndirs;
};

static const vg__limits vg__unset = {0, 0, 0, 0, 0, -1, NULL};

static int vg__limits_configurable(const vg_app *app)
{
    if (app == NULL)
        return -EINVAL;
    return atomic_load(&app->state) == VG__APP_NEW ? 0 : -EBUSY;
}

/* The app's registry, made on first use. */
static struct vg__limits_reg *vg__reg(vg_app *app)
{
    if (app->pipe.limits == NULL) {
        app->pipe.limits = calloc(1, sizeof *app->pipe.limits);
        if (app->pipe.limits != NULL) {
            app->pipe.limits->app_own = vg__unset;
            app->pipe.limits->app = vg__unset;
        }
    }
    return app->pipe.limits;
}

static int vg__own(struct vg__limits_reg *reg, void *p)
{
    return vg__grow((void **)&reg->owned, &reg->nowned, sizeof p, &p);
}

/* Sets the non-zero numbers of `lim` in `dst`. */
static void vg__limits_set(vg__limits *dst, const vg_body_limits *lim)
{
    if (lim->body != 0)
        dst->body = lim->body;
    if (lim->file_size != 0)
        dst->file_size = lim->file_size;
    if (lim->files != 0)
        dst->files = lim->files;
    if (lim->fields != 0)
        dst->fields = lim->fields;
    if (lim->field_size != 0)
        dst->field_size = lim->field_size;
}

/* Fills what `dst` leaves unset from `src`. */
static void vg__limits_inherit(vg__limits *dst, const vg__limits *src)
{
    if (dst->body == 0)
        dst->body = src->body;
    if (dst->file_size == 0)
        dst->file_size = src->file_size;
    if (dst->files == 0)
        dst->files = src->files;
    if (dst->fields == 0)
        dst->fields = src->fields;
    if (dst->field_size == 0)
        dst->field_size = src->field_size;
    if (dst->uploads < 0)
        dst->uploads = src->uploads;
    if (dst->upload_dir == NULL)
        dst->upload_dir = src->upload_dir;
}

static vg__limits *vg__group_own(struct vg__limits_reg *reg, const vg_group *g,
                                 bool create)
{
    vg__group_limits gl;
    size_t i;

    for (i = 0; i < reg->ngroups; i++)
        if (reg->groups[i].g == g)
            return &reg->groups[i].lim;
    if (!create)
        return NULL;
    gl.g = g;
    gl.lim = vg__unset;
    if (vg__grow((void **)&reg->groups, &reg->ngroups, sizeof gl, &gl) != 0)
        return NULL;
    return &reg->groups[reg->ngroups - 1].lim;
}

/* The route's own record (a later call adds to the first's), made on
 * first use and attached to the router; owned by the registry. */
static vg__limits *vg__route_record(vg_app *app, const char *method,
                                    const char *pattern, int *rc)
{
    struct vg__limits_reg *reg = vg__reg(app);
    vg__limits *own;

    if (reg == NULL) {
        *rc = -ENOMEM;
        return NULL;
    }
    own = (vg__limits *)vg__router_body(app->router, method, pattern, rc);
    if (*rc != 0 || own != NULL)
        return own;
    own = malloc(sizeof *own);
    if (own == NULL || vg__own(reg, own) != 0) {
        free(own);
        *rc = -ENOMEM;
        return NULL;
    }
    *own = vg__unset;
    *rc = vg__router_set_body(app->router, method, pattern, own);
    return *rc == 0 ? own : NULL;
}

static bool vg__limits_valid(const vg_body_limits *lim)
{
    return lim != NULL;
}

int vg_app_set_body_limits(vg_app *app, const vg_body_limits *lim)
{
    struct vg__limits_reg *reg;
    int rc = vg__limits_configurable(app);

    if (rc != 0)
        return rc;
    if (!vg__limits_valid(lim))
        return -EINVAL;
    reg = vg__reg(app);
    if (reg == NULL)
        return -ENOMEM;
    vg__limits_set(&reg->app_own, lim);
    /* The app's body limit is one setting, whichever call made it. */
    if (lim->body != 0)
        app->body_limit = lim->body;
    reg->app_own.body = 0;
    return 0;
}

int vg_group_set_body_limits(vg_group *g, const vg_body_limits *lim)
{
    struct vg__limits_reg *reg;
    vg__limits *own;
    int rc = g ? vg__limits_configurable(g->app) : -EINVAL;

    if (rc != 0)
        return rc;
    if (!vg__limits_valid(lim))
        return -EINVAL;
    reg = vg__reg(g->app);
    own = reg ? vg__group_own(reg, g, true) : NULL;
    if (own == NULL)
        return -ENOMEM;
    vg__limits_set(own, lim);
    return 0;
}

int vg_map_body_limits(vg_app *app, const char *method, const char *pattern,
                       const vg_body_limits *lim)
{
    vg__limits *own;
    int rc = vg__limits_configurable(app);

    if (rc != 0)
        return rc;
    if (!vg__limits_valid(lim))
        return -EINVAL;
    own = vg__route_record(app, method, pattern, &rc);
    if (own == NULL) {
        vg__logf(&app->log, VG_LOG_ERROR, "cannot set body limits on %s %s: %s",
                 method ? method : "(null)", pattern ? pattern : "(null)",
                 rc == -ENOENT ? "no such route" : strerror(-rc));
        return rc;
    }
    vg__limits_set(own, lim);
    return 0;
}

/* ---- Start ---- */

typedef struct {
    vg_app *app;
    struct vg__limits_reg *reg;
    int rc;
} vg__resolve_ctx;

/* A route's record: its own, then its groups' from the innermost out,
 * then the app's. At a second start (after one that failed) the route
 * already points at a resolved record, which resolves to itself. */
static void vg__resolve_route(void *arg, const vg__route_view *route)
{
    vg__resolve_ctx *ctx = arg;
    const vg_group *g;
    vg__limits *out;

    if (ctx->rc != 0)
        return;
    out = malloc(sizeof *out);
    if (out == NULL || vg__own(ctx->reg, out) != 0) {
        free(out);
        ctx->rc = -ENOMEM;
        return;
    }
    *out = *route->body ? *(const vg__limits *)*route->body : vg__unset;
    for (g = route->owner; g != NULL; g = g->parent) {
        const vg__limits *gl = vg__group_own(ctx->reg, g, false);
        if (gl != NULL)
            vg__limits_inherit(out, gl);
    }
    vg__limits_inherit(out, &ctx->reg->app);
    *route->body = out;
}

int vg__limits_prepare(vg_app *app)
{
    struct vg__limits_reg *reg = vg__reg(app);
    vg__resolve_ctx ctx = {app, reg, 0};
    vg__limits defaults = {app->body_limit, SIZE_MAX, VG__DEFAULT_FILES,
                           VG__DEFAULT_FIELDS, VG__DEFAULT_FIELD_SIZE, 0,
                           NULL};

    if (reg == NULL)
        return -ENOMEM;
    reg->app = reg->app_own;
    vg__limits_inherit(&reg->app, &defaults);
    vg__router_visit(app->router, vg__resolve_route, &ctx);
    return ctx.rc;
}

const vg__limits *vg__limits_of(const vg_app *app, const void *m_body)
{
    if (m_body != NULL)
        return m_body;
    return app->pipe.limits ? &app->pipe.limits->app : NULL;
}

void vg__limits_free(vg_app *app)
{
    struct vg__limits_reg *reg = app->pipe.limits;
    size_t i;

    if (reg == NULL)
        return;
    for (i = 0; i < reg->nowned; i++)
        free(reg->owned[i]);
    for (i = 0; i < reg->ndirs; i++)
        free(reg->dirs[i]);
    free(reg->owned);
    free(reg->dirs);
    free(reg->groups);
    free(reg);
    app->pipe.limits = NULL;
}

/* ---- Uploads ---- */

/* A copy of `dir` owned by the registry, after checking that it is a
 * directory we may write in: a mistake shows at configuration, not at the
 * first upload. NULL dir: $TMPDIR, else /tmp. */
static const char *vg__upload_dir(vg_app *app, const char *dir, int *rc)
{
    struct vg__limits_reg *reg = vg__reg(app);
    struct stat st;
    char *copy;

    if (dir == NULL) {
        dir = getenv("TMPDIR");
        if (dir == NULL || dir[0] == '\0')
            dir = "/tmp";
    }
    if (stat(dir, &st) != 0)
        *rc = -errno;
    else if (!S_ISDIR(st.st_mode))
        *rc = -ENOTDIR;
    else if (access(dir, W_OK | X_OK) != 0)
        *rc = -errno;
    else
        *rc = 0;
    if (*rc != 0) {
        vg__logf(&app->log, VG_LOG_ERROR,
                 "cannot stream uploads to %s: %s", dir, strerror(-*rc));
        return NULL;
    }
    copy = reg ? strdup(dir) : NULL;
    if (copy == NULL ||
        vg__grow((void **)&reg->dirs, &reg->ndirs, sizeof copy, &copy) != 0) {
        free(copy);
        *rc = -ENOMEM;
        return NULL;
    }
    *rc = 0;
    return copy;
}

int vg_group_set_uploads(vg_group *g, const char *dir)
{
    vg__limits *own;
    const char *copy;
    int rc = g ? vg__limits_configurable(g->app) : -EINVAL;

    if (rc != 0)
        return rc;
    copy = vg__upload_dir(g->app, dir, &rc);
    if (copy == NULL)
        return rc;
    own = vg__group_own(g->app->pipe.limits, g, true);
    if (own == NULL)
        return -ENOMEM;
    own->uploads = 1;
    own->upload_dir = copy;
    return 0;
}

int vg_map_uploads(vg_app *app, const char *method, const char *pattern,
                   const char *dir)
{
    vg__limits *own;
    const char *copy;
    int rc = vg__limits_configurable(app);

    if (rc != 0)
        return rc;
    own = vg__route_record(app, method, pattern, &rc);
    if (own == NULL) {
        vg__logf(&app->log, VG_LOG_ERROR, "cannot stream uploads of %s %s: %s",
                 method ? method : "(null)", pattern ? pattern : "(null)",
                 rc == -ENOENT ? "no such route" : strerror(-rc));
        return rc;
    }
    copy = vg__upload_dir(app, dir, &rc);
    if (copy == NULL)
        return rc;
    own->uploads = 1;
    own->upload_dir = copy;
    return 0;
}
