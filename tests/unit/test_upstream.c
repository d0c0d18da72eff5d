/*
 * The gateway's requests to services (gateway/upstream.c): the one function that sets the
 * request headers (request id, user id, roles, client address; absent values left out), and
 * the status an exchange ended with (a timeout names the service, "no answer" keeps the
 * outcome). No NATS server is needed: messages are built, never sent.
 */
#include "../../gateway/upstream.c"

#include <string.h>

#include "check.h"

/* upstream.c pings the services of the gateway's route table; none here. */
const struct gw_route *const gw_routes = NULL;
const size_t gw_routes_count = 0;

static const char *header(natsMsg *m, const char *name)
{
        const char *v = NULL;

        return natsMsgHeader_Get(m, name, &v) == NATS_OK ? v : NULL;
}

static natsMsg *message(void)
{
        natsMsg *m = NULL;

        CHECK(natsMsg_Create(&m, "ej.files.read", "_INBOX.x", "", 0) == NATS_OK);
        return m;
}

static void test_headers(void)
{
        struct gw_caller all = {.rid = "rid-1",
                                .user_id = "6f1c0d5e-0000-4000-8000-000000000001",
                                .roles = "author,editor",
                                .client_addr = "192.0.2.7"};
        struct gw_caller anonymous = {.rid = "rid-2", .roles = "admin", .client_addr = ""};
        struct gw_caller no_roles = {.rid = "rid-3", .user_id = "u", .roles = ""};
        natsMsg *m = message();

        CHECK(gw_caller_headers(m, &all) == NATS_OK);
        CHECK(header(m, EJ_HDR_REQUEST_ID) && strcmp(header(m, EJ_HDR_REQUEST_ID), "rid-1") == 0);
        CHECK(header(m, EJ_HDR_USER_ID) &&
              strcmp(header(m, EJ_HDR_USER_ID), "6f1c0d5e-0000-4000-8000-000000000001") == 0);
        CHECK(header(m, EJ_HDR_ROLES) && strcmp(header(m, EJ_HDR_ROLES), "author,editor") == 0);
        CHECK(header(m, EJ_HDR_CLIENT_ADDR) &&
              strcmp(header(m, EJ_HDR_CLIENT_ADDR), "192.0.2.7") == 0);
        natsMsg_Destroy(m);

        /* Anonymous: no user, and roles never travel without a user; no address, no header. */
        m = message();
        CHECK(gw_caller_headers(m, &anonymous) == NATS_OK);
        CHECK(header(m, EJ_HDR_REQUEST_ID) != NULL);
        CHECK(header(m, EJ_HDR_USER_ID) == NULL);
        CHECK(header(m, EJ_HDR_ROLES) == NULL);
        CHECK(header(m, EJ_HDR_CLIENT_ADDR) == NULL);
        natsMsg_Destroy(m);

        /* An empty value does not survive nats.c's header parser: it is left out. */
        m = message();
        CHECK(gw_caller_headers(m, &no_roles) == NATS_OK);
        CHECK(header(m, EJ_HDR_USER_ID) != NULL && header(m, EJ_HDR_ROLES) == NULL);
        natsMsg_Destroy(m);
}

static void test_caller_of_request(void)
{
        struct gw_req req = {0};
        struct gw_caller c;

        snprintf(req.rid, sizeof(req.rid), "%s", "r");
        snprintf(req.client_addr, sizeof(req.client_addr), "%s", "2001:db8::1");
        req.user_id = "u";
        req.roles = "admin";
        c = gw_req_caller(&req);
        CHECK(c.rid == req.rid && c.user_id == req.user_id && c.roles == req.roles &&
              c.client_addr == req.client_addr);
}

static void done_nothing(struct gw_req *req)
{
        (void)req;
}

/* What the sweeper does to one request it takes out of the table. */
static void complete_list_one(struct gw_req *req, enum ej_status st, const char *msg)
{
        req->done = done_nothing;
        req->pending_next = NULL;
        complete_list(req, st, msg);
}

/* The deadline travels as absolute epoch milliseconds; the key only when the request has one. */
static void test_deadline_and_key(void)
{
        struct gw_caller keyed = {.rid = "r", .idem_key = "a5e0c8f2-key"};
        struct gw_caller plain = {.rid = "r"};
        natsMsg *m = message();
        long long before = ej_now_ms();
        long long d;

        CHECK(gw_caller_headers(m, &keyed) == NATS_OK);
        CHECK(header(m, EJ_HDR_IDEMPOTENCY_KEY) &&
              strcmp(header(m, EJ_HDR_IDEMPOTENCY_KEY), "a5e0c8f2-key") == 0);
        CHECK(ej_bus_deadline(m) == 0);
        CHECK(ej_bus_set_deadline(m, 1500) == NATS_OK);
        d = ej_bus_deadline(m);
        CHECK(d >= before + 1500 && d <= ej_now_ms() + 1500);
        natsMsg_Destroy(m);

        m = message();
        CHECK(gw_caller_headers(m, &plain) == NATS_OK);
        CHECK(header(m, EJ_HDR_IDEMPOTENCY_KEY) == NULL);
        /* A deadline that is not plain digits is no deadline. */
        CHECK(natsMsgHeader_Set(m, EJ_HDR_DEADLINE, "12x") == NATS_OK);
        CHECK(ej_bus_deadline(m) == 0);
        CHECK(natsMsgHeader_Set(m, EJ_HDR_DEADLINE, "99999999999999999999") == NATS_OK);
        CHECK(ej_bus_deadline(m) == 0);
        natsMsg_Destroy(m);
}

static void test_status(void)
{
        struct gw_req req = {0};
        struct ej_err err = {0};

        /* Sent, and no answer by the deadline: the outcome is not known, and the answer says
         * how to retry. */
        req.subject = "ej.users.authenticate";
        complete_list_one(&req, EJ_ERR_OUTCOME_UNKNOWN, "");
        CHECK(gw_upstream_status(&req, &err) == EJ_ERR_OUTCOME_UNKNOWN);
        CHECK(strncmp(err.msg, "the users service did not answer in time;", 41) == 0);
        CHECK(strstr(err.msg, "Idempotency-Key") != NULL);
        CHECK(strcmp(ej_status_name(EJ_ERR_OUTCOME_UNKNOWN), "outcome_unknown") == 0);

        /* The bus went away while the request was out: also unknown, with its own reason. */
        err = (struct ej_err){0};
        complete_list_one(&req, EJ_ERR_OUTCOME_UNKNOWN, LOST_AFTER_SEND);
        CHECK(gw_upstream_status(&req, &err) == EJ_ERR_OUTCOME_UNKNOWN);
        CHECK(strcmp(err.msg, LOST_AFTER_SEND) == 0);

        req.outcome = ej_err_set(&req.outcome_err, EJ_ERR_UNAVAILABLE, NULL, "%s",
                                 "the message bus is not available");
        err = (struct ej_err){0};
        CHECK(gw_upstream_status(&req, &err) == EJ_ERR_UNAVAILABLE);
        CHECK(strcmp(err.msg, "the message bus is not available") == 0);
}

int main(void)
{
        int rc;

        CHECK(nats_Open(-1) == NATS_OK); /* messages are garbage-collected by the library */
        test_headers();
        test_caller_of_request();
        test_deadline_and_key();
        test_status();
        rc = check_report();
        nats_Close();
        return rc;
}
