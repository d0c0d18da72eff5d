/*
 * floor_service: the bare NATS -> PostgreSQL half of an authenticated read. <workers> queue
 * subscriptions to "floor.get" (queue "floor") on one connection, each with its own PostgreSQL
 * connection and prepared statement; nats.c runs each subscription's callback on its own thread,
 * which reads one row by primary key and replies with a floor.Item. No envelope, no logging, no
 * pools, no metrics: what a service cannot do with less.
 *
 * usage: floor_service <nats_url> <pg_conninfo> [workers]   (runs until SIGINT or SIGTERM)
 * The table: floor_items (id bigint PRIMARY KEY, name text, qty int, price_cents bigint), made
 * and filled by tests/bench/floor.sh.
 */
#include <libpq-fe.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "floor.pb-c.h"

#define MAX_WORKERS 64

struct worker {
        PGconn *pg;
        natsSubscription *sub;
};

static void on_get(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
        struct worker *w = closure;
        Floor__Item it = FLOOR__ITEM__INIT;
        Floor__Get *get = floor__get__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                             (const uint8_t *)natsMsg_GetData(m));
        PGresult *res = NULL;
        uint8_t buf[512];
        char id[24];
        const char *params[1] = {id};

        (void)sub;
        it.status = 400;
        if (get != NULL && get->id >= 0) {
                snprintf(id, sizeof(id), "%lld", (long long)get->id);
                res = PQexecPrepared(w->pg, "get", 1, params, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                        it.status = 500;
                } else if (PQntuples(res) == 0) {
                        it.status = 404;
                } else {
                        it.status = 200;
                        it.id = get->id;
                        it.name = PQgetvalue(res, 0, 1);
                        it.qty = atoi(PQgetvalue(res, 0, 2));
                        it.price_cents = atoll(PQgetvalue(res, 0, 3));
                }
        }
        if (natsMsg_GetReply(m) != NULL && floor__item__get_packed_size(&it) <= sizeof(buf))
                natsConnection_Publish(nc, natsMsg_GetReply(m), buf,
                                       (int)floor__item__pack(&it, buf));
        PQclear(res);
        floor__get__free_unpacked(get, NULL);
        natsMsg_Destroy(m);
}

int main(int argc, char **argv)
{
        static struct worker workers[MAX_WORKERS];
        natsConnection *nc = NULL;
        int n = argc > 3 ? atoi(argv[3]) : 4;
        sigset_t set;
        int sig;

        if (argc < 3 || n < 1 || n > MAX_WORKERS) {
                fprintf(stderr, "usage: floor_service <nats_url> <pg_conninfo> [workers 1-%d]\n",
                        MAX_WORKERS);
                return 2;
        }
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        if (natsConnection_ConnectTo(&nc, argv[1]) != NATS_OK) {
                fprintf(stderr, "floor_service: cannot connect to %s\n", argv[1]);
                return 1;
        }
        for (int i = 0; i < n; i++) {
                PGresult *res;

                workers[i].pg = PQconnectdb(argv[2]);
                if (PQstatus(workers[i].pg) != CONNECTION_OK) {
                        fprintf(stderr, "floor_service: %s", PQerrorMessage(workers[i].pg));
                        return 1;
                }
                res = PQprepare(workers[i].pg, "get",
                                "SELECT id, name, qty, price_cents FROM floor_items WHERE id = $1",
                                1, NULL);
                if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                        fprintf(stderr, "floor_service: %s", PQerrorMessage(workers[i].pg));
                        return 1;
                }
                PQclear(res);
                if (natsConnection_QueueSubscribe(&workers[i].sub, nc, "floor.get", "floor", on_get,
                                                  &workers[i]) != NATS_OK) {
                        fprintf(stderr, "floor_service: cannot subscribe\n");
                        return 1;
                }
        }
        natsConnection_Flush(nc);
        fprintf(stderr, "floor_service: %d workers\n", n);
        sigwait(&set, &sig);
        for (int i = 0; i < n; i++) {
                natsSubscription_Destroy(workers[i].sub);
                PQfinish(workers[i].pg);
        }
        natsConnection_Destroy(nc);
        nats_Close();
        return 0;
}
