/*
 * handlers.c: the hooks of the route table: calls the gateway answers itself (/healthz,
 * /readyz, /metrics, /api/site) and the session cookie of login and logout. Everything else is
 * plain transcoding and needs no code here.
 */
#include "gateway.h"

#include <string.h>

#include "ids.h"
#include "users.pb-c.h"

static void healthz(struct gw_req *req, struct gw_out *out)
{
        (void)req;
        ej_buf_append_c(&out->body, "{\"status\":\"ok\"}");
}

static void readyz(struct gw_req *req, struct gw_out *out)
{
        if (ej_bus_connected(req->gw->bus))
                ej_buf_append_c(&out->body, "{\"status\":\"ready\"}");
        else
                gw_out_error(out, req, EJ_ERR_UNAVAILABLE, "not connected to the message bus",
                             NULL);
}

static void metrics(struct gw_req *req, struct gw_out *out)
{
        ej_metrics_render(req->gw->metrics, &out->body);
        out->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void site(struct gw_req *req, struct gw_out *out)
{
        const char *name = req->gw->cfg->site_name;

        ej_buf_append_c(&out->body, "{\"name\":");
        ej_buf_append_json_str(&out->body, name, strlen(name));
        ej_buf_append_c(&out->body, "}");
}

/* Login: the token leaves the JSON and becomes the cookie; the session is cached at once so the
 * next call needs no ej.users.authenticate. */
static void login_respond(struct gw_req *req, const ProtobufCMessage *resp, struct gw_out *out)
{
        static const char *const skip[] = {"session_token", NULL};
        const Ej__Users__LoginResponse *lr = (const Ej__Users__LoginResponse *)resp;
        char hash[EJ_SHA256_HEX_LEN];
        long long ttl_s;

        if (lr == NULL)
                return;
        out->skip = skip;
        if (lr->session_token == NULL || lr->session_token[0] == '\0')
                return;
        ttl_s = lr->expires_at_ms > 0 ? (lr->expires_at_ms - ej_now_ms()) / 1000 : -1;
        if (lr->expires_at_ms > 0 && ttl_s < 0)
                ttl_s = 0;
        out->set_cookie = gw_session_cookie(req, lr->session_token, ttl_s);
        if (lr->user && lr->user->id) {
                ej_sha256_hex(lr->session_token, strlen(lr->session_token), hash);
                gw_sessions_put(req->gw->sessions, hash, lr->user->id,
                                gw_join_roles(req->arena, lr->user->n_roles, lr->user->roles),
                                lr->expires_at_ms);
        }
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

const struct gw_hook gw_hook_healthz = {.local = healthz};
const struct gw_hook gw_hook_readyz = {.local = readyz};
const struct gw_hook gw_hook_metrics = {.local = metrics};
const struct gw_hook gw_hook_site = {.local = site};
const struct gw_hook gw_hook_login = {.respond = login_respond};
const struct gw_hook gw_hook_logout = {.prepare = logout_prepare, .respond = logout_respond};
