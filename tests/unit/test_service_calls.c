/*
 * The service runtime's handling of a call's deadline and Idempotency-Key (services/common/
 * service.c, idem.c), on a real ej-users over the bus: requests sent as the gateway sends them,
 * with Ej-Deadline and Ej-Idempotency-Key, and the database checked for what was done.
 *
 * EJ_TEST_NATS_URL and EJ_TEST_DB_URL come from tests/run-all.sh; the test starts its own
 * ej-users (harness.h) and stops it at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.pb-c.h"

#include "bus.h"
#include "check.h"
#include "db.h"
#include "harness.h"
#include "ids.h"
#include "log.h"
#include "rpc.h"

#define TIMEOUT_MS 5000

static struct ej_bus *bus;
static struct ej_db *tdb;
static char run_tag[48];

/* One raw exchange: the reply's status (Ej-Status), and its data into `data` (size `size`). */
struct answer {
        enum ej_status st;
        char data[1024];
        int n;
        char error[256];
};

/* Sends a register_account for `email` with the given headers (NULL: left out); false when no
 * reply came. */
static bool call_register(const char *email, const char *password, const char *key,
                          long long deadline, struct answer *a)
{
        Ej__Users__RegisterRequest req = EJ__USERS__REGISTER_REQUEST__INIT;
        uint8_t buf[512];
        size_t n;
        natsMsg *msg = NULL;
        natsMsg *reply = NULL;
        char v[32];
        const char *s = NULL;
        natsStatus ns;

        char name[] = "Idem Tester";
        char em[128], pw[64];

        snprintf(em, sizeof(em), "%s", email);
        snprintf(pw, sizeof(pw), "%s", password);
        req.name = name;
        req.email = em;
        req.password = pw;
        req.consent = true;
        n = protobuf_c_message_pack(&req.base, buf);
        CHECK(natsMsg_Create(&msg, "ej.users.register_account", NULL, (const char *)buf, (int)n) ==
              NATS_OK);
        natsMsgHeader_Set(msg, EJ_HDR_REQUEST_ID, "test-service-calls");
        if (key)
                natsMsgHeader_Set(msg, EJ_HDR_IDEMPOTENCY_KEY, key);
        if (deadline) {
                snprintf(v, sizeof(v), "%lld", deadline);
                natsMsgHeader_Set(msg, EJ_HDR_DEADLINE, v);
        }
        ns = natsConnection_RequestMsg(&reply, ej_bus_conn(bus), msg, TIMEOUT_MS);
        natsMsg_Destroy(msg);
        if (ns != NATS_OK)
                return false;
        a->st = EJ_OK;
        a->error[0] = '\0';
        if (natsMsgHeader_Get(reply, EJ_HDR_STATUS, &s) == NATS_OK && s)
                a->st = ej_status_from_name(s);
        if (natsMsgHeader_Get(reply, EJ_HDR_ERROR, &s) == NATS_OK && s)
                snprintf(a->error, sizeof(a->error), "%s", s);
        a->n = natsMsg_GetDataLength(reply);
        if (a->n > (int)sizeof(a->data))
                a->n = (int)sizeof(a->data);
        memcpy(a->data, natsMsg_GetData(reply), (size_t)a->n);
        natsMsg_Destroy(reply);
        return true;
}

/* The count `sql` (one parameter: an e-mail address) gives, or -1. */
static long long count_for(const char *sql, const char *email)
{
        const char *p[1] = {email};
        PGresult *res = NULL;
        struct ej_err err;
        long long n = -1;

        if (ej_db_exec(tdb, sql, 1, p, &res, &err) == EJ_OK)
                n = ej_db_int64(res, 0, 0);
        else
                fprintf(stderr, "count: %s\n", err.msg);
        PQclear(res);
        return n;
}

static long long accounts_with(const char *email)
{
        return count_for("SELECT count(*) FROM users WHERE lower(email) = lower($1)", email);
}

/* Mails queued to `email` (the users service's outbox). */
static long long mails_to(const char *email)
{
        return count_for("SELECT count(*) FROM mail_outbox WHERE lower(to_addr) = lower($1)",
                         email);
}

static void email_for(const char *what, char *out, size_t size)
{
        snprintf(out, size, "calls.%s.%s@example.org", what, run_tag);
}

/* A request whose deadline passed is not started: nothing is written. */
static void test_deadline(void)
{
        struct answer a;
        char email[128];

        email_for("late", email, sizeof(email));
        CHECK(call_register(email, "long enough pw", NULL, ej_now_ms() - 1, &a));
        CHECK(a.st == EJ_ERR_TIMEOUT);
        CHECK(accounts_with(email) == 0);

        email_for("intime", email, sizeof(email));
        CHECK(call_register(email, "long enough pw", NULL, ej_now_ms() + TIMEOUT_MS, &a));
        CHECK(a.st == EJ_OK);
        CHECK(accounts_with(email) == 1);
}

/* A retry with the same key gets the first answer, byte for byte, and nothing is done twice;
 * the same key with another request is refused; a malformed key is refused. */
static void test_idempotency(void)
{
        struct answer first, again, other;
        char email[128], key[96];

        email_for("idem", email, sizeof(email));
        snprintf(key, sizeof(key), "key-%s", run_tag);
        CHECK(call_register(email, "long enough pw", key, 0, &first));
        CHECK(first.st == EJ_OK);
        CHECK(call_register(email, "long enough pw", key, 0, &again));
        CHECK(again.st == first.st && again.n == first.n &&
              memcmp(again.data, first.data, (size_t)first.n) == 0);
        CHECK(accounts_with(email) == 1);
        CHECK(mails_to(email) == 1); /* the first attempt's verification mail, and no other */

        CHECK(call_register(email, "another password", key, 0, &other));
        CHECK(other.st == EJ_ERR_CONFLICT);
        CHECK(strstr(other.error, "different request") != NULL);

        /* Without a key the call runs again: registering a taken address answers alike (nothing
         * tells who has an account) but mails its owner a note, which only a run does. */
        CHECK(call_register(email, "long enough pw", NULL, 0, &other));
        CHECK(other.st == EJ_OK);
        CHECK(accounts_with(email) == 1);
        CHECK(mails_to(email) == 2);

        CHECK(call_register(email, "long enough pw", "has space", 0, &other));
        CHECK(other.st == EJ_ERR_INVALID);
}

/* "ej.<svc>._ping" is answered with an empty ok (the gateway's readiness). */
static void test_ping(void)
{
        natsMsg *reply = NULL;
        const char *s = NULL;

        CHECK(natsConnection_RequestString(&reply, ej_bus_conn(bus), "ej.users." EJ_RPC_PING, "",
                                           TIMEOUT_MS) == NATS_OK);
        CHECK(reply != NULL && !natsMsg_IsNoResponders(reply));
        CHECK(reply != NULL && natsMsgHeader_Get(reply, EJ_HDR_STATUS, &s) != NATS_OK);
        natsMsg_Destroy(reply);
}

static bool service_answers(void)
{
        natsMsg *reply = NULL;
        bool ok = natsConnection_RequestString(&reply, ej_bus_conn(bus), "ej.users." EJ_RPC_PING,
                                               "", 500) == NATS_OK &&
                  !natsMsg_IsNoResponders(reply);

        natsMsg_Destroy(reply);
        return ok;
}

int main(int argc, char **argv)
{
        const char *db_url = getenv("EJ_TEST_DB_URL");
        const char *const env[] = {"EJ_LOG_LEVEL=error", NULL};
        pid_t service = 0;
        struct ej_err err;

        ej_log_init("test_service_calls", "error");
        ej_ids_init(NULL);
        bus = th_bus_connect("test_service_calls");
        CHECK(bus != NULL);
        CHECK(db_url != NULL && db_url[0]);
        if (bus == NULL || db_url == NULL || db_url[0] == '\0')
                goto out;
        service = th_service_start(argc > 0 ? argv[0] : "test_service_calls", "users", env,
                                   service_answers);
        CHECK(service > 0);
        if (service <= 0)
                goto out;
        if (ej_db_connect(&tdb, db_url, "users", 5000, &err) != EJ_OK)
                fprintf(stderr, "test_service_calls: no test database: %s\n", err.msg);
        CHECK(tdb != NULL);
        if (tdb == NULL)
                goto out;
        th_run_tag(run_tag, sizeof(run_tag));
        test_ping();
        test_deadline();
        test_idempotency();
out:
        CHECK(th_service_stop(service, 5000, NULL));
        ej_db_destroy(tdb);
        ej_bus_destroy(bus, 1000);
        return check_report();
}
