/* raw_mhd.c - the baseline: libmicrohttpd answering /hello and /json inline
 * in its own threads (epoll pool of 2, its fastest plain mode on 2 cores),
 * answering on the second access-handler call so keep-alive holds (DESIGN.md
 * fact 11). Usage: raw_mhd PORT   (binds 127.0.0.1 only). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct MHD_Response *hello_resp, *json_resp, *nf_resp;

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    static int first;

    (void)cls, (void)method, (void)version, (void)upload, (void)upload_size;
    if (*con_cls == NULL) {
        *con_cls = &first;
        return MHD_YES;
    }
    if (strcmp(url, "/hello") == 0)
        return MHD_queue_response(conn, 200, hello_resp);
    if (strcmp(url, "/json") == 0)
        return MHD_queue_response(conn, 200, json_resp);
    return MHD_queue_response(conn, 404, nf_resp);
}

static struct MHD_Response *make(const char *body, const char *ctype)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", ctype);
    return r;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    struct MHD_Daemon *d;
    sigset_t set;
    int sig;

    if (argc < 2) {
        fprintf(stderr, "usage: raw_mhd PORT\n");
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    hello_resp = make("Hello, World!", "text/plain; charset=utf-8");
    json_resp = make("{\"message\":\"Hello, World!\",\"answer\":42}",
                     "application/json");
    nf_resp = make("not found\n", "text/plain; charset=utf-8");
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD, 0, NULL, NULL,
                         on_access, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                         MHD_OPTION_THREAD_POOL_SIZE, 2u,
                         MHD_OPTION_CONNECTION_LIMIT, 10000u, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "raw_mhd: cannot start\n");
        return 1;
    }
    printf("raw_mhd: listening on 127.0.0.1:%s\n", argv[1]);
    fflush(stdout);
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(hello_resp);
    MHD_destroy_response(json_resp);
    MHD_destroy_response(nf_resp);
    return 0;
}
