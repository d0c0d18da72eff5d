/*
 * Tests of the users service over the bus: real requests to a running ej-users (with its
 * PostgreSQL and nats-server), as the gateway sends them.
 *
 * EJ_TEST_NATS_URL is the URL of a nats-server (tests/run-all.sh starts one and sets it); the
 * test fails when it is unset. When no ej-users answers there, the test starts one itself (the
 * ej-users binary in ../bin next to this test's binary, or $EJ_USERS_BIN) against
 * EJ_TEST_DB_URL, and at the end stops it with SIGTERM and checks that it exits cleanly and
 * promptly (harness.h). Every run registers new accounts under e-mail addresses unique to the
 * run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common.pb-c.h"
#include "users.pb-c.h"

#include "bus.h"
#include "check.h"
#include "db.h"
#include "harness.h"
#include "ids.h"
#include "log.h"

#define TIMEOUT_MS 5000

static struct ej_bus *bus;
static struct ej_arena *arena;
static char run_tag[48];

/* Sends `req` to ej.users.<verb> with Ej-User-Id `user_id` (NULL: anonymous) and unpacks the
 * reply as `resp_desc`. */
static enum ej_status send_full(const char *verb, const ProtobufCMessage *req, const char *user_id,
                                const char *roles, const char *addr,
                                const ProtobufCMessageDescriptor *resp_desc,
                                ProtobufCMessage **resp, struct ej_err *err, int *retry_after)
{
        const struct th_caller from = {user_id, roles, addr};
        char subject[64];

        snprintf(subject, sizeof(subject), "ej.users.%s", verb);
        return th_call(bus, arena, subject, req, &from, resp_desc, TIMEOUT_MS, resp, retry_after,
                       err);
}

static enum ej_status send_as(const char *verb, const ProtobufCMessage *req, const char *user_id,
                              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                              struct ej_err *err)
{
        return send_full(verb, req, user_id, NULL, NULL, resp_desc, resp, err, NULL);
}

static enum ej_status do_register(const char *name, const char *email, const char *password,
                                  Ej__Users__User **user, struct ej_err *err)
{
        Ej__Users__RegisterRequest req = EJ__USERS__REGISTER_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        enum ej_status st;

        req.name = ej_arena_strdup(arena, name);
        req.email = ej_arena_strdup(arena, email);
        req.password = ej_arena_strdup(arena, password);
        req.consent = true;
        st = ej_bus_request(bus, "ej.users.register_account", &req.base, "test-users",
                            &ej__users__register_response__descriptor, arena, TIMEOUT_MS, &resp,
                            err);
        *user = NULL;
        /* The answer names no account (it must not tell a new address from a taken one): the
         * new account is read back by signing in. */
        if (st == EJ_OK) {
                Ej__Users__LoginRequest lr = EJ__USERS__LOGIN_REQUEST__INIT;
                ProtobufCMessage *lo = NULL;

                lr.email = req.email;
                lr.password = req.password;
                st = ej_bus_request(bus, "ej.users.login", &lr.base, "test-users",
                                    &ej__users__login_response__descriptor, arena, TIMEOUT_MS, &lo,
                                    err);
                *user = st == EJ_OK ? ((Ej__Users__LoginResponse *)lo)->user : NULL;
        }
        return st;
}

/* The account `email` (password `password`) as a sign-in returns it, or NULL. */
static Ej__Users__User *registered(const char *email, const char *password)
{
        Ej__Users__LoginRequest lr = EJ__USERS__LOGIN_REQUEST__INIT;
        ProtobufCMessage *lo = NULL;
        struct ej_err err;

        lr.email = (char *)(uintptr_t)email;
        lr.password = (char *)(uintptr_t)password;
        if (ej_bus_request(bus, "ej.users.login", &lr.base, "test-users",
                           &ej__users__login_response__descriptor, arena, TIMEOUT_MS, &lo,
                           &err) != EJ_OK)
                return NULL;
        return ((Ej__Users__LoginResponse *)lo)->user;
}

static enum ej_status do_login(const char *email, const char *password,
                               Ej__Users__LoginResponse **out, struct ej_err *err)
{
        Ej__Users__LoginRequest req = EJ__USERS__LOGIN_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        enum ej_status st;

        req.email = ej_arena_strdup(arena, email);
        req.password = ej_arena_strdup(arena, password);
        st = ej_bus_request(bus, "ej.users.login", &req.base, "test-users",
                            &ej__users__login_response__descriptor, arena, TIMEOUT_MS, &resp, err);
        *out = (Ej__Users__LoginResponse *)resp;
        return st;
}

static enum ej_status do_authenticate(const char *token, Ej__Users__Principal **out,
                                      struct ej_err *err)
{
        Ej__Users__AuthenticateRequest req = EJ__USERS__AUTHENTICATE_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        enum ej_status st;

        req.session_token = ej_arena_strdup(arena, token);
        st = ej_bus_request(bus, "ej.users.authenticate", &req.base, "test-users",
                            &ej__users__principal__descriptor, arena, TIMEOUT_MS, &resp, err);
        *out = (Ej__Users__Principal *)resp;
        return st;
}

static enum ej_status do_logout(const char *token, struct ej_err *err)
{
        Ej__Users__LogoutRequest req = EJ__USERS__LOGOUT_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;

        req.session_token = ej_arena_strdup(arena, token);
        return ej_bus_request(bus, "ej.users.logout", &req.base, "test-users",
                              &ej__common__empty__descriptor, arena, TIMEOUT_MS, &resp, err);
}

static enum ej_status do_me(const char *user_id, Ej__Users__User **user, struct ej_err *err)
{
        Ej__Users__MeRequest req = EJ__USERS__ME_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        enum ej_status st;

        st = send_as("me", &req.base, user_id, &ej__users__me_response__descriptor, &resp, err);
        *user = st == EJ_OK ? ((Ej__Users__MeResponse *)resp)->user : NULL;
        return st;
}

static int has_role(char **roles, size_t n, const char *role)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(roles[i], role) == 0)
                        return 1;
        return 0;
}

static char *email_for(const char *who)
{
        return ej_arena_printf(arena, "%s.%s@Example.ORG", who, run_tag);
}

/* Waits for the user.registered event of `user_id` on the core subscription `sub`. */
static int saw_registered_event(natsSubscription *sub, const char *user_id, const char *email)
{
        long long deadline = ej_mono_ms() + 10000;

        while (ej_mono_ms() < deadline) {
                natsMsg *msg = NULL;
                ProtobufCAllocator alloc = ej_arena_pb_allocator(arena);
                Ej__Common__Event *ev;
                Ej__Users__UserRegistered *p = NULL;
                const char *msg_id = NULL;
                int match = 0;

                if (natsSubscription_NextMsg(&msg, sub, 500) != NATS_OK)
                        continue;
                ev = (Ej__Common__Event *)protobuf_c_message_unpack(
                    &ej__common__event__descriptor, &alloc, (size_t)natsMsg_GetDataLength(msg),
                    (const uint8_t *)natsMsg_GetData(msg));
                if (ev)
                        p = (Ej__Users__UserRegistered *)protobuf_c_message_unpack(
                            &ej__users__user_registered__descriptor, &alloc, ev->payload.len,
                            ev->payload.data);
                if (p && strcmp(p->user_id, user_id) == 0) {
                        match = 1;
                        CHECK(strcmp(ev->type, "user.registered") == 0);
                        CHECK(strcmp(ev->actor, user_id) == 0);
                        CHECK(strcmp(p->email, email) == 0);
                        CHECK(natsMsgHeader_Get(msg, "Nats-Msg-Id", &msg_id) == NATS_OK &&
                              strcmp(msg_id, ev->id) == 0);
                }
                natsMsg_Destroy(msg);
                if (match)
                        return 1;
        }
        return 0;
}

/* Defined with the identity helpers below. */
static char *mailed_token(const char *to);
static long mails_to(const char *to);

static void test_register(natsSubscription *events)
{
        Ej__Users__User *u = NULL;
        Ej__Users__User *dup = NULL;
        struct ej_err err;
        char *email = email_for("ada");
        char *spaced = ej_arena_printf(arena, "  %s ", email);
        char name200[2 * 200 + 1];
        char name201[202];
        char pw1025[1026];
        long long now = ej_now_ms();

        CHECK(do_register("  Ada Lovelace \t", email, "correct horse", &u, &err) == EJ_OK);
        CHECK(u != NULL);
        if (u == NULL) {
                fprintf(stderr, "register: %s\n", err.msg);
                return;
        }
        CHECK(strlen(u->id) == 36);
        CHECK(strcmp(u->name, "Ada Lovelace") == 0);
        CHECK(strcmp(u->email, email) == 0);
        CHECK(u->n_roles == 1 && strcmp(u->roles[0], "author") == 0);
        CHECK(u->created_at_ms > now - 60000 && u->created_at_ms < now + 60000);
        CHECK(saw_registered_event(events, u->id, email));

        /* The same address in other case and with spaces is the same account. */
        for (char *p = spaced; *p; p++)
                if (*p >= 'a' && *p <= 'z')
                        *p = (char)(*p - 'a' + 'A');
        /* ...and the answer does not say so: the same as for a new address, no second account,
         * and the owner is mailed a note instead of a verification link. */
        {
                long before = mails_to(email);
                Ej__Users__RegisterRequest req = EJ__USERS__REGISTER_REQUEST__INIT;
                ProtobufCMessage *resp = NULL;

                req.name = "Someone Else";
                req.email = spaced;
                req.password = "another password";
                req.consent = true;
                CHECK(send_as("register_account", &req.base, NULL,
                              &ej__users__register_response__descriptor, &resp, &err) == EJ_OK);
                CHECK(resp && strcmp(((Ej__Users__RegisterResponse *)resp)->email,
                                     ej_arena_strndup(arena, spaced + 2, strlen(spaced) - 3)) == 0);
                CHECK(mails_to(email) == before + 1);
                CHECK(mailed_token(email) == NULL);
                CHECK(registered(email, "another password") == NULL);
                dup = registered(email, "correct horse");
                CHECK(dup && strcmp(dup->id, u->id) == 0);
        }

        /* Validation names the field at fault. */
        CHECK(do_register("   ", email_for("blank"), "long enough", &dup, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "name") == 0);
        memset(name201, 'n', 201);
        name201[201] = '\0';
        CHECK(do_register(name201, email_for("long"), "long enough", &dup, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "name") == 0);
        /* 200 characters are fine even when they take 400 bytes. */
        for (int i = 0; i < 200; i++)
                memcpy(name200 + 2 * i, "\xc3\xa9", 2);
        name200[400] = '\0';
        CHECK(do_register(name200, email_for("accent"), "long enough", &dup, &err) == EJ_OK);
        CHECK(do_register("Bad\x01Name", email_for("ctl"), "long enough", &dup, &err) ==
              EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "name") == 0);
        CHECK(do_register("Nobody", "not-an-email", "long enough", &dup, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "email") == 0);
        CHECK(do_register("Nobody", "a@b", "long enough", &dup, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "email") == 0);
        CHECK(do_register("Nobody", "a b@example.org", "long enough", &dup, &err) ==
              EJ_ERR_INVALID);
        CHECK(do_register("Nobody", email_for("short"), "1234567", &dup, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "password") == 0);
        memset(pw1025, 'p', 1025);
        pw1025[1025] = '\0';
        CHECK(do_register("Nobody", email_for("huge"), pw1025, &dup, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "password") == 0);
        /* A refused registration left no account behind. */
        CHECK(do_register("Nobody", email_for("short"), "12345678", &dup, &err) == EJ_OK);
}

static void test_sessions(natsSubscription *revoked)
{
        Ej__Users__User *u = NULL;
        Ej__Users__LoginResponse *login = NULL;
        Ej__Users__Principal *pr = NULL;
        Ej__Users__User *me = NULL;
        struct ej_err err;
        char wrong_msg[sizeof(err.msg)];
        char *email = email_for("grace");
        char *token;
        char token_hash[EJ_SHA256_HEX_LEN];
        natsMsg *msg = NULL;
        long long now;

        CHECK(do_register("Grace Hopper", email, "cobol forever", &u, &err) == EJ_OK);
        if (u == NULL)
                return;

        /* Wrong password and unknown e-mail look the same. */
        CHECK(do_login(email, "cobol never", &login, &err) == EJ_ERR_UNAUTHENTICATED);
        snprintf(wrong_msg, sizeof(wrong_msg), "%s", err.msg);
        CHECK(do_login(email_for("nobody"), "cobol forever", &login, &err) ==
              EJ_ERR_UNAUTHENTICATED);
        CHECK(strcmp(err.msg, wrong_msg) == 0);
        CHECK(do_login("", "x", &login, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "email") == 0);

        now = ej_now_ms();
        CHECK(do_login(email, "cobol forever", &login, &err) == EJ_OK);
        if (login == NULL) {
                fprintf(stderr, "login: %s\n", err.msg);
                return;
        }
        token = ej_arena_strdup(arena, login->session_token);
        CHECK(strlen(token) == 43);
        CHECK(login->user && strcmp(login->user->id, u->id) == 0);
        CHECK(login->user && has_role(login->user->roles, login->user->n_roles, "author"));
        CHECK(login->expires_at_ms > now + 12LL * 3600000 - 60000);
        CHECK(login->expires_at_ms < now + 12LL * 3600000 + 60000);

        CHECK(do_authenticate(token, &pr, &err) == EJ_OK);
        CHECK(pr && strcmp(pr->user_id, u->id) == 0);
        CHECK(pr && has_role(pr->roles, pr->n_roles, "author"));
        CHECK(pr && pr->expires_at_ms == login->expires_at_ms);
        CHECK(do_authenticate("not-a-token", &pr, &err) == EJ_ERR_UNAUTHENTICATED);
        CHECK(do_authenticate("", &pr, &err) == EJ_ERR_UNAUTHENTICATED);

        CHECK(do_me(u->id, &me, &err) == EJ_OK);
        CHECK(me && strcmp(me->id, u->id) == 0 && strcmp(me->name, "Grace Hopper") == 0);
        CHECK(me && strcmp(me->email, email) == 0);
        CHECK(me && me->n_roles == 1 && strcmp(me->roles[0], "author") == 0);
        CHECK(do_me(NULL, &me, &err) == EJ_ERR_UNAUTHENTICATED);
        CHECK(do_me("not-a-uuid", &me, &err) == EJ_ERR_UNAUTHENTICATED);
        CHECK(do_me("00000000-0000-4000-8000-000000000000", &me, &err) == EJ_ERR_UNAUTHENTICATED);

        /* Logout revokes at once, tells the gateways, and can be repeated. */
        CHECK(do_logout(token, &err) == EJ_OK);
        ej_sha256_hex(token, strlen(token), token_hash);
        CHECK(natsSubscription_NextMsg(&msg, revoked, 2000) == NATS_OK);
        CHECK(msg && natsMsg_GetDataLength(msg) == 64 &&
              memcmp(natsMsg_GetData(msg), token_hash, 64) == 0);
        natsMsg_Destroy(msg);
        CHECK(do_authenticate(token, &pr, &err) == EJ_ERR_UNAUTHENTICATED);
        CHECK(do_logout(token, &err) == EJ_OK);
        CHECK(do_logout("", &err) == EJ_OK);

        /* A second login is a second, independent session. */
        CHECK(do_login(email, "cobol forever", &login, &err) == EJ_OK);
        CHECK(login && strcmp(login->session_token, token) != 0);
        CHECK(login && do_authenticate(login->session_token, &pr, &err) == EJ_OK);
}

static void test_protocol(void)
{
        struct ej_err err;
        ProtobufCMessage *resp = NULL;
        Ej__Users__MeRequest me = EJ__USERS__ME_REQUEST__INIT;
        natsMsg *reply = NULL;

        CHECK(ej_bus_request(bus, "ej.users.no_such_verb", &me.base, "test-users",
                             &ej__common__empty__descriptor, arena, TIMEOUT_MS, &resp,
                             &err) == EJ_ERR_NOT_FOUND);
        /* Bytes that are not a LoginRequest. */
        CHECK(natsConnection_Request(&reply, ej_bus_conn(bus), "ej.users.login", "\xff\xff\xff", 3,
                                     TIMEOUT_MS) == NATS_OK);
        CHECK(reply && ej_bus_reply_status(reply, &err) == EJ_ERR_INVALID);
        natsMsg_Destroy(reply);
}

/* ---- identity ------------------------------------------------------------------------------ */

static struct ej_db *tdb; /* the test database (users schema): mails, tokens, outbox */
static int spawned;       /* this test started ej-users (with its own settings) */

#define AS(uid, roles) uid, roles, "192.0.2.10"
#define R(t)           ((ProtobufCMessage **)(t))

/* The token in the newest mail to `to` (the text after "token=" up to a space or line end). */
static char *mailed_token(const char *to)
{
        static const char sql[] = "SELECT body FROM mail_outbox WHERE lower(to_addr) = lower($1) "
                                  "ORDER BY created_at DESC, id LIMIT 1";
        const char *params[] = {to};
        PGresult *res = NULL;
        struct ej_err err;
        char *out = NULL;

        if (tdb == NULL || ej_db_exec(tdb, sql, 1, params, &res, &err) != EJ_OK)
                return NULL;
        if (PQntuples(res) > 0) {
                const char *body = ej_db_val(res, 0, 0);
                const char *t = strstr(body, "token=");

                if (t) {
                        t += 6;
                        out = ej_arena_strndup(arena, t, strcspn(t, " \r\n"));
                }
        }
        PQclear(res);
        return out;
}

static long mails_to(const char *to)
{
        static const char sql[] =
            "SELECT count(*) FROM mail_outbox WHERE lower(to_addr) = lower($1)";
        const char *params[] = {to};
        PGresult *res = NULL;
        struct ej_err err;
        long n = -1;

        if (tdb && ej_db_exec(tdb, sql, 1, params, &res, &err) == EJ_OK) {
                n = (long)ej_db_int64(res, 0, 0);
                PQclear(res);
        }
        return n;
}

/* Makes every token of `user_id` expired. */
static void expire_tokens(const char *user_id)
{
        static const char sql[] = "UPDATE user_tokens SET expires_at = now() - interval '1 second' "
                                  "WHERE user_id = $1::uuid";
        const char *params[] = {user_id};
        struct ej_err err;

        CHECK(tdb && ej_db_exec(tdb, sql, 1, params, NULL, &err) == EJ_OK);
}

static Ej__Users__User *reg(const char *who, const char *password)
{
        Ej__Users__User *u = NULL;
        struct ej_err err;

        CHECK(do_register(who, email_for(who), password, &u, &err) == EJ_OK);
        return u;
}

static enum ej_status token_op(const char *verb, const char *token,
                               const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
                               struct ej_err *err)
{
        Ej__Users__TokenRequest req = EJ__USERS__TOKEN_REQUEST__INIT;

        req.token = ej_arena_strdup(arena, token ? token : "");
        return send_full(verb, &req.base, NULL, NULL, "192.0.2.10", desc, out, err, NULL);
}

static void test_orcid(void)
{
        static const struct {
                const char *orcid;
                enum ej_status want;
        } cases[] = {
            {"0000-0002-1825-0097", EJ_OK},           {"0000-0001-5109-3700", EJ_OK},
            {"0000-0002-1694-233X", EJ_OK},           {"", EJ_OK},
            {"0000-0002-1825-0098", EJ_ERR_INVALID},  {"0000-0002-1694-2330", EJ_ERR_INVALID},
            {"0000-0002-1825-009", EJ_ERR_INVALID},   {"0000 0002 1825 0097", EJ_ERR_INVALID},
            {"0000-0002-1825-00970", EJ_ERR_INVALID}, {"000X-0002-1825-0097", EJ_ERR_INVALID},
        };
        struct ej_err err;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                Ej__Users__RegisterRequest req = EJ__USERS__REGISTER_REQUEST__INIT;
                ProtobufCMessage *resp = NULL;
                enum ej_status st;

                req.name = "Orcid Person";
                req.email = email_for(ej_arena_printf(arena, "orcid%zu", i));
                req.password = "long enough";
                req.orcid = (char *)(uintptr_t)cases[i].orcid;
                req.consent = true;
                st = send_as("register_account", &req.base, NULL,
                             &ej__users__register_response__descriptor, &resp, &err);
                CHECK(st == cases[i].want);
                if (cases[i].want != EJ_OK)
                        CHECK(strcmp(err.field, "orcid") == 0);
                if (st == EJ_OK && cases[i].orcid[0]) {
                        Ej__Users__User *u = registered(req.email, req.password);

                        CHECK(u && strcmp(u->orcid, cases[i].orcid) == 0);
                }
        }
}

static void test_register_fields(void)
{
        Ej__Users__RegisterRequest req = EJ__USERS__REGISTER_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        struct ej_err err;
        char aff[302], bio[5002];

        memset(aff, 'a', 301);
        aff[301] = '\0';
        memset(bio, 'b', 5001);
        bio[5001] = '\0';
        req.name = "Field Tester";
        req.email = email_for("fields");
        req.password = "long enough";
        req.consent = true;
        req.affiliation = aff;
        CHECK(send_as("register_account", &req.base, NULL,
                      &ej__users__register_response__descriptor, &resp, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "affiliation") == 0);
        req.affiliation = "Analytical Engine Society";
        req.bio = bio;
        CHECK(send_as("register_account", &req.base, NULL,
                      &ej__users__register_response__descriptor, &resp, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "bio") == 0);
        /* Nothing half-written: the e-mail is still free. */
        req.bio = "Line one\nLine two";
        CHECK(send_as("register_account", &req.base, NULL,
                      &ej__users__register_response__descriptor, &resp, &err) == EJ_OK);
        {
                Ej__Users__User *u = registered(req.email, req.password);

                CHECK(u && strcmp(u->affiliation, "Analytical Engine Society") == 0);
                CHECK(u && !u->verified);
        }
}

static void test_verification(void)
{
        Ej__Users__User *u = reg("verify", "verify me please");
        const char *email = email_for("verify");
        ProtobufCMessage *out = NULL;
        Ej__Users__ResendVerificationRequest rs = EJ__USERS__RESEND_VERIFICATION_REQUEST__INIT;
        struct ej_err err;
        char *token, *token2;

        if (u == NULL || tdb == NULL)
                return;
        token = mailed_token(email);
        CHECK(token != NULL && strlen(token) == 43);
        /* Resending replaces the link: the old one no longer works. */
        rs.email = (char *)(uintptr_t)email;
        CHECK(send_as("resend_verification", &rs.base, NULL, &ej__common__empty__descriptor, &out,
                      &err) == EJ_OK);
        token2 = mailed_token(email);
        CHECK(token2 && token && strcmp(token, token2) != 0);
        CHECK(token_op("verify_email", token, &ej__users__user_response__descriptor, &out, &err) ==
              EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "token") == 0);
        CHECK(token_op("verify_email", token2, &ej__users__user_response__descriptor, &out, &err) ==
              EJ_OK);
        CHECK(out && ((Ej__Users__UserResponse *)out)->user->verified);
        /* Registration, the resent link, and the welcome. */
        CHECK(mails_to(email) == 3);
        CHECK(token_op("verify_email", token2, &ej__users__user_response__descriptor, &out, &err) ==
              EJ_ERR_INVALID);
        CHECK(strcmp(err.msg, "this link has already been used") == 0);
        CHECK(token_op("verify_email", "", &ej__users__user_response__descriptor, &out, &err) ==
              EJ_ERR_INVALID);
        /* Unknown addresses get the same answer. */
        rs.email = email_for("nobody-at-all");
        CHECK(send_as("resend_verification", &rs.base, NULL, &ej__common__empty__descriptor, &out,
                      &err) == EJ_OK);
        CHECK(mails_to(rs.email) == 0);
        /* An expired link. */
        u = reg("verify2", "verify me please");
        if (u == NULL)
                return;
        token = mailed_token(email_for("verify2"));
        expire_tokens(u->id);
        CHECK(token_op("verify_email", token, &ej__users__user_response__descriptor, &out, &err) ==
              EJ_ERR_INVALID);
        CHECK(strcmp(err.msg, "this link has expired") == 0);
}

static enum ej_status login_from(const char *email, const char *pw, const char *addr, bool remember,
                                 Ej__Users__LoginResponse **out, int *retry, struct ej_err *err)
{
        Ej__Users__LoginRequest req = EJ__USERS__LOGIN_REQUEST__INIT;

        req.email = (char *)(uintptr_t)email;
        req.password = (char *)(uintptr_t)pw;
        req.remember_me = remember;
        return send_full("login", &req.base, NULL, NULL, addr,
                         &ej__users__login_response__descriptor, R(out), err, retry);
}

static void test_throttle(void)
{
        Ej__Users__User *u = reg("throttle", "right password");
        const char *email = email_for("throttle");
        Ej__Users__LoginResponse *lr = NULL;
        char addr[64];
        struct ej_err err;
        int retry = 0;
        long long now = ej_now_ms();

        if (u == NULL)
                return;
        snprintf(addr, sizeof(addr), "198.51.100.%d", (int)(getpid() % 200) + 1);
        /* remember me: 30 days; the reply says so. */
        CHECK(login_from(email, "right password", addr, true, &lr, &retry, &err) == EJ_OK);
        CHECK(lr && lr->persistent && lr->expires_at_ms > now + 29LL * 86400000);
        for (int i = 0; i < 5; i++)
                CHECK(login_from(email, "wrong password", addr, false, &lr, &retry, &err) ==
                      EJ_ERR_UNAUTHENTICATED);
        CHECK(login_from(email, "right password", addr, false, &lr, &retry, &err) ==
              EJ_ERR_TOO_MANY);
        CHECK(retry > 0 && retry <= 900);
        /* Per address: 20 failures over many accounts from one address. */
        snprintf(addr, sizeof(addr), "203.0.113.%d", (int)(getpid() % 200) + 1);
        for (int i = 0; i < 20; i++)
                CHECK(login_from(email_for(ej_arena_printf(arena, "spray%d", i)), "guess123", addr,
                                 false, &lr, &retry, &err) == EJ_ERR_UNAUTHENTICATED);
        CHECK(login_from(email_for("spray-last"), "guess123", addr, false, &lr, &retry, &err) ==
              EJ_ERR_TOO_MANY);
        CHECK(retry > 0);
        /* Another address is not affected. */
        CHECK(login_from(email_for("spray-last"), "guess123", "192.0.2.99", false, &lr, &retry,
                         &err) == EJ_ERR_UNAUTHENTICATED);
}

/* Mail a caller causes is limited per recipient (EJ_MAIL_MAX_PER_RECIPIENT, 3 an hour): over the
 * limit the answer is the same and nothing is queued. */
static void test_mail_limits(void)
{
        Ej__Users__User *u = reg("quota", "quota password");
        Ej__Users__PasswordResetRequest rq = EJ__USERS__PASSWORD_RESET_REQUEST__INIT;
        ProtobufCMessage *out = NULL;
        struct ej_err err;
        long before;

        if (u == NULL)
                return;
        before = mails_to(u->email);
        CHECK(before == 1); /* the verification link, the first of three */
        rq.email = u->email;
        for (int i = 0; i < 5; i++)
                CHECK(send_full("request_password_reset", &rq.base, NULL, NULL, "192.0.2.81",
                                &ej__common__empty__descriptor, &out, &err, NULL) == EJ_OK);
        CHECK(mails_to(u->email) == 3);
}

/* A wrong current password counts against the account's sign-in throttle; once it is locked
 * the password is not checked, and the answer is that of a throttled sign-in. */
static void test_password_check_throttle(void)
{
        Ej__Users__User *u = reg("guesser", "guessed password");
        Ej__Users__ChangePasswordRequest cp = EJ__USERS__CHANGE_PASSWORD_REQUEST__INIT;
        Ej__Users__RequestErasureRequest re = EJ__USERS__REQUEST_ERASURE_REQUEST__INIT;
        Ej__Users__LoginResponse *lr = NULL;
        ProtobufCMessage *out = NULL;
        struct ej_err err;
        int retry = 0;

        if (u == NULL)
                return;
        cp.new_password = "a brand new password";
        cp.current_password = "not it";
        for (int i = 0; i < 5; i++)
                CHECK(send_full("change_password", &cp.base, AS(u->id, "author"),
                                &ej__common__empty__descriptor, &out, &err,
                                &retry) == EJ_ERR_INVALID);
        cp.current_password = "guessed password";
        CHECK(send_full("change_password", &cp.base, AS(u->id, "author"),
                        &ej__common__empty__descriptor, &out, &err, &retry) == EJ_ERR_TOO_MANY);
        CHECK(retry > 0 && retry <= 900);
        re.password = "guessed password";
        retry = 0;
        CHECK(send_full("request_erasure", &re.base, AS(u->id, "author"),
                        &ej__common__empty__descriptor, &out, &err, &retry) == EJ_ERR_TOO_MANY);
        CHECK(retry > 0);
        CHECK(login_from(u->email, "guessed password", "192.0.2.82", false, &lr, &retry, &err) ==
              EJ_ERR_TOO_MANY);
}

static Ej__Users__User *admin_get(const char *admin, const char *id)
{
        Ej__Users__UserIdRequest req = EJ__USERS__USER_ID_REQUEST__INIT;
        ProtobufCMessage *out = NULL;
        struct ej_err err;

        req.user_id = (char *)(uintptr_t)id;
        if (send_full("get_user", &req.base, AS(admin, "admin"),
                      &ej__users__user_response__descriptor, &out, &err, NULL) != EJ_OK)
                return NULL;
        return ((Ej__Users__UserResponse *)out)->user;
}

static enum ej_status role_op(const char *verb, const char *admin, const char *roles,
                              const char *id, const char *role, struct ej_err *err)
{
        Ej__Users__RoleRequest req = EJ__USERS__ROLE_REQUEST__INIT;
        ProtobufCMessage *out = NULL;

        req.user_id = (char *)(uintptr_t)id;
        req.role = (char *)(uintptr_t)role;
        return send_full(verb, &req.base, AS(admin, roles), &ej__users__user_response__descriptor,
                         &out, err, NULL);
}

static enum ej_status id_op(const char *verb, const char *caller, const char *roles, const char *id,
                            const ProtobufCMessageDescriptor *d, struct ej_err *err)
{
        Ej__Users__UserIdRequest req = EJ__USERS__USER_ID_REQUEST__INIT;
        ProtobufCMessage *out = NULL;

        req.user_id = (char *)(uintptr_t)id;
        return send_full(verb, &req.base, AS(caller, roles), d, &out, err, NULL);
}

static void test_roles_and_deactivation(natsSubscription *changed)
{
        Ej__Users__User *admin = reg("admin", "admin password");
        Ej__Users__User *u = reg("roleuser", "role password");
        Ej__Users__LoginResponse *lr = NULL;
        Ej__Users__Principal *pr = NULL;
        Ej__Users__User *got;
        natsMsg *msg = NULL;
        struct ej_err err;
        int retry;

        if (admin == NULL || u == NULL)
                return;
        CHECK(role_op("grant_role", admin->id, "admin", admin->id, "admin", &err) == EJ_OK);
        CHECK(role_op("grant_role", admin->id, "admin", u->id, "reviewer", &err) == EJ_OK);
        /* Every gateway hears of the change. */
        while (natsSubscription_NextMsg(&msg, changed, 2000) == NATS_OK) {
                int match = natsMsg_GetDataLength(msg) == 36 &&
                            memcmp(natsMsg_GetData(msg), u->id, 36) == 0;

                natsMsg_Destroy(msg);
                msg = NULL;
                if (match)
                        break;
        }
        got = admin_get(admin->id, u->id);
        CHECK(got && has_role(got->roles, got->n_roles, "reviewer") &&
              has_role(got->roles, got->n_roles, "author"));
        CHECK(role_op("grant_role", admin->id, "admin", u->id, "emperor", &err) == EJ_ERR_INVALID);
        CHECK(role_op("grant_role", u->id, "author,reviewer", u->id, "admin", &err) ==
              EJ_ERR_FORBIDDEN);
        CHECK(role_op("revoke_role", admin->id, "admin", u->id, "reviewer", &err) == EJ_OK);
        got = admin_get(admin->id, u->id);
        CHECK(got && !has_role(got->roles, got->n_roles, "reviewer"));

        /* Deactivation: sessions end, sign-in is refused with a clear message. */
        CHECK(login_from(email_for("roleuser"), "role password", "192.0.2.20", false, &lr, &retry,
                         &err) == EJ_OK);
        CHECK(id_op("deactivate_user", admin->id, "admin", u->id,
                    &ej__users__user_response__descriptor, &err) == EJ_OK);
        CHECK(lr && do_authenticate(lr->session_token, &pr, &err) == EJ_ERR_UNAUTHENTICATED);
        CHECK(login_from(email_for("roleuser"), "role password", "192.0.2.20", false, &lr, &retry,
                         &err) == EJ_ERR_FORBIDDEN);
        CHECK(strstr(err.msg, "deactivated") != NULL);
        CHECK(id_op("deactivate_user", admin->id, "admin", admin->id,
                    &ej__users__user_response__descriptor, &err) == EJ_ERR_CONFLICT);
        CHECK(id_op("reactivate_user", admin->id, "admin", u->id,
                    &ej__users__user_response__descriptor, &err) == EJ_OK);
        CHECK(login_from(email_for("roleuser"), "role password", "192.0.2.20", false, &lr, &retry,
                         &err) == EJ_OK);
        CHECK(lr && do_authenticate(lr->session_token, &pr, &err) == EJ_OK);
        CHECK(pr && !pr->verified);
}

static void test_last_admin(void)
{
        Ej__Users__ListUsersRequest lq = EJ__USERS__LIST_USERS_REQUEST__INIT;
        Ej__Users__ListUsersResponse *lr = NULL;
        Ej__Users__User *a = reg("solo-admin", "admin password");
        struct ej_err err;

        if (a == NULL)
                return;
        CHECK(role_op("grant_role", a->id, "admin", a->id, "admin", &err) == EJ_OK);
        lq.role = "admin";
        lq.status = "active";
        CHECK(send_full("list_users", &lq.base, AS(a->id, "admin"),
                        &ej__users__list_users_response__descriptor, R(&lr), &err, NULL) == EJ_OK);
        if (lr == NULL)
                return;
        /* Demote the other admins this run made; `a` is then the last one unless the database
         * holds admins of its own (a shared stack), where removal must succeed instead. */
        size_t others = 0;

        for (size_t i = 0; i < lr->n_users; i++) {
                if (strcmp(lr->users[i]->id, a->id) == 0)
                        continue;
                if (strstr(lr->users[i]->email, run_tag) != NULL)
                        CHECK(role_op("revoke_role", a->id, "admin", lr->users[i]->id, "admin",
                                      &err) == EJ_OK);
                else
                        others++;
        }
        if (others == 0) {
                CHECK(role_op("revoke_role", a->id, "admin", a->id, "admin", &err) ==
                      EJ_ERR_CONFLICT);
                CHECK(strcmp(err.field, "user_id") == 0);
        } else {
                CHECK(role_op("revoke_role", a->id, "admin", a->id, "admin", &err) == EJ_OK);
        }
}

static void test_password_flows(void)
{
        Ej__Users__User *u = reg("pwuser", "first password");
        const char *email = email_for("pwuser");
        Ej__Users__LoginResponse *s1 = NULL, *s2 = NULL;
        Ej__Users__ChangePasswordRequest cp = EJ__USERS__CHANGE_PASSWORD_REQUEST__INIT;
        Ej__Users__PasswordResetRequest rq = EJ__USERS__PASSWORD_RESET_REQUEST__INIT;
        Ej__Users__ResetPasswordRequest rp = EJ__USERS__RESET_PASSWORD_REQUEST__INIT;
        Ej__Users__Principal *pr = NULL;
        ProtobufCMessage *out = NULL;
        struct ej_err err;
        int retry;
        long before;

        if (u == NULL)
                return;
        CHECK(login_from(email, "first password", "192.0.2.30", false, &s1, &retry, &err) == EJ_OK);
        CHECK(login_from(email, "first password", "192.0.2.30", false, &s2, &retry, &err) == EJ_OK);
        if (s1 == NULL || s2 == NULL)
                return;
        cp.current_password = "not the password";
        cp.new_password = "second password";
        cp.session_token = s1->session_token;
        CHECK(send_full("change_password", &cp.base, AS(u->id, "author"),
                        &ej__common__empty__descriptor, &out, &err, NULL) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "current_password") == 0);
        cp.current_password = "first password";
        cp.new_password = "short";
        CHECK(send_full("change_password", &cp.base, AS(u->id, "author"),
                        &ej__common__empty__descriptor, &out, &err, NULL) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "new_password") == 0);
        cp.new_password = "second password";
        CHECK(send_full("change_password", &cp.base, AS(u->id, "author"),
                        &ej__common__empty__descriptor, &out, &err, NULL) == EJ_OK);
        /* The caller's session stays, the other one ends. */
        CHECK(do_authenticate(s1->session_token, &pr, &err) == EJ_OK);
        CHECK(do_authenticate(s2->session_token, &pr, &err) == EJ_ERR_UNAUTHENTICATED);
        CHECK(send_as("change_password", &cp.base, NULL, &ej__common__empty__descriptor, &out,
                      &err) == EJ_ERR_UNAUTHENTICATED);

        /* Reset: always ok; a single-use link that expires. */
        rq.email = email_for("nobody-reset");
        CHECK(send_as("request_password_reset", &rq.base, NULL, &ej__common__empty__descriptor,
                      &out, &err) == EJ_OK);
        CHECK(mails_to(rq.email) == 0);
        rq.email = (char *)(uintptr_t)email;
        before = mails_to(email);
        CHECK(send_as("request_password_reset", &rq.base, NULL, &ej__common__empty__descriptor,
                      &out, &err) == EJ_OK);
        CHECK(mails_to(email) == before + 1);
        rp.token = mailed_token(email);
        rp.new_password = "third password";
        CHECK(rp.token != NULL);
        if (rp.token == NULL)
                return;
        CHECK(send_as("reset_password", &rp.base, NULL, &ej__common__empty__descriptor, &out,
                      &err) == EJ_OK);
        CHECK(do_authenticate(s1->session_token, &pr, &err) == EJ_ERR_UNAUTHENTICATED);
        CHECK(send_as("reset_password", &rp.base, NULL, &ej__common__empty__descriptor, &out,
                      &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "token") == 0 &&
              strcmp(err.msg, "this link has already been used") == 0);
        CHECK(login_from(email, "third password", "192.0.2.31", false, &s1, &retry, &err) == EJ_OK);
        CHECK(send_as("request_password_reset", &rq.base, NULL, &ej__common__empty__descriptor,
                      &out, &err) == EJ_OK);
        rp.token = mailed_token(email);
        expire_tokens(u->id);
        CHECK(send_as("reset_password", &rp.base, NULL, &ej__common__empty__descriptor, &out,
                      &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.msg, "this link has expired") == 0);
}

/* An existing account invited to another role: a pending request the person answers; the
 * role is granted only on acceptance, and only by the invitee. */
static void test_role_invitation(const Ej__Users__User *ed, const char *guest_id)
{
        Ej__Users__InviteUserRequest iv = EJ__USERS__INVITE_USER_REQUEST__INIT;
        Ej__Users__InviteUserResponse *ir = NULL;
        Ej__Users__ListMyInvitationsRequest lq = EJ__USERS__LIST_MY_INVITATIONS_REQUEST__INIT;
        Ej__Users__ListMyInvitationsResponse *mine = NULL;
        Ej__Users__InvitationIdRequest ans = EJ__USERS__INVITATION_ID_REQUEST__INIT;
        Ej__Users__Invitation *inv = NULL;
        Ej__Users__User *u = NULL;
        struct ej_err err;

        iv.email = email_for("guest");
        iv.name = "Ignored For An Account";
        iv.role = "author";
        CHECK(send_full("invite_user", &iv.base, AS(ed->id, "editor"),
                        &ej__users__invite_user_response__descriptor, R(&ir), &err, NULL) == EJ_OK);
        CHECK(ir && !ir->already_member && strcmp(ir->name, "Guest Reviewer") == 0);
        CHECK(do_me(guest_id, &u, &err) == EJ_OK && u && u->n_roles == 1 &&
              !has_role(u->roles, u->n_roles, "author"));
        CHECK(send_as("list_my_invitations", &lq.base, guest_id,
                      &ej__users__list_my_invitations_response__descriptor, R(&mine),
                      &err) == EJ_OK);
        CHECK(mine && mine->n_invitations == 1 &&
              strcmp(mine->invitations[0]->role, "author") == 0 &&
              strcmp(mine->invitations[0]->inviter_name, ed->name) == 0);
        if (mine == NULL || mine->n_invitations != 1)
                return;
        ans.invitation_id = mine->invitations[0]->id;
        /* Someone else cannot answer it. */
        CHECK(send_as("accept_role_invitation", &ans.base, ed->id,
                      &ej__users__invitation__descriptor, R(&inv), &err) == EJ_ERR_NOT_FOUND);
        CHECK(send_as("accept_role_invitation", &ans.base, guest_id,
                      &ej__users__invitation__descriptor, R(&inv), &err) == EJ_OK);
        CHECK(inv && strcmp(inv->state, "accepted") == 0);
        CHECK(do_me(guest_id, &u, &err) == EJ_OK && u && has_role(u->roles, u->n_roles, "author"));
        CHECK(send_as("decline_role_invitation", &ans.base, guest_id,
                      &ej__users__invitation__descriptor, R(&inv), &err) == EJ_ERR_NOT_FOUND);
}

static void test_invitation_and_email_change(void)
{
        Ej__Users__User *ed = reg("editor", "editor password");
        Ej__Users__InviteUserRequest iv = EJ__USERS__INVITE_USER_REQUEST__INIT;
        Ej__Users__InviteUserResponse *ir = NULL;
        Ej__Users__AcceptInvitationRequest ai = EJ__USERS__ACCEPT_INVITATION_REQUEST__INIT;
        Ej__Users__ChangeEmailRequest ce = EJ__USERS__CHANGE_EMAIL_REQUEST__INIT;
        Ej__Users__LoginResponse *lr = NULL;
        ProtobufCMessage *out = NULL;
        const char *guest = email_for("guest");
        struct ej_err err;
        int retry;

        if (ed == NULL)
                return;
        iv.email = (char *)(uintptr_t)guest;
        iv.name = "Guest Reviewer";
        iv.role = "reviewer";
        CHECK(send_full("invite_user", &iv.base, AS(ed->id, "author"),
                        &ej__users__invite_user_response__descriptor, R(&ir), &err,
                        NULL) == EJ_ERR_FORBIDDEN);
        iv.role = "editor";
        CHECK(send_full("invite_user", &iv.base, AS(ed->id, "author,editor"),
                        &ej__users__invite_user_response__descriptor, R(&ir), &err,
                        NULL) == EJ_ERR_FORBIDDEN);
        iv.role = "reviewer";
        CHECK(send_full("invite_user", &iv.base, AS(ed->id, "author,editor"),
                        &ej__users__invite_user_response__descriptor, R(&ir), &err, NULL) == EJ_OK);
        /* The inviter learns the name and whether the person is a member, nothing more. */
        CHECK(ir && strcmp(ir->name, "Guest Reviewer") == 0 && !ir->already_member &&
              strcasecmp(ir->email, guest) == 0);
        /* No password nobody was told: sign-in is impossible until the link is used. */
        CHECK(login_from(guest, "!", "192.0.2.40", false, &lr, &retry, &err) ==
              EJ_ERR_UNAUTHENTICATED);
        ai.token = mailed_token(guest);
        ai.password = "my own password";
        CHECK(ai.token != NULL);
        if (ai.token == NULL)
                return;
        CHECK(send_as("accept_invitation", &ai.base, NULL, &ej__users__user_response__descriptor,
                      &out, &err) == EJ_OK);
        CHECK(out && ((Ej__Users__UserResponse *)out)->user->verified);
        CHECK(send_as("accept_invitation", &ai.base, NULL, &ej__users__user_response__descriptor,
                      &out, &err) == EJ_ERR_INVALID);
        CHECK(login_from(guest, "my own password", "192.0.2.40", false, &lr, &retry, &err) ==
              EJ_OK);
        /* Choosing the password accepted the invitation: the role came then. */
        CHECK(lr && lr->user->n_roles == 1 && has_role(lr->user->roles, 1, "reviewer"));
        /* Inviting an existing person to a role they hold: nothing is asked. */
        CHECK(send_full("invite_user", &iv.base, AS(ed->id, "editor"),
                        &ej__users__invite_user_response__descriptor, R(&ir), &err, NULL) == EJ_OK);
        CHECK(ir && ir->already_member && strcmp(ir->name, "Guest Reviewer") == 0);
        if (lr != NULL)
                test_role_invitation(ed, lr->user->id);

        /* E-mail change, confirmed from the new address. */
        ce.new_email = email_for("editor-new");
        ce.password = "wrong password";
        CHECK(send_full("change_email", &ce.base, AS(ed->id, "author"),
                        &ej__common__empty__descriptor, &out, &err, NULL) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "password") == 0);
        ce.password = "editor password";
        /* An address another account holds: answered as a free one, nothing mailed to it. */
        {
                long before = mails_to(guest);

                ce.new_email = (char *)(uintptr_t)guest;
                CHECK(send_full("change_email", &ce.base, AS(ed->id, "author"),
                                &ej__common__empty__descriptor, &out, &err, NULL) == EJ_OK);
                CHECK(mails_to(guest) == before);
        }
        ce.new_email = email_for("editor-new");
        CHECK(send_full("change_email", &ce.base, AS(ed->id, "author"),
                        &ej__common__empty__descriptor, &out, &err, NULL) == EJ_OK);
        CHECK(token_op("confirm_email_change", mailed_token(ce.new_email),
                       &ej__users__user_response__descriptor, &out, &err) == EJ_OK);
        CHECK(out && strcasecmp(((Ej__Users__UserResponse *)out)->user->email,
                                email_for("editor-new")) == 0);
        CHECK(login_from(email_for("editor-new"), "editor password", "192.0.2.41", false, &lr,
                         &retry, &err) == EJ_OK);
}

static void test_profile(void)
{
        Ej__Users__User *u = reg("profile", "profile password");
        Ej__Users__UpdateProfileRequest up = EJ__USERS__UPDATE_PROFILE_REQUEST__INIT;
        Ej__Users__MeResponse *me = NULL;
        struct ej_err err;

        if (u == NULL)
                return;
        up.name = "Profile Person";
        up.affiliation = "University of Somewhere";
        up.orcid = "0000-0002-1825-0097";
        up.bio = "Works on engines.";
        up.theme = "solarized";
        CHECK(send_as("update_profile", &up.base, u->id, &ej__users__me_response__descriptor,
                      R(&me), &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "theme") == 0);
        up.theme = "high-contrast";
        CHECK(send_as("update_profile", &up.base, u->id, &ej__users__me_response__descriptor,
                      R(&me), &err) == EJ_OK);
        CHECK(me && strcmp(me->user->theme, "high-contrast") == 0 &&
              strcmp(me->user->orcid, "0000-0002-1825-0097") == 0);
        up.theme = "";
        up.orcid = "0000-0002-1825-0096";
        CHECK(send_as("update_profile", &up.base, u->id, &ej__users__me_response__descriptor,
                      R(&me), &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "orcid") == 0);
        CHECK(send_as("update_profile", &up.base, NULL, &ej__users__me_response__descriptor, R(&me),
                      &err) == EJ_ERR_UNAUTHENTICATED);
}

static void test_list_users(void)
{
        Ej__Users__User *admin = reg("lister", "admin password");
        Ej__Users__ListUsersRequest lq = EJ__USERS__LIST_USERS_REQUEST__INIT;
        Ej__Common__PageRequest pg = EJ__COMMON__PAGE_REQUEST__INIT;
        Ej__Users__ListUsersResponse *lr = NULL;
        char tag[96];
        char prev[256] = "";
        size_t seen = 0;
        int pages = 0, ordered = 1;
        struct ej_err err;

        if (admin == NULL)
                return;
        snprintf(tag, sizeof(tag), "Paging Institute %s", run_tag);
        for (int i = 0; i < 23; i++) {
                Ej__Users__RegisterRequest req = EJ__USERS__REGISTER_REQUEST__INIT;
                ProtobufCMessage *resp = NULL;

                req.name = ej_arena_printf(arena, "Pager %c%02d", 'A' + (i * 7) % 23, i);
                req.email = email_for(ej_arena_printf(arena, "pager%d", i));
                req.password = "long enough";
                req.affiliation = tag;
                req.consent = true;
                CHECK(send_as("register_account", &req.base, NULL,
                              &ej__users__register_response__descriptor, &resp, &err) == EJ_OK);
                if (i < 4) {
                        Ej__Users__User *u = registered(req.email, req.password);

                        CHECK(u && role_op("grant_role", admin->id, "admin", u->id, "reviewer",
                                           &err) == EJ_OK);
                }
        }
        /* Case-insensitive substring of the affiliation; keyset pages of 10. */
        lq.query = ej_arena_printf(arena, "institute %s", run_tag);
        lq.sort = "name";
        lq.page = &pg;
        pg.limit = 10;
        for (;;) {
                CHECK(send_full("list_users", &lq.base, AS(admin->id, "admin"),
                                &ej__users__list_users_response__descriptor, R(&lr), &err,
                                NULL) == EJ_OK);
                if (lr == NULL)
                        break;
                CHECK(lr->page && lr->page->total == 23);
                for (size_t i = 0; i < lr->n_users; i++) {
                        if (strcasecmp(prev, lr->users[i]->name) > 0)
                                ordered = 0;
                        snprintf(prev, sizeof(prev), "%s", lr->users[i]->name);
                }
                seen += lr->n_users;
                pages++;
                if (lr->page->next_cursor[0] == '\0' || pages > 5)
                        break;
                pg.cursor = ej_arena_strdup(arena, lr->page->next_cursor);
        }
        CHECK(seen == 23 && pages == 3 && ordered);
        CHECK(lr && lr->total_exact);
        /* A cursor belongs to its sort. */
        lq.sort = "created";
        CHECK(send_full("list_users", &lq.base, AS(admin->id, "admin"),
                        &ej__users__list_users_response__descriptor, R(&lr), &err,
                        NULL) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "page.cursor") == 0);
        /* Descending by e-mail, role filter, search by e-mail. */
        lq.desc = true;
        lq.sort = "email";
        lq.role = "reviewer";
        pg.cursor = "";
        CHECK(send_full("list_users", &lq.base, AS(admin->id, "admin"),
                        &ej__users__list_users_response__descriptor, R(&lr), &err, NULL) == EJ_OK);
        CHECK(lr && lr->n_users == 4 && lr->page->total == 4);
        CHECK(lr && lr->n_users == 4 && strcmp(lr->users[0]->email, lr->users[3]->email) > 0);
        lq.role = "";
        lq.sort = "created";
        lq.query = ej_arena_printf(arena, "PAGER7.%s", run_tag);
        CHECK(send_full("list_users", &lq.base, AS(admin->id, "admin"),
                        &ej__users__list_users_response__descriptor, R(&lr), &err, NULL) == EJ_OK);
        CHECK(lr && lr->n_users == 1);
        lq.sort = "shoe size";
        CHECK(send_full("list_users", &lq.base, AS(admin->id, "admin"),
                        &ej__users__list_users_response__descriptor, R(&lr), &err,
                        NULL) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "sort") == 0);
        lq.sort = "name";
        pg.cursor = "not-a-cursor";
        CHECK(send_full("list_users", &lq.base, AS(admin->id, "admin"),
                        &ej__users__list_users_response__descriptor, R(&lr), &err,
                        NULL) == EJ_ERR_INVALID);
}

/* Every admin operation refuses anonymous callers and non-admins. */
static void test_role_matrix(void)
{
        static const char *const verbs[] = {
            "list_users",          "create_user",          "update_user",     "grant_role",
            "revoke_role",         "deactivate_user",      "reactivate_user", "erase_user",
            "list_activity",       "publish_consent",      "consent_stats",   "set_privacy",
            "list_mail_templates", "update_mail_template",
        };
        static const char *const roles[] = {"author", "reviewer", "editor",
                                            "author,reviewer,editor"};
        Ej__Users__User *u = reg("matrix", "matrix password");
        Ej__Common__Empty empty = EJ__COMMON__EMPTY__INIT;
        Ej__Users__UserIdRequest other = EJ__USERS__USER_ID_REQUEST__INIT;
        ProtobufCMessage *out = NULL;
        struct ej_err err;

        if (u == NULL)
                return;
        for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
                CHECK(send_full(verbs[v], &empty.base, NULL, NULL, "192.0.2.50",
                                &ej__common__empty__descriptor, &out, &err,
                                NULL) == EJ_ERR_UNAUTHENTICATED);
                for (size_t r = 0; r < sizeof(roles) / sizeof(roles[0]); r++) {
                        enum ej_status st =
                            send_full(verbs[v], &empty.base, AS(u->id, roles[r]),
                                      &ej__common__empty__descriptor, &out, &err, NULL);

                        CHECK(st == EJ_ERR_FORBIDDEN);
                        if (st != EJ_ERR_FORBIDDEN)
                                fprintf(stderr, "  %s as %s: %s\n", verbs[v], roles[r],
                                        ej_status_name(st));
                }
        }
        /* Another user's account: only an admin may read it. */
        other.user_id = "00000000-0000-4000-8000-000000000001";
        CHECK(send_full("get_user", &other.base, AS(u->id, "author,editor"),
                        &ej__users__user_response__descriptor, &out, &err,
                        NULL) == EJ_ERR_FORBIDDEN);
        other.user_id = u->id;
        CHECK(send_full("get_user", &other.base, AS(u->id, "author"),
                        &ej__users__user_response__descriptor, &out, &err, NULL) == EJ_OK);
        /* Operations on one's own account need a signed-in caller. */
        {
                static const char *const own[] = {"me",
                                                  "update_profile",
                                                  "change_password",
                                                  "change_email",
                                                  "accept_consent",
                                                  "withdraw_consent",
                                                  "export_my_data",
                                                  "request_erasure",
                                                  "invite_user"};

                for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
                        CHECK(send_full(own[i], &empty.base, NULL, NULL, "192.0.2.50",
                                        &ej__common__empty__descriptor, &out, &err,
                                        NULL) == EJ_ERR_UNAUTHENTICATED);
        }
}

static void test_consent_and_privacy(void)
{
        Ej__Users__User *admin = reg("consent-admin", "admin password");
        Ej__Users__User *u = reg("consenter", "consent password");
        Ej__Users__PublishConsentRequest pc = EJ__USERS__PUBLISH_CONSENT_REQUEST__INIT;
        Ej__Users__ConsentVersion *cv = NULL;
        Ej__Users__AcceptConsentRequest ac = EJ__USERS__ACCEPT_CONSENT_REQUEST__INIT;
        Ej__Users__SetPrivacyRequest sp = EJ__USERS__SET_PRIVACY_REQUEST__INIT;
        Ej__Users__PrivacyPolicy *pp = NULL;
        Ej__Users__RegisterRequest rr = EJ__USERS__REGISTER_REQUEST__INIT;
        Ej__Users__LoginResponse *lr = NULL;
        Ej__Users__Principal *pr = NULL;
        Ej__Common__Empty empty = EJ__COMMON__EMPTY__INIT;
        ProtobufCMessage *out = NULL;
        struct ej_err err;
        int retry;

        if (admin == NULL || u == NULL)
                return;
        pc.markdown = "We keep **your data** safe.\n\n<script>alert(1)</script>";
        pc.required = true;
        CHECK(send_full("publish_consent", &pc.base, AS(admin->id, "admin"),
                        &ej__users__consent_version__descriptor, R(&cv), &err, NULL) == EJ_OK);
        CHECK(cv && cv->version > 0 && cv->required);
        CHECK(cv && strstr(cv->html, "<strong>your data</strong>") != NULL &&
              strstr(cv->html, "<script>") == NULL);
        if (cv == NULL)
                return;
        CHECK(login_from(email_for("consenter"), "consent password", "192.0.2.60", false, &lr,
                         &retry, &err) == EJ_OK);
        CHECK(lr && do_authenticate(lr->session_token, &pr, &err) == EJ_OK);
        CHECK(pr && pr->consent_required && pr->required_consent_version == cv->version);
        ac.version = cv->version + 1;
        CHECK(send_full("accept_consent", &ac.base, AS(u->id, "author"),
                        &ej__common__empty__descriptor, &out, &err, NULL) == EJ_ERR_CONFLICT);
        ac.version = cv->version;
        CHECK(send_full("accept_consent", &ac.base, AS(u->id, "author"),
                        &ej__common__empty__descriptor, &out, &err, NULL) == EJ_OK);
        CHECK(lr && do_authenticate(lr->session_token, &pr, &err) == EJ_OK);
        CHECK(pr && !pr->consent_required);
        CHECK(send_full("withdraw_consent", &empty.base, AS(u->id, "author"),
                        &ej__common__empty__descriptor, &out, &err, NULL) == EJ_OK);
        CHECK(lr && do_authenticate(lr->session_token, &pr, &err) == EJ_OK);
        CHECK(pr && pr->consent_required);
        /* Registration without consent is refused once a notice exists. */
        rr.name = "No Consent";
        rr.email = email_for("noconsent");
        rr.password = "long enough";
        CHECK(send_as("register_account", &rr.base, NULL, &ej__users__register_response__descriptor,
                      &out, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "consent") == 0);
        rr.consent = true;
        rr.consent_version = cv->version;
        CHECK(send_as("register_account", &rr.base, NULL, &ej__users__register_response__descriptor,
                      &out, &err) == EJ_OK);
        {
                Ej__Users__User *nu = registered(rr.email, rr.password);

                CHECK(nu && nu->consent_version == cv->version);
        }

        sp.markdown = "# Privacy\n\n[click](javascript:alert(1)) <b>raw</b>";
        CHECK(send_full("set_privacy", &sp.base, AS(admin->id, "admin"),
                        &ej__users__privacy_policy__descriptor, R(&pp), &err, NULL) == EJ_OK);
        CHECK(send_as("get_privacy", &empty.base, NULL, &ej__users__privacy_policy__descriptor,
                      R(&pp), &err) == EJ_OK);
        CHECK(pp && strstr(pp->html, "<h1>Privacy</h1>") != NULL);
        CHECK(pp && strstr(pp->html, "javascript:") == NULL && strstr(pp->html, "<b>") == NULL);
        CHECK(pp && strcmp(pp->markdown, sp.markdown) == 0);
}

static Ej__Users__MailTemplate *find_template(Ej__Users__ListMailTemplatesResponse *l,
                                              const char *key)
{
        for (size_t i = 0; l && i < l->n_templates; i++)
                if (strcmp(l->templates[i]->key, key) == 0)
                        return l->templates[i];
        return NULL;
}

static void test_mail_templates(void)
{
        Ej__Users__User *admin = reg("tpl-admin", "admin password");
        Ej__Users__User *u = reg("tpl-author", "author password");
        Ej__Common__Empty empty = EJ__COMMON__EMPTY__INIT;
        Ej__Users__UpdateMailTemplateRequest up = EJ__USERS__UPDATE_MAIL_TEMPLATE_REQUEST__INIT;
        Ej__Users__ListMailTemplatesResponse *list = NULL;
        Ej__Users__MailTemplate *t = NULL, *orig = NULL, *w;
        struct ej_err err;

        if (admin == NULL || u == NULL)
                return;
        CHECK(send_full("list_mail_templates", &empty.base, AS(admin->id, "admin"),
                        &ej__users__list_mail_templates_response__descriptor, R(&list), &err,
                        NULL) == EJ_OK);
        CHECK(list && list->n_templates >= 6);
        CHECK(find_template(list, "verify_email") && find_template(list, "password_reset") &&
              find_template(list, "invitation") && find_template(list, "erasure_confirm"));
        orig = find_template(list, "welcome");
        CHECK(orig && orig->subject[0] && orig->body_text[0] && orig->updated_at[0]);
        for (size_t i = 1; list && i < list->n_templates; i++)
                CHECK(strcmp(list->templates[i - 1]->key, list->templates[i]->key) < 0);
        if (orig == NULL)
                return;

        /* Not an admin: refused whatever the other roles. */
        up.key = "welcome";
        up.subject = "Hello {{name}}";
        up.body_text = "Welcome aboard, {{name}}.";
        CHECK(send_full("update_mail_template", &up.base, AS(u->id, "author,editor"),
                        &ej__users__mail_template__descriptor, R(&t), &err,
                        NULL) == EJ_ERR_FORBIDDEN);
        CHECK(send_full("list_mail_templates", &empty.base, AS(u->id, "editor"),
                        &ej__users__list_mail_templates_response__descriptor, R(&list), &err,
                        NULL) == EJ_ERR_FORBIDDEN);

        /* An admin edits; the list shows the edit and who made it. */
        CHECK(send_full("update_mail_template", &up.base, AS(admin->id, "admin"),
                        &ej__users__mail_template__descriptor, R(&t), &err, NULL) == EJ_OK);
        CHECK(t && strcmp(t->subject, up.subject) == 0 && strcmp(t->body_text, up.body_text) == 0);
        CHECK(t && strcmp(t->updated_by, admin->id) == 0);
        CHECK(send_full("list_mail_templates", &empty.base, AS(admin->id, "admin"),
                        &ej__users__list_mail_templates_response__descriptor, R(&list), &err,
                        NULL) == EJ_OK);
        w = find_template(list, "welcome");
        CHECK(w && strcmp(w->subject, up.subject) == 0 && strcmp(w->updated_by, admin->id) == 0);

        /* A placeholder the template never fills, a malformed one, an unknown key. */
        up.body_text = "Your code: {{password}}";
        CHECK(send_full("update_mail_template", &up.base, AS(admin->id, "admin"),
                        &ej__users__mail_template__descriptor, R(&t), &err,
                        NULL) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "body_text") == 0);
        up.body_text = "fine";
        up.subject = "Broken {{name";
        CHECK(send_full("update_mail_template", &up.base, AS(admin->id, "admin"),
                        &ej__users__mail_template__descriptor, R(&t), &err,
                        NULL) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "subject") == 0);
        up.key = "no_such_template";
        up.subject = "x";
        CHECK(send_full("update_mail_template", &up.base, AS(admin->id, "admin"),
                        &ej__users__mail_template__descriptor, R(&t), &err,
                        NULL) == EJ_ERR_NOT_FOUND);

        /* Put the default text back for the other tests. */
        up.key = "welcome";
        up.subject = orig->subject;
        up.body_text = orig->body_text;
        CHECK(send_full("update_mail_template", &up.base, AS(admin->id, "admin"),
                        &ej__users__mail_template__descriptor, R(&t), &err, NULL) == EJ_OK);
}

/* Answers ej.testpart.gdpr_export as a service would. */
static void on_export_part(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *ud)
{
        Ej__Common__GdprExportPart part = EJ__COMMON__GDPR_EXPORT_PART__INIT;
        uint8_t buf[256];
        size_t n;

        (void)sub;
        (void)ud;
        part.service = "testpart";
        part.json = "{\"held\":[\"nothing much\"]}";
        n = protobuf_c_message_pack(&part.base, buf);
        natsConnection_Publish(nc, natsMsg_GetReply(msg), buf, (int)n);
        natsMsg_Destroy(msg);
}

static void test_export_and_erasure(natsSubscription *erased)
{
        Ej__Users__User *admin = reg("eraser", "admin password");
        Ej__Users__User *u = reg("exported", "export password");
        Ej__Users__User *v = reg("selferase", "erase password");
        Ej__Common__Empty empty = EJ__COMMON__EMPTY__INIT;
        Ej__Users__ExportMyDataResponse *ex = NULL;
        Ej__Users__RequestErasureRequest re = EJ__USERS__REQUEST_ERASURE_REQUEST__INIT;
        Ej__Users__ListActivityRequest la = EJ__USERS__LIST_ACTIVITY_REQUEST__INIT;
        Ej__Users__ListActivityResponse *al = NULL;
        Ej__Users__LoginResponse *lr = NULL;
        Ej__Users__User *got;
        natsSubscription *part = NULL;
        ProtobufCMessage *out = NULL;
        natsMsg *msg = NULL;
        struct ej_err err;
        int retry, saw = 0;

        if (admin == NULL || u == NULL || v == NULL)
                return;
        if (spawned)
                CHECK(natsConnection_Subscribe(&part, ej_bus_conn(bus), "ej.testpart.gdpr_export",
                                               on_export_part, NULL) == NATS_OK);
        natsConnection_Flush(ej_bus_conn(bus));
        CHECK(send_full("export_my_data", &empty.base, AS(u->id, "author"),
                        &ej__users__export_my_data_response__descriptor, R(&ex), &err,
                        NULL) == EJ_OK);
        CHECK(ex && strstr(ex->json, email_for("exported")) != NULL);
        CHECK(ex && strstr(ex->json, "\"register\"") != NULL);
        CHECK(ex && strstr(ex->json, "password") == NULL);
        CHECK(ex && strstr(ex->filename, u->id) != NULL);
        if (spawned) {
                CHECK(ex && strstr(ex->json, "nothing much") != NULL);
                /* A service that does not answer fails the export. */
                natsSubscription_Unsubscribe(part);
                natsSubscription_Destroy(part);
                natsConnection_Flush(ej_bus_conn(bus));
                CHECK(send_full("export_my_data", &empty.base, AS(u->id, "author"),
                                &ej__users__export_my_data_response__descriptor, R(&ex), &err,
                                NULL) == EJ_ERR_UNAVAILABLE);
        }

        /* Admin erasure: anonymised, row kept, event emitted, sign-in impossible. */
        CHECK(id_op("erase_user", admin->id, "admin", u->id, &ej__common__empty__descriptor,
                    &err) == EJ_OK);
        got = admin_get(admin->id, u->id);
        CHECK(got && got->erased && strcmp(got->name, "Deleted user") == 0);
        CHECK(got && strncmp(got->email, "deleted-", 8) == 0 &&
              strstr(got->email, "@invalid") != NULL);
        CHECK(got && got->n_roles == 0 && got->affiliation[0] == '\0');
        CHECK(login_from(email_for("exported"), "export password", "192.0.2.70", false, &lr, &retry,
                         &err) == EJ_ERR_UNAUTHENTICATED);
        while (natsSubscription_NextMsg(&msg, erased, 3000) == NATS_OK) {
                ProtobufCAllocator alloc = ej_arena_pb_allocator(arena);
                Ej__Common__Event *ev = (Ej__Common__Event *)protobuf_c_message_unpack(
                    &ej__common__event__descriptor, &alloc, (size_t)natsMsg_GetDataLength(msg),
                    (const uint8_t *)natsMsg_GetData(msg));
                Ej__Users__UserErased *p = ev ? (Ej__Users__UserErased *)protobuf_c_message_unpack(
                                                    &ej__users__user_erased__descriptor, &alloc,
                                                    ev->payload.len, ev->payload.data)
                                              : NULL;

                saw = p && strcmp(p->user_id, u->id) == 0 && strcmp(ev->type, "user.erased") == 0;
                natsMsg_Destroy(msg);
                msg = NULL;
                if (saw)
                        break;
        }
        CHECK(saw);
        if (tdb) {
                static const char sql[] = "SELECT count(*) FROM outbox WHERE type = 'user.erased' "
                                          "AND position(convert_to($1, 'UTF8') IN payload) > 0";
                static const char addr_sql[] =
                    "SELECT count(*) FROM activity WHERE (user_id = $1::uuid OR actor_id = "
                    "$1::uuid) AND client_addr IS NOT NULL";
                const char *params[] = {u->id};
                PGresult *res = NULL;

                CHECK(ej_db_exec(tdb, sql, 1, params, &res, &err) == EJ_OK &&
                      ej_db_int64(res, 0, 0) == 1);
                PQclear(res);
                res = NULL;
                CHECK(ej_db_exec(tdb, addr_sql, 1, params, &res, &err) == EJ_OK &&
                      ej_db_int64(res, 0, 0) == 0);
                PQclear(res);
        }
        CHECK(id_op("erase_user", admin->id, "admin", u->id, &ej__common__empty__descriptor,
                    &err) == EJ_ERR_NOT_FOUND);

        /* Self-service: confirmed by the mailed link. */
        re.password = "wrong";
        CHECK(send_full("request_erasure", &re.base, AS(v->id, "author"),
                        &ej__common__empty__descriptor, &out, &err, NULL) == EJ_ERR_INVALID);
        re.password = "erase password";
        CHECK(send_full("request_erasure", &re.base, AS(v->id, "author"),
                        &ej__common__empty__descriptor, &out, &err, NULL) == EJ_OK);
        got = admin_get(admin->id, v->id);
        CHECK(got && !got->erased);
        CHECK(token_op("confirm_erasure", mailed_token(email_for("selferase")),
                       &ej__common__empty__descriptor, &out, &err) == EJ_OK);
        got = admin_get(admin->id, v->id);
        CHECK(got && got->erased);

        /* The activity log: filtered by user and kind, newest first. */
        la.user_id = v->id;
        CHECK(send_full("list_activity", &la.base, AS(admin->id, "admin"),
                        &ej__users__list_activity_response__descriptor, R(&al), &err,
                        NULL) == EJ_OK);
        CHECK(al && al->n_entries >= 3 && strcmp(al->entries[0]->kind, "erasure") == 0);
        la.kind = "register";
        CHECK(send_full("list_activity", &la.base, AS(admin->id, "admin"),
                        &ej__users__list_activity_response__descriptor, R(&al), &err,
                        NULL) == EJ_OK);
        CHECK(al && al->n_entries == 1 && strcmp(al->entries[0]->user_id, v->id) == 0);
        la.user_id = "";
        la.kind = "login_failed";
        la.from_ms = ej_now_ms() - 3600000;
        CHECK(send_full("list_activity", &la.base, AS(admin->id, "admin"),
                        &ej__users__list_activity_response__descriptor, R(&al), &err,
                        NULL) == EJ_OK);
        CHECK(al && al->n_entries > 0 && al->entries[0]->client_addr[0] != '\0');
}

static void test_admin_create(void)
{
        Ej__Users__User *admin = reg("creator", "admin password");
        Ej__Users__CreateUserRequest cr = EJ__USERS__CREATE_USER_REQUEST__INIT;
        Ej__Users__UpdateUserRequest ur = EJ__USERS__UPDATE_USER_REQUEST__INIT;
        Ej__Users__UserResponse *out = NULL;
        char *roles[] = {"editor", "reviewer"};
        char *bad_roles[] = {"overlord"};
        struct ej_err err;

        if (admin == NULL)
                return;
        cr.name = "Created Editor";
        cr.email = email_for("created");
        cr.roles = bad_roles;
        cr.n_roles = 1;
        CHECK(send_full("create_user", &cr.base, AS(admin->id, "admin"),
                        &ej__users__user_response__descriptor, R(&out), &err,
                        NULL) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "roles") == 0);
        cr.roles = roles;
        cr.n_roles = 2;
        CHECK(send_full("create_user", &cr.base, AS(admin->id, "admin"),
                        &ej__users__user_response__descriptor, R(&out), &err, NULL) == EJ_OK);
        CHECK(out && has_role(out->user->roles, out->user->n_roles, "editor") &&
              !out->user->has_password);
        CHECK(mailed_token(cr.email) != NULL);
        CHECK(send_full("create_user", &cr.base, AS(admin->id, "admin"),
                        &ej__users__user_response__descriptor, R(&out), &err,
                        NULL) == EJ_ERR_CONFLICT);
        CHECK(strcmp(err.field, "email") == 0);
        if (out == NULL)
                return;
        ur.user_id = out->user->id;
        ur.name = "Renamed Editor";
        ur.email = email_for("created");
        ur.affiliation = "Edited Institute";
        CHECK(send_full("update_user", &ur.base, AS(admin->id, "admin"),
                        &ej__users__user_response__descriptor, R(&out), &err, NULL) == EJ_OK);
        CHECK(out && strcmp(out->user->name, "Renamed Editor") == 0);
        ur.email = email_for("creator");
        CHECK(send_full("update_user", &ur.base, AS(admin->id, "admin"),
                        &ej__users__user_response__descriptor, R(&out), &err,
                        NULL) == EJ_ERR_CONFLICT);
}

/* Publishes `n` logins of `email` with replies to `inbox`, without waiting for them. */
static void publish_logins(const char *inbox, const char *email, const char *pw, int n)
{
        Ej__Users__LoginRequest req = EJ__USERS__LOGIN_REQUEST__INIT;
        size_t len;
        uint8_t *data;

        req.email = (char *)(uintptr_t)email;
        req.password = (char *)(uintptr_t)pw;
        len = protobuf_c_message_get_packed_size(&req.base);
        data = ej_arena_alloc(arena, len + 1);
        protobuf_c_message_pack(&req.base, data);
        for (int i = 0; i < n; i++)
                CHECK(natsConnection_PublishRequest(ej_bus_conn(bus), "ej.users.login", inbox, data,
                                                    (int)len) == NATS_OK);
        CHECK(natsConnection_Flush(ej_bus_conn(bus)) == NATS_OK);
}

struct burst_result {
        int ok;
        int too_many;
        int retry_after_1; /* too_many answers carrying Ej-Retry-After: 1 */
        int other;
};

/* Collects `n` answers from `sub` (waiting at most `wait_ms` in all). */
static void collect_logins(natsSubscription *sub, int n, long long wait_ms, struct burst_result *r)
{
        long long deadline = ej_mono_ms() + wait_ms;

        memset(r, 0, sizeof(*r));
        for (int got = 0; got < n && ej_mono_ms() < deadline; got++) {
                natsMsg *m = NULL;
                const char *v = NULL;
                struct ej_err err;
                enum ej_status st;

                if (natsSubscription_NextMsg(&m, sub, (int64_t)(deadline - ej_mono_ms())) !=
                    NATS_OK)
                        break;
                st = ej_bus_reply_status(m, &err);
                if (st == EJ_OK) {
                        r->ok++;
                } else if (st == EJ_ERR_TOO_MANY) {
                        r->too_many++;
                        if (natsMsgHeader_Get(m, EJ_HDR_RETRY_AFTER, &v) == NATS_OK && v &&
                            strcmp(v, "1") == 0)
                                r->retry_after_1++;
                } else {
                        fprintf(stderr, "slow pool: login answered %s: %s\n", ej_status_name(st),
                                err.msg);
                        r->other++;
                }
                natsMsg_Destroy(m);
        }
}

/* Password hashing runs on the service's slow pool: a burst of logins leaves the quick
 * operations (authenticate, me) on the workers answering at once, and a burst larger than the
 * slow queue is refused at once with too_many and Retry-After 1 rather than queued. */
static void test_slow_pool(void)
{
        const char *pw = "burst of logins";
        Ej__Users__User *u = reg("burst", pw);
        Ej__Users__LoginResponse *login = NULL;
        Ej__Users__Principal *pr = NULL;
        Ej__Users__User *me = NULL;
        natsSubscription *sub = NULL;
        struct burst_result r;
        struct ej_err err;
        char inbox[64];
        char *token;
        long long t0, hash_ms = 0, worst_ms = 0, burst_ms, limit_ms;

        if (u == NULL)
                return;
        /* One login at rest: about the time of one argon2id verification. */
        for (int i = 0; i < 2; i++) {
                t0 = ej_mono_ms();
                CHECK(do_login(u->email, pw, &login, &err) == EJ_OK);
                if (i == 0 || ej_mono_ms() - t0 < hash_ms)
                        hash_ms = ej_mono_ms() - t0;
        }
        if (login == NULL)
                return;
        token = ej_arena_strdup(arena, login->session_token);
        snprintf(inbox, sizeof(inbox), "_INBOX.burst-%s", run_tag);
        CHECK(natsConnection_SubscribeSync(&sub, ej_bus_conn(bus), inbox) == NATS_OK);
        CHECK(natsSubscription_SetPendingLimits(sub, -1, -1) == NATS_OK);

        /* 24 logins at once (about 12 hash times of work for two slow threads); meanwhile the
         * workers answer authenticate and me as fast as at rest, not after the logins. */
        t0 = ej_mono_ms();
        publish_logins(inbox, u->email, pw, 24);
        for (int i = 0; i < 6; i++) {
                long long t1 = ej_mono_ms();

                CHECK(do_authenticate(token, &pr, &err) == EJ_OK);
                CHECK(do_me(u->id, &me, &err) == EJ_OK);
                if (ej_mono_ms() - t1 > worst_ms)
                        worst_ms = ej_mono_ms() - t1;
        }
        collect_logins(sub, 24, 60000, &r);
        burst_ms = ej_mono_ms() - t0;
        limit_ms = 200 + 2 * hash_ms;
        fprintf(stderr,
                "slow pool: one login %lld ms; 24 at once %lld ms; authenticate+me during "
                "them at worst %lld ms (limit %lld)\n",
                hash_ms, burst_ms, worst_ms, limit_ms);
        CHECK(r.ok == 24);
        CHECK(worst_ms < limit_ms);

        /* More than the slow queue (EJ_SLOW_QUEUE, 32 here, 64 by default) plus the pool: the
         * surplus is refused at once, the rest is served. */
        publish_logins(inbox, u->email, pw, 100);
        collect_logins(sub, 100, 120000, &r);
        fprintf(stderr, "slow pool: 100 at once: %d ok, %d too_many\n", r.ok, r.too_many);
        CHECK(r.ok + r.too_many == 100);
        CHECK(r.too_many > 0 && r.retry_after_1 == r.too_many);
        CHECK(r.ok >= 2 && r.ok <= 100 - 30);
        natsSubscription_Destroy(sub);
}

/* The runtime answers the personal-data operations of service Gdpr for a service that gives no
 * handler of its own (users gathers its own part in export_my_data): empty, and for services
 * only. */
static void test_gdpr_defaults(void)
{
        Ej__Common__GdprExportRequest xr = EJ__COMMON__GDPR_EXPORT_REQUEST__INIT;
        Ej__Common__GdprEraseRequest er = EJ__COMMON__GDPR_ERASE_REQUEST__INIT;
        Ej__Common__GdprExportPart *part = NULL;
        ProtobufCMessage *resp = NULL;
        struct ej_err err;

        xr.user_id = er.user_id = "00000000-0000-4000-8000-000000000001";
        CHECK(send_as("gdpr_export", &xr.base, NULL, &ej__common__gdpr_export_part__descriptor,
                      R(&part), &err) == EJ_OK);
        CHECK(part && strcmp(part->service, "users") == 0 && strcmp(part->json, "{}") == 0);
        CHECK(send_as("gdpr_erase", &er.base, NULL, &ej__common__empty__descriptor, &resp, &err) ==
              EJ_OK);
        /* A person's request (through the gateway it would carry Ej-User-Id) is refused. */
        CHECK(send_as("gdpr_export", &xr.base, xr.user_id,
                      &ej__common__gdpr_export_part__descriptor, R(&part),
                      &err) == EJ_ERR_FORBIDDEN);
        CHECK(send_as("gdpr_erase", &er.base, xr.user_id, &ej__common__empty__descriptor, &resp,
                      &err) == EJ_ERR_FORBIDDEN);
        /* The old dotted subject of an operation is nobody's. */
        CHECK(send_as("register", NULL, NULL, &ej__common__empty__descriptor, &resp, &err) ==
              EJ_ERR_NOT_FOUND);
}

/* True when some ej-users answers (an empty token is refused as unauthenticated). */
static bool service_answers(void)
{
        Ej__Users__Principal *pr = NULL;
        struct ej_err err;

        return do_authenticate("", &pr, &err) == EJ_ERR_UNAUTHENTICATED;
}

/* SIGTERM must stop the service cleanly (exit 0) within a couple of seconds. */
static void stop_service(pid_t pid)
{
        long long took = 0;

        CHECK(th_service_stop(pid, 5000, &took));
        CHECK(took < 3000);
        /* Gone means gone: nobody answers any more. */
        CHECK(!service_answers());
}

int main(int argc, char **argv)
{
        const char *url = getenv("EJ_TEST_NATS_URL");
        const char *db_url = getenv("EJ_TEST_DB_URL");
        const char *const env[] = {
            "EJ_LOG_LEVEL=warn",         "EJ_SLOW_WORKERS=2",           "EJ_SLOW_QUEUE=32",
            "EJ_GDPR_SERVICES=testpart", "EJ_MAIL_MAX_PER_ADDR=100000", NULL};
        pid_t service = 0;
        natsSubscription *events = NULL;
        natsSubscription *revoked = NULL;
        natsSubscription *changed = NULL;
        natsSubscription *erased = NULL;
        struct ej_err err;

        ej_log_init("test_users_service", "error");
        ej_ids_init(NULL);
        ej_err_clear(&err);
        bus = th_bus_connect("test_users_service");
        CHECK(bus != NULL);
        if (bus == NULL)
                return check_report();
        arena = ej_arena_create(0);
        if (!service_answers()) {
                if (db_url == NULL || db_url[0] == '\0') {
                        fprintf(stderr,
                                "test_users_service: no ej-users answers at %s and "
                                "EJ_TEST_DB_URL is not set to start one\n",
                                url);
                        CHECK(db_url != NULL);
                        goto out;
                }
                service = th_service_start(argc > 0 ? argv[0] : "test_users_service", "users", env,
                                           service_answers);
                CHECK(service > 0);
                spawned = service > 0;
                if (service <= 0)
                        goto out;
        }
        th_run_tag(run_tag, sizeof(run_tag));

        CHECK(natsConnection_SubscribeSync(&events, ej_bus_conn(bus), "ej.evt.users.registered") ==
              NATS_OK);
        CHECK(natsConnection_SubscribeSync(&revoked, ej_bus_conn(bus),
                                           "ej.bcast.session.revoked") == NATS_OK);
        natsConnection_Flush(ej_bus_conn(bus));

        if (db_url && db_url[0] && ej_db_connect(&tdb, db_url, "users", 5000, &err) != EJ_OK)
                fprintf(stderr, "test_users_service: no test database: %s\n", err.msg);
        CHECK(tdb != NULL);
        CHECK(natsConnection_SubscribeSync(&changed, ej_bus_conn(bus),
                                           "ej.bcast.session.user_changed") == NATS_OK);
        CHECK(natsConnection_SubscribeSync(&erased, ej_bus_conn(bus), "ej.evt.users.erased") ==
              NATS_OK);
        natsConnection_Flush(ej_bus_conn(bus));

        test_register(events);
        test_sessions(revoked);
        test_protocol();
        test_orcid();
        test_register_fields();
        test_verification();
        test_throttle();
        test_mail_limits();
        test_password_check_throttle();
        test_roles_and_deactivation(changed);
        test_password_flows();
        test_invitation_and_email_change();
        test_profile();
        test_list_users();
        test_role_matrix();
        test_admin_create();
        test_export_and_erasure(erased);
        test_consent_and_privacy();
        test_last_admin();
        test_mail_templates();
        test_slow_pool();
        test_gdpr_defaults();

        if (service > 0)
                stop_service(service);
out:
        natsSubscription_Destroy(events);
        natsSubscription_Destroy(revoked);
        natsSubscription_Destroy(changed);
        natsSubscription_Destroy(erased);
        ej_db_destroy(tdb);
        ej_arena_destroy(arena);
        ej_bus_destroy(bus, 1000);
        return check_report();
}
