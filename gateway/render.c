/*
 * render.c: responses and errors; see render.h.
 */
#include "render.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSON_TYPE      "application/json; charset=utf-8"
#define HDR_REQUEST_ID "X-Request-Id"
#define CSP                                                                                        \
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "          \
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

unsigned gw_http_status(enum ej_status st)
{
        switch (st) {
        case EJ_OK:
                return 200;
        case EJ_ERR_INVALID:
                return 400;
        case EJ_ERR_UNAUTHENTICATED:
                return 401;
        case EJ_ERR_FORBIDDEN:
                return 403;
        case EJ_ERR_NOT_FOUND:
                return 404;
        case EJ_ERR_CONFLICT:
                return 409;
        case EJ_ERR_TOO_LARGE:
                return 413;
        case EJ_ERR_UNSUPPORTED:
                return 415;
        case EJ_ERR_TOO_MANY:
                return 429;
        case EJ_ERR_UNAVAILABLE:
                return 503;
        case EJ_ERR_TIMEOUT:
        case EJ_ERR_OUTCOME_UNKNOWN:
                return 504;
        case EJ_ERR_INTERNAL:
        default:
                return 500;
        }
}

void gw_error_json(struct ej_buf *out, enum ej_status st, const char *message, const char *field,
                   const char *rid)
{
        const char *code = ej_status_name(st);

        ej_buf_append_c(out, "{\"error\":{\"code\":");
        ej_buf_append_json_str(out, code, strlen(code));
        ej_buf_append_c(out, ",\"message\":");
        message = (message && message[0]) ? message : code;
        ej_buf_append_json_str(out, message, strlen(message));
        if (field && field[0]) {
                ej_buf_append_c(out, ",\"field\":");
                ej_buf_append_json_str(out, field, strlen(field));
        }
        ej_buf_append_c(out, ",\"requestId\":");
        ej_buf_append_json_str(out, rid, strlen(rid));
        ej_buf_append_c(out, "}}");
}

void gw_out_error(struct gw_out *out, struct gw_req *req, enum ej_status st, const char *message,
                  const char *field)
{
        ej_buf_reset(&out->body);
        out->status = gw_http_status(st);
        out->content_type = NULL;
        gw_error_json(&out->body, st, message, field, req->rid);
}

void gw_out_error_code(struct gw_out *out, struct gw_req *req, unsigned http_status,
                       const char *code, const char *message)
{
        ej_buf_reset(&out->body);
        out->status = http_status;
        out->content_type = NULL;
        ej_buf_append_c(&out->body, "{\"error\":{\"code\":");
        ej_buf_append_json_str(&out->body, code, strlen(code));
        ej_buf_append_c(&out->body, ",\"message\":");
        ej_buf_append_json_str(&out->body, message, strlen(message));
        ej_buf_append_c(&out->body, ",\"requestId\":");
        ej_buf_append_json_str(&out->body, req->rid, strlen(req->rid));
        ej_buf_append_c(&out->body, "}}");
}

void gw_out_denied(struct gw_out *out, struct gw_req *req, enum gw_access why)
{
        if (why == GW_ACCESS_CONSENT)
                gw_out_error_code(out, req, 403, GW_CODE_CONSENT_REQUIRED,
                                  "accept the current consent notice first");
        else
                gw_out_error(out, req, EJ_ERR_FORBIDDEN, "your roles do not allow this", NULL);
}

const char *gw_session_cookie(struct gw_req *req, const char *token, long long max_age_s)
{
        const struct gw_config *cfg = req->gw->cfg;

        if (token && max_age_s < 0) /* no known expiry: a browser-session cookie */
                return ej_arena_printf(req->arena, "%s=%s; HttpOnly; SameSite=Lax; Path=/%s",
                                       cfg->cookie_name, token,
                                       cfg->cookie_secure ? "; Secure" : "");
        return ej_arena_printf(req->arena, "%s=%s; HttpOnly; SameSite=Lax; Path=/; Max-Age=%lld%s",
                               cfg->cookie_name, token ? token : "", token ? max_age_s : 0,
                               cfg->cookie_secure ? "; Secure" : "");
}

void gw_common_headers(struct MHD_Response *resp, const char *rid, bool no_store)
{
        MHD_add_response_header(resp, HDR_REQUEST_ID, rid);
        MHD_add_response_header(resp, "Content-Security-Policy", CSP);
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(resp, "Referrer-Policy", "strict-origin-when-cross-origin");
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
        if (no_store)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

enum MHD_Result gw_render_queue(struct gw_req *req, unsigned status, struct MHD_Response *resp,
                                bool no_store)
{
        enum MHD_Result ret;

        gw_common_headers(resp, req->rid, no_store);
        ret = MHD_queue_response(req->conn, status, resp);
        MHD_destroy_response(resp);
        req->status = status;
        req->phase = GW_PHASE_SENT;
        return ret;
}

enum MHD_Result gw_render_send(struct gw_req *req, struct gw_out *out)
{
        struct MHD_Response *resp;
        size_t n = out->body.n;
        char *body = ej_buf_steal(&out->body);

        if (body)
                resp = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_FREE);
        else
                resp = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "",
                                                       MHD_RESPMEM_PERSISTENT);
        if (resp == NULL) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                out->content_type ? out->content_type : JSON_TYPE);
        if (out->set_cookie)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, out->set_cookie);
        if (out->allow)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, out->allow);
        if (out->retry_after)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, out->retry_after);
        if (out->disposition)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION,
                                        out->disposition);
        if (out->location)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, out->location);
        if (out->close)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        /* A body with an ETag may be kept and revalidated; every other answer is no-store. */
        if (out->etag) {
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, out->etag);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        }
        return gw_render_queue(req, out->status ? out->status : 200, resp, out->etag == NULL);
}

enum MHD_Result gw_render_error(struct gw_req *req, enum ej_status st, const char *message,
                                const char *field)
{
        struct gw_out out = {0};

        gw_out_error(&out, req, st, message, field);
        return gw_render_send(req, &out);
}
