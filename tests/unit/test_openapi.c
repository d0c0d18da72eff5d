/*
 * The API description (gateway/openapi.c) built from a small route table over the real users
 * messages: path parameters typed by the fields they bind, a GET's other fields (and its page's)
 * as query parameters, a body without the path's fields, response components that require every
 * field with 64-bit integers as strings, a hook's skipped fields and own schema, roles as
 * alternatives, dev-mail rows only on request, a row that cannot be described refused, and the
 * same ETag for the same table. (The whole document is validated by the system tests.)
 */
#include "../../gateway/openapi.c"
#include "../../gateway/openapi_schema.c"
#include "../../gateway/framing.c"
#include "../../gateway/stream_http.c"

#include <string.h>

#include "check.h"
#include "common.pb-c.h"
#include "users.pb-c.h"

/* openapi.c's routes answer through http.c: a stand-in suffices here. */
void gw_out_error(struct gw_out *out, struct gw_req *req, enum ej_status st, const char *message,
                  const char *field)
{
        (void)out;
        (void)req;
        (void)st;
        (void)message;
        (void)field;
}

static const char *const skip_token[] = {"session_token", NULL};
static const struct gw_hook login_hook = {.skip = skip_token};
static void local_stub(struct gw_req *req, struct gw_out *out)
{
        (void)req;
        (void)out;
}
static const struct gw_hook site_hook = {
    .local = local_stub,
    .doc = {.summary = "Site", .schema = "{\"type\":\"object\"}", .error_status = 503}};

static const struct gw_route table[] = {
    {.method = GW_GET, .pattern = "/api/site", .hook = &site_hook},
    {.method = GW_GET,
     .pattern = "/api/users",
     .subject = "ej.users.list_users",
     .req_desc = &ej__users__list_users_request__descriptor,
     .resp_desc = &ej__users__list_users_response__descriptor,
     .auth = GW_AUTH_ROLE,
     .roles = "editor,admin"},
    {.method = GW_PUT,
     .pattern = "/api/users/{user_id}/roles/{role}",
     .subject = "ej.users.grant_role",
     .req_desc = &ej__users__role_request__descriptor,
     .resp_desc = &ej__users__user_response__descriptor,
     .auth = GW_AUTH_SESSION,
     .success_status = 201},
    {.method = GW_POST,
     .pattern = "/api/login",
     .subject = "ej.users.login",
     .req_desc = &ej__users__login_request__descriptor,
     .resp_desc = &ej__users__login_response__descriptor,
     .hook = &login_hook},
    {.method = GW_DELETE,
     .pattern = "/api/dev",
     .subject = "ej.devmail.clear",
     .req_desc = &ej__common__empty__descriptor,
     .resp_desc = &ej__common__empty__descriptor,
     .dev_mail = true},
};

static json_t *build(const struct gw_route *t, size_t n, bool dev_mail, char *etag)
{
        struct gw_openapi *api = NULL;
        struct gw_openapi_opts o = {.title = "T", .cookie_name = "sid", .dev_mail = dev_mail};
        struct ej_err err = {0};
        json_error_t je;
        json_t *doc;
        size_t len;

        if (gw_openapi_create(&api, t, n, &o, &err) != EJ_OK) {
                fprintf(stderr, "gw_openapi_create: %s\n", err.msg);
                return NULL;
        }
        doc = json_loads(gw_openapi_json(api, &len), 0, &je);
        if (etag)
                snprintf(etag, 80, "%s", gw_openapi_etag(api));
        gw_openapi_destroy(api);
        return doc;
}

/* The object at a '/'-separated path of keys ("~" stands for "/" inside a key). */
static json_t *at(json_t *v, const char *path)
{
        char key[128];

        while (v && *path) {
                size_t n = strcspn(path, "/");

                snprintf(key, sizeof(key), "%.*s", (int)n, path);
                for (char *k = key; *k; k++)
                        if (*k == '~')
                                *k = '/';
                v = json_is_array(v) ? json_array_get(v, (size_t)atoi(key))
                                     : json_object_get(v, key);
                path += n + (path[n] == '/');
        }
        return v;
}

static bool has_param(json_t *params, const char *in, const char *name)
{
        size_t i;
        json_t *p;

        json_array_foreach(params, i, p)
        {
                if (strcmp(json_string_value(json_object_get(p, "in")), in) == 0 &&
                    strcmp(json_string_value(json_object_get(p, "name")), name) == 0)
                        return true;
        }
        return false;
}

static bool in_array(json_t *arr, const char *s)
{
        size_t i;
        json_t *v;

        json_array_foreach(arr, i, v)
        {
                if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
                        return true;
        }
        return false;
}

static void test_document(void)
{
        char etag1[80] = "", etag2[80] = "";
        json_t *doc = build(table, sizeof(table) / sizeof(table[0]), false, etag1);
        json_t *again = build(table, sizeof(table) / sizeof(table[0]), false, etag2);
        json_t *list, *put, *body, *user, *login, *withdev;

        CHECK(doc != NULL);
        if (doc == NULL)
                return;
        CHECK(strcmp(json_string_value(at(doc, "openapi")), "3.1.0") == 0);
        CHECK(strcmp(etag1, etag2) == 0 && etag1[0] == '"');
        json_decref(again);

        /* GET: the request's fields, and its page's, are query parameters. */
        list = at(doc, "paths/~api~users/get");
        CHECK(has_param(at(list, "parameters"), "query", "role"));
        CHECK(has_param(at(list, "parameters"), "query", "limit"));
        CHECK(has_param(at(list, "parameters"), "query", "cursor"));
        CHECK(at(list, "requestBody") == NULL);
        CHECK(json_array_size(at(list, "security")) == 2);
        CHECK(strcmp(json_string_value(at(list, "security/1/session/0")), "admin") == 0);
        CHECK(at(list, "responses/401") != NULL && at(list, "responses/415") == NULL);

        /* Path parameters bind fields, which leave the body; the row's success status. */
        put = at(doc, "paths/~api~users~{user_id}~roles~{role}/put");
        CHECK(has_param(at(put, "parameters"), "path", "user_id"));
        CHECK(has_param(at(put, "parameters"), "path", "role"));
        body = at(put, "requestBody/content/application~json; charset=utf-8/schema/properties");
        CHECK(body != NULL && json_object_size(body) == 0);
        CHECK(at(put, "responses/201") != NULL && at(put, "responses/200") == NULL);
        CHECK(at(put, "responses/415") != NULL);

        /* Components: every field required as written, int64 as a string, absent messages null. */
        user = at(doc, "components/schemas/ej.users.User");
        CHECK(user != NULL);
        CHECK(strcmp(json_string_value(at(user, "properties/createdAtMs/type")), "string") == 0);
        CHECK(in_array(at(user, "required"), "createdAtMs"));
        CHECK(at(doc, "components/schemas/ej.users.UserResponse/properties/user/anyOf/1") != NULL);

        /* A hook's skipped field is not in the answer. */
        login = at(doc, "paths/~api~login/post/responses/200/content/application~json; "
                        "charset=utf-8/schema/properties");
        CHECK(login != NULL && json_object_get(login, "sessionToken") == NULL &&
              json_object_get(login, "expiresAtMs") != NULL);

        /* A local route: the hook's schema and error status. */
        CHECK(at(doc, "paths/~api~site/get/responses/503") != NULL);
        CHECK(strcmp(json_string_value(at(doc, "paths/~api~site/get/summary")), "Site") == 0);

        /* Dev-mail rows only when asked for. */
        CHECK(at(doc, "paths/~api~dev") == NULL);
        withdev = build(table, sizeof(table) / sizeof(table[0]), true, NULL);
        CHECK(at(withdev, "paths/~api~dev/delete") != NULL);
        json_decref(withdev);
        json_decref(doc);
}

static void test_refusals(void)
{
        static const struct gw_route bad_param[] = {
            {.method = GW_GET,
             .pattern = "/api/users/{nope}",
             .subject = "ej.users.get_user",
             .req_desc = &ej__users__user_id_request__descriptor,
             .resp_desc = &ej__users__user_response__descriptor},
        };
        static const struct gw_route no_types[] = {
            {.method = GW_GET, .pattern = "/api/x", .subject = "ej.users.x"},
        };
        static const struct gw_route two_methods[] = {
            {.method = GW_GET | GW_POST, .pattern = "/api/x", .hook = &site_hook},
        };
        struct gw_openapi *api = NULL;
        struct gw_openapi_opts o = {.title = "T", .cookie_name = "sid"};
        struct ej_err err = {0};

        CHECK(gw_openapi_create(&api, bad_param, 1, &o, &err) == EJ_ERR_INTERNAL);
        CHECK(api == NULL && strstr(err.msg, "{nope}") != NULL);
        CHECK(gw_openapi_create(&api, no_types, 1, &o, &err) == EJ_ERR_INTERNAL);
        CHECK(gw_openapi_create(&api, two_methods, 1, &o, &err) == EJ_ERR_INTERNAL);
        gw_openapi_destroy(NULL);
}

/* The document's revalidation uses the gateway's one If-None-Match matcher. */
static void test_etag_listed(void)
{
        CHECK(gw_etag_matches("\"abc\"", "abc"));
        CHECK(gw_etag_matches("\"x\", W/\"abc\"", "abc"));
        CHECK(gw_etag_matches("*", "abc"));
        CHECK(!gw_etag_matches("\"abd\"", "abc"));
        CHECK(!gw_etag_matches(NULL, "abc"));
}

int main(void)
{
        test_document();
        test_refusals();
        test_etag_listed();
        return check_report();
}
