/*
 * The gateway's requests to services (gateway/upstream.c): the one function that sets the
 * request headers (request id, user id, roles, client address; absent values left out), and
 * the status an exchange ended with (a timeout names the service, "no answer" keeps the
 * outcome). No NATS server is needed: messages are built, never sent.
 */
#include "../../gateway/upstream.c"

#include <string.h>

#include "check.h"

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

static void test_status(void)
{
        struct gw_req req = {0};
        struct ej_err err = {0};

        req.subject = "ej.users.authenticate";
        req.outcome = EJ_ERR_TIMEOUT;
        CHECK(gw_upstream_status(&req, &err) == EJ_ERR_TIMEOUT);
        CHECK(strcmp(err.msg, "the users service did not answer in time") == 0);

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
        test_status();
        rc = check_report();
        nats_Close();
        return rc;
}
