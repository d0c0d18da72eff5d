/*
 * stream_core.c: what file uploads and downloads share; see stream_core.h.
 */
#include "stream_core.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ids.h"
#include "log.h"
#include "render.h"
#include "upstream.h"

#define SWEEP_EVERY_MS 20

/* --- the registry --- */

/* The stream numbered `sid` with a reference taken, or NULL. */
static struct gw_stream *lookup(struct gw_streams *ss, uint64_t sid)
{
        struct gw_stream *st;

        pthread_mutex_lock(&ss->mu);
        for (st = ss->buckets[sid & (GW_STREAM_TABLE_BUCKETS - 1)]; st; st = st->next)
                if (st->sid == sid)
                        break;
        if (st)
                atomic_fetch_add(&st->refs, 1);
        pthread_mutex_unlock(&ss->mu);
        return st;
}

static void table_remove(struct gw_streams *ss, struct gw_stream *st)
{
        pthread_mutex_lock(&ss->mu);
        for (struct gw_stream **l = &ss->buckets[st->sid & (GW_STREAM_TABLE_BUCKETS - 1)]; *l;
             l = &(*l)->next) {
                if (*l == st) {
                        *l = st->next;
                        break;
                }
        }
        pthread_mutex_unlock(&ss->mu);
}

void gw_stream_start(struct gw_stream *st, struct gw_req *req, const struct gw_stream_ops *ops)
{
        struct gw_streams *ss = req->gw->streams;
        size_t b;

        st->ss = ss;
        st->ops = ops;
        st->req = req;
        st->conn = req->conn;
        st->state = GW_CONN_FIRST;
        atomic_init(&st->refs, 1);
        pthread_mutex_init(&st->mu, NULL);
        snprintf(st->rid, sizeof(st->rid), "%s", req->rid);
        snprintf(st->client_addr, sizeof(st->client_addr), "%s", req->client_addr);
        st->sid = atomic_fetch_add(&ss->next_sid, 1) + 1;
        b = st->sid & (GW_STREAM_TABLE_BUCKETS - 1);
        pthread_mutex_lock(&ss->mu);
        st->next = ss->buckets[b];
        ss->buckets[b] = st;
        pthread_mutex_unlock(&ss->mu);
        req->stream = st;
}

void gw_stream_ref(struct gw_stream *st)
{
        atomic_fetch_add(&st->refs, 1);
}

void gw_stream_unref(struct gw_stream *st)
{
        if (st == NULL || atomic_fetch_sub(&st->refs, 1) != 1)
                return;
        free(st->user_id);
        free(st->roles);
        pthread_mutex_destroy(&st->mu);
        st->ops->destroy(st);
}

void gw_stream_take_caller(struct gw_stream *st, const struct gw_req *req)
{
        free(st->user_id);
        free(st->roles);
        st->user_id = req->user_id ? xstrdup(req->user_id) : NULL;
        st->roles = req->roles ? xstrdup(req->roles) : NULL;
}

/* --- the connection --- */

void gw_stream_hold(struct gw_stream *st)
{
        switch (st->state) {
        case GW_CONN_FIRST:
                st->state = GW_CONN_FIRST_HELD;
                break;
        case GW_CONN_BODY:
                st->state = GW_CONN_HELD;
                break;
        case GW_CONN_ANSWERED:
                st->state = GW_CONN_ANSWERED_HELD;
                break;
        default:
                return; /* already held, or gone */
        }
        MHD_suspend_connection(st->conn);
}

void gw_stream_wake(struct gw_stream *st)
{
        if (st->req == NULL)
                return;
        switch (st->state) {
        case GW_CONN_FIRST_HELD:
                st->state = GW_CONN_FIRST;
                break;
        case GW_CONN_HELD:
                st->state = GW_CONN_BODY;
                break;
        case GW_CONN_ANSWERED_HELD:
                st->state = GW_CONN_ANSWERED;
                break;
        default:
                return; /* not held */
        }
        MHD_resume_connection(st->conn);
}

bool gw_stream_answered(const struct gw_stream *st)
{
        return st->state == GW_CONN_ANSWERED || st->state == GW_CONN_ANSWERED_HELD ||
               st->state == GW_CONN_GONE;
}

void gw_stream_arm(struct gw_stream *st)
{
        st->deadline_ms = ej_mono_ms() + st->ss->gw->cfg->request_timeout_ms;
}

void gw_stream_arm_ms(struct gw_stream *st, int ms)
{
        st->deadline_ms = ej_mono_ms() + ms;
}

void gw_stream_fail(struct gw_stream *st, enum ej_status code, const char *fmt, ...)
{
        va_list ap;

        if (st->fail.status != EJ_OK || code == EJ_OK)
                return;
        st->deadline_ms = 0;
        st->fail.status = code;
        va_start(ap, fmt);
        vsnprintf(st->fail.msg, sizeof(st->fail.msg), fmt, ap);
        va_end(ap);
        if (code == EJ_ERR_INTERNAL || code == EJ_ERR_UNAVAILABLE || code == EJ_ERR_TIMEOUT)
                ej_warn(st->rid, "file %s: %s: %s", st->ops->what, ej_status_name(code),
                        st->fail.msg);
        st->ops->on_fail(st);
        gw_stream_wake(st);
}

void gw_stream_fail_reply(struct gw_stream *st, natsMsg *m, const char *what)
{
        struct ej_err e = {0};
        enum ej_status code;

        if (natsMsg_IsNoResponders(m)) {
                gw_stream_fail(st, EJ_ERR_UNAVAILABLE, "the %s service is not available", what);
                return;
        }
        code = ej_bus_reply_status(m, &e);
        gw_stream_fail(st, code, "%s", e.msg[0] ? e.msg : ej_status_name(code));
}

/* --- sending --- */

static void reply_subject(const struct gw_stream *st, char tag, uint64_t n, char *out, size_t size)
{
        snprintf(out, size, "%s.%" PRIu64 ".%c%" PRIu64, st->ss->prefix, st->sid, tag, n);
}

bool gw_stream_send(struct gw_stream *st, const char *subject, char tag, uint64_t n,
                    const ProtobufCMessage *msg)
{
        struct gw_caller caller = {.rid = st->rid,
                                   .user_id = st->user_id,
                                   .roles = st->roles,
                                   .client_addr = st->client_addr};
        natsMsg *m = NULL;
        natsStatus s;
        char reply[160];
        size_t len = protobuf_c_message_get_packed_size(msg);
        uint8_t small[512];
        uint8_t *data = len <= sizeof(small) ? small : xmalloc(len);

        protobuf_c_message_pack(msg, data);
        reply_subject(st, tag, n, reply, sizeof(reply));
        s = natsMsg_Create(&m, subject, reply, (const char *)data, (int)len);
        if (data != small)
                free(data);
        if (s == NATS_OK)
                s = gw_caller_headers(m, &caller);
        if (s == NATS_OK)
                s = natsConnection_PublishMsg(st->ss->nc, m);
        natsMsg_Destroy(m);
        if (s != NATS_OK) {
                gw_stream_fail(st, EJ_ERR_UNAVAILABLE, "the message bus is not available");
                return false;
        }
        return true;
}

bool gw_stream_send_raw(struct gw_stream *st, const char *subject, char tag, uint64_t n,
                        const void *data, size_t len)
{
        char reply[160];
        natsStatus s;

        reply_subject(st, tag, n, reply, sizeof(reply));
        s = natsConnection_PublishRequest(st->ss->nc, subject, reply, data, (int)len);
        if (s != NATS_OK) {
                gw_stream_fail(st, EJ_ERR_UNAVAILABLE, "the message bus is not available");
                return false;
        }
        return true;
}

/* --- answers --- */

static void answered(struct gw_stream *st)
{
        if (st->state == GW_CONN_FIRST_HELD || st->state == GW_CONN_HELD)
                st->state = GW_CONN_ANSWERED_HELD;
        else if (st->state == GW_CONN_FIRST || st->state == GW_CONN_BODY)
                st->state = GW_CONN_ANSWERED;
}

enum MHD_Result gw_stream_answer(struct gw_stream *st, unsigned status, struct MHD_Response *r,
                                 bool no_store)
{
        enum MHD_Result ret = gw_render_queue(st->req, status, r, no_store);

        if (ret == MHD_YES)
                answered(st);
        return ret;
}

enum MHD_Result gw_stream_answer_out(struct gw_stream *st, struct gw_out *out)
{
        enum MHD_Result ret = gw_render_send(st->req, out);

        if (ret == MHD_YES)
                answered(st);
        return ret;
}

enum MHD_Result gw_stream_answer_failure(struct gw_stream *st)
{
        struct gw_out out = {0};

        if (st->req->denied != GW_ACCESS_OK)
                gw_out_denied(&out, st->req, st->req->denied);
        else
                gw_out_error(&out, st->req, st->fail.status, st->fail.msg, st->fail.field);
        return gw_stream_answer_out(st, &out);
}

enum MHD_Result gw_stream_answer_close(struct gw_stream *st)
{
        struct gw_out out = {0};
        struct ej_buf head = EJ_BUF_INIT;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        char line[256];
        size_t off = 0;

        gw_out_error(&out, st->req, st->fail.status, st->fail.msg, st->fail.field);
        snprintf(line, sizeof(line),
                 "HTTP/1.1 %u %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                 "Content-Length: %zu\r\nCache-Control: no-store\r\nConnection: close\r\n"
                 "X-Request-Id: %s\r\n\r\n",
                 out.status, MHD_get_reason_phrase_for(out.status), out.body.n, st->rid);
        ej_buf_append_c(&head, line);
        ej_buf_append(&head, out.body.p, out.body.n);
        /* A few hundred bytes into an idle socket's send buffer: one send, rarely two. */
        while (ci != NULL && off < head.n) {
                ssize_t k = send(ci->connect_fd, head.p + off, head.n - off, MSG_NOSIGNAL);

                if (k <= 0)
                        break;
                off += (size_t)k;
        }
        if (ci != NULL)
                shutdown(ci->connect_fd, SHUT_WR);
        st->req->status = out.status;
        st->req->phase = GW_PHASE_SENT;
        answered(st);
        ej_buf_free(&head);
        ej_buf_free(&out.body);
        return MHD_NO;
}

void gw_stream_completed(struct gw_req *req, enum MHD_RequestTerminationCode toe)
{
        struct gw_stream *st = req->stream;

        if (st == NULL)
                return;
        req->stream = NULL;
        table_remove(st->ss, st);
        pthread_mutex_lock(&st->mu);
        st->state = GW_CONN_GONE;
        st->ops->completed(st, toe);
        st->req = NULL;
        st->deadline_ms = 0;
        pthread_mutex_unlock(&st->mu);
        gw_stream_unref(st);
}

/* --- replies and the sweeper --- */

static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
        struct gw_streams *ss = closure;
        const char *subj = natsMsg_GetSubject(m);
        const char *p;
        char *end = NULL;
        uint64_t sid, n = 0;
        char tag;
        struct gw_stream *st;

        (void)nc;
        (void)sub;
        if (subj == NULL || strncmp(subj, ss->prefix, ss->prefix_n) != 0 ||
            subj[ss->prefix_n] != '.')
                goto out;
        p = subj + ss->prefix_n + 1;
        sid = strtoull(p, &end, 10);
        if (end == p || *end != '.')
                goto out;
        tag = end[1];
        if (tag == '\0')
                goto out;
        n = strtoull(end + 2, NULL, 10);
        st = lookup(ss, sid);
        if (st == NULL) {
                if (ss->orphan)
                        ss->orphan(ss, tag, m);
                goto out;
        }
        pthread_mutex_lock(&st->mu);
        if (st->req) {
                st->ops->on_reply(st, tag, n, m);
                m = NULL;
        }
        pthread_mutex_unlock(&st->mu);
        gw_stream_unref(st);
out:
        natsMsg_Destroy(m);
}

/* The outstanding exchange of `st` is late, or the bus is gone (st->mu held). */
static void late(struct gw_stream *st, bool bus_lost)
{
        if (st->ops->on_late)
                st->ops->on_late(st, bus_lost);
        else if (bus_lost)
                gw_stream_fail(st, EJ_ERR_UNAVAILABLE, "the message bus is not available");
        else
                gw_stream_fail(st, EJ_ERR_TIMEOUT, "the files service did not answer in time");
}

static void *sweeper_main(void *arg)
{
        struct gw_streams *ss = arg;
        const struct timespec tick = {0, SWEEP_EVERY_MS * 1000000L};

        while (!atomic_load(&ss->stop)) {
                long long now;
                bool connected;

                nanosleep(&tick, NULL);
                now = ej_mono_ms();
                connected = ej_bus_connected(ss->gw->bus);
                pthread_mutex_lock(&ss->mu);
                for (size_t b = 0; b < GW_STREAM_TABLE_BUCKETS; b++) {
                        for (struct gw_stream *st = ss->buckets[b]; st; st = st->next) {
                                pthread_mutex_lock(&st->mu);
                                if (st->req && st->fail.status == EJ_OK && st->deadline_ms &&
                                    (!connected || now > st->deadline_ms))
                                        late(st, !connected);
                                pthread_mutex_unlock(&st->mu);
                        }
                }
                pthread_mutex_unlock(&ss->mu);
        }
        return NULL;
}

enum ej_status gw_streams_create(struct gw_streams **out, struct gw *gw,
                                 void (*orphan)(struct gw_streams *ss, char tag, natsMsg *m),
                                 struct ej_err *err)
{
        struct gw_streams *ss = xcalloc(1, sizeof(*ss));
        natsInbox *inbox = NULL;
        char subj[128];
        natsStatus s;
        enum ej_status st = EJ_OK;

        ss->gw = gw;
        ss->nc = ej_bus_conn(gw->bus);
        ss->orphan = orphan;
        pthread_mutex_init(&ss->mu, NULL);
        atomic_init(&ss->next_sid, 0);
        atomic_init(&ss->stop, false);
        ss->bytes_up =
            ej_metrics_counter(gw->metrics, "gateway_file_bytes_total",
                               "File bytes streamed through the gateway.", "direction=\"upload\"");
        ss->bytes_down = ej_metrics_counter(gw->metrics, "gateway_file_bytes_total",
                                            "File bytes streamed through the gateway.",
                                            "direction=\"download\"");
        ss->aborted = ej_metrics_counter(gw->metrics, "gateway_file_uploads_aborted_total",
                                         "Uploads the gateway told the files service to drop.", "");
        s = natsInbox_Create(&inbox);
        if (s != NATS_OK) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot create a reply inbox: %s",
                                natsStatus_GetText(s));
                goto out_fail;
        }
        snprintf(ss->prefix, sizeof(ss->prefix), "%s", (const char *)inbox);
        ss->prefix_n = strlen(ss->prefix);
        natsInbox_Destroy(inbox);
        snprintf(subj, sizeof(subj), "%s.*.*", ss->prefix);
        s = natsConnection_Subscribe(&ss->sub, ss->nc, subj, on_reply, ss);
        if (s == NATS_OK)
                s = natsSubscription_SetPendingLimits(ss->sub, -1, -1);
        if (s == NATS_OK)
                s = natsConnection_Flush(ss->nc);
        if (s != NATS_OK) {
                st = ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL,
                                "cannot subscribe for file replies: %s", natsStatus_GetText(s));
                goto out_fail;
        }
        if (pthread_create(&ss->sweeper, NULL, sweeper_main, ss) != 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot start the stream sweeper");
                goto out_fail;
        }
        ss->sweeper_started = true;
        *out = ss;
        return EJ_OK;

out_fail:
        gw_streams_destroy(ss);
        return st;
}

void gw_streams_fail_all(struct gw_streams *ss)
{
        if (ss == NULL)
                return;
        pthread_mutex_lock(&ss->mu);
        for (size_t b = 0; b < GW_STREAM_TABLE_BUCKETS; b++) {
                for (struct gw_stream *st = ss->buckets[b]; st; st = st->next) {
                        pthread_mutex_lock(&st->mu);
                        if (st->req)
                                gw_stream_fail(st, EJ_ERR_UNAVAILABLE,
                                               "the gateway is shutting down");
                        gw_stream_wake(st);
                        pthread_mutex_unlock(&st->mu);
                }
        }
        pthread_mutex_unlock(&ss->mu);
}

void gw_streams_destroy(struct gw_streams *ss)
{
        if (ss == NULL)
                return;
        atomic_store(&ss->stop, true);
        if (ss->sweeper_started)
                pthread_join(ss->sweeper, NULL);
        if (ss->sub) {
                natsSubscription_Unsubscribe(ss->sub);
                natsSubscription_Destroy(ss->sub);
        }
        pthread_mutex_destroy(&ss->mu);
        free(ss);
}
