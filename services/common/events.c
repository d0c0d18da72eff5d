#include "events.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"
#include "log.h"
#include "mem.h"
#include "str.h"

#define EVENTS_SUBJECTS        "ej.evt.>"
#define EVENTS_NS_PER_MS       1000000LL
#define EVENTS_MAX_AGE_MS      (30LL * 24 * 3600 * 1000) /* a month of history to replay */
#define EVENTS_DUP_WINDOW_MS   (2LL * 60 * 1000)         /* republishing within it is dropped */
#define EVENTS_MAX_ENVELOPE    (512 * 1024) /* well under NATS's 1 MiB default max payload */
#define RELAY_BATCH            100          /* the LIMIT of sql_outbox_claim */
#define RELAY_PUBLISH_WAIT_MS  2000
#define RELAY_DRAIN_MS         1000
#define CONSUMER_BATCH         16
#define CONSUMER_FETCH_MS      1000
#define CONSUMER_ACK_WAIT_MS   30000
#define CONSUMER_MAX_NAK_DELAY 30000
#define CONSUMER_REBIND_ERRORS 5 /* consecutive fetch errors before binding again */

/* The tables of this module in every service schema. The name, older than this module's
 * owning its DDL, is what schema_migrations records; the DDL is idempotent. */
static const char events_ddl[] =
    "CREATE TABLE IF NOT EXISTS outbox (\n"
    "    seq bigserial PRIMARY KEY,\n"
    "    id uuid NOT NULL UNIQUE,\n"
    "    subject text NOT NULL,\n"
    "    type text NOT NULL,\n"
    "    actor text NOT NULL DEFAULT '',\n"
    "    payload bytea NOT NULL,\n"
    "    created_at timestamptz NOT NULL DEFAULT now(),\n"
    "    published_at timestamptz\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;\n"
    "CREATE TABLE IF NOT EXISTS processed_events (\n"
    "    consumer text NOT NULL,\n"
    "    event_id uuid NOT NULL,\n"
    "    processed_at timestamptz NOT NULL DEFAULT now(),\n"
    "    PRIMARY KEY (consumer, event_id)\n"
    ");\n";

const struct ej_migration ej_events_migration = {"000_common.sql", events_ddl};

/*
 * The outbox row and the wake-up of the relays in one statement: pg_notify is transactional,
 * so relays hear of the event only when the caller's transaction commits. The channel is the
 * schema's (current_schema() is the connection's search_path) followed by "_outbox".
 */
static const char sql_outbox_add[] =
    "WITH e AS (INSERT INTO outbox (id, subject, type, actor, payload) "
    "VALUES ($1, $2, $3, $4, $5) RETURNING seq) "
    "SELECT pg_notify(current_schema() || '_outbox', '') FROM e";

static const char sql_outbox_claim[] =
    "SELECT seq, id, subject, payload FROM outbox "
    "WHERE published_at IS NULL AND created_at <= now() - $1::bigint * interval '1 millisecond' "
    "ORDER BY seq LIMIT 100 FOR UPDATE SKIP LOCKED";

static const char sql_outbox_mark[] =
    "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])";

static const char sql_processed_add[] =
    "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

static void events_nats_err(struct ej_err *err, enum ej_status st, const char *what, natsStatus s,
                            jsErrCode jerr)
{
        const char *last = nats_GetLastError(NULL);

        if (jerr != 0)
                ej_err_set(err, st, NULL, "%s: %s (JetStream error %d)", what,
                           natsStatus_GetText(s), (int)jerr);
        else if (last != NULL && last[0] != '\0')
                ej_err_set(err, st, NULL, "%s: %s: %s", what, natsStatus_GetText(s), last);
        else
                ej_err_set(err, st, NULL, "%s: %s", what, natsStatus_GetText(s));
}

enum ej_status ej_outbox_add(struct ej_db *db, const char *subject, const char *type,
                             const char *actor, const ProtobufCMessage *payload, char *id_out,
                             struct ej_err *err)
{
        enum ej_status st;
        Ej__Common__Event ev = EJ__COMMON__EVENT__INIT;
        char id[EJ_UUID_LEN];
        uint8_t *body = NULL;
        uint8_t *packed = NULL;
        size_t body_n, packed_n;
        const char *params[5];
        int lengths[5] = {0, 0, 0, 0, 0};
        int formats[5] = {0, 0, 0, 0, 1};

        if (subject == NULL || strncmp(subject, "ej.evt.", 7) != 0 || type == NULL ||
            type[0] == '\0' || payload == NULL)
                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                  "outbox: an event needs an ej.evt.* subject, a type and a "
                                  "payload");
        /* Outside a transaction the event could be stored without the change it describes. */
        if (PQtransactionStatus(ej_db_conn(db)) != PQTRANS_INTRANS)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                  "outbox: events are added inside an open transaction");

        body_n = protobuf_c_message_get_packed_size(payload);
        body = xmalloc(body_n ? body_n : 1);
        protobuf_c_message_pack(payload, body);

        ej_uuid(id);
        ev.id = id;
        ev.type = (char *)(uintptr_t)type;
        ev.time_ms = ej_now_ms();
        ev.actor = (char *)(uintptr_t)(actor ? actor : "");
        ev.payload.data = body;
        ev.payload.len = body_n;
        packed_n = ej__common__event__get_packed_size(&ev);
        /* A row NATS would refuse would stop its outbox for good: refuse it here instead. */
        if (packed_n > EVENTS_MAX_ENVELOPE) {
                st = ej_err_set(err, EJ_ERR_TOO_LARGE, NULL,
                                "outbox: event of %zu bytes is over the %d byte limit", packed_n,
                                EVENTS_MAX_ENVELOPE);
                goto out;
        }
        packed = xmalloc(packed_n ? packed_n : 1);
        ej__common__event__pack(&ev, packed);

        params[0] = id;
        params[1] = subject;
        params[2] = type;
        params[3] = actor ? actor : "";
        params[4] = (const char *)packed;
        lengths[4] = (int)packed_n;
        st = ej_db_exec_bin(db, sql_outbox_add, 5, params, lengths, formats, NULL, err);
        if (st != EJ_OK) {
                ej_err_prefix(err, "outbox");
                goto out;
        }
        if (id_out != NULL)
                memcpy(id_out, id, EJ_UUID_LEN);
out:
        free(packed);
        free(body);
        return st;
}

enum ej_status ej_events_ensure_stream(natsConnection *nc, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        jsCtx *js = NULL;
        jsStreamInfo *si = NULL;
        jsStreamConfig cfg;
        jsErrCode jerr = 0;
        natsStatus s;
        const char *subjects[] = {EVENTS_SUBJECTS};

        s = natsConnection_JetStream(&js, nc, NULL);
        if (s != NATS_OK) {
                events_nats_err(err, EJ_ERR_INTERNAL, "events: JetStream context", s, 0);
                goto out;
        }
        s = js_GetStreamInfo(&si, js, EJ_EVENTS_STREAM, NULL, &jerr);
        if (s == NATS_OK)
                goto out; /* exists: its settings belong to whoever runs the stack */
        if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
                events_nats_err(err, EJ_ERR_UNAVAILABLE, "events: stream info", s, jerr);
                st = EJ_ERR_UNAVAILABLE;
                goto out;
        }
        jsStreamConfig_Init(&cfg);
        cfg.Name = EJ_EVENTS_STREAM;
        cfg.Description = "EasyJournal domain events";
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        cfg.Retention = js_LimitsPolicy;
        cfg.Discard = js_DiscardOld;
        cfg.MaxAge = EVENTS_MAX_AGE_MS * EVENTS_NS_PER_MS;
        cfg.Duplicates = EVENTS_DUP_WINDOW_MS * EVENTS_NS_PER_MS;
        cfg.Replicas = 1;
        jerr = 0;
        s = js_AddStream(&si, js, &cfg, NULL, &jerr);
        /* Another process may have created it between our look and our add. */
        if (s != NATS_OK && jerr == JSStreamNameExistErr)
                s = js_GetStreamInfo(&si, js, EJ_EVENTS_STREAM, NULL, &jerr);
        if (s != NATS_OK) {
                events_nats_err(err, EJ_ERR_UNAVAILABLE,
                                "events: creating stream " EJ_EVENTS_STREAM, s, jerr);
                st = EJ_ERR_UNAVAILABLE;
                goto out;
        }
        ej_info(NULL, "created JetStream stream %s", EJ_EVENTS_STREAM);
out:
        jsStreamInfo_Destroy(si);
        jsCtx_Destroy(js);
        return st;
}

/* ---- relay ---- */

struct ej_relay {
        char *conninfo;
        char *schema;
        char *listen_sql;
        natsConnection *nc;
        jsCtx *js;
        int poll_ms;
        int hold_ms;
        struct ej_db *db;
        int listen_pid; /* backend that LISTENs; a reset connection must LISTEN again */
        atomic_bool stop;
        int wake[2]; /* written by ej_relay_stop so the thread leaves its wait at once */
        pthread_t thread;
        bool started;
};

static void events_sleep_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
}

/* Connects (or reconnects after a failed reset) and LISTENs on the schema's channel. */
static enum ej_status relay_ensure_db(struct ej_relay *r, struct ej_err *err)
{
        enum ej_status st;
        PGconn *conn;

        if (r->db == NULL) {
                st = ej_db_connect(&r->db, r->conninfo, r->schema, 0, err);
                if (st != EJ_OK)
                        return st;
                r->listen_pid = 0;
        }
        conn = ej_db_conn(r->db);
        if (PQstatus(conn) == CONNECTION_OK && PQbackendPID(conn) == r->listen_pid)
                return EJ_OK;
        /* Also resets a broken connection (ej_db does that before a statement). */
        st = ej_db_exec_simple(r->db, r->listen_sql, err);
        if (st != EJ_OK)
                return st;
        r->listen_pid = PQbackendPID(ej_db_conn(r->db));
        return EJ_OK;
}

/*
 * Publishes one batch of unpublished rows in seq order and marks those JetStream acknowledged,
 * in one transaction. Stops at the first failed publish so order is kept. `*done` gets the
 * number published, `*full` whether the batch was full (more may be waiting). A non-zero
 * `deadline` (monotonic ms) bounds the publishes' waits (the final drain has little time).
 */
static enum ej_status relay_batch(struct ej_relay *r, long long deadline, int *done, bool *full,
                                  struct ej_err *err)
{
        enum ej_status st;
        PGresult *res = NULL;
        struct ej_buf seqs = EJ_BUF_INIT;
        char hold[24];
        const char *params[1] = {hold};
        int n, published = 0;

        *done = 0;
        *full = false;
        (void)snprintf(hold, sizeof(hold), "%d", r->hold_ms);
        st = ej_db_begin(r->db, err);
        if (st != EJ_OK)
                goto out;
        st = ej_db_exec(r->db, sql_outbox_claim, 1, params, &res, err);
        if (st != EJ_OK)
                goto out_rollback;
        n = PQntuples(res);
        *full = n >= RELAY_BATCH;
        ej_buf_append_char(&seqs, '{');
        for (int i = 0; i < n; i++) {
                jsPubOptions po;
                jsPubAck *pa = NULL;
                jsErrCode jerr = 0;
                natsStatus s;
                unsigned char *data;
                size_t len = 0;
                long long wait = RELAY_PUBLISH_WAIT_MS;

                if (deadline > 0) {
                        wait = deadline - ej_mono_ms();
                        if (wait <= 0)
                                break;
                        if (wait > RELAY_PUBLISH_WAIT_MS)
                                wait = RELAY_PUBLISH_WAIT_MS;
                }
                data = PQunescapeBytea((const unsigned char *)ej_db_val(res, i, 3), &len);
                if (data == NULL) {
                        st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "relay: bad payload");
                        break;
                }
                jsPubOptions_Init(&po);
                po.MsgId = ej_db_val(res, i, 1);
                po.ExpectStream = EJ_EVENTS_STREAM;
                po.MaxWait = wait;
                s = js_Publish(&pa, r->js, ej_db_val(res, i, 2), data, (int)len, &po, &jerr);
                PQfreemem(data);
                jsPubAck_Destroy(pa);
                if (s != NATS_OK) {
                        events_nats_err(err, EJ_ERR_UNAVAILABLE, "relay: publish", s, jerr);
                        st = EJ_ERR_UNAVAILABLE;
                        /* A server started without our stream: put it back. */
                        if (s == NATS_NO_RESPONDERS || jerr == JSStreamNotFoundErr)
                                (void)ej_events_ensure_stream(r->nc, NULL);
                        break;
                }
                if (published > 0)
                        ej_buf_append_char(&seqs, ',');
                ej_buf_append_c(&seqs, ej_db_val(res, i, 0));
                published++;
        }
        ej_buf_append_char(&seqs, '}');
        if (published > 0) {
                enum ej_status mst;
                struct ej_err merr;
                const char *mparams[1] = {seqs.p};

                /* What JetStream acknowledged is marked even when a later publish failed; if
                 * this transaction is lost the rows are published again and JetStream drops
                 * the copies by Nats-Msg-Id. */
                mst = ej_db_exec(r->db, sql_outbox_mark, 1, mparams, NULL, &merr);
                if (mst == EJ_OK)
                        mst = ej_db_commit(r->db, &merr);
                else
                        ej_db_rollback(r->db);
                if (mst != EJ_OK) {
                        if (err != NULL)
                                *err = merr;
                        st = mst;
                } else {
                        *done = published;
                }
                goto out;
        }
        if (st == EJ_OK) {
                st = ej_db_commit(r->db, err);
                goto out;
        }
out_rollback:
        ej_db_rollback(r->db);
out:
        PQclear(res);
        ej_buf_free(&seqs);
        return st;
}

static void *relay_main(void *arg)
{
        struct ej_relay *r = arg;
        struct ej_err err;
        int backoff = 0; /* ms; 0 when the last round went well */
        int idle_ms = r->poll_ms;
        bool failing = false;

        if (r->hold_ms > 0 && r->hold_ms < idle_ms)
                idle_ms = r->hold_ms; /* held rows become due without a NOTIFY */
        while (!atomic_load(&r->stop)) {
                enum ej_status st;
                int done = 0;
                bool full = false;

                ej_err_clear(&err);
                st = relay_ensure_db(r, &err);
                if (st == EJ_OK)
                        st = relay_batch(r, 0, &done, &full, &err);
                if (st != EJ_OK) {
                        if (!failing)
                                ej_warn(NULL, "outbox relay (%s): %s; retrying", r->schema,
                                        err.msg);
                        failing = true;
                        if (r->db != NULL && PQstatus(ej_db_conn(r->db)) != CONNECTION_OK &&
                            st == EJ_ERR_UNAVAILABLE) {
                                /* Let the next round start from a fresh connection. */
                                ej_db_destroy(r->db);
                                r->db = NULL;
                        }
                        backoff = backoff ? backoff * 2 : 100;
                        if (backoff > r->poll_ms)
                                backoff = r->poll_ms;
                        ej_db_wait_notify(r->db, r->wake[0], backoff);
                        continue;
                }
                if (failing)
                        ej_info(NULL, "outbox relay (%s): publishing again", r->schema);
                failing = false;
                backoff = 0;
                /* The session was replaced during the batch (ej_db resets a dropped one): LISTEN
                 * on the new one and scan again before sleeping, or commits made meanwhile would
                 * wait for poll_ms. */
                if (full || PQbackendPID(ej_db_conn(r->db)) != r->listen_pid)
                        continue;
                ej_db_wait_notify(r->db, r->wake[0], idle_ms);
        }

        /* One last bounded attempt so a clean shutdown leaves nothing behind that it could
         * have sent. */
        if (r->db != NULL) {
                long long deadline = ej_mono_ms() + RELAY_DRAIN_MS;

                while (ej_mono_ms() < deadline) {
                        int done = 0;
                        bool full = false;

                        if (relay_batch(r, deadline, &done, &full, &err) != EJ_OK || !full)
                                break;
                }
        }
        return NULL;
}

enum ej_status ej_relay_start(struct ej_relay **out, const struct ej_relay_config *cfg,
                              struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        struct ej_relay *r = NULL;
        natsStatus s;
        char *quoted = NULL;
        struct ej_buf sql = EJ_BUF_INIT;
        struct ej_buf chan = EJ_BUF_INIT;
        PGconn *conn;

        *out = NULL;
        if (cfg == NULL || cfg->conninfo == NULL || cfg->schema == NULL || cfg->nc == NULL)
                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                  "relay: conninfo, schema and a NATS connection are required");
        r = xcalloc(1, sizeof(*r));
        r->wake[0] = r->wake[1] = -1;
        r->conninfo = xstrdup(cfg->conninfo);
        r->schema = xstrdup(cfg->schema);
        r->nc = cfg->nc;
        r->poll_ms = cfg->poll_ms > 0 ? cfg->poll_ms : 1000;
        r->hold_ms = cfg->hold_ms > 0 ? cfg->hold_ms : 0;
        atomic_init(&r->stop, false);
        s = natsConnection_JetStream(&r->js, r->nc, NULL);
        if (s != NATS_OK) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "relay: JetStream context: %s",
                                natsStatus_GetText(s));
                goto out_free;
        }
        if (pipe2(r->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "relay: pipe: %s", strerror(errno));
                goto out_free;
        }
        st = ej_db_connect(&r->db, r->conninfo, r->schema, 2000, err);
        if (st != EJ_OK) {
                ej_err_prefix(err, "relay");
                goto out_free;
        }
        conn = ej_db_conn(r->db);
        /* The channel ej_outbox_add notifies: "<schema>_outbox", quoted so its case is kept. */
        ej_buf_appendf(&chan, "%s_outbox", r->schema);
        quoted = PQescapeIdentifier(conn, chan.p, chan.n);
        if (quoted == NULL) {
                st = ej_err_set(err, EJ_ERR_INVALID, NULL, "relay: bad schema name");
                goto out_free;
        }
        ej_buf_appendf(&sql, "LISTEN %s", quoted);
        r->listen_sql = ej_buf_steal(&sql);
        if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "relay: cannot start thread");
                goto out_free;
        }
        r->started = true;
        *out = r;
        r = NULL;
out_free:
        PQfreemem(quoted);
        ej_buf_free(&sql);
        ej_buf_free(&chan);
        ej_relay_stop(r);
        return st;
}

void ej_relay_stop(struct ej_relay *r)
{
        if (r == NULL)
                return;
        if (r->started) {
                atomic_store(&r->stop, true);
                if (write(r->wake[1], "x", 1) < 0) {
                        /* The thread still sees the flag within its poll period. */
                }
                pthread_join(r->thread, NULL);
        }
        ej_db_destroy(r->db);
        jsCtx_Destroy(r->js);
        if (r->wake[0] >= 0)
                close(r->wake[0]);
        if (r->wake[1] >= 0)
                close(r->wake[1]);
        free(r->listen_sql);
        free(r->conninfo);
        free(r->schema);
        free(r);
}

/* ---- consumer ---- */

struct ej_consumer {
        char *conninfo;
        char *schema;
        char *durable;
        char *filter;
        natsConnection *nc;
        jsCtx *js;
        natsSubscription *sub;
        struct ej_db *db;
        ej_event_fn fn;
        void *ud;
        atomic_bool stop;
        pthread_t thread;
        bool started;
};

/* Creates the durable consumer if missing and binds a pull subscription to it. Binding (rather
 * than letting the library create the consumer) keeps the consumer when we unsubscribe. */
static enum ej_status consumer_bind(struct ej_consumer *c, struct ej_err *err)
{
        jsConsumerConfig cc;
        jsConsumerInfo *ci = NULL;
        jsSubOptions so;
        jsErrCode jerr = 0;
        natsStatus s;

        natsSubscription_Destroy(c->sub);
        c->sub = NULL;
        jsConsumerConfig_Init(&cc);
        cc.Durable = c->durable;
        cc.Description = "EasyJournal event consumer";
        cc.DeliverPolicy = js_DeliverAll;
        cc.AckPolicy = js_AckExplicit;
        cc.AckWait = CONSUMER_ACK_WAIT_MS * EVENTS_NS_PER_MS;
        cc.MaxDeliver = -1;
        cc.FilterSubject = c->filter;
        cc.MaxAckPending = 1000;
        s = js_GetConsumerInfo(&ci, c->js, EJ_EVENTS_STREAM, c->durable, NULL, &jerr);
        if (s != NATS_OK) {
                jerr = 0;
                s = js_AddConsumer(&ci, c->js, EJ_EVENTS_STREAM, &cc, NULL, &jerr);
                /* A server whose store was wiped: the stream comes back empty. */
                if (s != NATS_OK && jerr == JSStreamNotFoundErr &&
                    ej_events_ensure_stream(c->nc, NULL) == EJ_OK) {
                        jerr = 0;
                        s = js_AddConsumer(&ci, c->js, EJ_EVENTS_STREAM, &cc, NULL, &jerr);
                }
        }
        jsConsumerInfo_Destroy(ci);
        if (s != NATS_OK) {
                events_nats_err(err, EJ_ERR_UNAVAILABLE, "consumer: creating durable", s, jerr);
                return EJ_ERR_UNAVAILABLE;
        }
        jsSubOptions_Init(&so);
        so.Stream = EJ_EVENTS_STREAM;
        so.Consumer = c->durable;
        jerr = 0;
        s = js_PullSubscribe(&c->sub, c->js, c->filter, c->durable, NULL, &so, &jerr);
        if (s != NATS_OK) {
                events_nats_err(err, EJ_ERR_UNAVAILABLE, "consumer: subscribing", s, jerr);
                return EJ_ERR_UNAVAILABLE;
        }
        return EJ_OK;
}

/* Redelivery delay after a failure: 100 ms doubled per delivery, capped. */
static int64_t consumer_nak_delay(natsMsg *m)
{
        jsMsgMetaData *meta = NULL;
        int64_t delay = 100;

        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
                for (uint64_t i = 1; i < meta->NumDelivered && delay < CONSUMER_MAX_NAK_DELAY; i++)
                        delay *= 2;
                jsMsgMetaData_Destroy(meta);
        }
        return delay < CONSUMER_MAX_NAK_DELAY ? delay : CONSUMER_MAX_NAK_DELAY;
}

/* Handles one message: process once (recorded in processed_events), commit, then ack. */
static void consumer_handle(struct ej_consumer *c, natsMsg *m)
{
        enum ej_status st;
        struct ej_err err;
        Ej__Common__Event *ev = NULL;
        PGresult *res = NULL;
        const char *params[2];
        const char *subject = natsMsg_GetSubject(m);

        ej_err_clear(&err);
        ev = ej__common__event__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                       (const uint8_t *)natsMsg_GetData(m));
        if (ev == NULL || ev->id == NULL || ev->id[0] == '\0') {
                /* Never going to parse: redelivering it would only block the ones behind. */
                ej_error(NULL, "consumer %s: undecodable event on %s dropped", c->durable, subject);
                (void)natsMsg_Term(m, NULL);
                goto out;
        }
        if (c->db == NULL) {
                st = ej_db_connect(&c->db, c->conninfo, c->schema, 0, &err);
                if (st != EJ_OK)
                        goto out_nak;
        }
        st = ej_db_begin(c->db, &err);
        if (st != EJ_OK)
                goto out_nak;
        params[0] = c->durable;
        params[1] = ev->id;
        st = ej_db_exec(c->db, sql_processed_add, 2, params, &res, &err);
        if (st == EJ_ERR_INVALID) {
                ej_db_rollback(c->db);
                ej_error(NULL, "consumer %s: event %s on %s has a bad id; dropped", c->durable,
                         ev->id, subject);
                (void)natsMsg_Term(m, NULL);
                goto out;
        }
        if (st != EJ_OK)
                goto out_rollback;
        if (strcmp(PQcmdTuples(res), "1") == 0) {
                st = c->fn(c->db, ev, subject, c->ud, &err);
                if (st != EJ_OK) {
                        ej_err_prefix(&err, "handler");
                        goto out_rollback;
                }
        } else {
                ej_debug(NULL, "consumer %s: event %s already processed", c->durable, ev->id);
        }
        st = ej_db_commit(c->db, &err);
        if (st != EJ_OK)
                goto out_nak;
        /* Only now: a crash before this ack means a redelivery that processed_events skips. */
        (void)natsMsg_Ack(m, NULL);
        goto out;

out_rollback:
        ej_db_rollback(c->db);
out_nak:
        ej_warn(NULL, "consumer %s: event %s (%s) failed, will be redelivered: %s", c->durable,
                ev->id, ev->type ? ev->type : "", err.msg);
        if (c->db != NULL && PQstatus(ej_db_conn(c->db)) != CONNECTION_OK) {
                ej_db_destroy(c->db);
                c->db = NULL;
        }
        (void)natsMsg_NakWithDelay(m, consumer_nak_delay(m), NULL);
out:
        PQclear(res);
        ej__common__event__free_unpacked(ev, NULL);
}

static void *consumer_main(void *arg)
{
        struct ej_consumer *c = arg;
        int errors = 0;

        while (!atomic_load(&c->stop)) {
                natsMsgList list = {NULL, 0};
                jsErrCode jerr = 0;
                natsStatus s;

                if (c->sub == NULL || errors >= CONSUMER_REBIND_ERRORS) {
                        struct ej_err err;

                        errors = 0;
                        if (consumer_bind(c, &err) != EJ_OK) {
                                ej_warn(NULL, "consumer %s: %s; retrying", c->durable, err.msg);
                                events_sleep_ms(1000);
                                continue;
                        }
                }
                s = natsSubscription_Fetch(&list, c->sub, CONSUMER_BATCH, CONSUMER_FETCH_MS, &jerr);
                if (s == NATS_TIMEOUT) {
                        errors = 0;
                        continue;
                }
                if (s != NATS_OK) {
                        /* NATS reconnecting, or the consumer gone with a wiped server. */
                        errors++;
                        natsMsgList_Destroy(&list);
                        events_sleep_ms(200);
                        continue;
                }
                errors = 0;
                for (int i = 0; i < list.Count; i++) {
                        /* Messages not handled because of a stop are redelivered after AckWait
                         * (or sooner to another replica). */
                        if (atomic_load(&c->stop)) {
                                (void)natsMsg_Nak(list.Msgs[i], NULL);
                                continue;
                        }
                        consumer_handle(c, list.Msgs[i]);
                }
                natsMsgList_Destroy(&list);
        }
        return NULL;
}

enum ej_status ej_consumer_start(struct ej_consumer **out, const struct ej_consumer_config *cfg,
                                 struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        struct ej_consumer *c = NULL;
        natsStatus s;

        *out = NULL;
        if (cfg == NULL || cfg->conninfo == NULL || cfg->schema == NULL || cfg->nc == NULL ||
            cfg->durable == NULL || cfg->durable[0] == '\0' || strchr(cfg->durable, '.') ||
            cfg->filter == NULL || cfg->fn == NULL)
                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                  "consumer: conninfo, schema, NATS connection, durable name "
                                  "(no dots), filter and callback are required");
        c = xcalloc(1, sizeof(*c));
        c->conninfo = xstrdup(cfg->conninfo);
        c->schema = xstrdup(cfg->schema);
        c->durable = xstrdup(cfg->durable);
        c->filter = xstrdup(cfg->filter);
        c->nc = cfg->nc;
        c->fn = cfg->fn;
        c->ud = cfg->ud;
        atomic_init(&c->stop, false);
        s = natsConnection_JetStream(&c->js, c->nc, NULL);
        if (s != NATS_OK) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "consumer: JetStream context: %s",
                                natsStatus_GetText(s));
                goto out_free;
        }
        st = ej_db_connect(&c->db, c->conninfo, c->schema, 2000, err);
        if (st != EJ_OK) {
                ej_err_prefix(err, "consumer");
                goto out_free;
        }
        st = consumer_bind(c, err);
        if (st != EJ_OK)
                goto out_free;
        if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "consumer: cannot start thread");
                goto out_free;
        }
        c->started = true;
        *out = c;
        c = NULL;
out_free:
        ej_consumer_stop(c);
        return st;
}

void ej_consumer_stop(struct ej_consumer *c)
{
        if (c == NULL)
                return;
        if (c->started) {
                atomic_store(&c->stop, true);
                pthread_join(c->thread, NULL);
        }
        /* Destroy, not Unsubscribe: the durable consumer stays on the server. */
        natsSubscription_Destroy(c->sub);
        ej_db_destroy(c->db);
        jsCtx_Destroy(c->js);
        free(c->conninfo);
        free(c->schema);
        free(c->durable);
        free(c->filter);
        free(c);
}
