/* ulfius_hello.c - the ulfius peer of the hello benchmark: the same two
 * answers as raw_mhd.c and volga_hello.c, written the way an ulfius user
 * would write them. GET /hello -> "Hello, World!" (text/plain), GET /json ->
 * {"message":"Hello, World!","answer":42} packed and serialised per request,
 * as volga_hello does.
 *
 * ulfius_start_framework() is used as is: it picks the MHD mode itself
 * (one thread per connection plus an internal listening thread in ulfius
 * 2.7); see bench/RESULTS.md.
 *
 * Usage: ulfius_hello PORT   (binds 127.0.0.1 only; stops on SIGINT/SIGTERM).
 * Not built by make: bench/run-suite compiles it when libulfius-dev is
 * installed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <ulfius.h>

static int hello(const struct _u_request *req, struct _u_response *res,
                 void *arg)
{
    (void)req;
    (void)arg;
    if (ulfius_set_string_body_response(res, 200, "Hello, World!") != U_OK ||
        u_map_put(res->map_header, "Content-Type",
                  "text/plain; charset=utf-8") != U_OK)
        return U_CALLBACK_ERROR;
    return U_CALLBACK_COMPLETE;
}

static int json(const struct _u_request *req, struct _u_response *res,
                void *arg)
{
    json_t *body;
    int rc;

    (void)req;
    (void)arg;
    body = json_pack("{s:s, s:i}", "message", "Hello, World!", "answer", 42);
    if (body == NULL)
        return U_CALLBACK_ERROR;
    /* ulfius_set_json_body_response serialises body and does not keep it. */
    rc = ulfius_set_json_body_response(res, 200, body);
    json_decref(body);
    return rc == U_OK ? U_CALLBACK_COMPLETE : U_CALLBACK_ERROR;
}

int main(int argc, char **argv)
{
    struct _u_instance inst;
    struct sockaddr_in sa;
    sigset_t set;
    char *end;
    long port;
    int sig;

    port = argc == 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 2 || *end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "usage: ulfius_hello PORT\n");
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Block the stop signals before ulfius starts its threads, so that they
     * inherit the mask and only sigwait below sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (ulfius_init_instance(&inst, (unsigned)port, &sa, NULL) != U_OK) {
        fprintf(stderr, "ulfius_hello: ulfius_init_instance failed\n");
        return 1;
    }
    if (ulfius_add_endpoint_by_val(&inst, "GET", "/hello", NULL, 0, hello,
                                   NULL) != U_OK ||
        ulfius_add_endpoint_by_val(&inst, "GET", "/json", NULL, 0, json,
                                   NULL) != U_OK ||
        ulfius_start_framework(&inst) != U_OK) {
        fprintf(stderr, "ulfius_hello: cannot start on 127.0.0.1:%ld\n",
                port);
        ulfius_clean_instance(&inst);
        return 1;
    }
    printf("ulfius_hello: listening on 127.0.0.1:%ld\n", port);
    fflush(stdout);
    sigwait(&set, &sig);
    ulfius_stop_framework(&inst);
    ulfius_clean_instance(&inst);
    return 0;
}
