/* park_client.c - opens N keep-alive connections to 127.0.0.1:PORT, sends
 * "GET /park" on each, prints "parked N" and holds them until SIGTERM or
 * SIGINT. Usage: park_client PORT N. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    static const char req[] = "GET /park HTTP/1.1\r\nHost: bench\r\n\r\n";
    struct sockaddr_in sa;
    struct rlimit rl;
    int n, i, *fds, sig;
    sigset_t set;

    if (argc < 3) {
        fprintf(stderr, "usage: park_client PORT N\n");
        return 2;
    }
    n = atoi(argv[2]);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    fds = calloc((size_t)n, sizeof *fds);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[1]));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof sa) != 0 ||
            send(fds[i], req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1)) {
            perror("park_client");
            return 1;
        }
    }
    printf("parked %d\n", n);
    fflush(stdout);
    sigwait(&set, &sig);
    for (i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    return 0;
}
