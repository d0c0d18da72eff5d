/*
 * gateway.h: the types every layer of the gateway shares: its settings, the process context,
 * the per-request context and the response being built. It declares no function: each module
 * has its own header, and calls go down the layers, never up:
 *
 *   main.c                        settings, wiring, signals
 *   http.c                        the MHD access handler: body, dispatch, JSON calls
 *   stream_upload.c stream_download.c   file routes (their own state machines)
 *   stream_core.c                 what both file directions share: registry, reply inbox,
 *                                 sweeper, sending, holding and answering a connection
 *   handlers.c                    the route hooks and the query binding
 *   auth.c                        who calls: the session cookie, the cache, ej.users.authenticate
 *   upstream.c session.c static.c frame.c render.c routes.c
 *                                 asynchronous NATS requests and their headers, the session
 *                                 cache and access rules, static files, protobuf framing of
 *                                 file chunks, responses and errors, the route table
 *
 * The gateway is the only HTTP entry of EasyJournal. libmicrohttpd (MHD) threads accept and
 * parse requests; a request for a service is transcoded from JSON to protobuf, its connection
 * is suspended, and it goes out as an asynchronous NATS request (upstream.c). The reply (or the
 * deadline sweeper) calls the completion the sender gave, which resumes the connection, and an
 * MHD thread writes the JSON answer (http.c). No thread ever waits on NATS.
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
        uint32_t upload_chunk;       /* EJ_FILES_UPLOAD_CHUNK: cap on the files service's chunk */
        uint32_t upload_window;      /* EJ_FILES_UPLOAD_WINDOW: cap on its window (0: none) */
        int upload_ack_ms;      /* EJ_FILES_UPLOAD_ACK_MS: longest wait for the next chunk's ack */
        const char *admin_addr; /* EJ_ADMIN_ADDR: /metrics, /healthz, /readyz; port 0: none */
        int max_connections;    /* EJ_HTTP_MAX_CONNECTIONS: 0 = from the fd limit */
        int per_ip_connections; /* EJ_HTTP_PER_IP_CONNECTIONS: 0 = no limit */
        long head_timeout_ms;   /* EJ_HTTP_HEAD_TIMEOUT_MS: a whole request head's deadline */
};

struct gw_upstream;
struct gw_sessions;
struct gw_static;
struct gw_streams;
struct gw_stream;
struct gw_conns;
struct ej_health;

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
        struct gw_streams *streams; /* file uploads and downloads (stream_core.h) */
        struct gw_sessions *sessions;
        struct gw_static *web;
        struct MHD_Daemon *mhd;
        struct gw_conns *conns;  /* open connections, the header deadline (conns.h) */
        struct ej_health *admin; /* the admin listener, or NULL */
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
        const char *location;     /* Location header, or NULL */
        const char *const *skip;  /* proto field names left out of the JSON */
        const char *etag;         /* ETag header (then Cache-Control: no-cache), or NULL */
        bool close;               /* Connection: close (the rest of the stream is not trusted) */
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

struct gw_req {
        struct gw *gw;
        struct MHD_Connection *conn;
        struct ej_arena *arena;
        const char *method; /* NULL until the access handler's first call */
        const char *path;
        const char *raw_uri; /* the request target as sent (MHD's buffer, modified after) */
        size_t raw_uri_len;
        bool raw_uri_nul; /* no target, or "%00" in it */
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
        struct gw_stream *stream; /* a file route's stream (stream_core.h), or NULL */

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
        bool auth_required;    /* no principal is an error (not an anonymous caller) */
        void (*auth_done)(struct gw_req *req, enum ej_status st); /* auth.c's caller */
        bool drop_cookie;     /* an optional route met a dead session: clear the cookie */
        char client_addr[64]; /* the client's address (peer or trusted X-Forwarded-For) */

        /* The bus exchange. */
        void (*done)(struct gw_req *req); /* upstream.c's completion of the message in flight */
        const char *subject;              /* of the message in flight */
        uint64_t seq;                     /* key in the pending table */
        long long deadline_ms;            /* ej_mono_ms() after which the sweeper answers 504 */
        struct gw_req *pending_next;
        uint8_t *packed; /* the route's request message, arena */
        size_t packed_len;
        const char *idem_key;   /* the write's Idempotency-Key (arena), NULL when none; sent
                                   with the route's own call only */
        natsMsg *reply;         /* owned; destroyed with the request */
        enum ej_status outcome; /* EJ_OK when reply holds the answer */
        struct ej_err outcome_err;
};

#endif
