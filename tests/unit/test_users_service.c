/*
 * Tests of the users service over the bus: real requests to a running ej-users (with its
 * PostgreSQL and nats-server), as the gateway sends them.
 *
 * EJ_TEST_NATS_URL is the URL of a nats-server (tests/run-all.sh starts one and sets it); the
 * test fails when it is unset. When no ej-users answers there, the test starts one itself (the
 * ej-users binary in ../bin next to this test's binary, or $EJ_USERS_BIN) against
 * EJ_TEST_DB_URL, and at the end stops it with SIGTERM and checks that it exits cleanly and
 * promptly. Every run registers new accounts under e-mail addresses unique to the run.
 */
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.pb-c.h"
#include "users.pb-c.h"

#include "bus.h"
#include "check.h"
#include "ids.h"
#include "log.h"

#define TIMEOUT_MS 5000

extern char **environ;

static struct ej_bus *bus;
static struct ej_arena *arena;
static char run_tag[48];

/* Sends `req` to ej.users.<verb> with Ej-User-Id `user_id` (NULL: anonymous) and unpacks the
 * reply as `resp_desc`. */
static enum ej_status send_as(const char *verb, const ProtobufCMessage *req, const char *user_id,
                              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                              struct ej_err *err)
{
        char subject[64];
        size_t len = req ? protobuf_c_message_get_packed_size(req) : 0;
        uint8_t *data = xmalloc(len + 1);
        natsMsg *msg = NULL;
        natsMsg *reply = NULL;
        ProtobufCAllocator alloc = ej_arena_pb_allocator(arena);
        enum ej_status st;
        natsStatus s;

        *resp = NULL;
        ej_err_clear(err);
        snprintf(subject, sizeof(subject), "ej.users.%s", verb);
        if (req)
                protobuf_c_message_pack(req, data);
        s = natsMsg_Create(&msg, subject, NULL, (const char *)data, (int)len);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(msg, EJ_HDR_REQUEST_ID, "test-users");
        if (s == NATS_OK && user_id)
                s = natsMsgHeader_Set(msg, EJ_HDR_USER_ID, user_id);
        if (s == NATS_OK)
                s = natsConnection_RequestMsg(&reply, ej_bus_conn(bus), msg, TIMEOUT_MS);
        if (s != NATS_OK) {
                st = ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "%s: %s", subject,
                                natsStatus_GetText(s));
                goto out;
        }
        st = ej_bus_reply_status(reply, err);
        if (st == EJ_OK) {
                *resp = protobuf_c_message_unpack(resp_desc, &alloc,
                                                  (size_t)natsMsg_GetDataLength(reply),
                                                  (const uint8_t *)natsMsg_GetData(reply));
                if (*resp == NULL)
                        st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "bad reply");
        }
out:
        natsMsg_Destroy(reply);
        natsMsg_Destroy(msg);
        free(data);
        return st;
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
        st = ej_bus_request(bus, "ej.users.register", &req.base, "test-users",
                            &ej__users__register_response__descriptor, arena, TIMEOUT_MS, &resp,
                            err);
        *user = st == EJ_OK ? ((Ej__Users__RegisterResponse *)resp)->user : NULL;
        return st;
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
        CHECK(do_register("Someone Else", spaced, "another password", &dup, &err) ==
              EJ_ERR_CONFLICT);
        CHECK(strcmp(err.field, "email") == 0);

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

/* True when some ej-users answers (an empty token is refused as unauthenticated). */
static int service_answers(void)
{
        Ej__Users__Principal *pr = NULL;
        struct ej_err err;

        return do_authenticate("", &pr, &err) == EJ_ERR_UNAUTHENTICATED;
}

/* Starts ej-users against the test database and waits until it answers; -1 on failure. */
static pid_t start_service(const char *argv0, const char *nats_url, const char *db_url)
{
        char self[1024];
        char path[1200];
        const char *bin = getenv("EJ_USERS_BIN");
        char *argv[] = {path, NULL};
        char **envp;
        size_t n = 0, k = 0;
        pid_t pid = -1;
        long long deadline;

        snprintf(self, sizeof(self), "%s", argv0);
        if (bin && bin[0])
                snprintf(path, sizeof(path), "%s", bin);
        else
                snprintf(path, sizeof(path), "%s/../bin/ej-users", dirname(self));
        while (environ[n])
                n++;
        envp = xcalloc(n + 6, sizeof(*envp));
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], "EJ_", 3) != 0)
                        envp[k++] = environ[i];
        envp[k++] = ej_arena_printf(arena, "EJ_NATS_URL=%s", nats_url);
        envp[k++] = ej_arena_printf(arena, "EJ_DB_URL=%s", db_url);
        envp[k++] = ej_arena_printf(arena, "EJ_LOG_LEVEL=warn");
        envp[k++] = ej_arena_printf(arena, "EJ_WORKERS=2");
        if (posix_spawn(&pid, path, NULL, NULL, argv, envp) != 0) {
                fprintf(stderr, "test_users_service: cannot start %s\n", path);
                pid = -1;
        }
        free(envp);
        deadline = ej_mono_ms() + 20000;
        while (pid > 0 && !service_answers()) {
                const struct timespec pause = {0, 100 * 1000000L};

                if (ej_mono_ms() > deadline || waitpid(pid, NULL, WNOHANG) == pid) {
                        fprintf(stderr, "test_users_service: %s did not come up\n", path);
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        return -1;
                }
                nanosleep(&pause, NULL);
        }
        return pid;
}

/* SIGTERM must stop the service cleanly (exit 0) within a couple of seconds. */
static void stop_service(pid_t pid)
{
        long long t0 = ej_mono_ms();
        int status = 0;
        pid_t r = 0;

        kill(pid, SIGTERM);
        while ((r = waitpid(pid, &status, WNOHANG)) == 0 && ej_mono_ms() - t0 < 5000) {
                const struct timespec pause = {0, 20 * 1000000L};

                nanosleep(&pause, NULL);
        }
        CHECK(r == pid);
        if (r != pid) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                return;
        }
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(ej_mono_ms() - t0 < 3000);
        /* Gone means gone: nobody answers any more. */
        CHECK(!service_answers());
}

int main(int argc, char **argv)
{
        const char *url = getenv("EJ_TEST_NATS_URL");
        const char *db_url = getenv("EJ_TEST_DB_URL");
        struct ej_bus_options opt = {NULL, "ej-test-users", 3000, false};
        pid_t service = 0;
        natsSubscription *events = NULL;
        natsSubscription *revoked = NULL;
        struct ej_err err;
        char rnd[16];

        ej_log_init("test_users_service", "error");
        ej_ids_init(NULL);
        if (url == NULL || url[0] == '\0') {
                fprintf(stderr, "test_users_service: EJ_TEST_NATS_URL is not set (needs a "
                                "running ej-users and nats-server)\n");
                CHECK(url != NULL && url[0] != '\0');
                return check_report();
        }
        opt.url = url;
        ej_err_clear(&err);
        if (ej_bus_connect(&bus, &opt, &err) != EJ_OK) {
                fprintf(stderr, "test_users_service: %s\n", err.msg);
                CHECK(bus != NULL);
                return check_report();
        }
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
                service = start_service(argc > 0 ? argv[0] : "test_users_service", url, db_url);
                CHECK(service > 0);
                if (service <= 0)
                        goto out;
        }
        ej_random_token(rnd, sizeof(rnd), 6);
        for (char *p = rnd; *p; p++)
                if (*p == '-' || *p == '_')
                        *p = 'x';
        snprintf(run_tag, sizeof(run_tag), "%ld%s", (long)getpid(), rnd);

        CHECK(natsConnection_SubscribeSync(&events, ej_bus_conn(bus), "ej.evt.users.registered") ==
              NATS_OK);
        CHECK(natsConnection_SubscribeSync(&revoked, ej_bus_conn(bus),
                                           "ej.bcast.session.revoked") == NATS_OK);
        natsConnection_Flush(ej_bus_conn(bus));

        test_register(events);
        test_sessions(revoked);
        test_protocol();

        if (service > 0)
                stop_service(service);
out:
        natsSubscription_Destroy(events);
        natsSubscription_Destroy(revoked);
        ej_arena_destroy(arena);
        ej_bus_destroy(bus, 1000);
        return check_report();
}
