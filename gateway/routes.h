/*
 * routes.h: the route table of the gateway. The table IS the public API: one row per call,
 * giving the method, the path pattern (literal segments and whole-segment {params}), the
 * operation it calls (a method of a service block in proto/, struct gw_rpc), the authentication
 * the call needs, its deadline, and an optional hook for the few calls that need more than
 * transcoding (the session cookie of login and logout) or that the gateway answers itself
 * (/healthz, /api/site, ...).
 *
 * A row names its operation and nothing else about it: gw_routes_resolve, run once at start-up
 * before any thread, derives the NATS subject ej.<service>.<method> and the request and response
 * message types from the service descriptor (rpc.h) and fills them into the row, where the rest
 * of the gateway reads them. The gateway refuses to start when a row does not resolve. Methods
 * no route reaches are listed once, with who calls them, in gw_internal (routes.c); a unit test
 * checks that every method of every service is either routed or listed there.
 *
 * Access (checked by the gateway before the call goes out; every service checks again on its
 * side): GW_AUTH_NONE admits anyone; GW_AUTH_SESSION needs a valid session; GW_AUTH_ROLE a
 * session holding any of the comma-separated .roles (403 forbidden otherwise);
 * GW_AUTH_OPTIONAL admits anyone but resolves a session cookie when there is one and sends the
 * caller's principal headers (an absent, expired or revoked session goes on anonymously, and a
 * dead cookie is cleared): for calls that act on the caller when there is one. A signed-in
 * person who owes consent to a newer consent text gets 403 consent_required on every session
 * route except those marked .consent_exempt (the ones needed to read and give or withdraw
 * consent, see their own account, export it, ask for erasure, and sign out).
 *
 * Body: a JSON route takes only application/json on POST/PUT/PATCH/DELETE, body or not (a
 * cross-site form cannot send that type without a CORS preflight, which we never grant). A
 * .stream route (files: stream_upload.c, stream_download.c) takes a raw or multipart body
 * instead; the Origin check applies to both.
 *
 * Matching policy: a path matches a pattern when it has the same number of '/'-separated
 * segments, every literal segment is equal byte for byte, and every {param} segment is
 * non-empty. Trailing slashes are not folded: "/api/me/" is not "/api/me" (404). When the path
 * matches some pattern but not with this method, the caller answers 405 with the methods that
 * would match (HEAD matches GET rows).
 *
 * The table is constant data; matching is reentrant and allocation-free.
 */
#ifndef EJ_GW_ROUTES_H
#define EJ_GW_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "rpc.h"
#include "status.h"
#include "str.h"

enum gw_method {
        GW_GET = 1 << 0,
        GW_HEAD = 1 << 1,
        GW_POST = 1 << 2,
        GW_PUT = 1 << 3,
        GW_PATCH = 1 << 4,
        GW_DELETE = 1 << 5,
        GW_OPTIONS = 1 << 6,
};

enum gw_auth {
        GW_AUTH_NONE = 0, /* anyone */
        GW_AUTH_SESSION,  /* a valid session cookie */
        GW_AUTH_ROLE,     /* a valid session holding any of route->roles */
        GW_AUTH_OPTIONAL, /* anyone; a valid session cookie names the caller to the service */
};

struct gw_req;
struct gw_out;

/* Routes whose body or answer is a file streamed (stream_upload.c, stream_download.c). */
enum gw_stream_kind {
        GW_STREAM_NONE = 0,
        GW_STREAM_UPLOAD,   /* raw PUT or multipart POST to the files service */
        GW_STREAM_DOWNLOAD, /* GET/HEAD of a stored file */
};

/* What the API description (openapi.c) says of a hooked route beyond its row. Every member
 * may be NULL. */
struct gw_hook_doc {
        const char *summary;     /* one line (default: the operation's name) */
        const char *description; /* more, in CommonMark */
        const char *media_type;  /* of the success body, when it is not JSON */
        const char *schema;      /* JSON Schema text of the success body, instead of resp_desc's */
        unsigned error_status;   /* an error status a local hook may answer (503), or 0 */
};

/* The operation of a route: method `method` of the service block `service` (for example
 * {&ej__users__users__descriptor, "login"}). */
struct gw_rpc {
        const ProtobufCServiceDescriptor *service;
        const char *method;
};

/* Special cases of a route. Every member may be NULL. */
struct gw_hook {
        /* Answers the call in the gateway itself (no NATS request). */
        void (*local)(struct gw_req *req, struct gw_out *out);
        /* Adjusts the decoded request message before it is packed and sent. */
        void (*prepare)(struct gw_req *req, ProtobufCMessage *msg);
        /* Renders a successful reply instead of the default JSON encoding; also called with
         * resp == NULL on failure so it can clean up (e.g. clear a cookie). */
        void (*respond)(struct gw_req *req, const ProtobufCMessage *resp, struct gw_out *out);
        /* Proto field names of resp_desc that respond leaves out of the JSON (NULL-terminated). */
        const char *const *skip;
        struct gw_hook_doc doc;
};

struct gw_route {
        unsigned method;     /* one enum gw_method */
        const char *pattern; /* "/api/articles/{id}" */
        struct gw_rpc rpc;   /* the operation called; {NULL, NULL} when hook->local answers */
        enum gw_auth auth;
        const char *roles;       /* GW_AUTH_ROLE: any of these, comma-separated ("admin") */
        bool consent_exempt;     /* answered even while consent is owed */
        bool dev_mail;           /* exists only with EJ_DEV_MAIL=true (404 otherwise) */
        int timeout_ms;          /* 0: the gateway's default */
        unsigned success_status; /* 0: 200 */
        const struct gw_hook *hook;
        enum gw_stream_kind stream; /* GW_STREAM_NONE for JSON routes */
        /* A stream route whose HTTP answer is not the reply of its method: an upload answers
         * with the FileInfo of its commit (sent on the chunk subject, files.proto). NULL
         * otherwise. */
        const ProtobufCMessageDescriptor *stream_answer;

        /* Derived from .rpc by gw_routes_resolve; never written in a row. */
        const char *subject;                         /* "ej.users.login"; NULL: local */
        const ProtobufCMessageDescriptor *req_desc;  /* the method's input */
        const ProtobufCMessageDescriptor *resp_desc; /* its output (or .stream_answer) */
        char subject_buf[EJ_RPC_SUBJECT_MAX];        /* where .subject is written */
};

/* A method no route reaches, and who calls it instead. */
struct gw_internal {
        struct gw_rpc rpc;  /* .service may be &ej__common__gdpr__descriptor: every service's */
        const char *caller; /* "the gateway's session check", ... */
};

#define GW_MAX_PARAMS 8

/* Path parameters bound by a match; views borrow the pattern and the path. */
struct gw_params {
        size_t n;
        struct ej_str name[GW_MAX_PARAMS];
        struct ej_str value[GW_MAX_PARAMS];
};

/* Hooks of the table's rows (handlers.c). */
extern const struct gw_hook gw_hook_healthz;
extern const struct gw_hook gw_hook_readyz;
extern const struct gw_hook gw_hook_site;
extern const struct gw_hook gw_hook_login;
extern const struct gw_hook gw_hook_logout;
extern const struct gw_hook gw_hook_password;
extern const struct gw_hook gw_hook_register;
extern const struct gw_hook gw_hook_export;
/* openapi.c: GET /api/openapi.json and the reference page GET /api/docs. */
extern const struct gw_hook gw_hook_openapi;
extern const struct gw_hook gw_hook_api_docs;

/* The gateway's table and its length (rows resolved by gw_routes_resolve). */
extern const struct gw_route *const gw_routes;
extern const size_t gw_routes_count;

/* The methods the gateway does not route, each with who calls it (see above). */
extern const struct gw_internal gw_internal[];
extern const size_t gw_internal_count;

/* Fills subject, req_desc and resp_desc of every row of `table` from its .rpc (rows without
 * .rpc.service are left alone). Idempotent; not thread-safe: call once at start-up, before any
 * thread reads the table. A subject lives in its row (.subject_buf). Fails with
 * EJ_ERR_INVALID, `err` naming the row, when a row names a method its service does not have,
 * or has a .rpc but no subject can be derived. */
enum ej_status gw_route_table_resolve(struct gw_route *table, size_t n, struct ej_err *err);

/* gw_route_table_resolve on the gateway's own table. */
enum ej_status gw_routes_resolve(struct ej_err *err);

/* Checks that every method of every service named by a row of `table` or an entry of
 * `internal` is reached by a row or listed in `internal` (not both), and that every entry of
 * `internal` names a real method. EJ_OK, or EJ_ERR_INVALID with `err` naming the first method
 * or entry at fault. */
enum ej_status gw_routes_check_coverage(const struct gw_route *table, size_t n,
                                        const struct gw_internal *internal, size_t n_internal,
                                        struct ej_err *err);

/* The enum gw_method bit for the method name, 0 when it is not one we know. */
unsigned gw_method_bit(const char *method);

/* Writes "GET, HEAD, POST" style text for the `methods` mask into out (NUL-terminated). */
void gw_methods_text(unsigned methods, char *out, size_t out_size);

/* True when `path` matches `pattern`; binds the {params} into `params` (may be NULL). */
int gw_pattern_match(const char *pattern, const char *path, struct gw_params *params);

/* The first row of `table` matching `method` (a enum gw_method bit) and `path`, or NULL. On
 * NULL, *allowed (may be NULL) holds the methods of the rows whose pattern matched (0: no row
 * matched the path at all, i.e. 404; otherwise 405). */
const struct gw_route *gw_route_match(const struct gw_route *table, size_t n, unsigned method,
                                      const char *path, struct gw_params *params,
                                      unsigned *allowed);

/* True when the comma-separated `have` holds any of the comma-separated `want` (whole names;
 * NULL or "" holds nothing). */
bool gw_roles_allow(const char *have, const char *want);

/* True when a principal owing consent (`consent_required`) is refused `route`. */
bool gw_consent_blocks(const struct gw_route *route, bool consent_required);

/* The client's address for the services: the socket peer `peer`, unless the peer is one of the
 * comma-separated `trusted` proxies and `xff` (X-Forwarded-For, may be NULL) names hops: then
 * the last hop that is not itself a trusted proxy (the one our own proxies saw). Written into
 * out (NUL-terminated, at most out_size - 1 bytes); a hop that is not a plain IPv4/IPv6 text
 * is refused and the peer kept. */
void gw_client_addr_pick(const char *peer, const char *xff, const char *trusted, char *out,
                         size_t out_size);

#endif
