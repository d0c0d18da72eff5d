#include "routes.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common.pb-c.h"
#include "devmail.pb-c.h"
#include "files.pb-c.h"
#include "users.pb-c.h"

/* The public API. Adding a call is adding a row. */
const struct gw_route gw_routes[] = {
    /* Gateway-local. */
    {.method = GW_GET, .pattern = "/healthz", .hook = &gw_hook_healthz},
    {.method = GW_GET, .pattern = "/readyz", .hook = &gw_hook_readyz},
    {.method = GW_GET, .pattern = "/metrics", .hook = &gw_hook_metrics},
    {.method = GW_GET, .pattern = "/api/site", .hook = &gw_hook_site},
    {.method = GW_GET, .pattern = "/api/openapi.json", .hook = &gw_hook_openapi},
    {.method = GW_GET, .pattern = "/api/docs", .hook = &gw_hook_api_docs},

    /* Accounts and sessions: the users service. Anyone. */
    {.method = GW_POST,
     .pattern = "/api/auth/register",
     .subject = "ej.users.register",
     .req_desc = &ej__users__register_request__descriptor,
     .resp_desc = &ej__users__register_response__descriptor,
     .success_status = 201},
    {.method = GW_POST,
     .pattern = "/api/auth/verify",
     .subject = "ej.users.verify_email",
     .req_desc = &ej__users__token_request__descriptor,
     .resp_desc = &ej__users__user_response__descriptor},
    {.method = GW_POST,
     .pattern = "/api/auth/verify/resend",
     .subject = "ej.users.resend_verification",
     .req_desc = &ej__users__resend_verification_request__descriptor,
     .resp_desc = &ej__common__empty__descriptor,
     .auth = GW_AUTH_OPTIONAL}, /* an empty email: the signed-in caller's own address */
    {.method = GW_POST,
     .pattern = "/api/auth/login",
     .subject = "ej.users.login",
     .req_desc = &ej__users__login_request__descriptor,
     .resp_desc = &ej__users__login_response__descriptor,
     .hook = &gw_hook_login},
    {.method = GW_POST,
     .pattern = "/api/auth/password/forgot",
     .subject = "ej.users.request_password_reset",
     .req_desc = &ej__users__password_reset_request__descriptor,
     .resp_desc = &ej__common__empty__descriptor},
    {.method = GW_POST,
     .pattern = "/api/auth/password/reset",
     .subject = "ej.users.reset_password",
     .req_desc = &ej__users__reset_password_request__descriptor,
     .resp_desc = &ej__common__empty__descriptor},
    {.method = GW_POST,
     .pattern = "/api/auth/invitation/accept",
     .subject = "ej.users.accept_invitation",
     .req_desc = &ej__users__accept_invitation_request__descriptor,
     .resp_desc = &ej__users__user_response__descriptor},
    {.method = GW_POST,
     .pattern = "/api/auth/email/confirm",
     .subject = "ej.users.confirm_email_change",
     .req_desc = &ej__users__token_request__descriptor,
     .resp_desc = &ej__users__user_response__descriptor},
    {.method = GW_POST,
     .pattern = "/api/auth/erasure/confirm",
     .subject = "ej.users.confirm_erasure",
     .req_desc = &ej__users__token_request__descriptor,
     .resp_desc = &ej__common__empty__descriptor},
    {.method = GW_GET,
     .pattern = "/api/consent",
     .subject = "ej.users.get_consent",
     .req_desc = &ej__users__get_consent_request__descriptor,
     .resp_desc = &ej__users__consent_version__descriptor,
     .consent_exempt = true},
    {.method = GW_GET,
     .pattern = "/api/privacy",
     .subject = "ej.users.get_privacy",
     .req_desc = &ej__users__get_privacy_request__descriptor,
     .resp_desc = &ej__users__privacy_policy__descriptor,
     .consent_exempt = true},

    /* The signed-in person's own account. */
    {.method = GW_POST,
     .pattern = "/api/auth/logout",
     .subject = "ej.users.logout",
     .req_desc = &ej__users__logout_request__descriptor,
     .resp_desc = &ej__common__empty__descriptor,
     .auth = GW_AUTH_SESSION,
     .consent_exempt = true,
     .hook = &gw_hook_logout},
    {.method = GW_GET,
     .pattern = "/api/me",
     .subject = "ej.users.me",
     .req_desc = &ej__users__me_request__descriptor,
     .resp_desc = &ej__users__me_response__descriptor,
     .auth = GW_AUTH_SESSION,
     .consent_exempt = true},
    {.method = GW_PATCH,
     .pattern = "/api/me",
     .subject = "ej.users.update_profile",
     .req_desc = &ej__users__update_profile_request__descriptor,
     .resp_desc = &ej__users__me_response__descriptor,
     .auth = GW_AUTH_SESSION},
    {.method = GW_POST,
     .pattern = "/api/me/password",
     .subject = "ej.users.change_password",
     .req_desc = &ej__users__change_password_request__descriptor,
     .resp_desc = &ej__common__empty__descriptor,
     .auth = GW_AUTH_SESSION,
     .hook = &gw_hook_password},
    {.method = GW_POST,
     .pattern = "/api/me/email",
     .subject = "ej.users.change_email",
     .req_desc = &ej__users__change_email_request__descriptor,
     .resp_desc = &ej__common__empty__descriptor,
     .auth = GW_AUTH_SESSION},
    {.method = GW_GET,
     .pattern = "/api/me/export",
     .subject = "ej.users.export_my_data",
     .req_desc = &ej__users__export_my_data_request__descriptor,
     .resp_desc = &ej__users__export_my_data_response__descriptor,
     .auth = GW_AUTH_SESSION,
     .consent_exempt = true,
     .timeout_ms = 30000,
     .hook = &gw_hook_export},
    {.method = GW_POST,
     .pattern = "/api/me/erasure",
     .subject = "ej.users.request_erasure",
     .req_desc = &ej__users__request_erasure_request__descriptor,
     .resp_desc = &ej__common__empty__descriptor,
     .auth = GW_AUTH_SESSION,
     .consent_exempt = true},
    {.method = GW_POST,
     .pattern = "/api/consent/accept",
     .subject = "ej.users.accept_consent",
     .req_desc = &ej__users__accept_consent_request__descriptor,
     .resp_desc = &ej__common__empty__descriptor,
     .auth = GW_AUTH_SESSION,
     .consent_exempt = true},
    {.method = GW_POST,
     .pattern = "/api/consent/withdraw",
     .subject = "ej.users.withdraw_consent",
     .req_desc = &ej__users__withdraw_consent_request__descriptor,
     .resp_desc = &ej__common__empty__descriptor,
     .auth = GW_AUTH_SESSION,
     .consent_exempt = true},

    /* Administration. Every service checks the role again on its side. */
    {.method = GW_GET,
     .pattern = "/api/admin/users",
     .subject = "ej.users.list_users",
     .req_desc = &ej__users__list_users_request__descriptor,
     .resp_desc = &ej__users__list_users_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_POST,
     .pattern = "/api/admin/users",
     .subject = "ej.users.create_user",
     .req_desc = &ej__users__create_user_request__descriptor,
     .resp_desc = &ej__users__user_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin",
     .success_status = 201},
    {.method = GW_GET,
     .pattern = "/api/admin/users/{user_id}",
     .subject = "ej.users.get_user",
     .req_desc = &ej__users__user_id_request__descriptor,
     .resp_desc = &ej__users__user_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_PATCH,
     .pattern = "/api/admin/users/{user_id}",
     .subject = "ej.users.update_user",
     .req_desc = &ej__users__update_user_request__descriptor,
     .resp_desc = &ej__users__user_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_PUT,
     .pattern = "/api/admin/users/{user_id}/roles/{role}",
     .subject = "ej.users.grant_role",
     .req_desc = &ej__users__role_request__descriptor,
     .resp_desc = &ej__users__user_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_DELETE,
     .pattern = "/api/admin/users/{user_id}/roles/{role}",
     .subject = "ej.users.revoke_role",
     .req_desc = &ej__users__role_request__descriptor,
     .resp_desc = &ej__users__user_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_POST,
     .pattern = "/api/admin/users/{user_id}/deactivate",
     .subject = "ej.users.deactivate_user",
     .req_desc = &ej__users__user_id_request__descriptor,
     .resp_desc = &ej__users__user_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_POST,
     .pattern = "/api/admin/users/{user_id}/reactivate",
     .subject = "ej.users.reactivate_user",
     .req_desc = &ej__users__user_id_request__descriptor,
     .resp_desc = &ej__users__user_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_POST,
     .pattern = "/api/admin/users/{user_id}/erase",
     .subject = "ej.users.erase_user",
     .req_desc = &ej__users__user_id_request__descriptor,
     .resp_desc = &ej__common__empty__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin",
     .timeout_ms = 30000},
    {.method = GW_POST,
     .pattern = "/api/admin/invitations",
     .subject = "ej.users.invite_user",
     .req_desc = &ej__users__invite_user_request__descriptor,
     .resp_desc = &ej__users__invite_user_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "editor,admin"},
    {.method = GW_GET,
     .pattern = "/api/admin/activity",
     .subject = "ej.users.list_activity",
     .req_desc = &ej__users__list_activity_request__descriptor,
     .resp_desc = &ej__users__list_activity_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_GET,
     .pattern = "/api/admin/consent",
     .subject = "ej.users.consent_stats",
     .req_desc = &ej__users__consent_stats_request__descriptor,
     .resp_desc = &ej__users__consent_stats__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_PUT,
     .pattern = "/api/admin/consent",
     .subject = "ej.users.publish_consent",
     .req_desc = &ej__users__publish_consent_request__descriptor,
     .resp_desc = &ej__users__consent_version__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_PUT,
     .pattern = "/api/admin/privacy",
     .subject = "ej.users.set_privacy",
     .req_desc = &ej__users__set_privacy_request__descriptor,
     .resp_desc = &ej__users__privacy_policy__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_GET,
     .pattern = "/api/admin/mail-templates",
     .subject = "ej.users.list_mail_templates",
     .req_desc = &ej__users__list_mail_templates_request__descriptor,
     .resp_desc = &ej__users__list_mail_templates_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},
    {.method = GW_PUT,
     .pattern = "/api/admin/mail-templates/{key}",
     .subject = "ej.users.update_mail_template",
     .req_desc = &ej__users__update_mail_template_request__descriptor,
     .resp_desc = &ej__users__mail_template__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin"},

    /* The development mail catcher (EJ_DEV_MAIL=true only). */
    {.method = GW_GET,
     .pattern = "/api/admin/dev-mail",
     .subject = "ej.devmail.list",
     .req_desc = &ej__devmail__devmail_list_request__descriptor,
     .resp_desc = &ej__devmail__devmail_list_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin",
     .dev_mail = true},
    {.method = GW_DELETE,
     .pattern = "/api/admin/dev-mail",
     .subject = "ej.devmail.clear",
     .req_desc = &ej__common__empty__descriptor,
     .resp_desc = &ej__common__empty__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "admin",
     .dev_mail = true},

    /* Files: the files service, bodies streamed by stream.c (raw PUT or multipart POST; GET and
     * HEAD with Range; ?grant= for access granted by the resource's owner). */
    {.method = GW_PUT,
     .pattern = "/api/files",
     .subject = "ej.files.upload.begin",
     .req_desc = &ej__files__upload_begin__descriptor,
     .resp_desc = &ej__files__file_info__descriptor,
     .success_status = 201,
     .auth = GW_AUTH_SESSION,
     .stream = GW_STREAM_UPLOAD},
    {.method = GW_POST,
     .pattern = "/api/files",
     .subject = "ej.files.upload.begin",
     .req_desc = &ej__files__upload_begin__descriptor,
     .resp_desc = &ej__files__file_info__descriptor,
     .success_status = 201,
     .auth = GW_AUTH_SESSION,
     .stream = GW_STREAM_UPLOAD},
    {.method = GW_GET,
     .pattern = "/api/files/{file_id}",
     .subject = "ej.files.download.open",
     .req_desc = &ej__files__download_open__descriptor,
     .resp_desc = &ej__files__file_meta__descriptor,
     .stream = GW_STREAM_DOWNLOAD},
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
