#include "routes.h"

#include <stdio.h>
#include <string.h>

#include "common.pb-c.h"
#include "users.pb-c.h"

/* The public API. Adding a call is adding a row. */
const struct gw_route gw_routes[] = {
    /* Gateway-local. */
    {.method = GW_GET, .pattern = "/healthz", .hook = &gw_hook_healthz},
    {.method = GW_GET, .pattern = "/readyz", .hook = &gw_hook_readyz},
    {.method = GW_GET, .pattern = "/metrics", .hook = &gw_hook_metrics},
    {.method = GW_GET, .pattern = "/api/site", .hook = &gw_hook_site},

    /* Accounts and sessions: the users service. */
    {.method = GW_POST,
     .pattern = "/api/auth/register",
     .subject = "ej.users.register",
     .req_desc = &ej__users__register_request__descriptor,
     .resp_desc = &ej__users__register_response__descriptor,
     .success_status = 201},
    {.method = GW_POST,
     .pattern = "/api/auth/login",
     .subject = "ej.users.login",
     .req_desc = &ej__users__login_request__descriptor,
     .resp_desc = &ej__users__login_response__descriptor,
     .hook = &gw_hook_login},
    {.method = GW_POST,
     .pattern = "/api/auth/logout",
     .subject = "ej.users.logout",
     .req_desc = &ej__users__logout_request__descriptor,
     .resp_desc = &ej__common__empty__descriptor,
     .auth = GW_AUTH_SESSION,
     .hook = &gw_hook_logout},
    {.method = GW_GET,
     .pattern = "/api/me",
     .subject = "ej.users.me",
     .req_desc = &ej__users__me_request__descriptor,
     .resp_desc = &ej__users__me_response__descriptor,
     .auth = GW_AUTH_SESSION},
};

const size_t gw_routes_count = sizeof(gw_routes) / sizeof(gw_routes[0]);

static const struct {
        const char *name;
        unsigned bit;
} method_names[] = {
    {"GET", GW_GET},     {"HEAD", GW_HEAD},     {"POST", GW_POST},       {"PUT", GW_PUT},
    {"PATCH", GW_PATCH}, {"DELETE", GW_DELETE}, {"OPTIONS", GW_OPTIONS},
};

unsigned gw_method_bit(const char *method)
{
        for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
                if (strcmp(method, method_names[i].name) == 0)
                        return method_names[i].bit;
        return 0;
}

void gw_methods_text(unsigned methods, char *out, size_t out_size)
{
        size_t used = 0;

        if (out_size == 0)
                return;
        out[0] = '\0';
        for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++) {
                int w;

                if (!(methods & method_names[i].bit))
                        continue;
                w = snprintf(out + used, out_size - used, "%s%s", used ? ", " : "",
                             method_names[i].name);
                if (w < 0 || (size_t)w >= out_size - used)
                        return; /* truncated text stays NUL-terminated */
                used += (size_t)w;
        }
}

int gw_pattern_match(const char *pattern, const char *path, struct gw_params *params)
{
        const char *p = pattern;
        const char *s = path;

        if (params)
                params->n = 0;
        while (*p && *s) {
                if (*p == '{') {
                        const char *close = strchr(p, '}');
                        const char *end = strchr(s, '/');

                        if (close == NULL)
                                return 0;
                        if (end == NULL)
                                end = s + strlen(s);
                        if (end == s)
                                return 0; /* an empty segment binds nothing */
                        if (params) {
                                if (params->n == GW_MAX_PARAMS)
                                        return 0;
                                params->name[params->n].p = p + 1;
                                params->name[params->n].n = (size_t)(close - p - 1);
                                params->value[params->n].p = s;
                                params->value[params->n].n = (size_t)(end - s);
                                params->n++;
                        }
                        p = close + 1;
                        s = end;
                        continue;
                }
                if (*p != *s)
                        return 0;
                p++;
                s++;
        }
        return *p == '\0' && *s == '\0';
}

const struct gw_route *gw_route_match(const struct gw_route *table, size_t n, unsigned method,
                                      const char *path, struct gw_params *params, unsigned *allowed)
{
        unsigned seen = 0;
        unsigned want = method == GW_HEAD ? (GW_HEAD | GW_GET) : method;

        for (size_t i = 0; i < n; i++) {
                const struct gw_route *r = &table[i];
                struct gw_params tmp;

                if (!gw_pattern_match(r->pattern, path, &tmp))
                        continue;
                if (r->method & want) {
                        if (params)
                                *params = tmp;
                        if (allowed)
                                *allowed = 0;
                        return r;
                }
                seen |= r->method;
                if (r->method & GW_GET)
                        seen |= GW_HEAD;
        }
        if (allowed)
                *allowed = seen;
        return NULL;
}
