/* session.c - a login session with a signed cookie, behind a CORS-enabled
 * JSON API that a page from another origin uses. Two apps in one
 * process: the API, and a small site on a second port serving the page.
 *
 *   ./samples/session [api-address] [page-address]
 *        (default localhost:7881 and localhost:7882; with only an API
 *        address, the page gets any free port of 127.0.0.1)
 *
 *   open http://localhost:7882/ and log in as ada / lovelace, or:
 *   curl -i -c jar -d '{"user":"ada","password":"lovelace"}' localhost:7881/api/login
 *   curl -b jar localhost:7881/api/me                         -> {"user":"ada"}
 *   curl -b jar -X POST localhost:7881/api/logout
 *   curl -u admin:admin-pass localhost:7881/api/admin/sessions
 *   curl localhost:7881/metrics         (Prometheus text format)
 *   curl localhost:7881/livez; curl localhost:7881/readyz
 *
 * The session cookie is HMAC-signed (a fresh key each run, so restarting
 * logs everyone out) with its expiry inside the signature; every answer
 * carries an X-Request-Id, also in the access log on stderr. Logins are
 * rate-limited to 5 a minute per client address: the sixth gets 429 with
 * Retry-After, a problem document like every other error. Readiness
 * checks that the page's app still serves.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <volga.h>

#define SESSION_SECONDS 3600
#define LOGINS_PER_MINUTE 5

typedef struct {
    vg_cookie_keys *keys;
    vg_cookie_attrs *attrs;   /* Path=/, HttpOnly, SameSite=Lax, Max-Age */
    atomic_long logins;
    vg_counter *login_count;  /* session_logins_total on /metrics */
    vg_app *web;              /* the page's app, for the readiness check */
    char page_url[128];       /* where the page is served */
    const char *api_host;     /* the API's host as the page names it */
    atomic_uint api_port;     /* set once the API runs (the page runs first) */
} site;

static vg_result *problem(unsigned status, const char *detail)
{
    return vg_problem(status, detail);
}

/* POST /api/login {"user":..., "password":...}: one demo account. */
static vg_result *login(vg_request *req, void *arg)
{
    site *s = arg;
    json_t *body = vg_request_json(req);
    const char *user = json_string_value(json_object_get(body, "user"));
    const char *pw = json_string_value(json_object_get(body, "password"));

    if (user == NULL || pw == NULL)
        return problem(400, "expected {\"user\": ..., \"password\": ...}");
    if (!vg_secure_equal(user, strlen(user), "ada", 3) ||
        !vg_secure_equal(pw, strlen(pw), "lovelace", 8))
        return problem(401, "wrong user or password");
    atomic_fetch_add(&s->logins, 1);
    vg_counter_add(s->login_count, 1);
    return vg_result_set_signed_cookie(
        vg_json(json_pack("{s:s}", "user", user)), s->keys, "session", user,
        SESSION_SECONDS, s->attrs);
}

static vg_result *logout(vg_request *req, void *arg)
{
    site *s = arg;
    (void)req;
    return vg_result_clear_cookie(vg_status(204), "session", s->attrs);
}

/* GET /api/me: who the signed cookie says is logged in. */
static vg_result *me(vg_request *req, void *arg)
{
    site *s = arg;
    const char *user = vg_request_signed_cookie(req, s->keys, "session");

    if (user == NULL)
        return problem(401, "not logged in");
    return vg_json(json_pack("{s:s, s:s}", "user", user, "request_id",
                             vg_request_id(req)));
}

static bool admin_check(vg_request *req, const char *user, const char *pw,
                        void *arg)
{
    (void)req;
    (void)arg;
    return vg_secure_equal(user, strlen(user), "admin", 5) &&
           vg_secure_equal(pw, strlen(pw), "admin-pass", 10);
}

static vg_result *admin_sessions(vg_request *req, void *arg)
{
    site *s = arg;
    (void)req;
    return vg_json(json_pack("{s:I}", "logins",
                             (json_int_t)atomic_load(&s->logins)));
}

/* Readiness: the API is useless without its page. Runs on the health
 * thread; it does not block, so it has no need to watch its token. */
static int page_serves(vg_token *tok, void *arg)
{
    site *s = arg;
    (void)tok;
    return vg_app_stopping(s->web) ? -1 : 0;
}

/* GET / on the API: where its page is. */
static vg_result *api_root(vg_request *req, void *arg)
{
    site *s = arg;
    (void)req;
    return vg_textf("the session API; its page is at %s\n", s->page_url);
}

static const char page_fmt[] =
    "<!doctype html>\n<meta charset=utf-8>\n<title>session</title>\n"
    "<p id=who>...</p>\n"
    "<form id=f><input name=user value=ada> <input name=password "
    "type=password value=lovelace> <button>log in</button></form>\n"
    "<button id=out>log out</button>\n<script>\n"
    "const API = '%s';\n"
    "const call = (path, opts) => fetch(API + path,\n"
    "  Object.assign({credentials: 'include'}, opts));\n"
    "async function who() {\n"
    "  const r = await call('/api/me');\n"
    "  document.getElementById('who').textContent = r.ok ?\n"
    "    'logged in as ' + (await r.json()).user : 'not logged in';\n"
    "}\n"
    "document.getElementById('f').onsubmit = async e => {\n"
    "  e.preventDefault();\n"
    "  const d = new FormData(e.target);\n"
    "  const r = await call('/api/login', {method: 'POST', headers: {\n"
    "    'Content-Type': 'application/json'},\n"
    "    body: JSON.stringify(Object.fromEntries(d))});\n"
    "  if (r.status === 429)\n"
    "    document.getElementById('who').textContent = 'too many logins, '\n"
    "      + 'try again in ' + r.headers.get('Retry-After') + ' s';\n"
    "  else who();\n"
    "};\n"
    "document.getElementById('out').onclick = async () => {\n"
    "  await call('/api/logout', {method: 'POST'}); who();\n"
    "};\n"
    "who();\n</script>\n";

static vg_result *page(vg_request *req, void *arg)
{
    site *s = arg;
    char api[128];

    (void)req;
    snprintf(api, sizeof api, "http://%s:%u", s->api_host,
             atomic_load(&s->api_port));
    return vg_result_set_header(vg_textf(page_fmt, api), "Content-Type",
                                "text/html; charset=utf-8");
}

/* A fresh signing key; 0 or -1. */
static int new_keys(site *s)
{
    unsigned char key[32];
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(key, 1, sizeof key, f) : 0;

    if (f)
        fclose(f);
    if (got != sizeof key)
        return -1;
    s->keys = vg_cookie_keys_new(key, sizeof key);
    memset(key, 0, sizeof key);
    return s->keys ? 0 : -1;
}

static int cookie_attrs(site *s)
{
    s->attrs = vg_cookie_attrs_new();
    if (s->attrs == NULL || vg_cookie_attrs_set_path(s->attrs, "/") != 0 ||
        vg_cookie_attrs_set_http_only(s->attrs, true) != 0 ||
        vg_cookie_attrs_set_same_site(s->attrs, VG_SAME_SITE_LAX) != 0 ||
        vg_cookie_attrs_set_max_age(s->attrs, SESSION_SECONDS) != 0)
        return -1;
    return 0;
}

/* What operations need: a login rate limit, /metrics, /livez, /readyz. */
static int api_ops(vg_app *api, site *s, vg_ratelimit *rl, vg_metrics *m,
                   vg_health *h)
{
    s->login_count = vg_metrics_counter(m, "session_logins_total",
                                        "Successful logins.");
    if (s->login_count == NULL ||
        vg_map_ratelimit(api, "POST", "/api/login", rl) != 0 ||
        vg_app_use_metrics(api, m, "/metrics") != 0 ||
        vg_health_add_check(h, "page", page_serves, s) != 0 ||
        vg_app_use_health(api, h, "/livez", "/readyz") != 0)
        return -1;
    return 0;
}

/* The API's routes, CORS for the page's origin, the login's rate limit
 * and the admin guard. CORS is an app filter registered before the
 * limiter so that a 429 carries it too: the page can read the refusal. */
static int api_routes(vg_app *api, site *s, vg_cors *cors,
                      vg_basic_auth *guard, const char *page_origin)
{
    vg_group *g = vg_app_group(api, "/api"), *admin;

    if (g == NULL || (admin = vg_group_group(g, "/admin")) == NULL)
        return -1;
    if (vg_app_use_request_id(api, false) != 0 ||
        vg_app_use_problem_details(api) != 0 ||
        vg_cors_allow_origin(cors, page_origin) != 0 ||
        vg_cors_set_credentials(cors, true) != 0 ||
        vg_cors_set_headers(cors, "Content-Type") != 0 ||
        vg_cors_set_expose_headers(cors, "X-Request-Id, Retry-After") != 0 ||
        vg_cors_set_max_age(cors, 600) != 0 ||
        vg_app_use_cors(api, cors) != 0 ||
        vg_map_get(api, "/", api_root, s) != 0 ||
        vg_group_map_post(g, "/login", login, s) != 0 ||
        vg_group_map_post(g, "/logout", logout, s) != 0 ||
        vg_group_map_get(g, "/me", me, s) != 0 ||
        vg_group_use_basic_auth(admin, guard) != 0 ||
        vg_group_map_get(admin, "/sessions", admin_sessions, s) != 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *api_addr = argc > 1 ? argv[1] : "localhost:7881";
    const char *page_addr = argc > 2 ? argv[2]
                            : argc > 1 ? "127.0.0.1:0" : "localhost:7882";
    const char *page_host = strncmp(page_addr, "localhost", 9) == 0
                                ? "localhost" : "127.0.0.1";
    site s = {0};
    vg_app *api = vg_app_new(api_addr), *web = vg_app_new(page_addr);
    vg_cors *cors = vg_cors_new();
    vg_basic_auth *guard = vg_basic_auth_new("session admin", admin_check, NULL);
    vg_ratelimit *rl = vg_ratelimit_new(LOGINS_PER_MINUTE, 60000);
    vg_metrics *metrics = vg_metrics_new();
    vg_health *health = vg_health_new();
    char page_origin[96];
    int rc = 1;

    s.api_host = strncmp(api_addr, "localhost", 9) == 0 ? "localhost"
                                                        : "127.0.0.1";
    s.web = web;
    if (api == NULL || web == NULL || cors == NULL || guard == NULL ||
        rl == NULL || metrics == NULL || health == NULL ||
        new_keys(&s) != 0 || cookie_attrs(&s) != 0) {
        perror("session");
        goto out;
    }
    vg_app_set_logger(api, vg_log_stderr, NULL, VG_LOG_INFO);
    /* The page's origin is known once its app has its port. */
    if (vg_map_get(web, "/", page, &s) != 0 || vg_app_start(web) != 0) {
        fprintf(stderr, "session: cannot start the page on %s\n", page_addr);
        goto out;
    }
    snprintf(page_origin, sizeof page_origin, "http://%s:%u", page_host,
             (unsigned)vg_app_port(web));
    snprintf(s.page_url, sizeof s.page_url, "%s/", page_origin);
    if (api_routes(api, &s, cors, guard, page_origin) != 0 ||
        api_ops(api, &s, rl, metrics, health) != 0 ||
        vg_app_start(api) != 0) {
        fprintf(stderr, "session: cannot start the API on %s\n", api_addr);
        goto out;
    }
    atomic_store(&s.api_port, vg_app_port(api));
    printf("session: API on http://%s:%u (port %u), page on %s\n", s.api_host,
           (unsigned)vg_app_port(api), (unsigned)vg_app_port(api), s.page_url);
    fflush(stdout);
    rc = vg_app_run(api) == 0 ? 0 : 1;
out:
    vg_app_free(api);
    vg_health_free(health); /* its check reads the page's app */
    vg_app_free(web);
    vg_cors_free(cors);
    vg_basic_auth_free(guard);
    vg_ratelimit_free(rl);
    vg_metrics_free(metrics);
    vg_cookie_keys_free(s.keys);
    vg_cookie_attrs_free(s.attrs);
    return rc;
}
