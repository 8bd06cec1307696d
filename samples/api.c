/* api.c - a small JSON API built with the pipeline: route groups, a
 * bearer-token middleware in front of the admin routes, a timing
 * middleware, problem documents for every error, compressed request
 * bodies decoded (vg_decompress), and a fallback.
 *
 *   ./samples/api [address] [token]      (default localhost:7880, "s3cret")
 *
 *   curl localhost:7880/api/v1/users
 *   curl -d '{"name":"Ada"}' localhost:7880/api/v1/users
 *   printf '{"name":"Bo"}' | gzip | curl --data-binary @- \
 *       -H 'Content-Encoding: gzip' localhost:7880/api/v1/users   (decoded)
 *   curl localhost:7880/api/v1/users/1
 *   curl localhost:7880/api/v1/admin/stats                 -> 401 problem
 *   curl -H 'Authorization: Bearer s3cret' localhost:7880/api/v1/admin/stats
 *   curl localhost:7880/nowhere                            -> the fallback
 *   curl -X DELETE localhost:7880/api/v1/users             -> 405 problem
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <volga.h>

/* The users, shared by the worker threads. */
typedef struct {
    pthread_mutex_t lock;
    json_t *users;       /* an array of {"id":n,"name":s} */
    long next_id;
} store;

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Middleware: how long the rest of the chain took, as Server-Timing. */
static vg_result *timing(vg_request *req, vg_next *next, void *arg)
{
    double start = now_ms();
    vg_result *res = vg_next_run(next);
    char value[64];

    (void)req;
    (void)arg;
    snprintf(value, sizeof value, "app;dur=%.3f", now_ms() - start);
    /* A deferred answer comes later: setting a header on it does nothing. */
    return vg_result_set_header(res, "Server-Timing", value);
}

/* Middleware for the admin group: a bearer token or a 401 problem
 * document, without ever reaching the handler. */
static vg_result *require_token(vg_request *req, vg_next *next, void *arg)
{
    const char *token = arg, *auth = vg_request_header(req, "Authorization");

    if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 ||
        strcmp(auth + 7, token) != 0) {
        vg_result *res = vg_problem(401, "a valid bearer token is required");
        return vg_result_set_header(res, "WWW-Authenticate",
                                    "Bearer realm=\"admin\"");
    }
    return vg_next_run(next);
}

static vg_result *list_users(vg_request *req, void *arg)
{
    store *s = arg;
    json_t *copy;

    (void)req;
    pthread_mutex_lock(&s->lock);
    copy = json_deep_copy(s->users);
    pthread_mutex_unlock(&s->lock);
    return vg_json(copy);
}

static vg_result *create_user(vg_request *req, void *arg)
{
    store *s = arg;
    json_t *body = vg_request_json(req), *user;
    const char *name = json_string_value(json_object_get(body, "name"));
    char location[64];
    long id;

    if (name == NULL || name[0] == '\0')
        return vg_problem_set(vg_problem(400, "expected {\"name\": \"...\"}"),
                              "field", json_string("name"));
    pthread_mutex_lock(&s->lock);
    id = s->next_id++;
    user = json_pack("{s:I, s:s}", "id", (json_int_t)id, "name", name);
    json_array_append(s->users, user);
    pthread_mutex_unlock(&s->lock);
    snprintf(location, sizeof location, "/api/v1/users/%ld", id);
    return vg_result_set_header(vg_result_set_status(vg_json(user), 201),
                                "Location", location);
}

static vg_result *get_user(vg_request *req, void *arg)
{
    store *s = arg;
    long id = strtol(vg_request_param(req, "id"), NULL, 10);
    json_t *found = NULL, *u;
    size_t i;

    pthread_mutex_lock(&s->lock);
    json_array_foreach(s->users, i, u)
        if (json_integer_value(json_object_get(u, "id")) == id)
            found = json_deep_copy(u);
    pthread_mutex_unlock(&s->lock);
    if (found == NULL)
        return vg_problem(404, "no user with that id");
    return vg_json(found);
}

static vg_result *admin_stats(vg_request *req, void *arg)
{
    store *s = arg;
    size_t n;

    (void)req;
    pthread_mutex_lock(&s->lock);
    n = json_array_size(s->users);
    pthread_mutex_unlock(&s->lock);
    return vg_json(json_pack("{s:I}", "users", (json_int_t)n));
}

/* Every path no route knows: a friendly problem with a pointer. */
static vg_result *fallback(vg_request *req, void *arg)
{
    (void)arg;
    return vg_problem_set(vg_problem(404, "nothing here; the API lives "
                                          "under /api/v1"),
                          "path", json_string(vg_request_path(req)));
}

/* The groups and routes; 0, or the first error. */
static int api_routes(vg_app *app, store *s, const char *token)
{
    vg_group *v1 = vg_app_group(app, "/api/v1"), *admin;

    if (v1 == NULL)
        return -1;
    admin = vg_group_group(v1, "/admin");
    if (admin == NULL)
        return -1;
    if (vg_app_use(app, timing, NULL) != 0 ||
        vg_app_use_problem_details(app) != 0 ||
        vg_app_use(app, vg_decompress, NULL) != 0 ||
        vg_app_set_fallback(app, fallback, NULL) != 0 ||
        vg_group_map_get(v1, "/users", list_users, s) != 0 ||
        vg_group_map_post(v1, "/users", create_user, s) != 0 ||
        vg_group_map_get(v1, "/users/{id}", get_user, s) != 0 ||
        vg_group_use(admin, require_token, (void *)token) != 0 ||
        vg_group_set_timeout(admin, 5000) != 0 ||
        vg_group_map_get(admin, "/stats", admin_stats, s) != 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "localhost:7880";
    const char *token = argc > 2 ? argv[2] : "s3cret";
    store s = {PTHREAD_MUTEX_INITIALIZER, json_array(), 1};
    vg_app *app = vg_app_new(address);
    int rc = 1;

    if (app == NULL || s.users == NULL) {
        perror("api");
        goto out;
    }
    /* Warnings and one access-log line per request, to stderr. */
    vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_INFO);
    if (api_routes(app, &s, token) != 0)
        goto out;
    rc = vg_app_start(app);
    if (rc != 0) {
        fprintf(stderr, "api: cannot start on %s: %s\n", address,
                strerror(-rc));
        rc = 1;
        goto out;
    }
    printf("api: listening on http://%s (port %u)\n", address,
           (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app) == 0 ? 0 : 1;
out:
    vg_app_free(app);
    json_decref(s.users);
    return rc;
}
