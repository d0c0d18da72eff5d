/*
 * render.h: responses and errors, the lowest layer of the gateway that speaks HTTP. Every
 * answer the gateway writes goes through here: the HTTP code of a status, the one error body
 * ({"error":{"code","message","field","requestId"}}), the security headers every response
 * carries, the session cookie, and queueing the response on the request's connection.
 *
 * Ownership: a struct gw_out's body is the caller's until gw_render_send takes it; a queued
 * MHD_Response is destroyed here. Strings given are borrowed. Thread safety: stateless; a
 * request is rendered by whichever thread holds it.
 */
#ifndef EJ_GW_RENDER_H
#define EJ_GW_RENDER_H

#include <stdbool.h>

#include <microhttpd.h>

#include "gateway.h"
#include "mem.h"
#include "status.h"

/* Gateway-level error codes that are not an enum ej_status: "consent_required" (403). */
#define GW_CODE_CONSENT_REQUIRED "consent_required"

/* The HTTP code for a status. */
unsigned gw_http_status(enum ej_status st);

/* Appends {"error":{...}} for `st` to `out`. */
void gw_error_json(struct ej_buf *out, enum ej_status st, const char *message, const char *field,
                   const char *rid);

/* Fills `out` with an error answer. */
void gw_out_error(struct gw_out *out, struct gw_req *req, enum ej_status st, const char *message,
                  const char *field);

/* Fills `out` with an error answer of HTTP `http_status` and code name `code`. */
void gw_out_error_code(struct gw_out *out, struct gw_req *req, unsigned http_status,
                       const char *code, const char *message);

/* Fills `out` with the 403 answer for a refusal (`why` not GW_ACCESS_OK). */
void gw_out_denied(struct gw_out *out, struct gw_req *req, enum gw_access why);

/* The Set-Cookie value for `token` living `max_age_s` seconds (negative: no Max-Age, the
 * browser keeps it for its session; token NULL: clear the cookie), in req's arena. */
const char *gw_session_cookie(struct gw_req *req, const char *token, long long max_age_s);

/* Adds the request id and the security headers every response carries; `no_store` adds
 * Cache-Control: no-store. */
void gw_common_headers(struct MHD_Response *resp, const char *rid, bool no_store);

/* Adds the common headers, queues `resp` (destroyed here) with `status` on req's connection
 * and notes the status sent in req. */
enum MHD_Result gw_render_queue(struct gw_req *req, unsigned status, struct MHD_Response *resp,
                                bool no_store);

/* Queues `out` as the answer (status 0: 200; content type NULL: JSON), never cached. */
enum MHD_Result gw_render_send(struct gw_req *req, struct gw_out *out);

/* Queues the error answer for `st`. */
enum MHD_Result gw_render_error(struct gw_req *req, enum ej_status st, const char *message,
                                const char *field);

#endif
