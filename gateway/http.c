/*
 * http.c: the libmicrohttpd side of the gateway: the access handler, the per-request context,
 * body accumulation under the limit, dispatch, the JSON call to a service, the access log and
 * the HTTP metrics. Answers are written by render.c; who calls is auth.c's; the call goes out
 * through upstream.c, which completes it through the callback given (on_call_done).
 *
 * Life of a request (one struct gw_req, allocated in its own arena):
 *   request line the context is created, noting the raw request target (on_uri).
 *   1st call     set up the request id; check the head (head.h: size, NUL, framing), refused
 *                with Connection: close; nothing else is queued on the first call (MHD
 *                closes the connection then), except a 413 that cannot wait (refuse_at_once).
 *   body calls   accumulate up to EJ_BODY_LIMIT; past it, drop the rest and answer 413.
 *   final call   match the route; answer local routes, errors and static files; for a service
 *                route transcode the JSON, resolve the caller (a cache miss asks the users
 *                service first), suspend the connection and send it on the bus.
 *   resumed call the outcome stored by the reply or the sweeper becomes the JSON answer.
 *   completed    access log line, metrics, free.
 */
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "handlers.h"
#include "ids.h"
#include "idem.h"
#include "log.h"
#include "pbjson.h"
#include "render.h"
#include "session.h"
#include "static.h"
#include "conns.h"
#include "framing.h"
#include "head.h"
#include "stream_core.h"
#include "stream_download.h"
#include "stream_upload.h"
#include "upstream.h"

#define REQ_ARENA_BLOCK 8192
#define HDR_REQUEST_ID  "X-Request-Id"

static long long mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --- the request context --- */

static bool request_id_ok(const char *s)
{
        size_t n = 0;

        if (s == NULL)
                return false;
        for (; s[n]; n++) {
                char c = s[n];

                if (n >= 64 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                 (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return n > 0;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the request line is parsed, the headers are not. The context
 * starts here, noting the request target as sent (before MHD cuts the query off and decodes
 * it in place), so the first call can see what decoding would hide. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
        struct ej_arena *arena = ej_arena_create(REQ_ARENA_BLOCK);
        struct gw_req *req = ej_arena_calloc(arena, sizeof(*req));

        req->gw = cls;
        req->conn = conn;
        req->arena = arena;
        req->start_us = mono_us();
        req->raw_uri = uri;
        req->raw_uri_len = uri ? strlen(uri) : 0;
        /* Now: MHD cuts the query off and decodes in place next. */
        req->raw_uri_nul = uri == NULL || gw_uri_has_nul(uri, req->raw_uri_len);
        req->stats_index = gw_routes_count + 1; /* unmatched until a route says otherwise */
        ej_buf_init(&req->body);
        return req;
}

/* The first call: the headers are in. */
static void req_start(struct gw_req *req, const char *url, const char *method)
{
        const char *rid = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, HDR_REQUEST_ID);

        req->method = ej_arena_strdup(req->arena, method);
        req->path = ej_arena_strdup(req->arena, url);
        req->method_bit = gw_method_bit(method);
        if (request_id_ok(rid))
                snprintf(req->rid, sizeof(req->rid), "%s", rid);
        else
                ej_random_token(req->rid, sizeof(req->rid), 12);
        gw_req_client_addr(req);
}

static void req_free(struct gw_req *req)
{
        if (req->reply)
                natsMsg_Destroy(req->reply);
        ej_buf_free(&req->body);
        ej_arena_destroy(req->arena); /* req lives in it */
}

/* --- metrics and the access log --- */

static struct ej_counter *code_counter(struct gw *gw, struct gw_route_stats *rs, unsigned code)
{
        struct ej_counter *c;
        char labels[256];

        if (code >= GW_CODE_SLOTS)
                code = 0;
        c = atomic_load(&rs->by_code[code]);
        if (c)
                return c;
        snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%u\"", rs->label, code);
        c = ej_metrics_counter(gw->metrics, "http_requests_total",
                               "HTTP requests by route pattern and status code.", labels);
        atomic_store(&rs->by_code[code], c);
        return c;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct gw *gw = cls;
        struct gw_req *req = *con_cls;
        struct gw_route_stats *rs;
        double secs;

        if (req == NULL)
                return;
        *con_cls = NULL;
        gw_conns_rearm(gw->conns, conn);
        if (req->method == NULL) {
                /* MHD refused the head by itself (too large, malformed) before any call. */
                const union MHD_ConnectionInfo *ci =
                    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);

                req->method = "-";
                req->path = "-";
                req->status = ci ? ci->http_status : gw_conns_cut_off(conn) ? 408 : 0;
                ej_random_token(req->rid, sizeof(req->rid), 12);
        }
        gw_stream_completed(req, toe);
        secs = (double)(mono_us() - req->start_us) / 1e6;
        rs = &gw->stats[req->stats_index];
        ej_counter_add(code_counter(gw, rs, req->status), 1);
        ej_histogram_observe(rs->duration, secs);
        if (gw->cfg->access_log)
                ej_info(req->rid, "%s %s %u %.2fms%s", req->method, req->path, req->status,
                        secs * 1000.0,
                        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
        req_free(req);
}

/* --- the call to a service --- */

struct query_ctx {
        struct gw_req *req;
        ProtobufCMessage *msg;
        enum ej_status st;
        struct ej_err err;
};

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
        struct query_ctx *q = cls;
        enum ej_status st;

        (void)kind;
        if (q->st != EJ_OK)
                return MHD_NO;
        st = gw_bind_query(q->msg, key, value ? value : "", q->req->arena, &q->err);
        q->st = st;
        return st == EJ_OK ? MHD_YES : MHD_NO;
}

static bool is_json_type(const char *ct)
{
        static const char json[] = "application/json";
        size_t n = sizeof(json) - 1;

        return ct && strncasecmp(ct, json, n) == 0 &&
               (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static int route_timeout(const struct gw_req *req)
{
        return req->route->timeout_ms ? req->route->timeout_ms : req->gw->cfg->request_timeout_ms;
}

/* upstream.c's completion of the route's own call: the answer is written when MHD runs the
 * resumed connection (finish). */
static void on_call_done(struct gw_req *req)
{
        /* The connection is suspended: this thread owns req until it resumes it. */
        req->phase = GW_PHASE_DONE;
        MHD_resume_connection(req->conn);
}

/* auth.c's completion: the route's own call goes out, or the request is answered. */
static void on_auth_done(struct gw_req *req, enum ej_status st)
{
        if (st == EJ_OK) {
                req->denied = gw_access_check(req);
                if (req->denied == GW_ACCESS_OK) {
                        gw_upstream_send(req->gw->up, req, req->route->subject, req->packed,
                                         req->packed_len, route_timeout(req), on_call_done);
                        return;
                }
        }
        on_call_done(req);
}

/* Takes a write's Idempotency-Key into req->idem_key (idem.h says what the services do with
 * it); EJ_ERR_INVALID when it is malformed. Reads ignore it. */
static enum ej_status idem_key_of(struct gw_req *req)
{
        const char *k = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Idempotency-Key");

        req->idem_key = NULL;
        if (k == NULL || (req->method_bit & (GW_GET | GW_HEAD)))
                return EJ_OK;
        if (!ej_idem_key_valid(k))
                return EJ_ERR_INVALID;
        req->idem_key = k;
        return EJ_OK;
}

static enum MHD_Result start_call(struct gw_req *req)
{
        const struct gw_route *r = req->route;
        struct gw *gw = req->gw;
        ProtobufCMessage *msg = NULL;
        struct ej_err err = {0};
        struct query_ctx q = {0};
        enum ej_status st;
        bool ask = false;

        if (req->body.n > 0 && !is_json_type(MHD_lookup_connection_value(
                                   req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)))
                return gw_render_error(req, EJ_ERR_UNSUPPORTED, "the body must be application/json",
                                       NULL);
        st = ej_pbjson_decode(r->req_desc, req->body.p, req->body.n, req->arena, &msg, &err);
        if (st != EJ_OK)
                return gw_render_error(req, st, err.msg, err.field);
        for (size_t i = 0; i < req->params.n; i++) {
                const char *name =
                    ej_arena_strndup(req->arena, req->params.name[i].p, req->params.name[i].n);

                st = ej_pbjson_set_field(msg, name, req->params.value[i], req->arena, &err);
                if (st == EJ_ERR_NOT_FOUND)
                        return gw_render_error(req, EJ_ERR_INTERNAL, "route parameter has no field",
                                               NULL);
                if (st != EJ_OK)
                        return gw_render_error(req, st, err.msg, name);
        }
        q.req = req;
        q.msg = msg;
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_arg, &q);
        if (q.st != EJ_OK)
                return gw_render_error(req, q.st, q.err.msg, q.err.field);

        if (r->auth != GW_AUTH_NONE) {
                switch (gw_auth_resolve(req, r->auth != GW_AUTH_OPTIONAL)) {
                case GW_WHO_MISSING:
                        return gw_render_error(req, EJ_ERR_UNAUTHENTICATED, "sign in first", NULL);
                case GW_WHO_ASK:
                        ask = true;
                        break;
                case GW_WHO_KNOWN:
                default:
                        req->denied = req->user_id ? gw_access_check(req) : GW_ACCESS_OK;
                        if (req->denied != GW_ACCESS_OK) {
                                struct gw_out out = {0};

                                gw_out_denied(&out, req, req->denied);
                                return gw_render_send(req, &out);
                        }
                        break;
                }
        }
        st = idem_key_of(req);
        if (st != EJ_OK)
                return gw_render_error(req, st,
                                       "an Idempotency-Key is 1 to 128 visible ASCII characters",
                                       "Idempotency-Key");
        if (r->hook && r->hook->prepare)
                r->hook->prepare(req, msg);
        req->packed_len = protobuf_c_message_get_packed_size(msg);
        req->packed = ej_arena_alloc(req->arena, req->packed_len + 1);
        protobuf_c_message_pack(msg, req->packed);

        /* Suspend first: the reply may arrive on another thread before publish returns. */
        req->phase = GW_PHASE_WAITING;
        MHD_suspend_connection(req->conn);
        if (ask)
                gw_auth_ask(req, on_auth_done);
        else
                gw_upstream_send(gw->up, req, r->subject, req->packed, req->packed_len,
                                 route_timeout(req), on_call_done);
        return MHD_YES;
}

/* The reply's Ej-Retry-After (whole seconds) for the Retry-After header, or NULL. */
static const char *retry_after_of(struct gw_req *req)
{
        const char *v = NULL;
        size_t n;

        if (natsMsgHeader_Get(req->reply, EJ_HDR_RETRY_AFTER, &v) != NATS_OK || v == NULL)
                return NULL;
        n = strspn(v, "0123456789");
        if (n == 0 || n > 9 || v[n] != '\0')
                return NULL;
        return ej_arena_strdup(req->arena, v);
}

static enum MHD_Result finish(struct gw_req *req)
{
        const struct gw_route *r = req->route;
        const struct gw_hook *hook = r->hook;
        struct gw_out out = {0};
        struct ej_err err = {0};
        enum ej_status st;

        if (req->denied != GW_ACCESS_OK) {
                gw_out_denied(&out, req, req->denied);
                return gw_render_send(req, &out);
        }
        st = gw_upstream_status(req, &err);

        if (st == EJ_OK) {
                ProtobufCAllocator al = ej_arena_pb_allocator(req->arena);
                ProtobufCMessage *resp = protobuf_c_message_unpack(
                    r->resp_desc, &al, (size_t)natsMsg_GetDataLength(req->reply),
                    (const uint8_t *)natsMsg_GetData(req->reply));

                if (resp == NULL) {
                        ej_error(req->rid, "%s: reply is not a valid %s", req->subject,
                                 r->resp_desc->name);
                        gw_out_error(&out, req, EJ_ERR_INTERNAL, "the service sent a bad reply",
                                     NULL);
                } else {
                        out.status = r->success_status ? r->success_status : 200;
                        if (hook && hook->respond)
                                hook->respond(req, resp, &out);
                        if (out.body.n == 0)
                                ej_pbjson_encode(resp, EJ_PBJSON_EMIT_DEFAULTS, out.skip,
                                                 &out.body);
                }
        } else {
                gw_out_error(&out, req, st, err.msg, err.field);
                if (st == EJ_ERR_TOO_MANY && req->reply)
                        out.retry_after = retry_after_of(req);
                if (st == EJ_ERR_UNAUTHENTICATED && req->token) {
                        /* The session is gone: drop it here and in the browser. */
                        gw_sessions_evict(req->gw->sessions, req->token_hash);
                        out.set_cookie = gw_session_cookie(req, NULL, 0);
                }
                if (hook && hook->respond)
                        hook->respond(req, NULL, &out);
                if (st == EJ_ERR_INTERNAL || st == EJ_ERR_UNAVAILABLE || st == EJ_ERR_TIMEOUT)
                        ej_warn(req->rid, "%s: %s: %s", req->subject ? req->subject : "-",
                                ej_status_name(st), err.msg);
        }
        if (req->drop_cookie && out.set_cookie == NULL)
                out.set_cookie = gw_session_cookie(req, NULL, 0);
        return gw_render_send(req, &out);
}

/* --- dispatch --- */

static bool state_changing(unsigned m)
{
        return (m & (GW_POST | GW_PUT | GW_PATCH | GW_DELETE)) != 0 || m == 0;
}

/* CSRF defence: a state-changing request must come from our own origin. */
static bool same_origin(struct gw_req *req)
{
        const char *origin = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Origin");
        const char *host = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Host");
        const char *site;

        if (origin) {
                const char *hp = strstr(origin, "://");
                size_t n;

                if (hp == NULL || host == NULL)
                        return false;
                hp += 3;
                n = strlen(hp);
                if (n > 0 && hp[n - 1] == '/')
                        n--;
                return strlen(host) == n && strncasecmp(hp, host, n) == 0;
        }
        site = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Sec-Fetch-Site");
        return !(site && strcasecmp(site, "cross-site") == 0);
}

/* 405 has no status of its own in enum ej_status; its code is "method_not_allowed". */
static enum MHD_Result send_405(struct gw_req *req, const char *allow)
{
        struct gw_out out = {0};
        const char *msg = ej_arena_printf(req->arena, "method %s is not allowed here; use %s",
                                          req->method, allow);

        gw_out_error_code(&out, req, 405, "method_not_allowed", msg);
        out.allow = allow;
        return gw_render_send(req, &out);
}

static bool is_api_path(const char *path)
{
        return strncmp(path, "/api", 4) == 0 && (path[4] == '\0' || path[4] == '/');
}

static enum MHD_Result serve_static(struct gw_req *req)
{
        struct MHD_Response *resp;
        unsigned status = 404;
        const char *inm;

        req->stats_index = gw_routes_count;
        if (!(req->method_bit & (GW_GET | GW_HEAD)))
                return send_405(req, "GET, HEAD");
        inm = gw_header_joined(req->conn, MHD_HTTP_HEADER_IF_NONE_MATCH, req->arena);
        resp = gw_static_response(req->gw->web, req->path, inm, &status);
        if (resp == NULL)
                return gw_render_error(req, EJ_ERR_NOT_FOUND, "no such file", NULL);
        return gw_render_queue(req, status, resp, false);
}

static enum MHD_Result dispatch(struct gw_req *req)
{
        const struct gw_route *r;
        unsigned allowed = 0;

        if (req->too_large)
                return gw_render_error(req, EJ_ERR_TOO_LARGE, "the request body is too large",
                                       NULL);
        r = gw_route_match(gw_routes, gw_routes_count, req->method_bit, req->path, &req->params,
                           &allowed);
        if (r == NULL && allowed) {
                char text[96];

                gw_methods_text(allowed, text, sizeof(text));
                return send_405(req, ej_arena_strdup(req->arena, text));
        }
        if (r == NULL) {
                if (!is_api_path(req->path))
                        return serve_static(req);
                return gw_render_error(req, EJ_ERR_NOT_FOUND, "no such API route", NULL);
        }
        if (r->dev_mail && !req->gw->cfg->dev_mail)
                return gw_render_error(req, EJ_ERR_NOT_FOUND, "no such API route", NULL);
        req->route = r;
        req->stats_index = (size_t)(r - gw_routes);
        if (state_changing(req->method_bit) && !same_origin(req))
                return gw_render_error(req, EJ_ERR_FORBIDDEN, "cross-site request refused", NULL);
        /* A cross-site form cannot send application/json without a preflight we never grant:
         * no state-changing JSON call without it, body or not. */
        if (state_changing(req->method_bit) && r->stream == GW_STREAM_NONE &&
            !is_json_type(MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_CONTENT_TYPE)))
                return gw_render_error(req, EJ_ERR_UNSUPPORTED,
                                       "send this request with Content-Type: application/json",
                                       NULL);
        if (r->hook && r->hook->local) {
                struct gw_out out = {0};

                out.status = 200;
                r->hook->local(req, &out);
                return gw_render_send(req, &out);
        }
        return start_call(req);
}

/* Adds a chunk of body; over the limit, the rest is dropped and 413 is answered. */
static enum MHD_Result take_body(struct gw_req *req, const char *data, size_t *size)
{
        size_t n = *size;

        *size = 0;
        if (req->too_large)
                return MHD_YES;
        if (req->body.n + n > req->gw->cfg->body_limit) {
                req->too_large = true;
                ej_buf_free(&req->body);
                return MHD_YES;
        }
        ej_buf_append(&req->body, data, n);
        return MHD_YES;
}

/*
 * An oversized Content-Length is known on the first call. Answering then (the one exception to
 * "never on the first call") makes MHD close the connection unread, and a client still writing
 * its body gets EPIPE/ECONNRESET instead of the 413. So the 413 goes out at once only when the
 * client waits for "100 Continue" (it has sent nothing yet) or the body is absurdly large;
 * otherwise the body is read and dropped unbuffered and the 413 follows on the final call.
 */
static bool refuse_at_once(struct gw *gw, struct MHD_Connection *conn, unsigned long long len)
{
        const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
        unsigned long long drain_max = 8ull * gw->cfg->body_limit;

        if (drain_max < 64ull << 20)
                drain_max = 64ull << 20;
        return (expect && strcasecmp(expect, "100-continue") == 0) || len > drain_max;
}

/* Every call of a file route's request, the first included. */
static enum MHD_Result stream_call(struct gw_req *req, const char *data, size_t *size)
{
        if (req->route->stream == GW_STREAM_UPLOAD)
                return gw_upload_handle(req, data, size);
        return gw_download_handle(req, size);
}

/* File routes stream their bodies and answers (stream_upload.c, stream_download.c): true when
 * `req` is one, with
 * req->route set, or left NULL when a cross-site request is refused. */
static bool claim_stream(struct gw_req *req)
{
        const struct gw_route *r = gw_route_match(gw_routes, gw_routes_count, req->method_bit,
                                                  req->path, &req->params, NULL);

        if (r == NULL || r->stream == GW_STREAM_NONE)
                return false;
        req->stats_index = (size_t)(r - gw_routes);
        if (state_changing(req->method_bit) && !same_origin(req))
                return true;
        req->route = r;
        return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        struct gw *gw = cls;
        struct gw_req *req = *con_cls;

        if (req == NULL) /* no request line seen: cannot happen with on_uri set */
                *con_cls = req = on_uri(gw, NULL, conn);
        if (req->method == NULL) {
                const char *cl;
                enum MHD_Result ret = MHD_NO;

                gw_conns_head_done(conn);
                req_start(req, url, method);
                if (gw_head_refused(req, method, version, &ret))
                        return ret;
                if (claim_stream(req))
                        return req->route ? stream_call(req, upload_data, upload_data_size)
                                          : gw_render_error(req, EJ_ERR_FORBIDDEN,
                                                            "cross-site request refused", NULL);
                cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (cl) {
                        unsigned long long len = strtoull(cl, NULL, 10);

                        if (len > gw->cfg->body_limit) {
                                req->too_large = true;
                                if (refuse_at_once(gw, conn, len))
                                        return gw_render_error(req, EJ_ERR_TOO_LARGE,
                                                               "the request body is too large",
                                                               NULL);
                                return MHD_YES;
                        }
                        if (len > 0)
                                ej_buf_reserve(&req->body, (size_t)len);
                }
                return MHD_YES;
        }
        if (req->stream)
                return stream_call(req, upload_data, upload_data_size);
        switch (req->phase) {
        case GW_PHASE_NEW:
                if (*upload_data_size > 0)
                        return take_body(req, upload_data, upload_data_size);
                return dispatch(req);
        case GW_PHASE_DONE:
                return finish(req);
        case GW_PHASE_WAITING:
        case GW_PHASE_SENT:
        default:
                *upload_data_size = 0;
                return MHD_YES;
        }
}

/* --- the daemon --- */

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];

        (void)cls;
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        msg[strcspn(msg, "\n")] = '\0';
        ej_warn(NULL, "http: %s", msg);
}

/* Parses "host:port" or "[v6]:port". */
static enum ej_status parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
                                 bool *v6, struct ej_err *err)
{
        char host[128];
        const char *colon = strrchr(addr, ':');
        long port;
        char *end = NULL;
        size_t hn;

        memset(ss, 0, sizeof(*ss));
        if (colon == NULL)
                goto bad;
        port = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end != '\0' || port < 0 || port > 65535)
                goto bad;
        hn = (size_t)(colon - addr);
        if (hn >= sizeof(host))
                goto bad;
        memcpy(host, addr, hn);
        host[hn] = '\0';
        if (host[0] == '[' && hn > 2 && host[hn - 1] == ']') {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

                host[hn - 1] = '\0';
                if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
                        goto bad;
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons((uint16_t)port);
                *len = sizeof(*s6);
                *v6 = true;
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

                if (strcmp(host, "localhost") == 0)
                        snprintf(host, sizeof(host), "127.0.0.1");
                if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
                        goto bad;
                s4->sin_family = AF_INET;
                s4->sin_port = htons((uint16_t)port);
                *len = sizeof(*s4);
                *v6 = false;
        }
        return EJ_OK;
bad:
        return ej_err_set(err, EJ_ERR_INVALID, "EJ_HTTP_ADDR",
                          "EJ_HTTP_ADDR=%s is not host:port (e.g. 127.0.0.1:8080)", addr);
}

static void stats_init(struct gw *gw)
{
        size_t n = gw_routes_count + 2;

        gw->stats = xcalloc(n, sizeof(*gw->stats));
        for (size_t i = 0; i < n; i++) {
                struct gw_route_stats *rs = &gw->stats[i];
                char labels[200];

                rs->label = i < gw_routes_count    ? gw_routes[i].pattern
                            : i == gw_routes_count ? "static"
                                                   : "unmatched";
                for (size_t c = 0; c < GW_CODE_SLOTS; c++)
                        atomic_init(&rs->by_code[c], NULL);
                snprintf(labels, sizeof(labels), "route=\"%s\"", rs->label);
                rs->duration = ej_metrics_histogram(
                    gw->metrics, "http_request_duration_seconds",
                    "Time from the request's headers to its completion, by route pattern.", labels);
        }
}

enum ej_status gw_http_start(struct gw *gw, struct ej_err *err)
{
        struct sockaddr_storage ss;
        socklen_t len = 0;
        bool v6 = false;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        unsigned threads = (unsigned)gw->cfg->http_threads;
        unsigned limit = gw_conns_limit((unsigned)gw->cfg->max_connections);
        enum ej_status st;

        st = parse_addr(gw->cfg->http_addr, &ss, &len, &v6, err);
        if (st != EJ_OK)
                return st;
        if (v6)
                flags |= MHD_USE_IPv6;
        stats_init(gw);
        st = gw_conns_create(&gw->conns, gw->cfg->head_timeout_ms, gw->metrics, err);
        if (st != EJ_OK)
                return st;
        /* The idle timeout (60 s) covers bodies and answers; a head has its deadline (conns.h). */
        gw->mhd = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, gw, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
            threads > 1 ? threads : 0, MHD_OPTION_NOTIFY_COMPLETED, on_completed, gw,
            MHD_OPTION_URI_LOG_CALLBACK, on_uri, gw, MHD_OPTION_NOTIFY_CONNECTION, gw_conns_notify,
            gw->conns, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)GW_CONN_MEMORY,
            MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
            (unsigned)gw->cfg->per_ip_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
            MHD_OPTION_END);
        if (gw->mhd == NULL)
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, "EJ_HTTP_ADDR",
                                  "cannot listen on %s (address in use?)", gw->cfg->http_addr);
        ej_info(NULL, "up to %u connections, %d per address (0: no limit), heads due within %ld ms",
                limit, gw->cfg->per_ip_connections, gw->cfg->head_timeout_ms);
        return EJ_OK;
}

int gw_http_port(struct gw *gw)
{
        const union MHD_DaemonInfo *info;

        if (gw->mhd == NULL)
                return 0;
        info = MHD_get_daemon_info(gw->mhd, MHD_DAEMON_INFO_BIND_PORT);
        return info ? info->port : 0;
}

void gw_http_quiesce(struct gw *gw)
{
        MHD_socket fd;

        if (gw->mhd == NULL)
                return;
        fd = MHD_quiesce_daemon(gw->mhd);
        if (fd != MHD_INVALID_SOCKET)
                close(fd);
}

void gw_http_stop(struct gw *gw)
{
        if (gw->mhd)
                MHD_stop_daemon(gw->mhd);
        gw->mhd = NULL;
        gw_conns_destroy(gw->conns);
        gw->conns = NULL;
        free(gw->stats);
        gw->stats = NULL;
}
