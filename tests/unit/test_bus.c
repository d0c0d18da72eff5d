/*
 * Unit tests of services/common/bus.c against a real nats-server, and of ej_call_has_role.
 *
 * EJ_TEST_NATS_URL is the URL of a scratch nats-server (tests/run-all.sh starts one and sets
 * it); the test fails when it is unset. A responder thread on a subject named with the pid
 * answers the requests the way each test asks (the request's `code` field).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.pb-c.h"

#include "bus.h"
#include "check.h"
#include "ids.h"
#include "log.h"
#include "service.h"

struct responder {
        struct ej_bus *bus;
        natsSubscription *sub;
        atomic_int stop;
};

static char subject_echo[64];
static char subject_nobody[64];
static char subject_bcast[64];

/* Answers one request according to its code: "ok", "fail", "big", "garbage" or "silent". */
static void answer(struct responder *r, natsMsg *msg, struct ej_arena *arena)
{
        ProtobufCAllocator alloc = ej_arena_pb_allocator(arena);
        Ej__Common__ErrorDetail *in;
        Ej__Common__ErrorDetail out = EJ__COMMON__ERROR_DETAIL__INIT;
        struct ej_err err;
        const char *rid = "";

        ej_arena_reset(arena);
        ej_err_clear(&err);
        in = (Ej__Common__ErrorDetail *)protobuf_c_message_unpack(
            &ej__common__error_detail__descriptor, &alloc, (size_t)natsMsg_GetDataLength(msg),
            (const uint8_t *)natsMsg_GetData(msg));
        if (in == NULL) {
                ej_err_set(&err, EJ_ERR_INVALID, NULL, "bad request");
                ej_bus_respond(r->bus, msg, EJ_ERR_INVALID, &err, NULL);
                return;
        }
        if (natsMsgHeader_Get(msg, EJ_HDR_REQUEST_ID, &rid) != NATS_OK)
                rid = "";
        if (strcmp(in->code, "ok") == 0 || strcmp(in->code, "big") == 0) {
                out.code = (char *)"pong";
                out.field = ej_arena_strdup(arena, rid);
                if (strcmp(in->code, "big") == 0) {
                        out.message = ej_arena_alloc(arena, 100001);
                        memset(out.message, 'x', 100000);
                        out.message[100000] = '\0';
                } else {
                        out.message = in->message;
                }
                ej_bus_respond(r->bus, msg, EJ_OK, NULL, &out.base);
        } else if (strcmp(in->code, "fail") == 0) {
                ej_err_set(&err, ej_status_from_name(in->message), in->field,
                           "failed as asked\r\nsecond line");
                ej_bus_respond(r->bus, msg, err.status, &err, &out.base);
        } else if (strcmp(in->code, "dbfail") == 0) {
                /* Detail from the database: for the log only, never in the reply. */
                ej_err_set(&err, ej_status_from_name(in->message), "items_name_key",
                           "database 22008: interval out of range");
                ej_err_mark_log_only(&err);
                ej_bus_respond(r->bus, msg, err.status, &err, NULL);
        } else if (strcmp(in->code, "garbage") == 0) {
                natsConnection_Publish(ej_bus_conn(r->bus), natsMsg_GetReply(msg), "\xff\xff\xff",
                                       3);
        }
        /* "silent": no reply at all. */
}

static void *responder_main(void *arg)
{
        struct responder *r = arg;
        struct ej_arena *arena = ej_arena_create(0);

        while (!atomic_load(&r->stop)) {
                natsMsg *msg = NULL;

                if (natsSubscription_NextMsg(&msg, r->sub, 100) == NATS_OK) {
                        answer(r, msg, arena);
                        natsMsg_Destroy(msg);
                }
        }
        ej_arena_destroy(arena);
        return NULL;
}

static enum ej_status call(struct ej_bus *bus, const char *subject, const char *code,
                           const char *message, const char *field, int timeout_ms,
                           struct ej_arena *arena, Ej__Common__ErrorDetail **resp,
                           struct ej_err *err)
{
        Ej__Common__ErrorDetail req = EJ__COMMON__ERROR_DETAIL__INIT;
        ProtobufCMessage *out = NULL;
        enum ej_status st;

        req.code = ej_arena_strdup(arena, code);
        req.message = ej_arena_strdup(arena, message);
        req.field = ej_arena_strdup(arena, field);
        ej_err_clear(err);
        st = ej_bus_request(bus, subject, &req.base, "rid-123",
                            &ej__common__error_detail__descriptor, arena, timeout_ms, &out, err);
        *resp = (Ej__Common__ErrorDetail *)out;
        return st;
}

static void test_has_role(void)
{
        struct ej_call c;

        memset(&c, 0, sizeof(c));
        c.roles = "author,editor";
        CHECK(ej_call_has_role(&c, "author"));
        CHECK(ej_call_has_role(&c, "editor"));
        CHECK(!ej_call_has_role(&c, "edit"));
        CHECK(!ej_call_has_role(&c, "admin"));
        CHECK(!ej_call_has_role(&c, ""));
        c.roles = "author, reviewer ";
        CHECK(ej_call_has_role(&c, "reviewer"));
        c.roles = "";
        CHECK(!ej_call_has_role(&c, "author"));
        c.roles = "authors";
        CHECK(!ej_call_has_role(&c, "author"));
}

static void test_connect_failure(void)
{
        struct ej_bus_options opt = {
            .url = "nats://127.0.0.1:1", .name = "ej-test", .connect_wait_ms = 400};
        struct ej_bus *bus = NULL;
        struct ej_err err;
        long long t0 = ej_mono_ms();
        enum ej_status st;

        ej_err_clear(&err);
        st = ej_bus_connect(&bus, &opt, &err);
        CHECK(st == EJ_ERR_UNAVAILABLE);
        CHECK(bus == NULL);
        CHECK(strstr(err.msg, "cannot reach NATS at nats://127.0.0.1:1") != NULL);
        /* It kept trying for about the wait it was given, not forever. */
        CHECK(ej_mono_ms() - t0 >= 350);
        CHECK(ej_mono_ms() - t0 < 5000);
}

static void test_reply_status(void)
{
        natsMsg *m = NULL;
        struct ej_err err;

        ej_err_clear(&err);
        CHECK(natsMsg_Create(&m, "x", NULL, NULL, 0) == NATS_OK);
        CHECK(ej_bus_reply_status(m, &err) == EJ_OK);
        natsMsg_Destroy(m);

        CHECK(natsMsg_Create(&m, "x", NULL, NULL, 0) == NATS_OK);
        natsMsgHeader_Set(m, EJ_HDR_STATUS, "not_found");
        natsMsgHeader_Set(m, EJ_HDR_ERROR, "no such article");
        natsMsgHeader_Set(m, EJ_HDR_FIELD, "id");
        CHECK(ej_bus_reply_status(m, &err) == EJ_ERR_NOT_FOUND);
        CHECK(strcmp(err.msg, "no such article") == 0);
        CHECK(strcmp(err.field, "id") == 0);
        natsMsg_Destroy(m);

        CHECK(natsMsg_Create(&m, "x", NULL, NULL, 0) == NATS_OK);
        natsMsgHeader_Set(m, EJ_HDR_STATUS, "what_is_this");
        CHECK(ej_bus_reply_status(m, &err) == EJ_ERR_INTERNAL);
        natsMsg_Destroy(m);
}

static void test_round_trips(struct ej_bus *bus)
{
        struct ej_arena *arena = ej_arena_create(0);
        Ej__Common__ErrorDetail *resp = NULL;
        struct ej_err err;
        char big[5000];
        long long t0;
        enum ej_status st;

        st = call(bus, subject_echo, "ok", "hello", "", 2000, arena, &resp, &err);
        CHECK(st == EJ_OK);
        CHECK(resp && strcmp(resp->code, "pong") == 0);
        CHECK(resp && strcmp(resp->message, "hello") == 0);
        CHECK(resp && strcmp(resp->field, "rid-123") == 0); /* the request id travelled */

        /* A request larger than the stack buffer, and a large reply. */
        memset(big, 'b', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        st = call(bus, subject_echo, "ok", big, "", 2000, arena, &resp, &err);
        CHECK(st == EJ_OK && resp && strcmp(resp->message, big) == 0);
        st = call(bus, subject_echo, "big", "", "", 2000, arena, &resp, &err);
        CHECK(st == EJ_OK && resp && strlen(resp->message) == 100000);

        /* Status, text and field come back; the text is kept on one line. */
        st = call(bus, subject_echo, "fail", "conflict", "email", 2000, arena, &resp, &err);
        CHECK(st == EJ_ERR_CONFLICT);
        CHECK(resp == NULL);
        CHECK(strcmp(err.field, "email") == 0);
        CHECK(strcmp(err.msg, "failed as asked  second line") == 0);
        st = call(bus, subject_echo, "fail", "unauthenticated", "", 2000, arena, &resp, &err);
        CHECK(st == EJ_ERR_UNAUTHENTICATED && err.field[0] == '\0');

        /* Detail marked for the log only: the reply carries the status and its sentence. */
        st = call(bus, subject_echo, "dbfail", "invalid_argument", "", 2000, arena, &resp, &err);
        CHECK(st == EJ_ERR_INVALID && err.field[0] == '\0');
        CHECK(strcmp(err.msg, ej_status_public_message(EJ_ERR_INVALID)) == 0);
        CHECK(strstr(err.msg, "22008") == NULL && strstr(err.msg, "database") == NULL);
        st = call(bus, subject_echo, "dbfail", "internal", "", 2000, arena, &resp, &err);
        CHECK(st == EJ_ERR_INTERNAL &&
              strcmp(err.msg, ej_status_public_message(EJ_ERR_INTERNAL)) == 0);

        /* A reply that is not the expected message. */
        st = call(bus, subject_echo, "garbage", "", "", 2000, arena, &resp, &err);
        CHECK(st == EJ_ERR_INTERNAL);

        /* Nobody listening: unavailable at once, not after the deadline. */
        t0 = ej_mono_ms();
        st = call(bus, subject_nobody, "ok", "", "", 3000, arena, &resp, &err);
        CHECK(st == EJ_ERR_UNAVAILABLE);
        CHECK(ej_mono_ms() - t0 < 1500);

        /* Someone listening who never answers: a timeout at the deadline. */
        t0 = ej_mono_ms();
        st = call(bus, subject_echo, "silent", "", "", 300, arena, &resp, &err);
        CHECK(st == EJ_ERR_TIMEOUT);
        CHECK(ej_mono_ms() - t0 >= 250 && ej_mono_ms() - t0 < 2000);
        ej_arena_destroy(arena);
}

static void test_publish(struct ej_bus *bus)
{
        natsSubscription *sub = NULL;
        natsMsg *msg = NULL;
        struct ej_err err;

        CHECK(natsConnection_SubscribeSync(&sub, ej_bus_conn(bus), subject_bcast) == NATS_OK);
        natsConnection_Flush(ej_bus_conn(bus));
        CHECK(ej_bus_publish(bus, subject_bcast, "abc", 3, &err) == EJ_OK);
        CHECK(natsSubscription_NextMsg(&msg, sub, 2000) == NATS_OK);
        CHECK(msg && natsMsg_GetDataLength(msg) == 3 &&
              memcmp(natsMsg_GetData(msg), "abc", 3) == 0);
        natsMsg_Destroy(msg);
        natsSubscription_Destroy(sub);
}

int main(void)
{
        const char *url = getenv("EJ_TEST_NATS_URL");
        char urls[512];
        struct ej_bus_options opt = {.url = NULL, .name = "ej-test-bus", .connect_wait_ms = 2000};
        struct ej_bus *bus = NULL;
        struct responder r;
        pthread_t th;
        struct ej_err err;

        ej_log_init("test_bus", "error");
        ej_ids_init(NULL);
        nats_Open(-1); /* messages are made before any connection opens the library */
        test_has_role();
        test_reply_status();
        test_connect_failure();
        if (url == NULL || url[0] == '\0') {
                fprintf(stderr, "test_bus: EJ_TEST_NATS_URL is not set (a running nats-server "
                                "is needed)\n");
                CHECK(url != NULL && url[0] != '\0');
                return check_report();
        }
        snprintf(subject_echo, sizeof(subject_echo), "ej.test%ld.echo", (long)getpid());
        snprintf(subject_nobody, sizeof(subject_nobody), "ej.test%ld.nobody", (long)getpid());
        snprintf(subject_bcast, sizeof(subject_bcast), "ej.test%ld.bcast", (long)getpid());

        /* A list with a dead server first: the live one is found. */
        snprintf(urls, sizeof(urls), "nats://127.0.0.1:1, %s", url);
        opt.url = urls;
        ej_err_clear(&err);
        CHECK(ej_bus_connect(&bus, &opt, &err) == EJ_OK);
        if (bus == NULL) {
                fprintf(stderr, "test_bus: %s\n", err.msg);
                return check_report();
        }
        CHECK(ej_bus_connected(bus));

        memset(&r, 0, sizeof(r));
        r.bus = bus;
        atomic_init(&r.stop, 0);
        CHECK(natsConnection_QueueSubscribeSync(&r.sub, ej_bus_conn(bus), subject_echo, "test") ==
              NATS_OK);
        natsConnection_Flush(ej_bus_conn(bus));
        pthread_create(&th, NULL, responder_main, &r);

        test_round_trips(bus);
        test_publish(bus);

        atomic_store(&r.stop, 1);
        pthread_join(th, NULL);
        natsSubscription_Destroy(r.sub);
        ej_bus_destroy(bus, 1000);
        ej_bus_destroy(NULL, 0);
        return check_report();
}
