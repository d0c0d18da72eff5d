/*
 * floor_gateway: the bare HTTP -> NATS half of an authenticated read. GET /items/<id> publishes a
 * floor.Get on "floor.get" with a reply subject naming the request, suspends the connection, and
 * the reply callback renders floor.Item as JSON and resumes it: the gateway's threading (epoll
 * thread pool, no thread waits for a service) without routing, sessions, logging or metrics.
 *
 * usage: floor_gateway <port> <nats_url> [threads]   (127.0.0.1; runs until SIGINT or SIGTERM)
 * A probe: a reply that never comes leaves its connection suspended until the client gives up.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floor.pb-c.h"

struct req {
        struct MHD_Connection *conn;
        int sent;
        unsigned status;
        size_t len;
        char body[256];
};

static natsConnection *nc;
static char inbox[64];

/* Fills the answer of `r` from a floor.Item (or a 502 when the reply does not decode). */
static void render(struct req *r, const void *data, int n)
{
        Floor__Item *it = floor__item__unpack(NULL, (size_t)n, data);

        if (it == NULL) {
                r->status = 502;
                r->len = (size_t)snprintf(r->body, sizeof(r->body), "{\"error\":\"bad reply\"}");
                return;
        }
        r->status = (unsigned)it->status;
        if (it->status == 200)
                r->len = (size_t)snprintf(r->body, sizeof(r->body),
                                          "{\"id\":%" PRId64
                                          ",\"name\":\"%s\",\"qty\":%d,\"priceCents\":%" PRId64 "}",
                                          it->id, it->name, it->qty, it->price_cents);
        else
                r->len = (size_t)snprintf(r->body, sizeof(r->body), "{\"error\":%d}", it->status);
        floor__item__free_unpacked(it, NULL);
}

static void on_reply(natsConnection *c, natsSubscription *sub, natsMsg *m, void *closure)
{
        const char *dot = strrchr(natsMsg_GetSubject(m), '.');
        struct req *r = (struct req *)(uintptr_t)strtoull(dot ? dot + 1 : "0", NULL, 16);

        (void)c, (void)sub, (void)closure;
        if (r != NULL) {
                render(r, natsMsg_GetData(m), natsMsg_GetDataLength(m));
                MHD_resume_connection(r->conn);
        }
        natsMsg_Destroy(m);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
        Floor__Get get = FLOOR__GET__INIT;
        struct req *r = *state;
        struct MHD_Response *resp;
        enum MHD_Result ret;
        uint8_t buf[32];
        char reply[96];
        size_t n;

        (void)cls, (void)method, (void)version, (void)data, (void)data_size;
        if (r == NULL) {
                r = calloc(1, sizeof(*r));
                if (r == NULL)
                        return MHD_NO;
                r->conn = c;
                *state = r;
                return MHD_YES;
        }
        if (r->sent) { /* resumed: the answer is in r */
                resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_COPY);
                MHD_add_response_header(resp, "Content-Type", "application/json");
                ret = MHD_queue_response(c, r->status, resp);
                MHD_destroy_response(resp);
                return ret;
        }
        r->sent = 1;
        get.id = strncmp(url, "/items/", 7) == 0 ? strtoll(url + 7, NULL, 10) : -1;
        n = floor__get__pack(&get, buf);
        snprintf(reply, sizeof(reply), "%s.%" PRIxPTR, inbox, (uintptr_t)r);
        MHD_suspend_connection(c); /* before the publish: the reply may come first */
        natsConnection_PublishRequest(nc, "floor.get", reply, buf, (int)n);
        return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode code)
{
        (void)cls, (void)c, (void)code;
        free(*state);
        *state = NULL;
}

int main(int argc, char **argv)
{
        struct sockaddr_in sa = {.sin_family = AF_INET};
        natsSubscription *sub = NULL;
        struct MHD_Daemon *d;
        natsInbox *ib = NULL;
        char wildcard[80];
        sigset_t set;
        int sig;

        if (argc < 3) {
                fprintf(stderr, "usage: floor_gateway <port> <nats_url> [threads]\n");
                return 2;
        }
        if (natsConnection_ConnectTo(&nc, argv[2]) != NATS_OK || natsInbox_Create(&ib) != NATS_OK) {
                fprintf(stderr, "floor_gateway: cannot connect to %s\n", argv[2]);
                return 1;
        }
        snprintf(inbox, sizeof(inbox), "%s", (const char *)ib);
        natsInbox_Destroy(ib);
        snprintf(wildcard, sizeof(wildcard), "%s.*", inbox);
        if (natsConnection_Subscribe(&sub, nc, wildcard, on_reply, NULL) != NATS_OK ||
            natsSubscription_SetPendingLimits(sub, -1, -1) != NATS_OK ||
            natsConnection_Flush(nc) != NATS_OK) {
                fprintf(stderr, "floor_gateway: cannot subscribe to replies\n");
                return 1;
        }
        sa.sin_port = htons((unsigned short)atoi(argv[1]));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        d = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL,
            NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE,
            (unsigned)(argc > 3 ? atoi(argv[3]) : 2), MHD_OPTION_NOTIFY_COMPLETED, on_completed,
            NULL, MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_END);
        if (d == NULL) {
                fprintf(stderr, "floor_gateway: cannot listen on port %s\n", argv[1]);
                return 1;
        }
        sigwait(&set, &sig);
        MHD_stop_daemon(d);
        natsSubscription_Destroy(sub);
        natsConnection_Destroy(nc);
        nats_Close();
        return 0;
}
