/* test_samples.c - the samples as users run them: samples/todo started as
 * a process, driven over HTTP (201 + Location, 200, 204, 400, 404), then
 * stopped with SIGTERM, exiting 0. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <check.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <volga.h>
#include "testutil.h"

extern char **environ;

typedef struct {
    pid_t pid;
    int out;              /* the sample's stdout */
    unsigned short port;
} sample;

/* Starts samples/NAME on 127.0.0.1:0 and reads the port it prints. */
static void sample_start(sample *s, const char *name)
{
    const char *top = getenv("top_builddir");
    char path[PATH_MAX], buf[256] = "";
    char *argv[3];
    posix_spawn_file_actions_t fa;
    int p[2];
    size_t got = 0;
    struct pollfd pfd;
    const char *at;

    snprintf(path, sizeof path, "%s/samples/%s", top ? top : ".", name);
    ck_assert_msg(access(path, X_OK) == 0, "%s is not built", path);
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    argv[0] = path;
    argv[1] = (char *)"127.0.0.1:0";
    argv[2] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    ck_assert_int_eq(posix_spawn(&s->pid, path, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    s->out = p[0];
    /* "todo: listening on http://127.0.0.1:0 (port N)" */
    pfd.fd = s->out;
    pfd.events = POLLIN;
    while ((at = strstr(buf, "(port ")) == NULL || strchr(at, ')') == NULL) {
        ssize_t n;
        ck_assert_msg(poll(&pfd, 1, 10000) == 1, "no port line from %s", name);
        n = read(s->out, buf + got, sizeof buf - 1 - got);
        ck_assert_int_gt(n, 0);
        got += (size_t)n;
        buf[got] = '\0';
    }
    s->port = (unsigned short)atoi(at + 6);
    ck_assert_uint_ne(s->port, 0);
}

/* SIGTERM, then the sample must exit 0 (a hang fails the test's timeout). */
static void sample_stop(sample *s)
{
    int status = 0;

    ck_assert_int_eq(kill(s->pid, SIGTERM), 0);
    ck_assert_int_eq(waitpid(s->pid, &status, 0), s->pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    close(s->out);
}

static const char *const json_hdr[] = {"Content-Type: application/json", NULL};

START_TEST(todo_crud)
{
    sample s;
    tu_response r;
    json_t *j;
    char *loc, path[64];

    sample_start(&s, "todo");
    r = tu_request(s.port, "POST", "/todos", "{\"title\":\"milk\"}", 16, json_hdr);
    ck_assert_int_eq(r.status, 201);
    loc = tu_header(&r, "Location");
    ck_assert_ptr_nonnull(loc);
    j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "title")), "milk");
    ck_assert(json_is_false(json_object_get(j, "done")));
    snprintf(path, sizeof path, "/todos/%s",
             json_string_value(json_object_get(j, "id")));
    ck_assert_str_eq(loc, path);
    json_decref(j);
    free(loc);
    tu_response_free(&r);

    r = tu_get(s.port, path);
    ck_assert_int_eq(r.status, 200);
    tu_response_free(&r);
    r = tu_get(s.port, "/todos");
    ck_assert_int_eq(r.status, 200);
    j = json_loads(r.body, 0, NULL);
    ck_assert_uint_eq(json_array_size(j), 1);
    json_decref(j);
    tu_response_free(&r);

    r = tu_request(s.port, "PUT", path, "{\"title\":\"oat milk\",\"done\":true}",
                   32, json_hdr);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"done\":true"));
    tu_response_free(&r);

    r = tu_request(s.port, "POST", "/todos", "{nope", 5, json_hdr);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);
    r = tu_request(s.port, "POST", "/todos", "{\"title\":5}", 11, json_hdr);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);

    r = tu_request(s.port, "DELETE", path, NULL, 0, NULL);
    ck_assert_int_eq(r.status, 204);
    tu_response_free(&r);
    r = tu_get(s.port, path);
    ck_assert_int_eq(r.status, 404);
    tu_response_free(&r);
    r = tu_request(s.port, "DELETE", path, NULL, 0, NULL);
    ck_assert_int_eq(r.status, 404);
    tu_response_free(&r);
    r = tu_request(s.port, "PATCH", "/todos", NULL, 0, NULL);
    ck_assert_int_eq(r.status, 405);
    tu_response_free(&r);
    sample_stop(&s);
}
END_TEST

START_TEST(hello_answers_text_and_json)
{
    sample s;
    tu_response r;

    sample_start(&s, "hello");
    r = tu_get(s.port, "/hello/Ada");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "Hello, Ada!");
    tu_response_free(&r);
    r = tu_get(s.port, "/json");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"message\":\"Hello, World!\",\"answer\":42}");
    tu_response_free(&r);
    r = tu_request(s.port, "POST", "/echo", "not json", 8, NULL);
    ck_assert_int_eq(r.status, 400);
    tu_response_free(&r);
    sample_stop(&s);
}
END_TEST

static Suite *samples_suite(void)
{
    Suite *s = suite_create("samples");
    TCase *tc = tcase_create("samples");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, todo_crud);
    tcase_add_test(tc, hello_answers_text_and_json);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_main(samples_suite());
}
