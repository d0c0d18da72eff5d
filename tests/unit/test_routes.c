/*
 * Route matching of the gateway: literal and {param} segments, 404 versus 405 with the allowed
 * methods, HEAD on GET rows, the trailing slash policy, and the real table's rows.
 */
#include "../../gateway/routes.c"

#include <string.h>

#include "check.h"

/* The hooks the real table points at live in handlers.c; stand-ins suffice for matching. */
const struct gw_hook gw_hook_healthz = {0};
const struct gw_hook gw_hook_readyz = {0};
const struct gw_hook gw_hook_metrics = {0};
const struct gw_hook gw_hook_site = {0};
const struct gw_hook gw_hook_login = {0};
const struct gw_hook gw_hook_logout = {0};

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

static void test_real_table(void)
{
        unsigned allowed = 0;
        const struct gw_route *r;

        r = gw_route_match(gw_routes, gw_routes_count, GW_GET, "/api/me", NULL, NULL);
        CHECK(r && r->auth == GW_AUTH_SESSION && strcmp(r->subject, "ej.users.me") == 0);
        r = gw_route_match(gw_routes, gw_routes_count, GW_POST, "/api/auth/register", NULL, NULL);
        CHECK(r && r->success_status == 201 && r->auth == GW_AUTH_NONE);
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

        /* Every row is well formed: a service row has a subject and both message types, a
         * local row a local hook; a role row names its role; every {param} is closed. */
        for (size_t i = 0; i < gw_routes_count; i++) {
                const struct gw_route *row = &gw_routes[i];
                int ok = row->pattern && row->pattern[0] == '/' && row->method != 0;

                if (row->subject)
                        ok = ok && row->req_desc && row->resp_desc;
                else
                        ok = ok && row->hook != NULL;
                if (row->auth == GW_AUTH_ROLE)
                        ok = ok && row->role && row->role[0];
                for (const char *c = row->pattern; *c; c++)
                        if (*c == '{')
                                ok = ok && strchr(c, '}') != NULL;
                CHECK(ok);
                /* A row's own pattern matches a path built from it. */
                if (!strchr(row->pattern, '{'))
                        CHECK(gw_route_match(gw_routes, gw_routes_count, row->method, row->pattern,
                                             NULL, NULL) == row);
        }
}

int main(void)
{
        test_literals();
        test_params();
        test_not_found_vs_method();
        test_head();
        test_trailing_slash();
        test_methods();
        test_real_table();
        return check_report();
}
