/*
 * auth.c: who calls; see auth.h.
 */
#include "auth.h"

#include <string.h>

#include "ids.h"
#include "session.h"
#include "upstream.h"
#include "users.pb-c.h"

#define AUTH_SUBJECT  "ej.users.authenticate"
#define TOKEN_MAX_LEN 512

/* The comma-joined `roles`, in `arena`. */
static const char *join_roles(struct ej_arena *arena, size_t n, char *const *roles)
{
        size_t len = 0;
        char *s, *p;

        for (size_t i = 0; i < n; i++)
                len += strlen(roles[i]) + 1;
        s = ej_arena_alloc(arena, len + 1);
        p = s;
        for (size_t i = 0; i < n; i++) {
                size_t k = strlen(roles[i]);

                if (i)
                        *p++ = ',';
                memcpy(p, roles[i], k);
                p += k;
        }
        *p = '\0';
        return s;
}

struct cookie_count {
        const char *name;
        unsigned n;
};

static enum MHD_Result count_cookie(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
        struct cookie_count *c = cls;

        (void)kind;
        (void)value;
        if (strcmp(key, c->name) == 0)
                c->n++;
        return MHD_YES;
}

enum gw_who gw_auth_resolve(struct gw_req *req, bool required)
{
        struct gw *gw = req->gw;
        struct gw_principal p;
        const char *tok =
            MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, gw->cfg->cookie_name);
        struct cookie_count cc = {gw->cfg->cookie_name, 0};
        bool have;

        /* Two session cookies (one planted for a parent domain, say): neither is taken, and
         * the answer clears ours. */
        MHD_get_connection_values(req->conn, MHD_COOKIE_KIND, count_cookie, &cc);
        if (cc.n > 1)
                tok = "";
        have = tok != NULL && tok[0] != '\0' && strlen(tok) <= TOKEN_MAX_LEN;

        req->auth_required = required;
        if (!have) {
                if (required)
                        return GW_WHO_MISSING;
                /* Anonymous; an unusable cookie is cleared. */
                req->drop_cookie = (tok != NULL && tok[0] != '\0') || cc.n > 1;
                return GW_WHO_KNOWN;
        }
        req->token = ej_arena_strdup(req->arena, tok);
        ej_sha256_hex(tok, strlen(tok), req->token_hash);
        if (!gw_sessions_get(gw->sessions, req->token_hash, req->arena, &p))
                return GW_WHO_ASK;
        req->user_id = p.user_id;
        req->roles = p.roles;
        req->consent_required = p.consent_required;
        req->verified = p.verified;
        return GW_WHO_KNOWN;
}

enum answer {
        ANSWER_OK = 0, /* req holds the principal (cached unless the lookup raced an eviction) */
        ANSWER_STALE,  /* req holds the principal, but an eviction raced the lookup: not cached */
        ANSWER_NOBODY, /* the session is not valid (unknown, expired, revoked) */
        ANSWER_FAILED, /* no answer or a bad one: the reply or outcome says why */
};

/* Resolves the principal from an ej.users.authenticate reply. ANSWER_NOBODY and ANSWER_FAILED
 * leave the reply (or the outcome) for gw_upstream_status. */
static enum answer take_principal(struct gw_req *req)
{
        ProtobufCAllocator al = ej_arena_pb_allocator(req->arena);
        Ej__Users__Principal *p;
        struct ej_err err = {0};
        enum ej_status st;
        bool fresh;

        if (req->outcome != EJ_OK || natsMsg_IsNoResponders(req->reply))
                return ANSWER_FAILED;
        st = ej_bus_reply_status(req->reply, &err);
        if (st != EJ_OK)
                return st == EJ_ERR_UNAUTHENTICATED ? ANSWER_NOBODY : ANSWER_FAILED;
        p = ej__users__principal__unpack(&al, (size_t)natsMsg_GetDataLength(req->reply),
                                         (const uint8_t *)natsMsg_GetData(req->reply));
        natsMsg_Destroy(req->reply);
        req->reply = NULL;
        if (p == NULL) {
                req->outcome = ej_err_set(&req->outcome_err, EJ_ERR_INTERNAL, NULL,
                                          "the users service sent a bad principal");
                return ANSWER_FAILED;
        }
        if (p->user_id == NULL || p->user_id[0] == '\0') {
                req->outcome =
                    ej_err_set(&req->outcome_err, EJ_ERR_UNAUTHENTICATED, NULL, "sign in first");
                return ANSWER_NOBODY;
        }
        {
                struct gw_principal gp = {.user_id = p->user_id,
                                          .roles = join_roles(req->arena, p->n_roles, p->roles),
                                          .consent_required = p->consent_required,
                                          .verified = p->verified,
                                          .expires_at_ms = p->expires_at_ms};

                req->user_id = gp.user_id;
                req->roles = gp.roles;
                req->consent_required = gp.consent_required;
                req->verified = gp.verified;
                fresh = gw_sessions_put(req->gw->sessions, req->token_hash, &gp, req->auth_gen);
        }
        return fresh ? ANSWER_OK : ANSWER_STALE;
}

static void send_authenticate(struct gw_req *req);

/* upstream.c's completion of ej.users.authenticate. */
static void on_answer(struct gw_req *req)
{
        enum answer a = take_principal(req);
        enum ej_status st = EJ_OK;

        if (a == ANSWER_STALE && !req->auth_retried) {
                /* The user (or this token, or everyone) changed while the lookup was out: the
                 * answer may predate the change, so ask once more. A second race is answered
                 * with the second lookup, which began after the first change was known here. */
                req->auth_retried = true;
                req->user_id = NULL;
                req->roles = NULL;
                req->consent_required = false;
                req->verified = false;
                send_authenticate(req);
                return;
        }
        if (a == ANSWER_NOBODY && !req->auth_required) {
                /* A dead session where anyone may call: go on anonymously, clear it. */
                natsMsg_Destroy(req->reply);
                req->reply = NULL;
                req->outcome = EJ_OK;
                req->outcome_err = (struct ej_err){0};
                req->token = NULL;
                req->drop_cookie = true;
                a = ANSWER_OK;
        }
        if (a == ANSWER_NOBODY)
                st = EJ_ERR_UNAUTHENTICATED;
        else if (a == ANSWER_FAILED) {
                struct ej_err err = {0};

                st = gw_upstream_status(req, &err);
                if (st == EJ_OK)
                        st = EJ_ERR_INTERNAL;
        }
        req->auth_done(req, st);
}

/* Sends ej.users.authenticate for req->token, noting the session generation first so that an
 * eviction racing the lookup is seen when the answer comes (gw_sessions_put). */
static void send_authenticate(struct gw_req *req)
{
        Ej__Users__AuthenticateRequest ar = EJ__USERS__AUTHENTICATE_REQUEST__INIT;
        const struct gw_route *r = req->route;
        int timeout = r && r->timeout_ms ? r->timeout_ms : req->gw->cfg->request_timeout_ms;
        size_t n;
        uint8_t *data;

        ar.session_token = (char *)ej_arena_strdup(req->arena, req->token);
        n = protobuf_c_message_get_packed_size(&ar.base);
        data = ej_arena_alloc(req->arena, n + 1);
        protobuf_c_message_pack(&ar.base, data);
        req->auth_gen = gw_sessions_generation(req->gw->sessions);
        gw_upstream_send(req->gw->up, req, AUTH_SUBJECT, data, n, timeout, on_answer);
}

void gw_auth_ask(struct gw_req *req, void (*done)(struct gw_req *req, enum ej_status st))
{
        req->auth_done = done;
        send_authenticate(req);
}
