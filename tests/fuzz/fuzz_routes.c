/*
 * fuzz_routes.c: the gateway's route matcher (gateway/routes.c) on its real table.
 *
 * The first input byte picks the method, the rest is the request path (up to a NUL, as the
 * gateway sees it). Properties: every row's pattern matches exactly when a plain segment-wise
 * reading of routes.h's policy says so (same number of '/'-separated segments, literals equal,
 * {params} non-empty); the bound parameters are the path's segments under the pattern's
 * {names}, in order; gw_route_match returns the first row that matches with the method (HEAD
 * takes GET rows), and otherwise reports in *allowed exactly the methods of the rows whose
 * pattern matched.
 */
#include <string.h>

#include "fuzz.h"
#include "mem.h"
#include "routes.h"

/* The i-th '/'-separated segment of s[0..n) (i from 0), in *seg; false when there is none. */
static bool segment(const char *s, size_t i, struct ej_str *seg)
{
        const char *p = s;

        for (;;) {
                const char *slash = strchr(p, '/');
                size_t len = slash ? (size_t)(slash - p) : strlen(p);

                if (i == 0) {
                        seg->p = p;
                        seg->n = len;
                        return true;
                }
                if (slash == NULL)
                        return false;
                p = slash + 1;
                i--;
        }
}

static size_t segments(const char *s)
{
        size_t n = 1;

        for (; *s; s++)
                n += *s == '/';
        return n;
}

/* routes.h's matching policy, written segment by segment; binds like gw_pattern_match. */
static bool reference_match(const char *pattern, const char *path, struct gw_params *params)
{
        size_t n = segments(pattern);

        params->n = 0;
        if (segments(path) != n)
                return false;
        for (size_t i = 0; i < n; i++) {
                struct ej_str ps = {0}, ss = {0};

                segment(pattern, i, &ps);
                segment(path, i, &ss);
                if (ps.n >= 2 && ps.p[0] == '{' && ps.p[ps.n - 1] == '}') {
                        if (ss.n == 0 || params->n == GW_MAX_PARAMS)
                                return false;
                        params->name[params->n] = (struct ej_str){ps.p + 1, ps.n - 2};
                        params->value[params->n] = ss;
                        params->n++;
                } else if (ps.n != ss.n || memcmp(ps.p, ss.p, ps.n) != 0) {
                        return false;
                }
        }
        return true;
}

static bool same_params(const struct gw_params *a, const struct gw_params *b)
{
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (!ej_str_eq(a->name[i], b->name[i]) || a->value[i].p != b->value[i].p ||
                    a->value[i].n != b->value[i].n)
                        return false;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static bool resolved;
        unsigned method, allowed = 0, seen = 0, want;
        const struct gw_route *r, *first = NULL;
        struct gw_params params, ref;
        char *path;

        if (!resolved) {
                struct ej_err err;

                FUZZ_CHECK(gw_routes_resolve(&err) == EJ_OK);
                resolved = true;
        }
        if (size < 1)
                return 0;
        method = 1u << (data[0] % 7);
        want = method == GW_HEAD ? (GW_HEAD | GW_GET) : method;
        path = xstrndup((const char *)data + 1, size - 1);

        for (size_t i = 0; i < gw_routes_count; i++) {
                const struct gw_route *row = &gw_routes[i];
                struct gw_params got;
                bool m = gw_pattern_match(row->pattern, path, &got) != 0;

                FUZZ_CHECK(m == reference_match(row->pattern, path, &ref));
                if (!m)
                        continue;
                FUZZ_CHECK(same_params(&got, &ref));
                if (first == NULL && (row->method & want))
                        first = row;
                if (first == NULL) {
                        seen |= row->method;
                        if (row->method & GW_GET)
                                seen |= GW_HEAD;
                }
        }
        r = gw_route_match(gw_routes, gw_routes_count, method, path, &params, &allowed);
        FUZZ_CHECK(r == first);
        if (r != NULL) {
                FUZZ_CHECK(allowed == 0);
                FUZZ_CHECK(reference_match(r->pattern, path, &ref) && same_params(&params, &ref));
        } else {
                FUZZ_CHECK(allowed == seen && (allowed & want) == 0);
        }
        free(path);
        return 0;
}
