/*
 * Route matching of the gateway: literal and {param} segments, 404 versus 405 with the allowed
 * methods, HEAD on GET rows, the trailing slash policy; the access rules (roles, consent
 * exemptions), the client address behind trusted proxies; the real table's rows; and the
 * table against the services' proto blocks: every row resolves to a real method, and every
 * method of every service is either routed or marked internal.
 */
#include "../../gateway/framing.c"
#include "../../gateway/render.c"
#include "../../gateway/routes.c"
#include "../../gateway/session.c"

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <string.h>

#include "check.h"

/* The hooks the real table points at live in handlers.c; stand-ins suffice for matching. */
static void local_stub(struct gw_req *req, struct gw_out *out)
{
        (void)req;
        (void)out;
}

const struct gw_hook gw_hook_healthz = {.local = local_stub};
const struct gw_hook gw_hook_readyz = {.local = local_stub};
const struct gw_hook gw_hook_site = {.local = local_stub};
const struct gw_hook gw_hook_login = {0};
const struct gw_hook gw_hook_logout = {0};
const struct gw_hook gw_hook_password = {0};
const struct gw_hook gw_hook_register = {0};
const struct gw_hook gw_hook_export = {0};
const struct gw_hook gw_hook_openapi = {.local = local_stub};
const struct gw_hook gw_hook_api_docs = {.local = local_stub};

static const struct gw_route table[] = {
    {.method = GW_GET, .pattern = "/api/articles", .subject = "list"},
    {.method = GW_POST, .pattern = "/api/articles", .subject = "create"},
    {.method = GW_GET, .pattern = "/api/articles/{id}", .subject = "get"},
    {.method = GW_DELETE, .pattern = "/api/articles/{id}", .subject = "delete"},
    {.method = GW_GET, .pattern = "/api/articles/{id}/files/{file_id}", .subject = "file"},
    {.method = GW_PUT, .pattern = "/api/articles/{id}/files/{file_id}", .subject = "put"},
    {.method = GW_GET, .pattern = "/api/articles/latest", .subject = "latest"},
};
static const size_t table_n = sizeof(table) / sizeof(table[0]);

static int param_is(const struct gw_params *p, size_t i, const char *name, const char *value)
{
        return i < p->n && ej_str_eq_c(p->name[i], name) && ej_str_eq_c(p->value[i], value);
}

static const char *subject_of(unsigned method, const char *path)
{
        const struct gw_route *r = gw_route_match(table, table_n, method, path, NULL, NULL);

        return r ? r->subject : NULL;
}

static void test_literals(void)
{
        struct gw_params p;
        unsigned allowed = 99;
        const struct gw_route *r;

        r = gw_route_match(table, table_n, GW_GET, "/api/articles", &p, &allowed);
        CHECK(r == &table[0]);
        CHECK(p.n == 0);
        CHECK(allowed == 0);
        CHECK(subject_of(GW_POST, "/api/articles") != NULL &&
              strcmp(subject_of(GW_POST, "/api/articles"), "create") == 0);
        CHECK(subject_of(GW_GET, "/api/article") == NULL);
        CHECK(subject_of(GW_GET, "/api/articlesx") == NULL);
        CHECK(subject_of(GW_GET, "/api") == NULL);
        CHECK(subject_of(GW_GET, "") == NULL);
}

static void test_params(void)
{
        struct gw_params p;
        const struct gw_route *r;

        r = gw_route_match(table, table_n, GW_GET, "/api/articles/42", &p, NULL);
        CHECK(r == &table[2]);
        CHECK(p.n == 1);
        CHECK(param_is(&p, 0, "id", "42"));

        r = gw_route_match(table, table_n, GW_PUT, "/api/articles/a-b/files/f.pdf", &p, NULL);
        CHECK(r == &table[5]);
        CHECK(p.n == 2);
        CHECK(param_is(&p, 0, "id", "a-b"));
        CHECK(param_is(&p, 1, "file_id", "f.pdf"));

        /* A param never spans '/' and never binds an empty segment. */
        CHECK(subject_of(GW_GET, "/api/articles/1/2") == NULL);
        CHECK(subject_of(GW_GET, "/api/articles//files/x") == NULL);
        CHECK(subject_of(GW_GET, "/api/articles/1/files/") == NULL);

        /* First row wins: "latest" is bound as {id} by the earlier row. */
        r = gw_route_match(table, table_n, GW_GET, "/api/articles/latest", &p, NULL);
        CHECK(r == &table[2]);
        CHECK(param_is(&p, 0, "id", "latest"));
}

static void test_not_found_vs_method(void)
{
        unsigned allowed = 0;
        const struct gw_route *r;
        char text[64];

        r = gw_route_match(table, table_n, GW_PATCH, "/api/articles/7", NULL, &allowed);
        CHECK(r == NULL);
        CHECK(allowed == (GW_GET | GW_HEAD | GW_DELETE));
        gw_methods_text(allowed, text, sizeof(text));
        CHECK(strcmp(text, "GET, HEAD, DELETE") == 0);

        r = gw_route_match(table, table_n, GW_DELETE, "/api/articles", NULL, &allowed);
        CHECK(r == NULL);
        CHECK(allowed == (GW_GET | GW_HEAD | GW_POST));

        r = gw_route_match(table, table_n, GW_GET, "/api/nothing", NULL, &allowed);
        CHECK(r == NULL);
        CHECK(allowed == 0);

        /* An unknown method (bit 0) matches nothing but still reports what would. */
        r = gw_route_match(table, table_n, 0, "/api/articles", NULL, &allowed);
        CHECK(r == NULL);
        CHECK(allowed != 0);
}

static void test_head(void)
{
        CHECK(subject_of(GW_HEAD, "/api/articles/9") != NULL &&
              strcmp(subject_of(GW_HEAD, "/api/articles/9"), "get") == 0);
}

static void test_trailing_slash(void)
{
        unsigned allowed = 5;

        CHECK(gw_route_match(table, table_n, GW_GET, "/api/articles/", NULL, &allowed) == NULL);
        CHECK(allowed == 0);
        CHECK(!gw_pattern_match("/api/me", "/api/me/", NULL));
        CHECK(!gw_pattern_match("/api/me/", "/api/me", NULL));
        CHECK(gw_pattern_match("/", "/", NULL));
        CHECK(!gw_pattern_match("/", "//", NULL));
}

static void test_methods(void)
{
        char small[8];

        CHECK(gw_method_bit("GET") == GW_GET);
        CHECK(gw_method_bit("DELETE") == GW_DELETE);
        CHECK(gw_method_bit("get") == 0);
        CHECK(gw_method_bit("BREW") == 0);
        gw_methods_text(GW_GET | GW_POST | GW_DELETE, small, sizeof(small));
        CHECK(strlen(small) < sizeof(small));
        gw_methods_text(0, small, sizeof(small));
        CHECK(small[0] == '\0');
}

static void test_roles(void)
{
        CHECK(gw_roles_allow("admin", "admin"));
        CHECK(gw_roles_allow("author,editor", "editor,admin"));
        CHECK(gw_roles_allow("admin,author", "editor,admin"));
        CHECK(!gw_roles_allow("author,reviewer", "editor,admin"));
        /* Whole names only: no prefix or substring matches. */
        CHECK(!gw_roles_allow("administrator", "admin"));
        CHECK(!gw_roles_allow("admin", "administrator"));
        CHECK(!gw_roles_allow("editor-in-chief", "editor"));
        CHECK(!gw_roles_allow("", "admin"));
        CHECK(!gw_roles_allow(NULL, "admin"));
        CHECK(!gw_roles_allow("admin", ""));
        CHECK(!gw_roles_allow("admin", NULL));
        CHECK(!gw_roles_allow(",", ","));
        CHECK(gw_roles_allow("author, admin", "admin"));
}

static void test_consent(void)
{
        const struct gw_route open_row = {.method = GW_GET, .pattern = "/x"};
        const struct gw_route session_row = {
            .method = GW_GET, .pattern = "/x", .auth = GW_AUTH_SESSION};
        const struct gw_route role_row = {
            .method = GW_GET, .pattern = "/x", .auth = GW_AUTH_ROLE, .roles = "admin"};
        const struct gw_route exempt_row = {
            .method = GW_GET, .pattern = "/x", .auth = GW_AUTH_SESSION, .consent_exempt = true};
        static const struct {
                unsigned method;
                const char *path;
        } exempt[] = {
            {GW_GET, "/api/me"},
            {GW_POST, "/api/auth/logout"},
            {GW_GET, "/api/consent"},
            {GW_GET, "/api/privacy"},
            {GW_POST, "/api/consent/accept"},
            {GW_POST, "/api/consent/withdraw"},
            {GW_GET, "/api/me/export"},
            {GW_POST, "/api/me/erasure"},
        };
        static const struct {
                unsigned method;
                const char *path;
        } blocked[] = {
            {GW_PATCH, "/api/me"},
            {GW_POST, "/api/me/password"},
            {GW_POST, "/api/me/email"},
            {GW_GET, "/api/admin/users"},
            {GW_PUT, "/api/admin/users/u1/roles/editor"},
            {GW_POST, "/api/admin/invitations"},
        };

        CHECK(!gw_consent_blocks(&open_row, true));
        CHECK(gw_consent_blocks(&session_row, true));
        CHECK(gw_consent_blocks(&role_row, true));
        CHECK(!gw_consent_blocks(&exempt_row, true));
        CHECK(!gw_consent_blocks(&session_row, false));
        CHECK(!gw_consent_blocks(&role_row, false));

        for (size_t i = 0; i < sizeof(exempt) / sizeof(exempt[0]); i++) {
                const struct gw_route *r = gw_route_match(
                    gw_routes, gw_routes_count, exempt[i].method, exempt[i].path, NULL, NULL);

                CHECK(r != NULL && r->consent_exempt && !gw_consent_blocks(r, true));
        }
        for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++) {
                const struct gw_route *r = gw_route_match(
                    gw_routes, gw_routes_count, blocked[i].method, blocked[i].path, NULL, NULL);

                CHECK(r != NULL && !r->consent_exempt && gw_consent_blocks(r, true));
        }
}

static const char *pick(const char *peer, const char *xff, const char *trusted)
{
        static char out[64];

        gw_client_addr_pick(peer, xff, trusted, out, sizeof(out));
        return out;
}

static void test_client_addr(void)
{
        /* No trusted proxies: the peer, whatever the header claims. */
        CHECK(strcmp(pick("203.0.113.7", "198.51.100.1", ""), "203.0.113.7") == 0);
        CHECK(strcmp(pick("203.0.113.7", NULL, "10.0.0.1"), "203.0.113.7") == 0);
        /* An untrusted peer cannot speak for others. */
        CHECK(strcmp(pick("203.0.113.7", "198.51.100.1", "10.0.0.1"), "203.0.113.7") == 0);
        /* A trusted peer: the last hop, spoofed entries on the left ignored. */
        CHECK(strcmp(pick("10.0.0.1", "1.2.3.4, 198.51.100.1", "10.0.0.1"), "198.51.100.1") == 0);
        /* Our own proxies in the chain are skipped. */
        CHECK(strcmp(pick("10.0.0.1", "1.2.3.4,198.51.100.1, 10.0.0.2", "10.0.0.1,10.0.0.2"),
                     "198.51.100.1") == 0);
        CHECK(strcmp(pick("::1", "2001:db8::5", "127.0.0.1, ::1"), "2001:db8::5") == 0);
        /* A hop that is not an address: trust stops at the peer. */
        CHECK(strcmp(pick("10.0.0.1", "1.2.3.4, evil\r\nX: y", "10.0.0.1"), "10.0.0.1") == 0);
        CHECK(strcmp(pick("10.0.0.1", "", "10.0.0.1"), "10.0.0.1") == 0);
        CHECK(strcmp(pick("10.0.0.1", "unknown", "10.0.0.1"), "10.0.0.1") == 0);
        /* Whole addresses: 10.0.0.10 is not 10.0.0.1. */
        CHECK(strcmp(pick("10.0.0.10", "198.51.100.1", "10.0.0.1"), "10.0.0.10") == 0);
}

static void hash_of(const char *token, char *hash)
{
        ej_sha256_hex(token, strlen(token), hash);
}

static void put(struct gw_sessions *s, const char *token, const char *user, const char *roles,
                bool consent)
{
        char hash[EJ_SHA256_HEX_LEN];
        struct gw_principal p = {.user_id = user, .roles = roles, .consent_required = consent};

        hash_of(token, hash);
        gw_sessions_put(s, hash, &p, gw_sessions_generation(s));
}

/* An authenticate answer for `token` of `user` whose lookup began at generation `since`. */
static bool put_since(struct gw_sessions *s, const char *token, const char *user, uint64_t since)
{
        char hash[EJ_SHA256_HEX_LEN];
        struct gw_principal p = {.user_id = user, .roles = "author"};

        hash_of(token, hash);
        return gw_sessions_put(s, hash, &p, since);
}

static bool cached(struct gw_sessions *s, const char *token, struct ej_arena *a,
                   struct gw_principal *p)
{
        char hash[EJ_SHA256_HEX_LEN];

        hash_of(token, hash);
        return gw_sessions_get(s, hash, a, p);
}

static void test_session_cache(void)
{
        struct gw_sessions *s = gw_sessions_create(100, 60000);
        struct ej_arena *a = ej_arena_create(1024);
        struct gw_principal p;
        char token[32];

        put(s, "a1", "user-a", "author", false);
        put(s, "a2", "user-a", "author", false);
        put(s, "a3", "user-a", "author,admin", true);
        put(s, "b1", "user-b", "editor", false);
        put(s, "b2", "user-b", "editor", false);
        put(s, "a2", "user-a", "author", false); /* replacing keeps one entry */
        CHECK(gw_sessions_count(s) == 5);
        CHECK(cached(s, "a3", a, &p) && strcmp(p.user_id, "user-a") == 0 &&
              strcmp(p.roles, "author,admin") == 0 && p.consent_required);

        /* user_changed drops every session of that user, and only those. */
        CHECK(gw_sessions_evict_user(s, "user-a") == 3);
        CHECK(gw_sessions_count(s) == 2);
        CHECK(!cached(s, "a1", a, &p) && !cached(s, "a2", a, &p) && !cached(s, "a3", a, &p));
        CHECK(cached(s, "b1", a, &p) && strcmp(p.user_id, "user-b") == 0 && !p.consent_required);
        CHECK(gw_sessions_evict_user(s, "user-a") == 0);
        CHECK(gw_sessions_evict_user(s, "user-") == 0); /* whole ids only */
        CHECK(gw_sessions_evict_user(s, "") == 0);

        /* Per-token revocation leaves the user index consistent. */
        {
                char hash[EJ_SHA256_HEX_LEN];

                hash_of("b1", hash);
                gw_sessions_evict(s, hash);
        }
        CHECK(gw_sessions_evict_user(s, "user-b") == 1);
        CHECK(gw_sessions_count(s) == 0);

        /* A full cache drops its oldest entries; the index forgets them too. */
        gw_sessions_destroy(s);
        s = gw_sessions_create(10, 60000);
        for (int i = 0; i < 50; i++) {
                snprintf(token, sizeof(token), "t%d", i);
                put(s, token, i % 2 ? "odd" : "even", "author", false);
        }
        CHECK(gw_sessions_count(s) == 10);
        CHECK(gw_sessions_evict_user(s, "odd") == 5);
        CHECK(gw_sessions_evict_user(s, "even") == 5);

        /* "*" drops everyone's (a newly required consent). */
        put(s, "x", "u1", "author", false);
        put(s, "y", "u2", "author", false);
        CHECK(gw_sessions_evict_user(s, "*") == 2);
        CHECK(gw_sessions_count(s) == 0);

        /* Nothing anonymous is cached. */
        put(s, "z", "", "author", false);
        CHECK(gw_sessions_count(s) == 0);
        gw_sessions_destroy(s);

        /* A cache of zero lifetime holds nothing. */
        s = gw_sessions_create(10, 0);
        put(s, "x", "u1", "author", false);
        CHECK(!cached(s, "x", a, &p));
        gw_sessions_destroy(s);
        ej_arena_destroy(a);
}

/* A lookup that was in flight when an eviction happened must not re-cache what it found. */
static void test_session_generations(void)
{
        struct gw_sessions *s = gw_sessions_create(100, 60000);
        struct ej_arena *a = ej_arena_create(1024);
        struct gw_principal p;
        char hash[EJ_SHA256_HEX_LEN];
        uint64_t g0, g1;

        /* Nothing happened meanwhile: cached. */
        g0 = gw_sessions_generation(s);
        CHECK(put_since(s, "t1", "user-a", g0));
        CHECK(cached(s, "t1", a, &p));

        /* The user changed while the lookup was out: refused, nothing cached. */
        g0 = gw_sessions_generation(s);
        gw_sessions_evict_user(s, "user-a");
        CHECK(!put_since(s, "t2", "user-a", g0));
        CHECK(!cached(s, "t2", a, &p) && gw_sessions_count(s) == 0);
        /* Another user's eviction does not touch it; a lookup begun after does not either. */
        g0 = gw_sessions_generation(s);
        gw_sessions_evict_user(s, "user-b");
        CHECK(put_since(s, "t2", "user-a", g0));
        CHECK(cached(s, "t2", a, &p));
        CHECK(gw_sessions_evict_user(s, "user-a") == 1);
        g1 = gw_sessions_generation(s);
        CHECK(g1 > g0);
        CHECK(put_since(s, "t2", "user-a", g1));

        /* A revoked token: that token is refused, the user's others are not. */
        g0 = gw_sessions_generation(s);
        hash_of("t3", hash);
        gw_sessions_evict(s, hash);
        CHECK(!put_since(s, "t3", "user-c", g0));
        CHECK(put_since(s, "t4", "user-c", g0));

        /* "*" (a flush) refuses every lookup begun before it. */
        g0 = gw_sessions_generation(s);
        gw_sessions_evict_user(s, "*");
        CHECK(gw_sessions_count(s) == 0);
        CHECK(!put_since(s, "t5", "user-d", g0));
        CHECK(!put_since(s, "t6", "user-e", g0));
        CHECK(put_since(s, "t6", "user-e", gw_sessions_generation(s)));

        /* Evictions past the ring's memory: an old lookup is refused even for an unrelated
         * user, since what it missed is no longer known; a recent one is judged exactly. */
        g0 = gw_sessions_generation(s);
        for (int i = 0; i < (int)RECENT_EVICTIONS + 10; i++) {
                char id[32];

                snprintf(id, sizeof(id), "other-%d", i);
                gw_sessions_evict_user(s, id);
        }
        CHECK(!put_since(s, "t7", "user-f", g0));
        g1 = gw_sessions_generation(s);
        gw_sessions_evict_user(s, "other-x");
        CHECK(put_since(s, "t7", "user-f", g1 - 5));
        CHECK(!put_since(s, "t8", "other-x", g1));

        /* An anonymous answer is never cached but is not stale either. */
        CHECK(put_since(s, "t9", "", 0) && !cached(s, "t9", a, &p));

        /* A cache of zero lifetime still reports races (the request in hand asks again). */
        gw_sessions_destroy(s);
        s = gw_sessions_create(10, 0);
        g0 = gw_sessions_generation(s);
        gw_sessions_evict_user(s, "user-a");
        CHECK(!put_since(s, "t1", "user-a", g0));
        CHECK(put_since(s, "t1", "user-b", g0));
        gw_sessions_destroy(s);
        ej_arena_destroy(a);
}

/* GW_AUTH_OPTIONAL rows are open to anyone, signed in or not, consent owed or not. */
static void test_optional_auth(void)
{
        const struct gw_route *resend = gw_route_match(gw_routes, gw_routes_count, GW_POST,
                                                       "/api/auth/verify/resend", NULL, NULL);
        const struct gw_route opt_row = {
            .method = GW_GET, .pattern = "/x", .auth = GW_AUTH_OPTIONAL};
        struct gw_req req = {0};

        CHECK(resend != NULL && resend->auth == GW_AUTH_OPTIONAL);
        CHECK(!gw_consent_blocks(&opt_row, true));
        req.route = &opt_row;
        req.roles = "";
        req.consent_required = true;
        CHECK(gw_access_check(&req) == GW_ACCESS_OK);
        /* Every optional row's service takes an anonymous call too: none needs a role. */
        for (size_t i = 0; i < gw_routes_count; i++)
                if (gw_routes[i].auth == GW_AUTH_OPTIONAL)
                        CHECK(gw_routes[i].roles == NULL && gw_routes[i].subject != NULL);
}

static void test_access_check(void)
{
        struct gw_req req = {0};
        const struct gw_route *admin =
            gw_route_match(gw_routes, gw_routes_count, GW_GET, "/api/admin/users", NULL, NULL);
        const struct gw_route *me =
            gw_route_match(gw_routes, gw_routes_count, GW_GET, "/api/me", NULL, NULL);
        const struct gw_route *profile =
            gw_route_match(gw_routes, gw_routes_count, GW_PATCH, "/api/me", NULL, NULL);
        struct gw_out out = {0};

        CHECK(admin && me && profile);
        if (!admin || !me || !profile)
                return;
        req.route = admin;
        req.roles = "author,editor";
        CHECK(gw_access_check(&req) == GW_ACCESS_ROLE);
        req.roles = "author,admin";
        CHECK(gw_access_check(&req) == GW_ACCESS_OK);
        /* Roles first: someone without the role learns nothing about consent. */
        req.consent_required = true;
        CHECK(gw_access_check(&req) == GW_ACCESS_CONSENT);
        req.roles = "author";
        CHECK(gw_access_check(&req) == GW_ACCESS_ROLE);
        req.route = me;
        CHECK(gw_access_check(&req) == GW_ACCESS_OK);
        req.route = profile;
        CHECK(gw_access_check(&req) == GW_ACCESS_CONSENT);
        req.consent_required = false;
        CHECK(gw_access_check(&req) == GW_ACCESS_OK);

        /* The refusals as render.c writes them. */
        snprintf(req.rid, sizeof(req.rid), "%s", "r1");
        gw_out_denied(&out, &req, GW_ACCESS_CONSENT);
        CHECK(out.status == 403 && out.body.p &&
              strstr(out.body.p, "\"code\":\"consent_required\"") != NULL &&
              strstr(out.body.p, "\"requestId\":\"r1\"") != NULL);
        gw_out_denied(&out, &req, GW_ACCESS_ROLE);
        CHECK(out.status == 403 && out.body.p &&
              strstr(out.body.p, "\"code\":\"forbidden\"") != NULL);
        ej_buf_free(&out.body);
}

/* The service name of "ej.users.me" ("users"), in buf; "" when not ej.<svc>.<verb>. */
static const char *service_part(const char *subject, char *buf, size_t size)
{
        const char *a = strchr(subject, '.');
        const char *b = a ? strchr(a + 1, '.') : NULL;

        buf[0] = '\0';
        if (strncmp(subject, "ej.", 3) == 0 && b && b[1] && !strchr(b + 1, '.'))
                snprintf(buf, size, "%.*s", (int)(b - a - 1), a + 1);
        return buf;
}

/* True when the message type belongs to `svc`'s package or is a shared ej.common type. */
static int desc_of(const ProtobufCMessageDescriptor *d, const char *svc)
{
        char pkg[64];

        snprintf(pkg, sizeof(pkg), "ej.%s", svc);
        return d &&
               (strcmp(d->package_name, pkg) == 0 || strcmp(d->package_name, "ej.common") == 0);
}

/* GET rows only read: their verbs are of these kinds. */
static int read_verb(const char *subject)
{
        static const char *const verbs[] = {"me", "export_my_data", "consent_stats", "list", NULL};
        const char *verb = strrchr(subject, '.') + 1;

        if (strncmp(verb, "get_", 4) == 0 || strncmp(verb, "list_", 5) == 0)
                return 1;
        for (size_t i = 0; verbs[i]; i++)
                if (strcmp(verb, verbs[i]) == 0)
                        return 1;
        return 0;
}

static void test_real_table(void)
{
        unsigned allowed = 0;
        const struct gw_route *r;

        r = gw_route_match(gw_routes, gw_routes_count, GW_GET, "/api/me", NULL, NULL);
        CHECK(r && r->auth == GW_AUTH_SESSION && strcmp(r->subject, "ej.users.me") == 0);
        r = gw_route_match(gw_routes, gw_routes_count, GW_POST, "/api/auth/register", NULL, NULL);
        CHECK(r && r->success_status == 202 && r->auth == GW_AUTH_NONE &&
              r->hook == &gw_hook_register);
        r = gw_route_match(gw_routes, gw_routes_count, GW_POST, "/api/auth/login", NULL, NULL);
        CHECK(r && r->hook == &gw_hook_login);
        r = gw_route_match(gw_routes, gw_routes_count, GW_POST, "/api/auth/logout", NULL, NULL);
        CHECK(r && r->auth == GW_AUTH_SESSION && r->hook == &gw_hook_logout);
        r = gw_route_match(gw_routes, gw_routes_count, GW_GET, "/api/auth/login", NULL, &allowed);
        CHECK(r == NULL && allowed == GW_POST);
        r = gw_route_match(gw_routes, gw_routes_count, GW_GET, "/healthz", NULL, NULL);
        CHECK(r && r->hook == &gw_hook_healthz && r->subject == NULL);
        CHECK(gw_route_match(gw_routes, gw_routes_count, GW_GET, "/api/unknown", NULL, &allowed) ==
                  NULL &&
              allowed == 0);
        r = gw_route_match(gw_routes, gw_routes_count, GW_GET, "/api/admin/users", NULL, NULL);
        CHECK(r && r->auth == GW_AUTH_ROLE && strcmp(r->roles, "admin") == 0);
        r = gw_route_match(gw_routes, gw_routes_count, GW_POST, "/api/admin/invitations", NULL,
                           NULL);
        CHECK(r && r->auth == GW_AUTH_ROLE && gw_roles_allow("editor", r->roles) &&
              gw_roles_allow("admin", r->roles) && !gw_roles_allow("reviewer,author", r->roles));
        {
                struct gw_params p;

                r = gw_route_match(gw_routes, gw_routes_count, GW_DELETE,
                                   "/api/admin/users/u-9/roles/editor", &p, NULL);
                CHECK(r && strcmp(r->subject, "ej.users.revoke_role") == 0);
                CHECK(param_is(&p, 0, "user_id", "u-9") && param_is(&p, 1, "role", "editor"));
        }
        r = gw_route_match(gw_routes, gw_routes_count, GW_GET, "/api/admin/dev-mail", NULL, NULL);
        CHECK(r && r->dev_mail && r->auth == GW_AUTH_ROLE);
        r = gw_route_match(gw_routes, gw_routes_count, GW_GET, "/api/admin/mail-templates", NULL,
                           NULL);
        CHECK(r && strcmp(r->subject, "ej.users.list_mail_templates") == 0 &&
              r->auth == GW_AUTH_ROLE && strcmp(r->roles, "admin") == 0);
        {
                struct gw_params p;

                r = gw_route_match(gw_routes, gw_routes_count, GW_PUT,
                                   "/api/admin/mail-templates/welcome", &p, NULL);
                CHECK(r && strcmp(r->subject, "ej.users.update_mail_template") == 0 &&
                      r->auth == GW_AUTH_ROLE && strcmp(r->roles, "admin") == 0);
                CHECK(param_is(&p, 0, "key", "welcome"));
        }
        r = gw_route_match(gw_routes, gw_routes_count, GW_GET, "/api/me/export", NULL, NULL);
        CHECK(r && r->hook == &gw_hook_export && r->consent_exempt);
        r = gw_route_match(gw_routes, gw_routes_count, GW_POST, "/api/me/password", NULL, NULL);
        CHECK(r && r->hook == &gw_hook_password && r->auth == GW_AUTH_SESSION);

        /* Every row is well formed: a service row has a subject and both message types, a
         * local row a local hook; a role row names its role; every {param} is closed. */
        for (size_t i = 0; i < gw_routes_count; i++) {
                const struct gw_route *row = &gw_routes[i];
                int ok = row->pattern && row->pattern[0] == '/' && row->method != 0;

                char svc[32];

                if (row->subject && row->stream != GW_STREAM_NONE) {
                        /* A streamed file route names the first message of its exchange
                         * (ej.files.upload_begin, ej.files.download_open). */
                        ok = ok && strncmp(row->subject, "ej.files.", 9) == 0 &&
                             desc_of(row->req_desc, "files") && desc_of(row->resp_desc, "files");
                } else if (row->subject) {
                        /* ej.<svc>.<verb>, with message types of that service (or common). */
                        ok = ok && service_part(row->subject, svc, sizeof(svc))[0] != '\0' &&
                             desc_of(row->req_desc, svc) && desc_of(row->resp_desc, svc);
                } else {
                        ok = ok && row->hook != NULL && row->hook->local != NULL;
                }
                /* A role row names roles; only a role row has them. */
                if (row->auth == GW_AUTH_ROLE)
                        ok = ok && row->roles && row->roles[0] && row->roles[0] != ',';
                else
                        ok = ok && row->roles == NULL;
                /* The caught mail is for admins only. */
                if (row->dev_mail)
                        ok = ok && row->auth == GW_AUTH_ROLE && gw_roles_allow("admin", row->roles);
                /* One method per row; reads never change state. */
                ok = ok && (row->method & (row->method - 1)) == 0;
                if (row->subject && row->method == GW_GET && row->stream == GW_STREAM_NONE)
                        ok = ok && read_verb(row->subject);
                /* Every {param} is closed and names a field of the request. */
                for (const char *c = row->pattern; *c; c++) {
                        if (*c != '{')
                                continue;
                        const char *close = strchr(c, '}');
                        char name[64];

                        ok = ok && close != NULL && close - c - 1 > 0 &&
                             (size_t)(close - c - 1) < sizeof(name);
                        if (!ok)
                                break;
                        snprintf(name, sizeof(name), "%.*s", (int)(close - c - 1), c + 1);
                        if (row->req_desc)
                                ok = ok && protobuf_c_message_descriptor_get_field_by_name(
                                               row->req_desc, name) != NULL;
                }
                /* No two rows with the same method and pattern. */
                for (size_t j = 0; j < i; j++)
                        ok = ok && !(gw_routes[j].method == row->method &&
                                     strcmp(gw_routes[j].pattern, row->pattern) == 0);
                if (!ok)
                        fprintf(stderr, "row %zu (%s) is not well formed\n", i, row->pattern);
                CHECK(ok);
                /* A row's own pattern matches a path built from it. */
                if (!strchr(row->pattern, '{'))
                        CHECK(gw_route_match(gw_routes, gw_routes_count, row->method, row->pattern,
                                             NULL, NULL) == row);
        }
}

/* Every row of the real table names a real method; the derived subject and types are the
 * descriptor's. */
static void test_resolution(void)
{
        const struct gw_route *r;
        size_t resolved = 0;

        for (size_t i = 0; i < gw_routes_count; i++) {
                const struct gw_route *row = &gw_routes[i];
                const ProtobufCMethodDescriptor *m;
                char svc[EJ_RPC_NAME_MAX], want[EJ_RPC_SUBJECT_MAX];

                if (row->rpc.service == NULL) {
                        CHECK(row->rpc.method == NULL && row->subject == NULL);
                        continue;
                }
                m = ej_rpc_method(row->rpc.service, row->rpc.method);
                CHECK(m != NULL);
                if (m == NULL) {
                        fprintf(stderr, "row %s names no method\n", row->pattern);
                        continue;
                }
                CHECK(ej_rpc_service_name(row->rpc.service, svc, sizeof(svc), NULL) == EJ_OK);
                snprintf(want, sizeof(want), "ej.%s.%s", svc, m->name);
                CHECK(row->subject && strcmp(row->subject, want) == 0);
                CHECK(row->req_desc == m->input);
                CHECK(row->resp_desc == (row->stream_answer ? row->stream_answer : m->output));
                /* Only a stream route answers with something other than its method's reply. */
                CHECK(row->stream_answer == NULL || row->stream != GW_STREAM_NONE);
                resolved++;
        }
        CHECK(resolved > 30);
        r = gw_route_match(gw_routes, gw_routes_count, GW_POST, "/api/auth/register", NULL, NULL);
        CHECK(r && strcmp(r->subject, "ej.users.register_account") == 0 &&
              r->req_desc == &ej__users__register_request__descriptor &&
              r->resp_desc == &ej__users__register_response__descriptor);
        r = gw_route_match(gw_routes, gw_routes_count, GW_PUT, "/api/files", NULL, NULL);
        CHECK(r && strcmp(r->subject, "ej.files.upload_begin") == 0 &&
              r->req_desc == &ej__files__upload_begin__descriptor &&
              r->resp_desc == &ej__files__file_info__descriptor);
        r = gw_route_match(gw_routes, gw_routes_count, GW_GET, "/api/files/x", NULL, NULL);
        CHECK(r && strcmp(r->subject, "ej.files.download_open") == 0 &&
              r->resp_desc == &ej__files__file_meta__descriptor);
        r = gw_route_match(gw_routes, gw_routes_count, GW_DELETE, "/api/admin/dev-mail", NULL,
                           NULL);
        CHECK(r && strcmp(r->subject, "ej.devmail.clear") == 0 &&
              r->req_desc == &ej__common__empty__descriptor);

        /* Resolving again changes nothing. */
        CHECK(gw_routes_resolve(NULL) == EJ_OK);
        r = gw_route_match(gw_routes, gw_routes_count, GW_GET, "/api/me", NULL, NULL);
        CHECK(r && strcmp(r->subject, "ej.users.me") == 0);
}

/* A row naming a method its service does not have stops the gateway from starting. */
static void test_resolution_fails(void)
{
        struct gw_route bad[] = {
            {.method = GW_GET, .pattern = "/ok", .rpc = {&ej__users__users__descriptor, "me"}},
            {.method = GW_GET,
             .pattern = "/typo",
             .rpc = {&ej__users__users__descriptor, "list_user"}},
        };
        struct gw_route wrong_service[] = {
            {.method = GW_GET, .pattern = "/x", .rpc = {&ej__files__files__descriptor, "me"}},
        };
        struct gw_route no_service[] = {
            {.method = GW_GET, .pattern = "/y", .rpc = {NULL, "me"}},
        };
        struct ej_err err;

        ej_err_clear(&err);
        CHECK(gw_route_table_resolve(bad, 2, &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "/typo") && strstr(err.msg, "list_user") &&
              strstr(err.msg, "ej.users.Users"));
        CHECK(gw_route_table_resolve(wrong_service, 1, &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "ej.files.Files") && strstr(err.msg, "me"));
        CHECK(gw_route_table_resolve(no_service, 1, &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "/y") != NULL);
}

/* Every method of every service is routed or marked internal, and the check notices when one
 * is neither. */
static void test_coverage(void)
{
        struct gw_internal fewer[sizeof(gw_internal) / sizeof(gw_internal[0])];
        const struct gw_internal routed_too[] = {
            {{&ej__users__users__descriptor, "me"}, "a mistake"}};
        const struct gw_internal typo[] = {{{&ej__files__files__descriptor, "attach_x"}, "typo"}};
        struct gw_route one_users_row[] = {
            {.method = GW_GET, .pattern = "/api/me", .rpc = {&ej__users__users__descriptor, "me"}},
        };
        struct ej_err err;
        size_t n_fewer = 0;

        ej_err_clear(&err);
        CHECK(gw_routes_check_coverage(gw_routes, gw_routes_count, gw_internal, gw_internal_count,
                                       &err) == EJ_OK);
        if (err.msg[0])
                fprintf(stderr, "coverage: %s\n", err.msg);
        /* Each internal entry says who calls it. */
        for (size_t j = 0; j < gw_internal_count; j++)
                CHECK(gw_internal[j].caller && gw_internal[j].caller[0]);

        /* Drop users.authenticate from the internal list: now it is neither. */
        for (size_t j = 0; j < gw_internal_count; j++)
                if (strcmp(gw_internal[j].rpc.method, "authenticate") != 0)
                        fewer[n_fewer++] = gw_internal[j];
        CHECK(n_fewer == gw_internal_count - 1);
        CHECK(gw_routes_check_coverage(gw_routes, gw_routes_count, fewer, n_fewer, &err) ==
              EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "ej.users.Users.authenticate") != NULL);

        /* One route of a service leaves its other methods uncovered. */
        CHECK(gw_routes_check_coverage(one_users_row, 1, NULL, 0, &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "ej.users.Users.") &&
              strstr(err.msg, "neither routed nor marked internal"));

        /* A method both routed and internal, an internal entry with no such method: refused. */
        CHECK(gw_routes_check_coverage(gw_routes, gw_routes_count, routed_too, 1, &err) ==
              EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "marked internal but route /api/me") != NULL);
        CHECK(gw_routes_check_coverage(NULL, 0, typo, 1, &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "attach_x") != NULL);
}

/* True when a row or an internal entry names the service whose full name is `full`. */
static bool service_known(const char *full)
{
        for (size_t i = 0; i < gw_routes_count; i++)
                if (gw_routes[i].rpc.service && strcmp(gw_routes[i].rpc.service->name, full) == 0)
                        return true;
        for (size_t j = 0; j < gw_internal_count; j++)
                if (strcmp(gw_internal[j].rpc.service->name, full) == 0)
                        return true;
        return false;
}

/* Every `service` block declared in a proto/ file is known to the table (so the coverage check
 * above sees all its methods): a new service cannot be forgotten. */
static void test_every_proto_service(const char *argv0)
{
        char dir[PATH_MAX], self[PATH_MAX];
        DIR *d;
        struct dirent *e;
        int blocks = 0;

        snprintf(self, sizeof(self), "%s", argv0);
        snprintf(dir, sizeof(dir), "%s/../../proto", dirname(self));
        d = opendir(dir);
        if (d == NULL) {
                snprintf(dir, sizeof(dir), "proto");
                d = opendir(dir);
        }
        CHECK(d != NULL);
        if (d == NULL) {
                fprintf(stderr, "test_routes: cannot find proto/ from %s\n", argv0);
                return;
        }
        while ((e = readdir(d)) != NULL) {
                size_t len = strlen(e->d_name);
                char path[PATH_MAX + 256], line[512], pkg[128] = "";
                FILE *f;

                if (len < 7 || strcmp(e->d_name + len - 6, ".proto") != 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                f = fopen(path, "r");
                if (f == NULL)
                        continue;
                while (fgets(line, sizeof(line), f)) {
                        char name[128], full[300];

                        if (sscanf(line, "package %127[a-z0-9_.];", pkg) == 1)
                                continue;
                        if (sscanf(line, "service %127[A-Za-z0-9_] {", name) != 1)
                                continue;
                        blocks++;
                        snprintf(full, sizeof(full), "%s.%s", pkg, name);
                        if (!service_known(full))
                                fprintf(stderr, "%s: service %s is neither routed nor internal\n",
                                        e->d_name, full);
                        CHECK(service_known(full));
                }
                fclose(f);
        }
        closedir(d);
        CHECK(blocks >= 4); /* Users, Files, Devmail, Gdpr at least */
}

int main(int argc, char **argv)
{
        struct ej_err err;

        ej_err_clear(&err);
        CHECK(gw_routes_resolve(&err) == EJ_OK);
        if (err.msg[0])
                fprintf(stderr, "resolve: %s\n", err.msg);
        test_resolution();
        test_resolution_fails();
        test_coverage();
        test_every_proto_service(argc > 0 ? argv[0] : "test_routes");
        test_literals();
        test_params();
        test_not_found_vs_method();
        test_head();
        test_trailing_slash();
        test_methods();
        test_roles();
        test_consent();
        test_client_addr();
        test_session_cache();
        test_session_generations();
        test_optional_auth();
        test_access_check();
        test_real_table();
        return check_report();
}
