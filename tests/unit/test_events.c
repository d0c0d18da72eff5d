/*
 * Unit tests of services/common/events.c (outbox, relay, consumer) against a real PostgreSQL
 * and a real nats-server with JetStream.
 *
 * EJ_TEST_DB_URL: libpq connection string of a scratch database. EJ_TEST_NATS_URL: a
 * nats-server started with -js. tests/run-all.sh sets both. The NATS outage test also starts
 * and kills a nats-server of its own (from PATH) on a free loopback port, with its store in a
 * temporary directory. Each run uses its own schema, subjects and durable names (pid).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "events.h"
#include "ids.h"
#include "log.h"

static const char *db_url;
static const char *nats_url;
static char schema[64];
static char subj_base[64]; /* ej.evt.t<pid> */

/* Ends every database session this program has open (ej_db names them after the program),
 * as a server restart would. */
static const char kill_ours[] =
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE application_name = 'test_events' AND pid <> pg_backend_pid()";

static const struct ej_migration test_migrations[] = {
    {"001_test.sql", "CREATE TABLE consumer_log (event_id uuid NOT NULL, attempt int NOT NULL);\n"
                     "CREATE TABLE deferred_u (k int UNIQUE DEFERRABLE INITIALLY DEFERRED);\n"},
};

static void quiet_notice(void *arg, const char *message)
{
        (void)arg;
        (void)message;
}

static PGconn *admin_conn(void)
{
        PGconn *c = PQconnectdb(db_url);

        PQsetNoticeProcessor(c, quiet_notice, NULL);
        return c;
}

/* First value of `sql` as a number from a fresh connection; -1 on error. */
static long long admin_scalar(const char *sql)
{
        PGconn *c = admin_conn();
        PGresult *r = NULL;
        long long v = -1;

        if (PQstatus(c) != CONNECTION_OK)
                goto out;
        r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
                v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        else if (PQresultStatus(r) == PGRES_COMMAND_OK)
                v = 0;
        else
                fprintf(stderr, "admin query failed: %s", PQerrorMessage(c));
out:
        PQclear(r);
        PQfinish(c);
        return v;
}

/* Runs `fmt` with the schema for its first %s and `arg` for its second. */
__attribute__((format(printf, 1, 0))) static long long q_scalar(const char *fmt, const char *arg)
{
        char q[512];

        /* The callers' strings are literals checked by the attribute above. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(q, sizeof(q), fmt, schema, arg ? arg : "");
#pragma GCC diagnostic pop
        return admin_scalar(q);
}

/* Polls `fmt` (first %s schema, second %s arg) until it yields `want`, up to `ms`. */
__attribute__((format(printf, 1, 0))) static bool wait_scalar(const char *fmt, const char *arg,
                                                              long long want, int ms)
{
        long long deadline = ej_mono_ms() + ms;

        do {
                if (q_scalar(fmt, arg) == want)
                        return true;
                usleep(50000);
        } while (ej_mono_ms() < deadline);
        return false;
}

static natsConnection *nats_connect(const char *url, bool wait_up)
{
        natsOptions *o = NULL;
        natsConnection *nc = NULL;
        long long deadline = ej_mono_ms() + 5000;

        natsOptions_Create(&o);
        natsOptions_SetURL(o, url);
        natsOptions_SetAllowReconnect(o, true);
        natsOptions_SetMaxReconnect(o, -1);
        natsOptions_SetReconnectWait(o, 100);
        natsOptions_SetTimeout(o, 1000);
        while (natsConnection_Connect(&nc, o) != NATS_OK) {
                nc = NULL;
                if (!wait_up || ej_mono_ms() > deadline)
                        break;
                usleep(50000);
        }
        natsOptions_Destroy(o);
        return nc;
}

/* A packed envelope as ej_outbox_add makes it. */
static size_t make_envelope(const char *id, const char *type, uint8_t *out, size_t cap)
{
        Ej__Common__Event ev = EJ__COMMON__EVENT__INIT;
        size_t n;

        ev.id = (char *)(uintptr_t)id;
        ev.type = (char *)(uintptr_t)type;
        ev.time_ms = ej_now_ms();
        n = ej__common__event__get_packed_size(&ev);
        if (n > cap)
                return 0;
        return ej__common__event__pack(&ev, out);
}

/*
 * Reads every message of the stream on `filter` and counts, for each of `ids`, how many carry
 * it as Nats-Msg-Id (and as the envelope's id). Returns the total number of messages seen.
 */
static int count_in_stream(natsConnection *nc, const char *filter, char (*ids)[EJ_UUID_LEN], int n,
                           int *counts)
{
        jsCtx *js = NULL;
        natsSubscription *sub = NULL;
        jsSubOptions so;
        natsMsg *m = NULL;
        int total = 0;

        memset(counts, 0, sizeof(int) * (size_t)n);
        if (natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
                return -1;
        jsSubOptions_Init(&so);
        so.Stream = EJ_EVENTS_STREAM;
        so.Config.AckPolicy = js_AckNone;
        so.Config.DeliverPolicy = js_DeliverAll;
        if (js_SubscribeSync(&sub, js, filter, NULL, &so, NULL) != NATS_OK) {
                jsCtx_Destroy(js);
                return -1;
        }
        while (natsSubscription_NextMsg(&m, sub, 700) == NATS_OK) {
                const char *msgid = NULL;
                Ej__Common__Event *ev;

                total++;
                natsMsgHeader_Get(m, "Nats-Msg-Id", &msgid);
                ev = ej__common__event__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                               (const uint8_t *)natsMsg_GetData(m));
                for (int i = 0; i < n; i++) {
                        if (msgid != NULL && strcmp(msgid, ids[i]) == 0 && ev != NULL &&
                            strcmp(ev->id, ids[i]) == 0)
                                counts[i]++;
                }
                ej__common__event__free_unpacked(ev, NULL);
                natsMsg_Destroy(m);
                m = NULL;
        }
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
        jsCtx_Destroy(js);
        return total;
}

/* Adds one event in its own transaction (commit or roll back). */
static enum ej_status add_event(struct ej_db *db, const char *subject, bool commit,
                                char id[EJ_UUID_LEN])
{
        Ej__Common__PageRequest p = EJ__COMMON__PAGE_REQUEST__INIT;
        struct ej_err err;
        enum ej_status st;

        p.limit = 7;
        p.cursor = (char *)(uintptr_t) "cursor-x";
        st = ej_db_begin(db, &err);
        if (st != EJ_OK)
                return st;
        st = ej_outbox_add(db, subject, "test.happened", "actor-1", &p.base, id, &err);
        if (st != EJ_OK) {
                fprintf(stderr, "outbox add: %s\n", err.msg);
                ej_db_rollback(db);
                return st;
        }
        if (!commit) {
                ej_db_rollback(db);
                return EJ_OK;
        }
        return ej_db_commit(db, &err);
}

struct stream_arg {
        natsConnection *nc;
        enum ej_status st;
};

static void *ensure_thread(void *p)
{
        struct stream_arg *a = p;

        a->st = ej_events_ensure_stream(a->nc, NULL);
        return NULL;
}

static void test_stream(natsConnection *nc)
{
        struct ej_err err;
        jsCtx *js = NULL;
        jsStreamInfo *si = NULL;
        pthread_t t[4];
        struct stream_arg a[4];

        for (int i = 0; i < 4; i++) {
                a[i].nc = nc;
                a[i].st = EJ_ERR_INTERNAL;
                CHECK(pthread_create(&t[i], NULL, ensure_thread, &a[i]) == 0);
        }
        for (int i = 0; i < 4; i++) {
                pthread_join(t[i], NULL);
                CHECK(a[i].st == EJ_OK);
        }
        CHECK(ej_events_ensure_stream(nc, &err) == EJ_OK);
        CHECK(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
        CHECK(js_GetStreamInfo(&si, js, EJ_EVENTS_STREAM, NULL, NULL) == NATS_OK);
        if (si != NULL) {
                CHECK(si->Config->SubjectsLen == 1 &&
                      strcmp(si->Config->Subjects[0], "ej.evt.>") == 0);
                CHECK(si->Config->Storage == js_FileStorage);
                CHECK(si->Config->Duplicates == 120LL * 1000000000LL);
                CHECK(si->Config->MaxAge > 0);
        }
        jsStreamInfo_Destroy(si);
        jsCtx_Destroy(js);
}

static void test_outbox(struct ej_db *db)
{
        Ej__Common__PageRequest p = EJ__COMMON__PAGE_REQUEST__INIT;
        struct ej_err err;
        char id_rb[EJ_UUID_LEN], id_ok[EJ_UUID_LEN], subject[128], chan[128], q[512];
        PGconn *lc = admin_conn();
        PGresult *r;
        PGnotify *nt = NULL;
        long long deadline;

        snprintf(subject, sizeof(subject), "%s.o.thing", subj_base);
        /* Outside a transaction the event could outlive a rolled-back change: refused. */
        CHECK(ej_outbox_add(db, subject, "t.x", NULL, &p.base, NULL, &err) == EJ_ERR_INTERNAL);
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_outbox_add(db, "users.x", "t.x", NULL, &p.base, NULL, &err) == EJ_ERR_INVALID);
        ej_db_rollback(db);

        /* Too large for NATS: refused before it could block the outbox. */
        {
                Ej__Common__PageRequest big = EJ__COMMON__PAGE_REQUEST__INIT;
                char *cur = calloc(1, 600 * 1024 + 1);

                memset(cur, 'x', 600 * 1024);
                big.cursor = cur;
                CHECK(ej_db_begin(db, &err) == EJ_OK);
                CHECK(ej_outbox_add(db, subject, "t.x", NULL, &big.base, NULL, &err) ==
                      EJ_ERR_TOO_LARGE);
                ej_db_rollback(db);
                free(cur);
        }

        /* Rolled back: nothing left. */
        CHECK(add_event(db, subject, false, id_rb) == EJ_OK);
        CHECK(q_scalar("SELECT count(*) FROM \"%s\".outbox WHERE id = '%s'", id_rb) == 0);

        /* Committed: the row, and a NOTIFY on <schema>_outbox at commit. */
        snprintf(chan, sizeof(chan), "LISTEN \"%s_outbox\"", schema);
        r = PQexec(lc, chan);
        CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
        PQclear(r);
        CHECK(add_event(db, subject, true, id_ok) == EJ_OK);
        CHECK(strlen(id_ok) == 36 && id_ok[14] == '4');
        deadline = ej_mono_ms() + 2000;
        while (nt == NULL && ej_mono_ms() < deadline) {
                PQconsumeInput(lc);
                nt = PQnotifies(lc);
                if (nt == NULL)
                        usleep(10000);
        }
        CHECK(nt != NULL);
        if (nt != NULL) {
                snprintf(chan, sizeof(chan), "%s_outbox", schema);
                CHECK(strcmp(nt->relname, chan) == 0);
        }
        PQfreemem(nt);

        snprintf(q, sizeof(q),
                 "SELECT subject, type, actor, payload, published_at IS NULL FROM \"%s\".outbox "
                 "WHERE id = '%s'",
                 schema, id_ok);
        r = PQexecParams(lc, q, 0, NULL, NULL, NULL, NULL, 1); /* binary results */
        CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
                Ej__Common__Event *ev;

                CHECK(strcmp(PQgetvalue(r, 0, 0), subject) == 0);
                CHECK(strcmp(PQgetvalue(r, 0, 1), "test.happened") == 0);
                CHECK(strcmp(PQgetvalue(r, 0, 2), "actor-1") == 0);
                CHECK(PQgetvalue(r, 0, 4)[0] == 1); /* binary bool: unpublished */
                ev = ej__common__event__unpack(NULL, (size_t)PQgetlength(r, 0, 3),
                                               (const uint8_t *)PQgetvalue(r, 0, 3));
                CHECK(ev != NULL);
                if (ev != NULL) {
                        Ej__Common__PageRequest *pr;

                        CHECK(strcmp(ev->id, id_ok) == 0);
                        CHECK(strcmp(ev->type, "test.happened") == 0);
                        CHECK(strcmp(ev->actor, "actor-1") == 0);
                        CHECK(ev->time_ms > ej_now_ms() - 60000 && ev->time_ms <= ej_now_ms());
                        pr = ej__common__page_request__unpack(NULL, ev->payload.len,
                                                              ev->payload.data);
                        CHECK(pr != NULL && pr->limit == 7 && strcmp(pr->cursor, "cursor-x") == 0);
                        ej__common__page_request__free_unpacked(pr, NULL);
                }
                ej__common__event__free_unpacked(ev, NULL);
        }
        PQclear(r);
        PQfinish(lc);
}

static void test_relay(struct ej_db *db, natsConnection *nc)
{
        struct ej_relay_config rc = {db_url, schema, nc, 10000, 0};
        struct ej_relay *relay = NULL;
        struct ej_err err;
        char ids[4][EJ_UUID_LEN], subject[128], filter[128];
        int counts[4];
        long long t0;
        int total;

        snprintf(subject, sizeof(subject), "%s.r.thing", subj_base);
        snprintf(filter, sizeof(filter), "%s.r.>", subj_base);
        CHECK(ej_relay_start(&relay, &rc, &err) == EJ_OK);
        if (relay == NULL) {
                fprintf(stderr, "relay start: %s\n", err.msg);
                return;
        }
        /* Whatever test_outbox left is published by the first scan. */
        CHECK(wait_scalar("SELECT count(*) FROM \"%s\".outbox WHERE published_at IS NULL%s", NULL,
                          0, 5000));

        CHECK(add_event(db, subject, false, ids[0]) == EJ_OK); /* rolled back */
        /* poll_ms is 10 s: only the NOTIFY can make this quick. */
        t0 = ej_mono_ms();
        CHECK(add_event(db, subject, true, ids[1]) == EJ_OK);
        CHECK(wait_scalar("SELECT count(*) FROM \"%s\".outbox WHERE id = '%s' AND published_at "
                          "IS NOT NULL",
                          ids[1], 1, 5000));
        CHECK(ej_mono_ms() - t0 < 3000);

        total = count_in_stream(nc, filter, ids, 2, counts);
        CHECK(total == 1);
        CHECK(counts[0] == 0);
        CHECK(counts[1] == 1);

        /* A relay that died after publishing but before marking: the row is published again
         * and JetStream drops the copy by Nats-Msg-Id. */
        CHECK(q_scalar("UPDATE \"%s\".outbox SET published_at = NULL WHERE id = '%s'", ids[1]) ==
              0);
        CHECK(q_scalar("SELECT count(*) FROM (SELECT pg_notify('%s_outbox', '')) n%s", NULL) == 1);
        CHECK(wait_scalar("SELECT count(*) FROM \"%s\".outbox WHERE id = '%s' AND published_at "
                          "IS NOT NULL",
                          ids[1], 1, 5000));
        total = count_in_stream(nc, filter, ids, 2, counts);
        CHECK(total == 1);
        CHECK(counts[1] == 1);

        /* PostgreSQL drops every connection of this program (as in a restart): the relay
         * reconnects, LISTENs again and is woken by the next commit. */
        CHECK(admin_scalar(kill_ours) >= 2);
        usleep(300000);
        t0 = ej_mono_ms();
        CHECK(add_event(db, subject, true, ids[3]) == EJ_OK);
        CHECK(wait_scalar("SELECT count(*) FROM \"%s\".outbox WHERE id = '%s' AND published_at "
                          "IS NOT NULL",
                          ids[3], 1, 5000));
        CHECK(ej_mono_ms() - t0 < 3000);

        /* Stopping is prompt even with a long poll period. */
        t0 = ej_mono_ms();
        ej_relay_stop(relay);
        CHECK(ej_mono_ms() - t0 < 2000);
        ej_relay_stop(NULL);

        /* Committed while no relay runs: the next relay publishes it. */
        CHECK(add_event(db, subject, true, ids[2]) == EJ_OK);
        usleep(300000);
        CHECK(q_scalar("SELECT count(*) FROM \"%s\".outbox WHERE id = '%s' AND published_at IS "
                       "NULL",
                       ids[2]) == 1);
        relay = NULL;
        CHECK(ej_relay_start(&relay, &rc, &err) == EJ_OK);
        CHECK(wait_scalar("SELECT count(*) FROM \"%s\".outbox WHERE id = '%s' AND published_at "
                          "IS NOT NULL",
                          ids[2], 1, 5000));
        ej_relay_stop(relay);
        total = count_in_stream(nc, filter, ids, 4, counts);
        CHECK(total == 3 && counts[0] == 0 && counts[1] == 1 && counts[2] == 1 && counts[3] == 1);
}

/* ---- a nats-server of our own, to kill and restart ---- */

static int free_port(void)
{
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int port = -1;

        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
                port = ntohs(sa.sin_port);
        if (fd >= 0)
                close(fd);
        return port;
}

static pid_t start_nats(int port, const char *store)
{
        char p[16], log[512];
        pid_t pid;

        snprintf(p, sizeof(p), "%d", port);
        snprintf(log, sizeof(log), "%s/nats.log", store);
        pid = fork();
        if (pid == 0) {
                FILE *f = freopen(log, "a", stdout);

                (void)f;
                dup2(STDOUT_FILENO, STDERR_FILENO);
                execlp("nats-server", "nats-server", "-js", "-sd", store, "-a", "127.0.0.1", "-p",
                       p, (char *)NULL);
                _exit(127);
        }
        return pid;
}

static void kill_nats(pid_t pid)
{
        if (pid <= 0)
                return;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

#define OUTAGE_N 10

static void test_relay_nats_outage(struct ej_db *db)
{
        char store[] = "/tmp/ej-test-nats.XXXXXX";
        char url[64], subject[128], filter[128], cmd[256];
        char ids[2 * OUTAGE_N][EJ_UUID_LEN];
        int counts[2 * OUTAGE_N];
        int port = free_port();
        pid_t pid;
        natsConnection *nc = NULL;
        struct ej_relay *relay = NULL;
        struct ej_err err;
        int total, once = 0;

        if (mkdtemp(store) == NULL || port <= 0) {
                CHECK(!"temp dir and port");
                return;
        }
        snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
        snprintf(subject, sizeof(subject), "%s.n.thing", subj_base);
        snprintf(filter, sizeof(filter), "%s.n.>", subj_base);
        pid = start_nats(port, store);
        nc = nats_connect(url, true);
        CHECK(nc != NULL);
        if (nc == NULL)
                goto out;
        CHECK(ej_events_ensure_stream(nc, &err) == EJ_OK);
        {
                /* Rows are held 1.5 s before publishing: time to kill NATS after the commit. */
                struct ej_relay_config rc = {db_url, schema, nc, 300, 1500};

                CHECK(ej_relay_start(&relay, &rc, &err) == EJ_OK);
        }
        for (int i = 0; i < OUTAGE_N; i++)
                CHECK(add_event(db, subject, true, ids[i]) == EJ_OK);
        kill_nats(pid);
        pid = -1;
        CHECK(q_scalar("SELECT count(*) FROM \"%s\".outbox WHERE subject LIKE '%s%%' AND "
                       "published_at IS NULL",
                       subject) == OUTAGE_N);
        /* More events while NATS is down; the relay tries and fails meanwhile. */
        for (int i = OUTAGE_N; i < 2 * OUTAGE_N; i++)
                CHECK(add_event(db, subject, true, ids[i]) == EJ_OK);
        sleep(5); /* longer than a publish timeout: the relay fails and backs off */
        CHECK(q_scalar("SELECT count(*) FROM \"%s\".outbox WHERE subject LIKE '%s%%' AND "
                       "published_at IS NULL",
                       subject) == 2 * OUTAGE_N);

        pid = start_nats(port, store);
        CHECK(wait_scalar("SELECT count(*) FROM \"%s\".outbox WHERE subject LIKE '%s%%' AND "
                          "published_at IS NULL",
                          subject, 0, 30000));
        ej_relay_stop(relay);
        relay = NULL;
        total = count_in_stream(nc, filter, ids, 2 * OUTAGE_N, counts);
        for (int i = 0; i < 2 * OUTAGE_N; i++)
                once += counts[i] == 1;
        CHECK(once == 2 * OUTAGE_N);
        CHECK(total == 2 * OUTAGE_N);
        if (total != 2 * OUTAGE_N || once != 2 * OUTAGE_N)
                fprintf(stderr, "outage: %d messages, %d ids exactly once\n", total, once);
out:
        ej_relay_stop(relay);
        if (nc != NULL)
                natsConnection_Destroy(nc);
        kill_nats(pid);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", store);
        CHECK(system(cmd) == 0);
}

/* ---- consumer ---- */

#define MAX_SEEN 16

struct seen {
        pthread_mutex_t mu;
        char ids[MAX_SEEN][EJ_UUID_LEN];
        int calls[MAX_SEEN];
        int n;
        char fail_first[EJ_UUID_LEN]; /* returns an error on its first call */
        char defer_fail[EJ_UUID_LEN]; /* makes its first commit fail */
        char check_ack[EJ_UUID_LEN];  /* looks at the server while inside the transaction */
        natsConnection *nc;
        char durable[32];
        long long ack_pending_inside; /* NumAckPending seen from inside the handler */
        long long visible_inside;     /* processed_events rows seen from outside, meanwhile */
};

static int seen_calls(struct seen *s, const char *id)
{
        int c = 0;

        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < s->n; i++)
                if (strcmp(s->ids[i], id) == 0)
                        c = s->calls[i];
        pthread_mutex_unlock(&s->mu);
        return c;
}

static enum ej_status on_event(struct ej_db *db, const Ej__Common__Event *ev, const char *subject,
                               void *ud, struct ej_err *err)
{
        static const char sql_log[] =
            "INSERT INTO consumer_log (event_id, attempt) VALUES ($1, $2)";
        static const char sql_dup[] = "INSERT INTO deferred_u (k) VALUES (1), (1)";
        struct seen *s = ud;
        int call = 0;
        char attempt[16];
        const char *params[2] = {ev->id, attempt};
        enum ej_status st;

        (void)subject;
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < s->n; i++)
                if (strcmp(s->ids[i], ev->id) == 0)
                        call = ++s->calls[i];
        if (call == 0 && s->n < MAX_SEEN) {
                snprintf(s->ids[s->n], EJ_UUID_LEN, "%s", ev->id);
                s->calls[s->n++] = call = 1;
        }
        pthread_mutex_unlock(&s->mu);

        snprintf(attempt, sizeof(attempt), "%d", call);
        st = ej_db_exec(db, sql_log, 2, params, NULL, err);
        if (st != EJ_OK)
                return st;
        if (strcmp(ev->id, s->fail_first) == 0 && call == 1)
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "simulated failure");
        if (strcmp(ev->id, s->defer_fail) == 0 && call == 1)
                return ej_db_exec(db, sql_dup, 0, NULL, NULL, err); /* fails at COMMIT */
        if (strcmp(ev->id, s->check_ack) == 0) {
                jsCtx *js = NULL;
                jsConsumerInfo *ci = NULL;

                if (natsConnection_JetStream(&js, s->nc, NULL) == NATS_OK &&
                    js_GetConsumerInfo(&ci, js, EJ_EVENTS_STREAM, s->durable, NULL, NULL) ==
                        NATS_OK)
                        s->ack_pending_inside = ci->NumAckPending;
                jsConsumerInfo_Destroy(ci);
                jsCtx_Destroy(js);
                s->visible_inside = q_scalar("SELECT count(*) FROM \"%s\".processed_events "
                                             "WHERE event_id = '%s'",
                                             ev->id);
        }
        return EJ_OK;
}

static void publish_raw(natsConnection *nc, const char *subject, const void *data, int len,
                        const char *msgid)
{
        jsCtx *js = NULL;
        jsPubOptions po;
        jsPubAck *pa = NULL;
        natsStatus s;

        natsConnection_JetStream(&js, nc, NULL);
        jsPubOptions_Init(&po);
        po.MsgId = msgid;
        s = js_Publish(&pa, js, subject, data, len, &po, NULL);
        CHECK(s == NATS_OK);
        jsPubAck_Destroy(pa);
        jsCtx_Destroy(js);
}

static void publish_event(natsConnection *nc, const char *subject, const char *id,
                          const char *msgid)
{
        uint8_t buf[256];
        size_t n = make_envelope(id, "test.consumed", buf, sizeof(buf));

        publish_raw(nc, subject, buf, (int)n, msgid);
}

static bool wait_calls(struct seen *s, const char *id, int want, int ms)
{
        long long deadline = ej_mono_ms() + ms;

        while (seen_calls(s, id) < want && ej_mono_ms() < deadline)
                usleep(20000);
        return seen_calls(s, id) == want;
}

static void test_consumer(natsConnection *nc)
{
        struct seen s;
        struct ej_consumer_config cc;
        struct ej_consumer *c = NULL;
        struct ej_err err;
        char subject[128], filter[128], msgid[64];
        char a[EJ_UUID_LEN], f[EJ_UUID_LEN], d[EJ_UUID_LEN], p[EJ_UUID_LEN], k[EJ_UUID_LEN];
        char late[EJ_UUID_LEN], after_kill[EJ_UUID_LEN];
        jsCtx *js = NULL;
        jsConsumerInfo *ci = NULL;

        memset(&s, 0, sizeof(s));
        pthread_mutex_init(&s.mu, NULL);
        s.nc = nc;
        s.ack_pending_inside = -1;
        s.visible_inside = -1;
        snprintf(s.durable, sizeof(s.durable), "ejtest%d", (int)getpid());
        snprintf(subject, sizeof(subject), "%s.c.thing", subj_base);
        snprintf(filter, sizeof(filter), "%s.c.>", subj_base);
        ej_uuid(a);
        ej_uuid(f);
        ej_uuid(d);
        ej_uuid(p);
        ej_uuid(k);
        ej_uuid(late);
        ej_uuid(after_kill);
        snprintf(s.fail_first, sizeof(s.fail_first), "%s", f);
        snprintf(s.defer_fail, sizeof(s.defer_fail), "%s", d);
        snprintf(s.check_ack, sizeof(s.check_ack), "%s", k);

        /* Processed and committed before, but never acked (a crash between commit and ack). */
        {
                char q[512];

                snprintf(q, sizeof(q),
                         "INSERT INTO \"%s\".processed_events (consumer, event_id) VALUES "
                         "('%s', '%s')",
                         schema, s.durable, p);
                CHECK(admin_scalar(q) == 0);
        }

        memset(&cc, 0, sizeof(cc));
        cc.conninfo = db_url;
        cc.schema = schema;
        cc.nc = nc;
        cc.durable = s.durable;
        cc.filter = filter;
        cc.fn = on_event;
        cc.ud = &s;
        CHECK(ej_consumer_start(&c, &cc, &err) == EJ_OK);
        if (c == NULL) {
                fprintf(stderr, "consumer start: %s\n", err.msg);
                return;
        }
        {
                struct ej_consumer *bad = NULL;
                struct ej_consumer_config bc = cc;

                bc.durable = "with.dot";
                CHECK(ej_consumer_start(&bad, &bc, &err) == EJ_ERR_INVALID && bad == NULL);
        }

        /* The same event twice (two stream messages): handled once. */
        snprintf(msgid, sizeof(msgid), "%s-1", a);
        publish_event(nc, subject, a, msgid);
        snprintf(msgid, sizeof(msgid), "%s-2", a);
        publish_event(nc, subject, a, msgid);
        publish_raw(nc, subject, "not an event", 12, NULL); /* dropped, blocks nothing */
        publish_event(nc, subject, f, f);
        publish_event(nc, subject, d, d);
        publish_event(nc, subject, p, p);
        publish_event(nc, subject, k, k);

        CHECK(wait_calls(&s, a, 1, 5000));
        CHECK(wait_calls(&s, f, 2, 10000)); /* failed, rolled back, redelivered */
        CHECK(wait_calls(&s, d, 2, 10000)); /* commit failed, redelivered */
        CHECK(wait_calls(&s, k, 1, 5000));
        usleep(500000);
        CHECK(seen_calls(&s, a) == 1);
        CHECK(seen_calls(&s, f) == 2);
        CHECK(seen_calls(&s, d) == 2);
        CHECK(seen_calls(&s, p) == 0); /* already processed: skipped, acked */

        /* Only committed work remains: one log row per event, one processed_events row. A
         * handler's call is counted before its transaction commits: wait for the commit. */
        CHECK(wait_scalar("SELECT count(*) FROM \"%s\".processed_events WHERE event_id = '%s'", d,
                          1, 5000));
        CHECK(q_scalar("SELECT count(*) FROM \"%s\".consumer_log WHERE event_id = '%s'", a) == 1);
        CHECK(q_scalar("SELECT count(*) FROM \"%s\".consumer_log WHERE event_id = '%s'", f) == 1);
        CHECK(q_scalar("SELECT attempt FROM \"%s\".consumer_log WHERE event_id = '%s'", f) == 2);
        CHECK(q_scalar("SELECT count(*) FROM \"%s\".consumer_log WHERE event_id = '%s'", d) == 1);
        CHECK(q_scalar("SELECT count(*) FROM \"%s\".deferred_u%s", "") == 0);
        CHECK(q_scalar("SELECT count(*) FROM \"%s\".processed_events WHERE event_id = '%s'", a) ==
              1);
        CHECK(q_scalar("SELECT count(*) FROM \"%s\".processed_events WHERE event_id = '%s'", f) ==
              1);

        /* Inside the handler the message was not acked yet, and its record not committed. */
        CHECK(s.ack_pending_inside >= 1);
        CHECK(s.visible_inside == 0);

        /* Afterwards everything is acked. */
        CHECK(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
        {
                long long deadline = ej_mono_ms() + 5000;
                bool settled = false;

                while (!settled && ej_mono_ms() < deadline) {
                        if (js_GetConsumerInfo(&ci, js, EJ_EVENTS_STREAM, s.durable, NULL, NULL) ==
                            NATS_OK)
                                settled = ci->NumAckPending == 0 && ci->NumPending == 0;
                        jsConsumerInfo_Destroy(ci);
                        ci = NULL;
                        if (!settled)
                                usleep(100000);
                }
                CHECK(settled);
        }

        /* The consumer's database session is dropped: the next event still goes through. */
        CHECK(admin_scalar(kill_ours) >= 1);
        usleep(300000);
        publish_event(nc, subject, after_kill, after_kill);
        CHECK(wait_calls(&s, after_kill, 1, 5000));
        /* The handler has run; its transaction commits after it returns. */
        CHECK(wait_scalar("SELECT count(*) FROM \"%s\".processed_events WHERE event_id = '%s'",
                          after_kill, 1, 5000));

        /* Stopped and started again with the same durable name: only the new event comes. */
        ej_consumer_stop(c);
        c = NULL;
        publish_event(nc, subject, late, late);
        CHECK(ej_consumer_start(&c, &cc, &err) == EJ_OK);
        CHECK(wait_calls(&s, late, 1, 5000));
        usleep(500000);
        CHECK(seen_calls(&s, a) == 1);
        CHECK(seen_calls(&s, f) == 2);
        CHECK(seen_calls(&s, k) == 1);
        ej_consumer_stop(c);
        ej_consumer_stop(NULL);

        CHECK(js_DeleteConsumer(js, EJ_EVENTS_STREAM, s.durable, NULL, NULL) == NATS_OK);
        jsCtx_Destroy(js);
        pthread_mutex_destroy(&s.mu);
}

int main(void)
{
        struct ej_db *db = NULL;
        natsConnection *nc = NULL;
        struct ej_err err;
        char q[256];

        ej_log_init("test_events", getenv("EJ_TEST_LOG") ? getenv("EJ_TEST_LOG") : "error");
        db_url = getenv("EJ_TEST_DB_URL");
        nats_url = getenv("EJ_TEST_NATS_URL");
        if (db_url == NULL || db_url[0] == '\0' || nats_url == NULL || nats_url[0] == '\0') {
                fprintf(stderr, "test_events: EJ_TEST_DB_URL (libpq connection string of a scratch "
                                "database) and EJ_TEST_NATS_URL (a nats-server -js) must be set; "
                                "tests/run-all.sh sets them\n");
                CHECK(!"EJ_TEST_DB_URL and EJ_TEST_NATS_URL set");
                return check_report();
        }
        signal(SIGPIPE, SIG_IGN);
        if (ej_ids_init(&err) != EJ_OK)
                return 1;
        snprintf(schema, sizeof(schema), "ej_test_ev_%d", (int)getpid());
        snprintf(subj_base, sizeof(subj_base), "ej.evt.t%d", (int)getpid());

        if (ej_db_connect(&db, db_url, schema, 5000, &err) != EJ_OK ||
            ej_db_migrate(db, &ej_events_migration, 1, &err) != EJ_OK ||
            ej_db_migrate(db, test_migrations, 1, &err) != EJ_OK) {
                fprintf(stderr, "test_events: database: %s\n", err.msg);
                CHECK(!"database ready");
                goto out;
        }
        nc = nats_connect(nats_url, true);
        if (nc == NULL) {
                fprintf(stderr, "test_events: cannot connect to %s\n", nats_url);
                CHECK(!"nats ready");
                goto out;
        }
        test_stream(nc);
        test_outbox(db);
        test_relay(db, nc);
        test_relay_nats_outage(db);
        test_consumer(nc);
out:
        ej_db_destroy(db);
        if (nc != NULL)
                natsConnection_Destroy(nc);
        snprintf(q, sizeof(q), "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
        CHECK(admin_scalar(q) == 0);
        nats_Close();
        return check_report();
}
