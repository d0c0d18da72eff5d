#include "bus.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"
#include "log.h"

#define BUS_MAX_SERVERS        16
#define BUS_RECONNECT_WAIT_MS  250
#define BUS_CONNECT_TIMEOUT_MS 2000
#define BUS_CONNECT_RETRY_MS   250
#define BUS_CLOSE_WAIT_MS      2000
/* Packed messages up to this size are built on the stack. */
#define BUS_STACK_PACK 2048

struct ej_bus {
        natsConnection *nc;
        /* Set by the closed callback, which nats.c calls from its own thread. */
        pthread_mutex_t lock;
        pthread_cond_t closed_cond;
        bool closed;
        bool closing; /* we asked for the close: a disconnect is then expected */
        void (*on_reconnect)(void *ud);
        void *on_reconnect_ud;
};

static void sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) != 0)
                ;
}

static bool bus_is_closing(struct ej_bus *bus)
{
        bool closing;

        pthread_mutex_lock(&bus->lock);
        closing = bus->closing;
        pthread_mutex_unlock(&bus->lock);
        return closing;
}

static void on_disconnected(natsConnection *nc, void *closure)
{
        (void)nc;
        if (bus_is_closing(closure))
                ej_debug(NULL, "NATS connection closing");
        else
                ej_warn(NULL, "NATS connection lost; reconnecting");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
        struct ej_bus *bus = closure;
        char url[256] = "";

        if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
                url[0] = '\0';
        ej_info(NULL, "NATS reconnected to %s", url);
        if (bus->on_reconnect)
                bus->on_reconnect(bus->on_reconnect_ud);
}

static void on_closed(natsConnection *nc, void *closure)
{
        struct ej_bus *bus = closure;

        (void)nc;
        pthread_mutex_lock(&bus->lock);
        bus->closed = true;
        pthread_cond_broadcast(&bus->closed_cond);
        pthread_mutex_unlock(&bus->lock);
}

/* Splits the comma-separated `url` into `copy` (modified in place) and sets the servers. */
static natsStatus set_servers(natsOptions *opts, char *copy)
{
        const char *servers[BUS_MAX_SERVERS];
        int n = 0;
        char *save = NULL;

        for (char *tok = strtok_r(copy, ",", &save); tok && n < BUS_MAX_SERVERS;
             tok = strtok_r(NULL, ",", &save)) {
                char *end;

                while (*tok == ' ' || *tok == '\t')
                        tok++;
                end = tok + strlen(tok);
                while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
                        *--end = '\0';
                if (*tok)
                        servers[n++] = tok;
        }
        if (n == 0)
                return NATS_INVALID_ARG;
        return natsOptions_SetServers(opts, servers, n);
}

static natsStatus build_options(natsOptions **out, const struct ej_bus_options *opt,
                                struct ej_bus *bus, char *url_copy)
{
        natsOptions *opts = NULL;
        natsStatus s;

        s = natsOptions_Create(&opts);
        if (s == NATS_OK)
                s = set_servers(opts, url_copy);
        if (s == NATS_OK && opt->name && opt->name[0])
                s = natsOptions_SetName(opts, opt->name);
        if (s == NATS_OK)
                s = natsOptions_SetMaxReconnect(opts, -1);
        if (s == NATS_OK)
                s = natsOptions_SetReconnectWait(opts, BUS_RECONNECT_WAIT_MS);
        if (s == NATS_OK)
                s = natsOptions_SetTimeout(opts, BUS_CONNECT_TIMEOUT_MS);
        if (s == NATS_OK)
                s = natsOptions_SetRetryOnFailedConnect(opts, false, NULL, NULL);
        if (s == NATS_OK)
                s = natsOptions_SetSendAsap(opts, opt->send_asap);
        if (s == NATS_OK)
                s = natsOptions_SetDisconnectedCB(opts, on_disconnected, bus);
        if (s == NATS_OK)
                s = natsOptions_SetReconnectedCB(opts, on_reconnected, bus);
        if (s == NATS_OK)
                s = natsOptions_SetClosedCB(opts, on_closed, bus);
        if (s != NATS_OK) {
                natsOptions_Destroy(opts);
                opts = NULL;
        }
        *out = opts;
        return s;
}

enum ej_status ej_bus_connect(struct ej_bus **out, const struct ej_bus_options *opt,
                              struct ej_err *err)
{
        struct ej_bus *bus = NULL;
        natsOptions *opts = NULL;
        char *url_copy = NULL;
        const char *url = (opt->url && opt->url[0]) ? opt->url : "nats://127.0.0.1:4222";
        long long deadline = ej_mono_ms() + (opt->connect_wait_ms > 0 ? opt->connect_wait_ms : 0);
        enum ej_status st = EJ_OK;
        natsStatus s;

        *out = NULL;
        bus = xcalloc(1, sizeof(*bus));
        bus->on_reconnect = opt->on_reconnect;
        bus->on_reconnect_ud = opt->on_reconnect_ud;
        pthread_mutex_init(&bus->lock, NULL);
        pthread_cond_init(&bus->closed_cond, NULL);
        url_copy = xstrdup(url);
        s = build_options(&opts, opt, bus, url_copy);
        if (s != NATS_OK) {
                st = ej_err_set(err, EJ_ERR_INVALID, NULL, "bad NATS settings for %s: %s", url,
                                natsStatus_GetText(s));
                goto out_free_bus;
        }
        /* The server may still be starting: try until the deadline, then fail clearly. */
        for (;;) {
                s = natsConnection_Connect(&bus->nc, opts);
                if (s == NATS_OK || ej_mono_ms() >= deadline)
                        break;
                sleep_ms(BUS_CONNECT_RETRY_MS);
        }
        if (s != NATS_OK) {
                st = ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "cannot reach NATS at %s: %s", url,
                                natsStatus_GetText(s));
                goto out_free_bus;
        }
        *out = bus;
        bus = NULL;
out_free_bus:
        if (bus) {
                natsConnection_Destroy(bus->nc);
                pthread_cond_destroy(&bus->closed_cond);
                pthread_mutex_destroy(&bus->lock);
                free(bus);
        }
        natsOptions_Destroy(opts);
        free(url_copy);
        return st;
}

/* Waits until the closed callback has run, at most `ms`; true when it has. */
static bool wait_closed(struct ej_bus *bus, int ms)
{
        struct timespec until;
        bool closed;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&bus->lock);
        while (!bus->closed)
                if (pthread_cond_timedwait(&bus->closed_cond, &bus->lock, &until) != 0)
                        break;
        closed = bus->closed;
        pthread_mutex_unlock(&bus->lock);
        return closed;
}

void ej_bus_destroy(struct ej_bus *bus, int timeout_ms)
{
        if (bus == NULL)
                return;
        pthread_mutex_lock(&bus->lock);
        bus->closing = true;
        pthread_mutex_unlock(&bus->lock);
        /* Drain delivers what is pending, flushes what we published, then closes. */
        if (natsConnection_Status(bus->nc) == NATS_CONN_STATUS_CONNECTED &&
            natsConnection_DrainTimeout(bus->nc, timeout_ms > 0 ? timeout_ms : 1) == NATS_OK)
                (void)wait_closed(bus, (timeout_ms > 0 ? timeout_ms : 1) + 500);
        natsConnection_Close(bus->nc);
        natsConnection_Destroy(bus->nc);
        /* The closed callback holds a pointer to us: never free under its feet. */
        if (!wait_closed(bus, BUS_CLOSE_WAIT_MS)) {
                ej_warn(NULL, "NATS connection did not report closing; leaking its state");
                return;
        }
        pthread_cond_destroy(&bus->closed_cond);
        pthread_mutex_destroy(&bus->lock);
        free(bus);
}

natsConnection *ej_bus_conn(struct ej_bus *bus)
{
        return bus->nc;
}

bool ej_bus_connected(struct ej_bus *bus)
{
        return bus != NULL && natsConnection_Status(bus->nc) == NATS_CONN_STATUS_CONNECTED;
}

enum ej_status ej_bus_reply_status(natsMsg *reply, struct ej_err *err)
{
        const char *name = NULL;
        const char *text = NULL;
        const char *field = NULL;
        enum ej_status st;

        if (natsMsg_IsNoResponders(reply))
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "no service is answering");
        if (natsMsgHeader_Get(reply, EJ_HDR_STATUS, &name) != NATS_OK || name == NULL)
                return EJ_OK;
        st = ej_status_from_name(name);
        if (st == EJ_OK)
                return EJ_OK;
        if (natsMsgHeader_Get(reply, EJ_HDR_ERROR, &text) != NATS_OK)
                text = NULL;
        if (natsMsgHeader_Get(reply, EJ_HDR_FIELD, &field) != NATS_OK)
                field = NULL;
        return ej_err_set(err, st, field, "%s", (text && text[0]) ? text : ej_status_name(st));
}

/* Packs `m` into `stack` when it fits, else into a heap buffer stored in *heap (caller frees). */
static const uint8_t *pack(const ProtobufCMessage *m, uint8_t *stack, size_t stack_size,
                           uint8_t **heap, size_t *len)
{
        uint8_t *buf = stack;

        *heap = NULL;
        *len = 0;
        if (m == NULL)
                return stack;
        *len = protobuf_c_message_get_packed_size(m);
        if (*len > stack_size) {
                *heap = xmalloc(*len);
                buf = *heap;
        }
        protobuf_c_message_pack(m, buf);
        return buf;
}

enum ej_status ej_bus_request(struct ej_bus *bus, const char *subject, const ProtobufCMessage *req,
                              const char *request_id, const ProtobufCMessageDescriptor *resp_desc,
                              struct ej_arena *arena, int timeout_ms, ProtobufCMessage **resp,
                              struct ej_err *err)
{
        uint8_t stack[BUS_STACK_PACK];
        uint8_t *heap = NULL;
        const uint8_t *data;
        size_t len;
        natsMsg *msg = NULL;
        natsMsg *reply = NULL;
        ProtobufCAllocator alloc = ej_arena_pb_allocator(arena);
        enum ej_status st = EJ_OK;
        natsStatus s;

        *resp = NULL;
        data = pack(req, stack, sizeof(stack), &heap, &len);
        if (len > INT32_MAX) {
                st = ej_err_set(err, EJ_ERR_TOO_LARGE, NULL, "request to %s is too large", subject);
                goto out;
        }
        s = natsMsg_Create(&msg, subject, NULL, (const char *)data, (int)len);
        if (s == NATS_OK && request_id && request_id[0])
                s = natsMsgHeader_Set(msg, EJ_HDR_REQUEST_ID, request_id);
        if (s == NATS_OK)
                s = ej_bus_set_deadline(msg, timeout_ms);
        if (s == NATS_OK)
                s = natsConnection_RequestMsg(&reply, bus->nc, msg, timeout_ms);
        if (s == NATS_TIMEOUT) {
                st = ej_err_set(err, EJ_ERR_TIMEOUT, NULL, "%s did not answer within %d ms",
                                subject, timeout_ms);
                goto out;
        }
        if (s == NATS_NO_RESPONDERS) {
                st = ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "no service is answering %s",
                                subject);
                goto out;
        }
        if (s != NATS_OK) {
                st = ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "request to %s failed: %s", subject,
                                natsStatus_GetText(s));
                goto out;
        }
        st = ej_bus_reply_status(reply, err);
        if (st != EJ_OK)
                goto out;
        *resp = protobuf_c_message_unpack(resp_desc, &alloc, (size_t)natsMsg_GetDataLength(reply),
                                          (const uint8_t *)natsMsg_GetData(reply));
        if (*resp == NULL)
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "reply from %s is not a valid %s",
                                subject, resp_desc->name);
out:
        natsMsg_Destroy(reply);
        natsMsg_Destroy(msg);
        free(heap);
        return st;
}

natsStatus ej_bus_set_deadline(natsMsg *msg, int timeout_ms)
{
        char v[24];

        snprintf(v, sizeof(v), "%lld", ej_now_ms() + timeout_ms);
        return natsMsgHeader_Set(msg, EJ_HDR_DEADLINE, v);
}

long long ej_bus_deadline(natsMsg *msg)
{
        const char *v = NULL;
        long long ms = 0;

        if (msg == NULL || natsMsgHeader_Get(msg, EJ_HDR_DEADLINE, &v) != NATS_OK || v == NULL)
                return 0;
        /* Plain digits only, and no more than fit: anything else is no deadline at all. */
        for (size_t i = 0; v[i]; i++) {
                if (v[i] < '0' || v[i] > '9' || i >= 15)
                        return 0;
                ms = ms * 10 + (v[i] - '0');
        }
        return ms;
}

/* Copies `s` into `out` with line breaks and other control characters made spaces: header
 * values must stay on one line. */
static const char *header_safe(const char *s, char *out, size_t size)
{
        size_t i = 0;

        for (; s[i] && i + 1 < size; i++)
                out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? ' ' : s[i];
        out[i] = '\0';
        return out;
}

enum ej_status ej_bus_respond(struct ej_bus *bus, natsMsg *request, enum ej_status st,
                              const struct ej_err *detail, const ProtobufCMessage *resp)
{
        return ej_bus_respond_hdrs(bus, request, st, detail, resp, NULL);
}

enum ej_status ej_bus_respond_hdrs(struct ej_bus *bus, natsMsg *request, enum ej_status st,
                                   const struct ej_err *detail, const ProtobufCMessage *resp,
                                   const char *const *headers)
{
        uint8_t stack[BUS_STACK_PACK];
        uint8_t *heap = NULL;
        const uint8_t *data = stack;
        size_t len = 0;
        const char *reply_to = natsMsg_GetReply(request);
        char text[sizeof(detail->msg)];
        natsMsg *msg = NULL;
        enum ej_status rc = EJ_OK;
        natsStatus s;

        if (reply_to == NULL || reply_to[0] == '\0')
                return EJ_OK; /* a publish, not a request: nobody waits */
        if (st == EJ_OK)
                data = pack(resp, stack, sizeof(stack), &heap, &len);
        if (len > INT32_MAX) {
                st = EJ_ERR_INTERNAL;
                detail = NULL;
                len = 0;
        }
        s = natsMsg_Create(&msg, reply_to, NULL, (const char *)data, (int)len);
        if (s == NATS_OK && st != EJ_OK) {
                /* Detail marked for the log only (the database's text) never leaves the
                 * service: the caller gets the status's sentence and no field. */
                bool shown = detail && !detail->log_only;
                const char *m = shown && detail->msg[0]      ? detail->msg
                                : detail && detail->log_only ? ej_status_public_message(st)
                                                             : ej_status_name(st);

                s = natsMsgHeader_Set(msg, EJ_HDR_STATUS, ej_status_name(st));
                if (s == NATS_OK)
                        s = natsMsgHeader_Set(msg, EJ_HDR_ERROR,
                                              header_safe(m, text, sizeof(text)));
                if (s == NATS_OK && shown && detail->field[0])
                        s = natsMsgHeader_Set(msg, EJ_HDR_FIELD,
                                              header_safe(detail->field, text, sizeof(text)));
        }
        for (size_t i = 0; s == NATS_OK && headers && headers[i] && headers[i + 1]; i += 2)
                s = natsMsgHeader_Set(msg, headers[i],
                                      header_safe(headers[i + 1], text, sizeof(text)));
        if (s == NATS_OK)
                s = natsConnection_PublishMsg(bus->nc, msg);
        if (s != NATS_OK)
                rc = EJ_ERR_UNAVAILABLE;
        natsMsg_Destroy(msg);
        free(heap);
        return rc;
}

enum ej_status ej_bus_publish(struct ej_bus *bus, const char *subject, const void *data, size_t len,
                              struct ej_err *err)
{
        natsStatus s;

        if (len > INT32_MAX)
                return ej_err_set(err, EJ_ERR_TOO_LARGE, NULL, "message to %s is too large",
                                  subject);
        s = natsConnection_Publish(bus->nc, subject, data, (int)len);
        if (s == NATS_OK)
                s = natsConnection_FlushTimeout(bus->nc, 1000);
        if (s != NATS_OK)
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "cannot publish to %s: %s",
                                  subject, natsStatus_GetText(s));
        return EJ_OK;
}
