/*
 * handlers.c: the hooks of the route table: calls the gateway answers itself (/healthz,
 * /readyz, /api/site; /metrics is on the admin listener, main.c), the session cookie of login,
 * logout and password change, the GDPR export as a download; plus the query-parameter binding.
 * Everything else is plain transcoding and needs no code here.
 */
#include "handlers.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gateway.h"
#include "ids.h"
#include "pbjson.h"
#include "render.h"
#include "session.h"
#include "upstream.h"
#include "users.pb-c.h"

enum ej_status gw_bind_query(ProtobufCMessage *msg, const char *key, const char *value,
                             struct ej_arena *arena, struct ej_err *err)
{
        const ProtobufCMessageDescriptor *d = msg->descriptor;
        enum ej_status st = ej_pbjson_set_field(msg, key, ej_str_c(value), arena, err);

        if (st != EJ_ERR_NOT_FOUND)
                return st;
        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                const ProtobufCMessageDescriptor *sub = f->descriptor;
                ProtobufCMessage **slot;

                if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED ||
                    protobuf_c_message_descriptor_get_field_by_name(sub, key) == NULL)
                        continue;
                slot = (ProtobufCMessage **)(void *)((char *)msg + f->offset);
                if (*slot == NULL) {
                        *slot = ej_arena_calloc(arena, sub->sizeof_message);
                        protobuf_c_message_init(sub, *slot);
                }
                return ej_pbjson_set_field(*slot, key, ej_str_c(value), arena, err);
        }
        return ej_err_set(err, EJ_ERR_INVALID, key, "unknown query parameter \"%s\"", key);
}

static void healthz(struct gw_req *req, struct gw_out *out)
{
        (void)req;
        ej_buf_append_c(&out->body, "{\"status\":\"ok\"}");
}

/* Ready = NATS connected and some replica of every service answering (upstream.h); liveness
 * is /healthz. */
static void readyz(struct gw_req *req, struct gw_out *out)
{
        char why[128] = "starting";

        if (req->gw->up && gw_upstream_ready(req->gw->up, why, sizeof(why)))
                ej_buf_append_c(&out->body, "{\"status\":\"ready\"}");
        else
                gw_out_error(out, req, EJ_ERR_UNAVAILABLE, why, NULL);
}

static void site(struct gw_req *req, struct gw_out *out)
{
        const char *name = req->gw->cfg->site_name;

        ej_buf_append_c(&out->body, "{\"name\":");
        ej_buf_append_json_str(&out->body, name, strlen(name));
        ej_buf_append_c(&out->body, "}");
}

/* Login: the token leaves the JSON and becomes the cookie. "Remember me" (the reply's
 * `persistent`) gives the cookie a Max-Age up to the session's expiry; otherwise it is a
 * browser-session cookie (the session still ends server-side at its own expiry). The session
 * is not cached here: the reply does not say whether consent is owed, so the first call
 * resolves it through ej.users.authenticate. */
static void login_respond(struct gw_req *req, const ProtobufCMessage *resp, struct gw_out *out)
{
        const Ej__Users__LoginResponse *lr = (const Ej__Users__LoginResponse *)resp;
        long long ttl_s = -1;

        if (lr == NULL)
                return;
        out->skip = gw_hook_login.skip;
        if (lr->session_token == NULL || lr->session_token[0] == '\0')
                return;
        if (lr->persistent && lr->expires_at_ms > 0) {
                ttl_s = (lr->expires_at_ms - ej_now_ms()) / 1000;
                if (ttl_s < 0)
                        ttl_s = 0;
        }
        out->set_cookie = gw_session_cookie(req, lr->session_token, ttl_s);
}

/* Logout: the token to revoke is the cookie's, whatever the body says. */
static void logout_prepare(struct gw_req *req, ProtobufCMessage *msg)
{
        Ej__Users__LogoutRequest *lr = (Ej__Users__LogoutRequest *)msg;

        lr->session_token = ej_arena_strdup(req->arena, req->token ? req->token : "");
}

static void logout_respond(struct gw_req *req, const ProtobufCMessage *resp, struct gw_out *out)
{
        /* Signed out here whether the service revoked it now or it was already gone. */
        if (resp != NULL || out->status == 401) {
                out->set_cookie = gw_session_cookie(req, NULL, 0);
                if (req->token)
                        gw_sessions_evict(req->gw->sessions, req->token_hash);
        }
}

/* Password change: the session kept is the caller's own (the cookie's); the service revokes the
 * others. */
static void password_prepare(struct gw_req *req, ProtobufCMessage *msg)
{
        Ej__Users__ChangePasswordRequest *cr = (Ej__Users__ChangePasswordRequest *)msg;

        cr->session_token = ej_arena_strdup(req->arena, req->token ? req->token : "");
}

/* True when `name` is a plain file name we can put in a header unquoted-safe. */
static bool filename_ok(const char *name)
{
        size_t n = 0;

        for (; name && name[n]; n++) {
                char c = name[n];

                if (n >= 128 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return n > 0 && name[0] != '.';
}

/* GDPR export: the service's JSON document is the body, as a download. */
static void export_respond(struct gw_req *req, const ProtobufCMessage *resp, struct gw_out *out)
{
        const Ej__Users__ExportMyDataResponse *er = (const Ej__Users__ExportMyDataResponse *)resp;
        const char *name;

        if (er == NULL)
                return;
        if (filename_ok(er->filename)) {
                name = er->filename;
        } else {
                char day[16];
                time_t now = time(NULL);
                struct tm tm;

                gmtime_r(&now, &tm);
                strftime(day, sizeof(day), "%Y-%m-%d", &tm);
                name = ej_arena_printf(req->arena, "easyjournal-export-%s.json", day);
        }
        ej_buf_reset(&out->body);
        if (er->json && er->json[0])
                ej_buf_append_c(&out->body, er->json);
        else
                ej_buf_append_c(&out->body, "{}");
        out->disposition = ej_arena_printf(req->arena, "attachment; filename=\"%s\"", name);
}

/* The .doc of each hook says what it changes in the API description (openapi.c). */
static const char *const login_skip[] = {"session_token", NULL};

const struct gw_hook gw_hook_healthz = {
    .local = healthz,
    .doc = {.summary = "Liveness",
            .schema = "{\"type\":\"object\",\"required\":[\"status\"],"
                      "\"properties\":{\"status\":{\"const\":\"ok\"}}}"}};
const struct gw_hook gw_hook_readyz = {
    .local = readyz,
    .doc = {.summary = "Readiness: connected to the message bus",
            .schema = "{\"type\":\"object\",\"required\":[\"status\"],"
                      "\"properties\":{\"status\":{\"const\":\"ready\"}}}",
            .error_status = 503}};
const struct gw_hook gw_hook_site = {
    .local = site,
    .doc = {.summary = "The site's name",
            .schema = "{\"type\":\"object\",\"required\":[\"name\"],"
                      "\"additionalProperties\":false,"
                      "\"properties\":{\"name\":{\"type\":\"string\"}}}"}};
const struct gw_hook gw_hook_login = {
    .respond = login_respond,
    .skip = login_skip,
    .doc = {.description = "The session token goes into the session cookie (Set-Cookie), never "
                           "the body; with `rememberMe` it lives until the session expires."}};
const struct gw_hook gw_hook_logout = {
    .prepare = logout_prepare,
    .respond = logout_respond,
    .doc = {.description = "Revokes the cookie's session and clears the cookie."}};
const struct gw_hook gw_hook_password = {
    .prepare = password_prepare,
    .doc = {.description = "Signs out every other session of the account; this one stays."}};
/* Documentation only: what the registration's answer does not tell. */
const struct gw_hook gw_hook_register = {
    .doc = {.description =
                "Answers 202 with the address as entered, the same whether or not it already has "
                "an account: a new address gets an unverified account and a verification link; "
                "for a taken one no account is made and its owner is mailed a note instead. Mail "
                "is limited per recipient, per client address and per account; over a limit the "
                "answer is the same and nothing is sent."}};
const struct gw_hook gw_hook_export = {
    .respond = export_respond,
    .doc = {.description = "A download (Content-Disposition: attachment) of every personal "
                           "datum the services hold about the caller, as one JSON document.",
            .schema = "{\"type\":\"object\"}"}};
