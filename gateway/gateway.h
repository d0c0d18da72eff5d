/*
 * gateway.h: what the gateway's files share: its settings, the process context, the
 * per-request context, and the modules' entry points.
 *
 * The gateway is the only HTTP entry of EasyJournal. libmicrohttpd (MHD) threads accept and
 * parse requests; a request for a service is transcoded from JSON to protobuf, its connection
 * is suspended, and it goes out as an asynchronous NATS request (upstream.c). The reply (or the
 * deadline sweeper) resumes the connection and an MHD thread writes the JSON answer (http.c).
 * No thread ever waits on NATS.
 *
 * Ownership: main() owns struct gw and everything in it. A struct gw_req belongs to its MHD
 * connection; while the connection is suspended it is handed to upstream.c, and exactly one
 * party (reply callback or sweeper) completes it and resumes the connection.
 */
#ifndef EJ_GW_GATEWAY_H
#define EJ_GW_GATEWAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>
#include <nats/nats.h>

#include "bus.h"
#include "mem.h"
#include "metrics.h"
#include "routes.h"
#include "status.h"
#include "str.h"

struct gw_config {
        const char *http_addr; /* EJ_HTTP_ADDR */
        int http_threads;      /* EJ_HTTP_THREADS */
        const char *nats_url;  /* EJ_NATS_URL */
        int nats_connect_wait_ms;
        bool nats_send_asap;
        int request_timeout_ms; /* EJ_REQUEST_TIMEOUT_MS */
        size_t body_limit;      /* EJ_BODY_LIMIT */
        bool cookie_secure;     /* EJ_COOKIE_SECURE */
        const char *cookie_name;
        int session_cache_ms;        /* EJ_SESSION_CACHE_MS */
        size_t session_cache_size;   /* EJ_SESSION_CACHE_SIZE */
        const char *site_name;       /* EJ_SITE_NAME */
        const char *web_root;        /* EJ_WEB_ROOT */
        bool access_log;             /* EJ_ACCESS_LOG */
        const char *trusted_proxies; /* EJ_TRUSTED_PROXIES: comma-separated addresses, "" none */
        bool dev_mail;               /* EJ_DEV_MAIL: the caught-mail routes exist */
};

struct gw_upstream;
struct gw_sessions;
struct gw_static;
struct gw_streams;
struct gw_stream;

/* Metric series of one route label, looked up once and cached. */
#define GW_CODE_SLOTS 600
struct gw_route_stats {
        const char *label;
        struct ej_histogram *duration;
        _Atomic(struct ej_counter *) by_code[GW_CODE_SLOTS];
};

struct gw {
        const struct gw_config *cfg;
        struct ej_bus *bus;
        struct ej_metrics *metrics;
        struct gw_upstream *up;
        struct gw_streams *streams; /* file uploads and downloads (stream.h) */
        struct gw_sessions *sessions;
        struct gw_static *web;
        struct MHD_Daemon *mhd;
        atomic_bool stopping;
        struct gw_route_stats *stats; /* gw_routes_count + 2 (static, unmatched) */
        struct gw_openapi *api;       /* GET /api/openapi.json (openapi.h) */
};

/* A response being built. */
struct gw_out {
        unsigned status;
        struct ej_buf body;
        const char *content_type; /* NULL: application/json */
        const char *set_cookie;   /* arena string or NULL */
        const char *allow;        /* Allow header of a 405, or NULL */
        const char *retry_after;  /* Retry-After header (seconds), or NULL */
        const char *disposition;  /* Content-Disposition header, or NULL */
        const char *const *skip;  /* proto field names left out of the JSON */
        const char *etag;         /* ETag header (then Cache-Control: no-cache), or NULL */
};

enum gw_phase {
        GW_PHASE_NEW = 0, /* headers seen, body arriving */
        GW_PHASE_WAITING, /* suspended, request on the bus */
        GW_PHASE_DONE,    /* outcome stored, connection resumed */
        GW_PHASE_SENT,    /* response queued */
};

enum gw_access {
        GW_ACCESS_OK = 0,
        GW_ACCESS_ROLE,    /* the route needs a role the principal lacks: forbidden */
        GW_ACCESS_CONSENT, /* the principal owes consent: consent_required */
};

enum gw_stage {
        GW_STAGE_AUTH = 0, /* ej.users.authenticate in flight */
        GW_STAGE_CALL,     /* the route's own request in flight */
};

struct gw_req {
        struct gw *gw;
        struct MHD_Connection *conn;
        struct ej_arena *arena;
        const char *method;
        const char *path;
        unsigned method_bit;
        const struct gw_route *route;
        struct gw_params params;
        size_t stats_index;
        long long start_us;
        char rid[68];
        unsigned status; /* the status sent, for the access log and metrics */
        enum gw_phase phase;

        /* Body. */
        struct ej_buf body;
        bool too_large;
        struct gw_stream *stream; /* a file route's streamed body (stream.h), or NULL */

        /* Principal and session. */
        const char *token; /* the session cookie's value, arena */
        char token_hash[65];
        const char *user_id; /* arena, NULL when anonymous */
        const char *roles;
        bool consent_required; /* the principal owes consent to the current text */
        bool verified;         /* the principal's e-mail address is verified */
        enum gw_access denied; /* why the gateway refused the principal, GW_ACCESS_OK */
        uint64_t auth_gen;     /* session generation when ej.users.authenticate left */
        bool auth_retried;     /* the lookup was asked again after a racing eviction */
        bool drop_cookie;      /* an optional route met a dead session: clear the cookie */
        char client_addr[64];  /* the client's address (peer or trusted X-Forwarded-For) */

        /* The bus exchange. */
        enum gw_stage stage;
        const char *subject;   /* of the message in flight */
        uint64_t seq;          /* key in the pending table */
        long long deadline_ms; /* ej_mono_ms() after which the sweeper answers 504 */
        struct gw_req *pending_next;
        uint8_t *packed; /* the route's request message, arena */
        size_t packed_len;
        natsMsg *reply;         /* owned; destroyed with the request */
        enum ej_status outcome; /* EJ_OK when reply holds the answer */
        struct ej_err outcome_err;
};

/* --- upstream.c: asynchronous NATS requests --- */

/* Creates the reply inbox subscription and the deadline sweeper. */
enum ej_status gw_upstream_create(struct gw_upstream **out, struct gw *gw, struct ej_err *err);

/* Stops the sweeper, fails what is still pending with EJ_ERR_UNAVAILABLE, frees. NULL ok. */
void gw_upstream_destroy(struct gw_upstream *up);

/* Sends `data` to `subject` for `req` (whose connection is suspended), with the request id and
 * principal headers. gw_upstream_done(req) is then called exactly once, with req->reply set
 * (req->outcome EJ_OK) or req->outcome/outcome_err set (no answer): usually later on a NATS or
 * sweeper thread, or at once on this thread when the request cannot go out at all. */
void gw_upstream_send(struct gw_upstream *up, struct gw_req *req, const char *subject,
                      const void *data, size_t n, int timeout_ms);

/* Requests in flight. */
size_t gw_upstream_pending(struct gw_upstream *up);

/* Fails every pending request with EJ_ERR_UNAVAILABLE (shutdown). */
void gw_upstream_fail_all(struct gw_upstream *up, const char *why);

/* http.c: called by upstream.c exactly once per successful gw_upstream_send. */
void gw_upstream_done(struct gw_req *req);

/* --- session.c: cache of resolved sessions, keyed by the token's SHA-256 hex --- */

struct gw_principal {
        const char *user_id;
        const char *roles;
        bool consent_required;
        bool verified;
        long long expires_at_ms;
};

struct gw_sessions *gw_sessions_create(size_t max_entries, int ttl_ms);
void gw_sessions_destroy(struct gw_sessions *s); /* accepts NULL */

/* True and *out filled (strings copied into `arena`) when `hash` is cached and fresh. */
bool gw_sessions_get(struct gw_sessions *s, const char *hash, struct ej_arena *arena,
                     struct gw_principal *out);

/* The generation of the latest eviction: take it before an ej.users.authenticate leaves and
 * give it to gw_sessions_put with the answer. */
uint64_t gw_sessions_generation(struct gw_sessions *s);

/* Caches `p` (strings copied) for the token whose SHA-256 hex is `hash`, looked up when the
 * generation was `since`. False, caching nothing, when the answer may be stale: the token, its
 * user or everyone was evicted after `since` (the principal may have changed meanwhile). An
 * anonymous `p` is never cached (true). */
bool gw_sessions_put(struct gw_sessions *s, const char *hash, const struct gw_principal *p,
                     uint64_t since);

void gw_sessions_evict(struct gw_sessions *s, const char *hash);

/* Drops every cached session of `user_id` (its roles, consent or state changed), or of everyone
 * when `user_id` is "*" (a newly required consent version); returns how many. */
size_t gw_sessions_evict_user(struct gw_sessions *s, const char *user_id);

/* Subscribes to "ej.bcast.session.user_changed" (data: a user id, or "*" for everyone), whose
 * every message drops that user's cached sessions; lives until gw_sessions_unsubscribe (NULL ok).
 * The per-token "ej.bcast.session.revoked" is upstream.c's. */
enum ej_status gw_sessions_subscribe(struct gw_sessions *s, natsConnection *nc, struct ej_err *err);
void gw_sessions_unsubscribe(struct gw_sessions *s);

size_t gw_sessions_count(struct gw_sessions *s);

/* --- static.c: the browser app's files --- */

/* Opens the web root; a missing directory only logs a warning (every file is then 404). */
struct gw_static *gw_static_open(const char *root);
void gw_static_close(struct gw_static *st); /* accepts NULL */

/* The response for GET/HEAD `path`, with *status set (200, 304, 404); NULL with *status 404
 * when there is nothing to serve (the caller answers with its JSON 404). */
struct MHD_Response *gw_static_response(struct gw_static *st, const char *path,
                                        const char *if_none_match, unsigned *status);

/* --- http.c --- */

/* Starts MHD on cfg->http_addr. */
enum ej_status gw_http_start(struct gw *gw, struct ej_err *err);

/* Stops accepting new connections. */
void gw_http_quiesce(struct gw *gw);

/* Closes every connection and stops the threads. Accepts a never-started gateway. */
void gw_http_stop(struct gw *gw);

/* The port MHD bound (useful when EJ_HTTP_ADDR gives port 0). */
int gw_http_port(struct gw *gw);

/* Appends {"error":{...}} for `st` to `out`. */
void gw_error_json(struct ej_buf *out, enum ej_status st, const char *message, const char *field,
                   const char *rid);

/* Adds the request id and the security headers every response carries; `no_store` adds
 * Cache-Control: no-store. */
void gw_common_headers(struct MHD_Response *resp, const char *rid, bool no_store);

/* The HTTP code for a status. */
unsigned gw_http_status(enum ej_status st);

/* Fills `out` with an error answer. */
void gw_out_error(struct gw_out *out, struct gw_req *req, enum ej_status st, const char *message,
                  const char *field);

/* Gateway-level error codes that are not an enum ej_status: "consent_required" (403). */
#define GW_CODE_CONSENT_REQUIRED "consent_required"

/* Fills `out` with an error answer of HTTP `http_status` and code name `code`. */
void gw_out_error_code(struct gw_out *out, struct gw_req *req, unsigned http_status,
                       const char *code, const char *message);

/* --- session.c: who calls, and may they --- */

/* Decides whether the signed-in principal in `req` may call its route: the roles of a
 * GW_AUTH_ROLE route, then the consent owed. */
enum gw_access gw_access_check(const struct gw_req *req);

/* Fills `out` with the 403 answer for a refusal (`why` not GW_ACCESS_OK). */
void gw_out_denied(struct gw_out *out, struct gw_req *req, enum gw_access why);

/* Sets req->client_addr from the connection's peer address, or from X-Forwarded-For when the
 * peer is one of EJ_TRUSTED_PROXIES (see gw_client_addr_pick). */
void gw_req_client_addr(struct gw_req *req);

/* --- handlers.c --- */

/* Binds the query parameter `key` to the field of that name in `msg`, or to the field of that
 * name in one of msg's singular sub-messages (created on demand: "limit" and "cursor" fill
 * `page`). EJ_ERR_INVALID naming the parameter when no field takes it. */
enum ej_status gw_bind_query(ProtobufCMessage *msg, const char *key, const char *value,
                             struct ej_arena *arena, struct ej_err *err);

/* The comma-joined `roles`, in `arena`. */
const char *gw_join_roles(struct ej_arena *arena, size_t n, char *const *roles);

/* The Set-Cookie value for `token` living `max_age_s` seconds (negative: no Max-Age, the
 * browser keeps it for its session; token NULL: clear the cookie). */
const char *gw_session_cookie(struct gw_req *req, const char *token, long long max_age_s);

#endif
