/* todo.c - an in-memory JSON CRUD API.
 *
 *   ./samples/todo [address]         (default localhost:7879)
 *   curl -d '{"title":"milk"}' localhost:7879/todos       -> 201 + Location
 *   curl localhost:7879/todos                             -> [ ... ]
 *   curl localhost:7879/todos/1                           -> 200 or 404
 *   curl -X PUT -d '{"title":"oat milk","done":true}' localhost:7879/todos/1
 *   curl -X DELETE localhost:7879/todos/1                 -> 204
 * Handlers run on several worker threads at once, so the list has a lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <volga.h>

typedef struct {
    pthread_mutex_t lock;
    json_t *items;        /* object: id (string) -> {id, title, done} */
    long long next_id;
} store;

static vg_result *error(unsigned status, const char *msg)
{
    return vg_result_set_status(vg_json(json_pack("{s:s}", "error", msg)),
                                status);
}

/* Reads {"title": string, "done": bool?} from the body; NULL if invalid. */
static const char *parse_todo(vg_request *req, int *done)
{
    json_t *body = vg_request_json(req), *title, *d;

    if (!json_is_object(body))
        return NULL;
    title = json_object_get(body, "title");
    d = json_object_get(body, "done");
    if (!json_is_string(title) || (d != NULL && !json_is_boolean(d)))
        return NULL;
    *done = d != NULL && json_is_true(d);
    return json_string_value(title);
}

static vg_result *list(vg_request *req, void *arg)
{
    store *s = arg;
    json_t *out = json_array(), *item;
    const char *key;

    (void)req;
    pthread_mutex_lock(&s->lock);
    json_object_foreach(s->items, key, item)
        json_array_append(out, item);
    pthread_mutex_unlock(&s->lock);
    return vg_json(out);
}

static vg_result *create(vg_request *req, void *arg)
{
    store *s = arg;
    int done;
    const char *title = parse_todo(req, &done);
    char id[32], location[64];
    json_t *item;

    if (title == NULL)
        return error(400, "expected {\"title\": string, \"done\": bool}");
    pthread_mutex_lock(&s->lock);
    snprintf(id, sizeof id, "%lld", s->next_id++);
    item = json_pack("{s:s, s:s, s:b}", "id", id, "title", title, "done", done);
    json_object_set(s->items, id, item);
    pthread_mutex_unlock(&s->lock);
    snprintf(location, sizeof location, "/todos/%s", id);
    return vg_result_set_header(vg_result_set_status(vg_json(item), 201),
                                "Location", location);
}

static vg_result *get_one(vg_request *req, void *arg)
{
    store *s = arg;
    json_t *item;

    pthread_mutex_lock(&s->lock);
    item = json_incref(json_object_get(s->items, vg_request_param(req, "id")));
    pthread_mutex_unlock(&s->lock);
    return item ? vg_json(item) : error(404, "no such todo");
}

static vg_result *update(vg_request *req, void *arg)
{
    store *s = arg;
    const char *id = vg_request_param(req, "id"), *title;
    int done;
    json_t *item = NULL;

    title = parse_todo(req, &done);
    if (title == NULL)
        return error(400, "expected {\"title\": string, \"done\": bool}");
    pthread_mutex_lock(&s->lock);
    if (json_object_get(s->items, id) != NULL) {
        item = json_pack("{s:s, s:s, s:b}", "id", id, "title", title, "done",
                         done);
        json_object_set(s->items, id, item);
    }
    pthread_mutex_unlock(&s->lock);
    return item ? vg_json(item) : error(404, "no such todo");
}

static vg_result *remove_one(vg_request *req, void *arg)
{
    store *s = arg;
    int rc;

    pthread_mutex_lock(&s->lock);
    rc = json_object_del(s->items, vg_request_param(req, "id"));
    pthread_mutex_unlock(&s->lock);
    return rc == 0 ? vg_status(204) : error(404, "no such todo");
}

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "localhost:7879";
    store s = {PTHREAD_MUTEX_INITIALIZER, json_object(), 1};
    vg_app *app = vg_app_new(address);
    int rc = 1;

    if (app == NULL || s.items == NULL) {
        perror("todo");
        goto out;
    }
    /* Warnings and one access-log line per request, to stderr. */
    vg_app_set_logger(app, vg_log_stderr, NULL, VG_LOG_INFO);
    if (vg_map_get(app, "/todos", list, &s) != 0 ||
        vg_map_post(app, "/todos", create, &s) != 0 ||
        vg_map_get(app, "/todos/{id}", get_one, &s) != 0 ||
        vg_map_put(app, "/todos/{id}", update, &s) != 0 ||
        vg_map_delete(app, "/todos/{id}", remove_one, &s) != 0)
        goto out;
    rc = vg_app_start(app);
    if (rc != 0) {
        fprintf(stderr, "todo: cannot start on %s: %s\n", address,
                strerror(-rc));
        rc = 1;
        goto out;
    }
    printf("todo: listening on http://%s (port %u)\n", address,
           (unsigned)vg_app_port(app));
    fflush(stdout);
    rc = vg_app_run(app) == 0 ? 0 : 1;
out:
    vg_app_free(app);
    json_decref(s.items);
    return rc;
}
