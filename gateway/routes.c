#include "routes.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "rpc.h"

#include "common.pb-c.h"
#include "devmail.pb-c.h"
#include "files.pb-c.h"
#include "users.pb-c.h"

/* The public API. Adding a call is adding a row naming its method (declared in the service block
 * of proto/<svc>.proto); gw_routes_resolve fills in the rest. Written only by gw_routes_resolve,
 * once at start-up, then read-only. */
static struct gw_route rows[] = {
    /* Gateway-local. */
    {.method = GW_GET, .pattern = "/healthz", .hook = &gw_hook_healthz},
    {.method = GW_GET, .pattern = "/readyz", .hook = &gw_hook_readyz},
    {.method = GW_GET, .pattern = "/api/site", .hook = &gw_hook_site},
    {.method = GW_GET, .pattern = "/api/openapi.json", .hook = &gw_hook_openapi},
    {.method = GW_GET, .pattern = "/api/docs", .hook = &gw_hook_api_docs},

    /* Accounts and sessions: the users service. Anyone. */
    {.method = GW_POST,
     .pattern = "/api/auth/register",
     .rpc = {&ej__users__users__descriptor, "register_account"},
     .success_status = 202, /* the same for a taken address: nothing tells them apart */
     .hook = &gw_hook_register},
    {.method = GW_POST,
     .pattern = "/api/auth/verify",
     .rpc = {&ej__users__users__descriptor, "verify_email"}},
    {.method = GW_POST,
     .pattern = "/api/auth/verify/resend",
     .rpc = {&ej__users__users__descriptor, "resend_verification"},
     .auth = GW_AUTH_OPTIONAL}, /* an empty email: the signed-in caller's own address */
    {.method = GW_POST,
     .pattern = "/api/auth/login",
     .rpc = {&ej__users__users__descriptor, "login"},
     .hook = &gw_hook_login},
    {.method = GW_POST,
     .pattern = "/api/auth/password/forgot",
     .rpc = {&ej__users__users__descriptor, "request_password_reset"}},
    {.method = GW_POST,
     .pattern = "/api/auth/password/reset",
     .rpc = {&ej__users__users__descriptor, "reset_password"}},
    {.method = GW_POST,
     .pattern = "/api/auth/invitation/accept",
     .rpc = {&ej__users__users__descriptor, "accept_invitation"}},
    {.method = GW_POST,
     .pattern = "/api/auth/email/confirm",
     .rpc = {&ej__users__users__descriptor, "confirm_email_change"}},
    {.method = GW_POST,
     .pattern = "/api/auth/erasure/confirm",
     .rpc = {&ej__users__users__descriptor, "confirm_erasure"}},
    {.method = GW_GET,
     .pattern = "/api/consent",
     .rpc = {&ej__users__users__descriptor, "get_consent"},
     .consent_exempt = true},
    {.method = GW_GET,
     .pattern = "/api/privacy",
     .rpc = {&ej__users__users__descriptor, "get_privacy"},
     .consent_exempt = true},

    /* The signed-in person's own account. */
    {.method = GW_POST,
     .pattern = "/api/auth/logout",
     .rpc = {&ej__users__users__descriptor, "logout"},
     .auth = GW_AUTH_SESSION,
     .consent_exempt = true,
     .hook = &gw_hook_logout},
    {.method = GW_GET,
     .pattern = "/api/me",
     .rpc = {&ej__users__users__descriptor, "me"},
     .auth = GW_AUTH_SESSION,
     .consent_exempt = true},
    {.method = GW_PATCH,
     .pattern = "/api/me",
     .rpc = {&ej__users__users__descriptor, "update_profile"},
     .auth = GW_AUTH_SESSION},
    {.method = GW_POST,
     .pattern = "/api/me/password",
     .rpc = {&ej__users__users__descriptor, "change_password"},
     .auth = GW_AUTH_SESSION,
     .hook = &gw_hook_password},
    {.method = GW_POST,
     .pattern = "/api/me/email",
     .rpc = {&ej__users__users__descriptor, "change_email"},
     .auth = GW_AUTH_SESSION},
    {.method = GW_GET,
     .pattern = "/api/me/export",
     .rpc = {&ej__users__users__descriptor, "export_my_data"},
     .auth = GW_AUTH_SESSION,
     .consent_exempt = true,
     .timeout_ms = 30000,
     .hook = &gw_hook_export},
    {.method = GW_POST,
     .pattern = "/api/me/erasure",
     .rpc = {&ej__users__users__descriptor, "request_erasure"},
     .auth = GW_AUTH_SESSION,
     .consent_exempt = true},
    {.method = GW_GET,
     .pattern = "/api/me/invitations",
     .rpc = {&ej__users__users__descriptor, "list_my_invitations"},
     .auth = GW_AUTH_SESSION},
    {.method = GW_POST,
     .pattern = "/api/me/invitations/{invitation_id}/accept",
     .rpc = {&ej__users__users__descriptor, "accept_role_invitation"},
     .auth = GW_AUTH_SESSION},
    {.method = GW_POST,
     .pattern = "/api/me/invitations/{invitation_id}/decline",
     .rpc = {&ej__users__users__descriptor, "decline_role_invitation"},
     .auth = GW_AUTH_SESSION},
    {.method = GW_POST,
     .pattern = "/api/consent/accept",
     .rpc = {&ej__users__users__descriptor, "accept_consent"},
     .auth = GW_AUTH_SESSION,
     .consent_exempt = true},
    {.method = GW_POST,
     .pattern = "/api/consent/withdraw",
     .rpc = {&ej__users__users__descriptor, "withdraw_consent"},
     .auth = GW_AUTH_SESSION,
     .consent_exempt = true},

    /* Administration. Every service checks the role again on its side. */
    {.method = GW_GET,
     .pattern = "/api/admin/users",
     .rpc = {&ej__users__users__descriptor, "list_users"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_POST,
     .pattern = "/api/admin/users",
     .rpc = {&ej__users__users__descriptor, "create_user"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin",
     .success_status = 201},
    {.method = GW_GET,
     .pattern = "/api/admin/users/{user_id}",
     .rpc = {&ej__users__users__descriptor, "get_user"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_PATCH,
     .pattern = "/api/admin/users/{user_id}",
     .rpc = {&ej__users__users__descriptor, "update_user"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_PUT,
     .pattern = "/api/admin/users/{user_id}/roles/{role}",
     .rpc = {&ej__users__users__descriptor, "grant_role"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_DELETE,
     .pattern = "/api/admin/users/{user_id}/roles/{role}",
     .rpc = {&ej__users__users__descriptor, "revoke_role"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_POST,
     .pattern = "/api/admin/users/{user_id}/deactivate",
     .rpc = {&ej__users__users__descriptor, "deactivate_user"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_POST,
     .pattern = "/api/admin/users/{user_id}/reactivate",
     .rpc = {&ej__users__users__descriptor, "reactivate_user"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_POST,
     .pattern = "/api/admin/users/{user_id}/erase",
     .rpc = {&ej__users__users__descriptor, "erase_user"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin",
     .timeout_ms = 30000},
    {.method = GW_POST,
     .pattern = "/api/admin/invitations",
     .rpc = {&ej__users__users__descriptor, "invite_user"},
     .auth = GW_AUTH_ROLE,
     .roles = "editor,admin"},
    {.method = GW_GET,
     .pattern = "/api/admin/activity",
     .rpc = {&ej__users__users__descriptor, "list_activity"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_GET,
     .pattern = "/api/admin/consent",
     .rpc = {&ej__users__users__descriptor, "consent_stats"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_PUT,
     .pattern = "/api/admin/consent",
     .rpc = {&ej__users__users__descriptor, "publish_consent"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_PUT,
     .pattern = "/api/admin/privacy",
     .rpc = {&ej__users__users__descriptor, "set_privacy"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_GET,
     .pattern = "/api/admin/mail-templates",
     .rpc = {&ej__users__users__descriptor, "list_mail_templates"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_PUT,
     .pattern = "/api/admin/mail-templates/{key}",
     .rpc = {&ej__users__users__descriptor, "update_mail_template"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},

    /* The development mail catcher (EJ_DEV_MAIL=true only). */
    {.method = GW_GET,
     .pattern = "/api/admin/dev-mail",
     .rpc = {&ej__devmail__devmail__descriptor, "list"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin",
     .dev_mail = true},
    {.method = GW_DELETE,
     .pattern = "/api/admin/dev-mail",
     .rpc = {&ej__devmail__devmail__descriptor, "clear"},
     .auth = GW_AUTH_ROLE,
     .roles = "admin",
     .dev_mail = true},

    /* Files: the files service, bodies streamed by stream.c (raw PUT or multipart POST; GET and
     * HEAD with Range; ?grant= for access granted by the resource's owner). */
    {.method = GW_PUT,
     .pattern = "/api/files",
     .rpc = {&ej__files__files__descriptor, "upload_begin"},
     .stream_answer = &ej__files__file_info__descriptor,
     .success_status = 201,
     .auth = GW_AUTH_SESSION,
     .stream = GW_STREAM_UPLOAD},
    {.method = GW_POST,
     .pattern = "/api/files",
     .rpc = {&ej__files__files__descriptor, "upload_begin"},
     .stream_answer = &ej__files__file_info__descriptor,
     .success_status = 201,
     .auth = GW_AUTH_SESSION,
     .stream = GW_STREAM_UPLOAD},
    {.method = GW_GET,
     .pattern = "/api/files/{file_id}",
     .rpc = {&ej__files__files__descriptor, "download_open"},
     .stream = GW_STREAM_DOWNLOAD},
};

const struct gw_route *const gw_routes = rows;
const size_t gw_routes_count = sizeof(rows) / sizeof(rows[0]);

/* The methods no route reaches, each with who calls it. Nothing here is reachable over HTTP. */
const struct gw_internal gw_internal[] = {
    {{&ej__users__users__descriptor, "authenticate"},
     "the gateway's session check, for every route that reads the session cookie"},
    {{&ej__files__files__descriptor, "read"},
     "the gateway's download stream, after download_open (GET /api/files/{file_id})"},
    {{&ej__files__files__descriptor, "attach"}, "services: binds an upload to its resource"},
    {{&ej__files__files__descriptor, "blind_copy"},
     "services: the anonymised copy of a manuscript for reviewers"},
    {{&ej__files__files__descriptor, "info"}, "services: a file's metadata"},
    {{&ej__common__gdpr__descriptor, "gdpr_export"},
     "the users service's personal-data export, on every service (served by the runtime)"},
    {{&ej__common__gdpr__descriptor, "gdpr_erase"},
     "erasure of a person's data, on every service (served by the runtime)"},
};
const size_t gw_internal_count = sizeof(gw_internal) / sizeof(gw_internal[0]);

enum ej_status gw_route_table_resolve(struct gw_route *table, size_t n, struct ej_err *err)
{
        for (size_t i = 0; i < n; i++) {
                struct gw_route *r = &table[i];
                const ProtobufCMethodDescriptor *m;
                char svc[EJ_RPC_NAME_MAX];
                char subject[EJ_RPC_SUBJECT_MAX];
                enum ej_status st;

                if (r->rpc.service == NULL && r->rpc.method == NULL)
                        continue;
                m = ej_rpc_method(r->rpc.service, r->rpc.method);
                if (m == NULL)
                        return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                          "route %s: service %s has no method %s", r->pattern,
                                          r->rpc.service ? r->rpc.service->name : "(none)",
                                          r->rpc.method ? r->rpc.method : "(none)");
                st = ej_rpc_service_name(r->rpc.service, svc, sizeof(svc), err);
                if (st == EJ_OK)
                        st = ej_rpc_subject(svc, m->name, subject, sizeof(subject), err);
                if (st != EJ_OK) {
                        ej_err_prefix(err, r->pattern);
                        return st;
                }
                snprintf(r->subject_buf, sizeof(r->subject_buf), "%s", subject);
                r->subject = r->subject_buf;
                r->req_desc = m->input;
                r->resp_desc = r->stream_answer ? r->stream_answer : m->output;
        }
        return EJ_OK;
}

enum ej_status gw_routes_resolve(struct ej_err *err)
{
        return gw_route_table_resolve(rows, gw_routes_count, err);
}

static bool rpc_is(const struct gw_rpc *rpc, const ProtobufCServiceDescriptor *svc,
                   const char *method)
{
        return rpc->service == svc && rpc->method != NULL && strcmp(rpc->method, method) == 0;
}

/* Every method of `svc` is reached by a row or listed in `internal`. */
static enum ej_status service_covered(const ProtobufCServiceDescriptor *svc,
                                      const struct gw_route *table, size_t n,
                                      const struct gw_internal *internal, size_t n_internal,
                                      struct ej_err *err)
{
        for (unsigned m = 0; m < svc->n_methods; m++) {
                const char *name = svc->methods[m].name;
                bool covered = false;

                for (size_t i = 0; i < n && !covered; i++)
                        covered = rpc_is(&table[i].rpc, svc, name);
                for (size_t j = 0; j < n_internal && !covered; j++)
                        covered = rpc_is(&internal[j].rpc, svc, name);
                if (!covered)
                        return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                          "%s.%s is neither routed nor marked internal", svc->name,
                                          name);
        }
        return EJ_OK;
}

enum ej_status gw_routes_check_coverage(const struct gw_route *table, size_t n,
                                        const struct gw_internal *internal, size_t n_internal,
                                        struct ej_err *err)
{
        enum ej_status st = EJ_OK;

        for (size_t j = 0; j < n_internal; j++) {
                const struct gw_rpc *rpc = &internal[j].rpc;

                if (ej_rpc_method(rpc->service, rpc->method) == NULL)
                        return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                          "internal entry %s: no such method",
                                          rpc->method ? rpc->method : "(null)");
                for (size_t i = 0; i < n; i++)
                        if (rpc_is(&table[i].rpc, rpc->service, rpc->method))
                                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                                  "%s.%s is marked internal but route %s reaches "
                                                  "it",
                                                  rpc->service->name, rpc->method,
                                                  table[i].pattern);
        }
        /* Every service named anywhere (checking one twice does no harm). */
        for (size_t i = 0; i < n && st == EJ_OK; i++)
                if (table[i].rpc.service)
                        st = service_covered(table[i].rpc.service, table, n, internal, n_internal,
                                             err);
        for (size_t j = 0; j < n_internal && st == EJ_OK; j++)
                st = service_covered(internal[j].rpc.service, table, n, internal, n_internal, err);
        return st;
}

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

/* True when the comma-separated `list` holds the name s[0..n). */
static bool list_has(const char *list, const char *s, size_t n)
{
        for (const char *p = list; p && *p;) {
                const char *end = strchr(p, ',');
                size_t k = end ? (size_t)(end - p) : strlen(p);

                while (k > 0 && *p == ' ') {
                        p++;
                        k--;
                }
                while (k > 0 && p[k - 1] == ' ')
                        k--;
                if (k == n && n > 0 && memcmp(p, s, n) == 0)
                        return true;
                p = end ? end + 1 : NULL;
        }
        return false;
}

bool gw_roles_allow(const char *have, const char *want)
{
        for (const char *p = want; p && *p;) {
                const char *end = strchr(p, ',');
                size_t k = end ? (size_t)(end - p) : strlen(p);

                if (list_has(have, p, k))
                        return true;
                p = end ? end + 1 : NULL;
        }
        return false;
}

bool gw_consent_blocks(const struct gw_route *route, bool consent_required)
{
        /* A route open to anyone stays open to a signed-in person owing consent. */
        return consent_required && route->auth != GW_AUTH_NONE && route->auth != GW_AUTH_OPTIONAL &&
               !route->consent_exempt;
}

/* True when s[0..n) is the text of an IPv4 or IPv6 address. */
static bool is_ip_text(const char *s, size_t n)
{
        char buf[INET6_ADDRSTRLEN];
        unsigned char bin[sizeof(struct in6_addr)];

        if (n == 0 || n >= sizeof(buf))
                return false;
        memcpy(buf, s, n);
        buf[n] = '\0';
        return inet_pton(AF_INET, buf, bin) == 1 || inet_pton(AF_INET6, buf, bin) == 1;
}

void gw_client_addr_pick(const char *peer, const char *xff, const char *trusted, char *out,
                         size_t out_size)
{
        const char *end;

        if (out_size == 0)
                return;
        snprintf(out, out_size, "%s", peer ? peer : "");
        if (xff == NULL || peer == NULL || !list_has(trusted, peer, strlen(peer)))
                return;
        /* Right to left: the nearest hop first; our own proxies are skipped. */
        end = xff + strlen(xff);
        while (end > xff) {
                const char *start = end;
                const char *a, *b;

                while (start > xff && start[-1] != ',')
                        start--;
                a = start;
                b = end;
                while (a < b && (*a == ' ' || *a == '\t'))
                        a++;
                while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                        b--;
                if (!is_ip_text(a, (size_t)(b - a)))
                        return; /* a hop we cannot read: trust nothing beyond the peer */
                if (!list_has(trusted, a, (size_t)(b - a)) || start == xff) {
                        snprintf(out, out_size, "%.*s", (int)(b - a), a);
                        return;
                }
                end = start > xff ? start - 1 : xff;
        }
}
