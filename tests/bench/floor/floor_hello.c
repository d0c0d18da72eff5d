/*
 * floor_hello: bare libmicrohttpd answering 60 bytes of JSON to every request, with the gateway's
 * threading (an internal epoll thread pool). The most any gateway route can do on this machine:
 * make bench sets the gateway's /healthz beside it.
 *
 * usage: floor_hello <port> [threads]   (127.0.0.1 only; runs until SIGINT or SIGTERM)
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

static const char body[] = "{\"status\":\"ok\",\"service\":\"floor\",\"detail\":\"hello, world\"}";

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
        static int seen;
        struct MHD_Response *resp;
        enum MHD_Result ret;

        (void)cls, (void)url, (void)method, (void)version, (void)data, (void)data_size;
        if (*state == NULL) { /* the headers: answer on the next call, as a real route does */
                *state = &seen;
                return MHD_YES;
        }
        resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)(uintptr_t)body,
                                               MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "Content-Type", "application/json");
        ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ret;
}

int main(int argc, char **argv)
{
        struct sockaddr_in sa = {.sin_family = AF_INET};
        struct MHD_Daemon *d;
        sigset_t set;
        int sig;

        if (argc < 2) {
                fprintf(stderr, "usage: floor_hello <port> [threads]\n");
                return 2;
        }
        sa.sin_port = htons((unsigned short)atoi(argv[1]));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
                             on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                             MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(argc > 2 ? atoi(argv[2]) : 2),
                             MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_END);
        if (d == NULL) {
                fprintf(stderr, "floor_hello: cannot listen on port %s\n", argv[1]);
                return 1;
        }
        sigwait(&set, &sig);
        MHD_stop_daemon(d);
        return 0;
}
