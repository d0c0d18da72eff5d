/*
 * openapi.c: the OpenAPI 3.1 document of the route table, built once at start-up (see
 * openapi.h), and the two routes that serve it.
 *
 * The document is built as a jansson tree, written out once and freed. What each part comes
 * from:
 *   paths          one path item per pattern, one operation per row; GET rows of a file
 *                  download get a HEAD operation too (GET rows of JSON calls answer HEAD as
 *                  well, undocumented)
 *   parameters     {param} segments: the request field of that name; on GET, every other
 *                  request field is a query parameter, and so is every field of a singular
 *                  sub-message ("limit" and "cursor" of `page`), as gw_bind_query binds them
 *   request body   other methods: the request message minus the fields bound to the path
 *   responses      the success status with the response message (or what the hook's doc
 *                  says), and the error answers the gateway and services give, each the one
 *                  error body; file routes (GW_STREAM_*) as stream.h describes them
 *   security       the session cookie; roles as the requirement's role names (any of them)
 */
#include "openapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway.h"
#include "framing.h"
#include "ids.h"
#include "mem.h"
#include "openapi_schema.h"
#include "render.h"
#include "stream_http.h"
#include "pbjson.h"

struct gw_openapi {
        char *json;
        size_t len;
        char tag[33];                     /* the first 32 hex digits of the document's SHA-256 */
        char etag[EJ_SHA256_HEX_LEN + 2]; /* the same, quoted: the ETag header */
};

/* The error answers, by status: components.responses names and their descriptions. */
static const struct {
        unsigned status;
        const char *name;
        const char *text;
} error_answers[] = {
    {400, "BadRequest",
     "invalid_argument: malformed JSON, a value of the wrong type, an unknown field or query "
     "parameter, or a value the service refuses; `field` names the field at fault."},
    {401, "Unauthenticated",
     "unauthenticated: no valid session (sign in first), or wrong credentials. A dead session "
     "cookie is cleared."},
    {403, "Forbidden",
     "forbidden: the session lacks a role the operation needs, or a state-changing request came "
     "from another site; consent_required: the signed-in person owes consent to the current "
     "consent text."},
    {404, "NotFound", "not_found: no such resource."},
    {409, "Conflict",
     "conflict: the request clashes with the current state (e.g. a taken e-mail)."},
    {413, "TooLarge", "too_large: the request body is over the limit."},
    {415, "UnsupportedMediaType",
     "unsupported_media_type: a JSON call needs Content-Type: application/json."},
    {416, "RangeNotSatisfiable",
     "invalid_argument: the Range lies outside the file (Content-Range: bytes */size)."},
    {429, "TooManyRequests",
     "too_many_requests: throttled; Retry-After gives the seconds to wait."},
    {500, "Internal",
     "internal: something broke on our side (the request id finds it in the logs)."},
    {503, "Unavailable",
     "unavailable: the request was not delivered (the message bus or the service behind the "
     "operation is not available); nothing was done, so it is safe to retry."},
    {504, "Timeout",
     "outcome_unknown: the request was delivered but no answer came in time (or the message "
     "bus was lost after sending it); it may or may not have been carried out, so retry a write "
     "with the same Idempotency-Key, which returns the first attempt's answer. timeout: a "
     "service behind the operation timed out itself."},
};

/* Error statuses of a JSON call to a service; 413 and 415 only for methods that take a body. */
static const unsigned call_errors[] = {400, 401, 403, 404, 409, 413, 415, 429, 500, 503, 504};
static const unsigned upload_errors[] = {400, 401, 403, 404, 409, 413, 415, 429, 500, 503, 504};
static const unsigned download_errors[] = {400, 401, 403, 404, 416, 429, 500, 503, 504};

static const char error_schema[] =
    "{\"type\":\"object\",\"required\":[\"error\"],\"additionalProperties\":false,"
    "\"properties\":{\"error\":{\"type\":\"object\","
    "\"required\":[\"code\",\"message\",\"requestId\"],\"additionalProperties\":false,"
    "\"properties\":{"
    "\"code\":{\"type\":\"string\",\"enum\":[\"invalid_argument\",\"not_found\",\"conflict\","
    "\"unauthenticated\",\"forbidden\",\"too_large\",\"unavailable\",\"timeout\",\"internal\","
    "\"too_many_requests\",\"unsupported_media_type\",\"consent_required\","
    "\"method_not_allowed\",\"outcome_unknown\"]},"
    "\"message\":{\"type\":\"string\",\"description\":\"For people; may change.\"},"
    "\"field\":{\"type\":\"string\",\"description\":\"The field at fault, in lowerCamelCase "
    "(\\\"user.email\\\", \\\"roles[2]\\\").\"},"
    "\"requestId\":{\"type\":\"string\",\"description\":\"The X-Request-Id of the answer.\"}}}}}";

static const char api_description[] =
    "Every call the browser app makes, generated by the gateway from its route table and the "
    "protobuf messages of each operation.\n\n"
    "- **JSON** follows the proto3 JSON mapping: field names in lowerCamelCase (the proto names "
    "are accepted on input too), 64-bit integers as strings, enums by name, bytes as base64. "
    "Answers carry every field, an absent message as `null`.\n"
    "- **POST, PUT, PATCH and DELETE** need `Content-Type: application/json`, body or not, and "
    "must come from this site (`Origin`); an empty body counts as `{}`.\n"
    "- **Sessions** live in an HttpOnly cookie set by `POST /api/auth/login`.\n"
    "- **Errors** have one body: `{\"error\":{\"code\",\"message\",\"field\",\"requestId\"}}`.\n"
    "- **Request ids**: send `X-Request-Id` or get one; every answer echoes it.\n"
    "- **Retries**: 503 `unavailable` means the request was not delivered: retry freely. 504 "
    "`outcome_unknown` means it was delivered and may have been carried out: retry a write with "
    "the same `Idempotency-Key` header (1 to 128 visible ASCII characters, e.g. a UUID, sent "
    "with POST, PUT, PATCH and DELETE), which returns the first attempt's stored answer for a "
    "day instead of doing it twice.\n";

/* --- operations --- */

/* The service of a subject ("users" of "ej.users.me"), into buf; "gateway" without one. */
static const char *service_of(const char *subject, char *buf, size_t size)
{
        const char *a = subject ? strchr(subject, '.') : NULL;
        const char *z = a ? strchr(a + 1, '.') : NULL;

        if (z == NULL)
                snprintf(buf, size, "gateway");
        else
                snprintf(buf, size, "%.*s", (int)(z - a - 1), a + 1);
        return buf;
}

/* A unique operationId: the subject without "ej." (or the path), plus the method when taken. */
static void operation_id(struct gw_oa_build *b, const struct gw_route *r, const char *method,
                         char *out, size_t size)
{
        const char *base =
            r->subject && strncmp(r->subject, "ej.", 3) == 0 ? r->subject + 3 : r->subject;
        size_t k;

        if (base == NULL)
                snprintf(out, size, "gateway%s", r->pattern);
        else
                snprintf(out, size, "%s", base);
        for (k = 0; out[k]; k++)
                if (out[k] == '/' || out[k] == '{' || out[k] == '}')
                        out[k] = out[k] == '/' ? '.' : '_';
        if (json_object_get(b->op_ids, out) != NULL) {
                k = strlen(out);
                snprintf(out + k, size - k, ".%s", method);
        }
        json_object_set_new(b->op_ids, out, json_true());
}

/* A line for people: the hook's doc, what a file route does, or the operation's name
 * ("List users" of "ej.users.list_users"). */
static void summary_of(const struct gw_route *r, unsigned method, char *out, size_t size)
{
        const char *verb = r->subject ? strrchr(r->subject, '.') : NULL;

        if (r->hook && r->hook->doc.summary)
                snprintf(out, size, "%s", r->hook->doc.summary);
        else if (r->stream == GW_STREAM_UPLOAD)
                snprintf(out, size, "%s",
                         method == GW_POST ? "Upload a file (multipart form)"
                                           : "Upload a file (raw body)");
        else if (r->stream == GW_STREAM_DOWNLOAD)
                snprintf(out, size, "%s",
                         method == GW_HEAD ? "A file's headers" : "Download a file");
        else
                snprintf(out, size, "%s", verb ? verb + 1 : r->pattern);
        for (size_t k = 0; out[k]; k++)
                if (out[k] == '_')
                        out[k] = ' ';
        if (out[0] >= 'a' && out[0] <= 'z')
                out[0] = (char)(out[0] - 'a' + 'A');
}

/* The {param} names of a pattern, as proto field names, into names[] (NULL-terminated). */
static size_t path_names(const char *pattern, char names[GW_MAX_PARAMS][64],
                         const char *list[GW_MAX_PARAMS + 1])
{
        size_t n = 0;

        for (const char *p = strchr(pattern, '{'); p && n < GW_MAX_PARAMS; p = strchr(p, '{')) {
                const char *close = strchr(p, '}');

                if (close == NULL)
                        break;
                snprintf(names[n], sizeof(names[n]), "%.*s", (int)(close - p - 1), p + 1);
                list[n] = names[n];
                n++;
                p = close;
        }
        list[n] = NULL;
        return n;
}

static json_t *param(const char *name, const char *in, bool required, json_t *schema,
                     const char *description)
{
        json_t *p = json_pack("{s:s,s:s,s:b,s:o}", "name", name, "in", in, "required", required,
                              "schema", schema);

        if (description)
                json_object_set_new(p, "description", json_string(description));
        return p;
}

/* The path parameters of `r`, typed by the request fields they bind. */
static void add_path_params(struct gw_oa_build *b, const struct gw_route *r, json_t *params)
{
        char names[GW_MAX_PARAMS][64];
        const char *list[GW_MAX_PARAMS + 1];
        size_t n = path_names(r->pattern, names, list);

        for (size_t i = 0; i < n; i++) {
                const ProtobufCFieldDescriptor *f =
                    r->req_desc
                        ? protobuf_c_message_descriptor_get_field_by_name(r->req_desc, names[i])
                        : NULL;

                if (f == NULL) {
                        gw_oa_bad(b, "a {param} names no request field", r->pattern);
                        continue;
                }
                json_array_append_new(
                    params, param(names[i], "path", true, gw_oa_value_schema(b, f, true), NULL));
        }
}

/* A GET call's query parameters: the request fields the path leaves, and the fields of its
 * singular sub-messages. */
static void add_query_params(struct gw_oa_build *b, const struct gw_route *r,
                             const char *const *bound, json_t *params)
{
        const ProtobufCMessageDescriptor *md = r->req_desc;

        for (unsigned i = 0; md && i < md->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &md->fields[i];
                char name[128];

                if (gw_oa_listed(f->name, bound) || ej_pbjson_is_map(f))
                        continue;
                if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
                        json_array_append_new(
                            params, param(gw_oa_json_name(f->name, name, sizeof(name)), "query",
                                          false, gw_oa_field_schema(b, f, true), NULL));
                        continue;
                }
                if (f->label == PROTOBUF_C_LABEL_REPEATED)
                        continue; /* a message cannot be given as text */
                const ProtobufCMessageDescriptor *sub = f->descriptor;

                for (unsigned k = 0; k < sub->n_fields; k++) {
                        const ProtobufCFieldDescriptor *sf = &sub->fields[k];
                        char sname[128];
                        struct ej_buf text;

                        if (sf->type == PROTOBUF_C_TYPE_MESSAGE)
                                continue;
                        gw_oa_json_name(f->name, name, sizeof(name));
                        gw_oa_json_name(sf->name, sname, sizeof(sname));
                        ej_buf_init(&text);
                        ej_buf_appendf(&text, "Sets `%s.%s`.", name, sname);
                        json_array_append_new(
                            params,
                            param(sname, "query", false, gw_oa_field_schema(b, sf, true), text.p));
                        ej_buf_free(&text);
                }
        }
}

static json_t *json_content(json_t *schema)
{
        return json_pack("{s:{s:o}}", "application/json; charset=utf-8", "schema", schema);
}

static void add_errors(json_t *responses, const unsigned *codes, size_t n, bool with_body)
{
        for (size_t i = 0; i < n; i++) {
                char key[16];

                if (!with_body && (codes[i] == 413 || codes[i] == 415))
                        continue;
                for (size_t k = 0; k < sizeof(error_answers) / sizeof(error_answers[0]); k++) {
                        if (error_answers[k].status != codes[i])
                                continue;
                        snprintf(key, sizeof(key), "%u", codes[i]);
                        json_object_set_new(responses, key,
                                            json_pack("{s:s+}", "$ref", "#/components/responses/",
                                                      error_answers[k].name));
                }
        }
}

static json_t *binary_content(void)
{
        return json_pack("{s:{s:{s:s,s:s}}}", "*/*", "schema", "type", "string", "format",
                         "binary");
}

static json_t *header(const char *description)
{
        return json_pack("{s:s,s:{s:s}}", "description", description, "schema", "type", "string");
}

/* The request and answers of a file route (stream.h). */
static void describe_stream(struct gw_oa_build *b, const struct gw_route *r, json_t *op)
{
        json_t *params = json_object_get(op, "parameters");
        json_t *resp = json_object();

        if (r->stream == GW_STREAM_UPLOAD) {
                bool multipart = r->method == GW_POST;

                json_array_append_new(params, param("kind", "query", !multipart,
                                                    json_pack("{s:s}", "type", "string"),
                                                    "What the file is (e.g. manuscript): decides "
                                                    "the types and size allowed."));
                json_array_append_new(
                    params, param("name", "query", false, json_pack("{s:s}", "type", "string"),
                                  "The file's name (a multipart part's filename wins)."));
                if (multipart)
                        json_object_set_new(
                            op, "requestBody",
                            json_pack("{s:b,s:{s:{s:{s:s,s:{s:{s:s},s:{s:s,s:s}},s:[s]}}}}",
                                      "required", 1, "content", "multipart/form-data", "schema",
                                      "type", "object", "properties", "kind", "type", "string",
                                      "file", "type", "string", "format", "binary", "required",
                                      "file"));
                else
                        json_object_set_new(
                            op, "requestBody",
                            json_pack("{s:b,s:o}", "required", 1, "content", binary_content()));
                json_object_set_new(
                    resp, "201",
                    json_pack("{s:s,s:{s:o},s:o}", "description",
                              "Stored; the body describes the file.", "headers", "Location",
                              header("The file's URL."), "content",
                              json_content(gw_oa_message_ref(b, r->resp_desc, false))));
                add_errors(resp, upload_errors, sizeof(upload_errors) / sizeof(upload_errors[0]),
                           true);
        } else {
                json_t *headers = json_pack(
                    "{s:o,s:o,s:o}", "ETag", header("The file's SHA-256, quoted."),
                    "Content-Disposition", header("inline or attachment, with the file's name."),
                    "Accept-Ranges", header("bytes"));

                json_array_append_new(params, param("grant", "query", false,
                                                    json_pack("{s:s}", "type", "string"),
                                                    "An access grant from the file's owner "
                                                    "(instead of a session)."));
                json_array_append_new(params, param("Range", "header", false,
                                                    json_pack("{s:s}", "type", "string"),
                                                    "One byte range (bytes=0-99, bytes=-100); "
                                                    "several ranges get the whole file."));
                json_array_append_new(params, param("If-None-Match", "header", false,
                                                    json_pack("{s:s}", "type", "string"), NULL));
                json_t *ranged = json_deep_copy(headers);

                json_object_set_new(ranged, "Content-Range", header("bytes first-last/size"));
                json_object_set_new(resp, "200",
                                    json_pack("{s:s,s:o,s:o}", "description", "The file.",
                                              "headers", headers, "content", binary_content()));
                json_object_set_new(resp, "206",
                                    json_pack("{s:s,s:o,s:o}", "description",
                                              "The requested range.", "headers", ranged, "content",
                                              binary_content()));
                json_object_set_new(resp, "304",
                                    json_pack("{s:s}", "description",
                                              "Unchanged since the ETag sent in If-None-Match."));
                add_errors(resp, download_errors,
                           sizeof(download_errors) / sizeof(download_errors[0]), false);
        }
        json_object_set_new(op, "responses", resp);
}

/* The success answer of a JSON or local route. */
static json_t *success_answer(struct gw_oa_build *b, const struct gw_route *r)
{
        const struct gw_hook_doc *doc = r->hook ? &r->hook->doc : NULL;
        json_t *schema = NULL;
        const char *type =
            doc && doc->media_type ? doc->media_type : "application/json; charset=utf-8";

        if (doc && doc->schema) {
                json_error_t je;

                schema = json_loads(doc->schema, 0, &je);
                if (schema == NULL) {
                        gw_oa_bad(b, "the hook's doc.schema is not JSON", r->pattern);
                        schema = json_object();
                }
        } else if (r->resp_desc && r->hook && r->hook->skip) {
                schema = gw_oa_message_schema(b, r->resp_desc, false, r->hook->skip);
        } else if (r->resp_desc) {
                schema = gw_oa_message_ref(b, r->resp_desc, false);
        } else {
                gw_oa_bad(b, "a local route without doc.schema", r->pattern);
                schema = json_object();
        }
        return json_pack("{s:s,s:{s:{s:o}}}", "description",
                         r->success_status == 201   ? "Created."
                         : r->success_status == 202 ? "Accepted."
                                                    : "OK.",
                         "content", type, "schema", schema);
}

/* The prose of an operation: who may call it, and what it runs. */
static json_t *describe_access(const struct gw_route *r)
{
        struct ej_buf t;
        json_t *s;

        ej_buf_init(&t);
        if (r->hook && r->hook->doc.description)
                ej_buf_appendf(&t, "%s\n\n", r->hook->doc.description);
        switch (r->auth) {
        case GW_AUTH_NONE:
                ej_buf_append_c(&t, "**Access:** anyone.");
                break;
        case GW_AUTH_OPTIONAL:
                ej_buf_append_c(&t, "**Access:** anyone; a session, when there is one, names the "
                                    "caller.");
                break;
        case GW_AUTH_SESSION:
                ej_buf_append_c(&t, "**Access:** a signed-in session.");
                break;
        case GW_AUTH_ROLE:
                ej_buf_appendf(&t, "**Access:** a session holding any of the roles: %s.",
                               r->roles ? r->roles : "");
                break;
        }
        if ((r->auth == GW_AUTH_SESSION || r->auth == GW_AUTH_ROLE) && !r->consent_exempt)
                ej_buf_append_c(&t, " Refused (403 consent_required) while consent is owed.");
        if (r->dev_mail)
                ej_buf_append_c(&t, " Exists only with EJ_DEV_MAIL=true.");
        if (r->subject)
                ej_buf_appendf(&t, "\n\n**Runs:** `%s` (%s → %s).", r->subject,
                               r->req_desc ? r->req_desc->name : "-",
                               r->resp_desc ? r->resp_desc->name : "-");
        s = json_string(t.p ? t.p : "");
        ej_buf_free(&t);
        return s;
}

static json_t *security_of(const struct gw_route *r)
{
        json_t *sec = json_array();

        switch (r->auth) {
        case GW_AUTH_NONE:
                break;
        case GW_AUTH_OPTIONAL:
                json_array_append_new(sec, json_object());
                json_array_append_new(sec, json_pack("{s:[]}", "session"));
                break;
        case GW_AUTH_SESSION:
                json_array_append_new(sec, json_pack("{s:[]}", "session"));
                break;
        case GW_AUTH_ROLE:
                /* Requirements are alternatives: any one role suffices. */
                for (const char *p = r->roles; p && *p;) {
                        const char *end = strchr(p, ',');
                        size_t k = end ? (size_t)(end - p) : strlen(p);

                        json_array_append_new(sec, json_pack("{s:[s#]}", "session", p, (int)k));
                        p = end ? end + 1 : NULL;
                }
                break;
        }
        return sec;
}

static const char *method_name(unsigned bit)
{
        switch (bit) {
        case GW_GET:
                return "get";
        case GW_HEAD:
                return "head";
        case GW_POST:
                return "post";
        case GW_PUT:
                return "put";
        case GW_PATCH:
                return "patch";
        case GW_DELETE:
                return "delete";
        default:
                return NULL;
        }
}

/* The operation of row `r` for `method`. */
static json_t *operation(struct gw_oa_build *b, const struct gw_route *r, unsigned method)
{
        const char *mname = method_name(method);
        char id[160], svc[64], summary[160];
        char names[GW_MAX_PARAMS][64];
        const char *bound[GW_MAX_PARAMS + 1];
        json_t *op, *params = json_array();
        bool with_body = method & (GW_POST | GW_PUT | GW_PATCH | GW_DELETE);

        operation_id(b, r, mname, id, sizeof(id));
        summary_of(r, method, summary, sizeof(summary));
        op = json_pack("{s:[s],s:s,s:s,s:o,s:o}", "tags", service_of(r->subject, svc, sizeof(svc)),
                       "operationId", id, "summary", summary, "description", describe_access(r),
                       "security", security_of(r));
        if (r->roles)
                json_object_set_new(op, "x-roles", json_string(r->roles));
        json_object_set_new(op, "parameters", params);
        path_names(r->pattern, names, bound);
        add_path_params(b, r, params);
        if (r->stream != GW_STREAM_NONE) {
                describe_stream(b, r, op);
                return op;
        }
        if (r->hook && r->hook->local) {
                json_t *resp = json_object();

                json_object_set_new(resp, "200", success_answer(b, r));
                if (r->hook == &gw_hook_openapi)
                        json_object_set_new(resp, "304",
                                            json_pack("{s:s}", "description",
                                                      "Unchanged since the ETag sent in "
                                                      "If-None-Match."));
                if (r->hook->doc.error_status)
                        add_errors(resp, &r->hook->doc.error_status, 1, false);
                json_object_set_new(op, "responses", resp);
                return op;
        }
        if (r->req_desc == NULL || r->resp_desc == NULL || r->subject == NULL) {
                gw_oa_bad(b, "a service route without subject or message types", r->pattern);
                return op;
        }
        if (method == GW_GET)
                add_query_params(b, r, bound, params);
        else
                json_object_set_new(
                    op, "requestBody",
                    json_pack("{s:b,s:o}", "required", 0, "content",
                              json_content(gw_oa_message_schema(b, r->req_desc, true, bound))));
        {
                json_t *resp = json_object();
                char key[16];

                snprintf(key, sizeof(key), "%u", r->success_status ? r->success_status : 200);
                json_object_set_new(resp, key, success_answer(b, r));
                add_errors(resp, call_errors, sizeof(call_errors) / sizeof(call_errors[0]),
                           with_body);
                json_object_set_new(op, "responses", resp);
        }
        return op;
}

static json_t *components(struct gw_oa_build *b, const struct gw_openapi_opts *o)
{
        json_t *responses = json_object();
        json_error_t je;
        json_t *err = json_loads(error_schema, 0, &je);

        if (err == NULL)
                gw_oa_bad(b, je.text, "the error schema");
        json_object_set_new(b->schemas, "Error", err ? err : json_object());
        for (size_t i = 0; i < sizeof(error_answers) / sizeof(error_answers[0]); i++) {
                json_t *r = json_pack("{s:s,s:o}", "description", error_answers[i].text, "content",
                                      json_content(gw_oa_ref("Error")));

                if (error_answers[i].status == 429)
                        json_object_set_new(
                            r, "headers",
                            json_pack("{s:o}", "Retry-After", header("Seconds to wait.")));
                json_object_set_new(responses, error_answers[i].name, r);
        }
        return json_pack(
            "{s:O,s:o,s:{s:{s:s,s:s,s:s,s:s}}}", "schemas", b->schemas, "responses", responses,
            "securitySchemes", "session", "type", "apiKey", "in", "cookie", "name", o->cookie_name,
            "description",
            "The session cookie that POST /api/auth/login sets (HttpOnly, SameSite=Lax). "
            "Role names in a requirement: the session must hold any one of them.");
}

enum ej_status gw_openapi_create(struct gw_openapi **out, const struct gw_route *table, size_t n,
                                 const struct gw_openapi_opts *opts, struct ej_err *err)
{
        struct gw_oa_build b = {.schemas = json_object(), .op_ids = json_object()};
        json_t *paths = json_object();
        json_t *doc = NULL;
        struct gw_openapi *api = NULL;
        enum ej_status st = EJ_OK;
        char *text = NULL;

        *out = NULL;
        for (size_t i = 0; i < n; i++) {
                const struct gw_route *r = &table[i];
                json_t *item = json_object_get(paths, r->pattern);
                const char *mname = method_name(r->method);

                if (r->dev_mail && !opts->dev_mail)
                        continue;
                if (mname == NULL) {
                        gw_oa_bad(&b, "a row with no single known method", r->pattern);
                        continue;
                }
                if (item == NULL) {
                        item = json_object();
                        json_object_set_new(paths, r->pattern, item);
                }
                json_object_set_new(item, mname, operation(&b, r, r->method));
                if (r->stream == GW_STREAM_DOWNLOAD && r->method == GW_GET)
                        json_object_set_new(item, "head", operation(&b, r, GW_HEAD));
        }
        doc = json_pack("{s:s,s:{s:s,s:s,s:s},s:o}", "openapi", "3.1.0", "info", "title",
                        opts->title ? opts->title : "EasyJournal", "version", "1", "description",
                        api_description, "paths", paths);
        json_object_set_new(doc, "components", components(&b, opts));
        if (b.bad) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "API description: %s", b.bad);
                goto out;
        }
        text = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (text == NULL) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "API description: cannot write it");
                goto out;
        }
        api = xcalloc(1, sizeof(*api));
        api->len = strlen(text);
        api->json = xmalloc(api->len + 1);
        memcpy(api->json, text, api->len + 1);
        {
                char hex[EJ_SHA256_HEX_LEN];

                ej_sha256_hex(api->json, api->len, hex);
                snprintf(api->tag, sizeof(api->tag), "%.32s", hex);
                snprintf(api->etag, sizeof(api->etag), "\"%s\"", api->tag);
        }
        *out = api;
out:
        free(text);
        json_decref(doc);
        json_decref(b.schemas);
        json_decref(b.op_ids);
        return st;
}

void gw_openapi_destroy(struct gw_openapi *api)
{
        if (api == NULL)
                return;
        free(api->json);
        free(api);
}

const char *gw_openapi_json(const struct gw_openapi *api, size_t *len)
{
        *len = api->len;
        return api->json;
}

const char *gw_openapi_etag(const struct gw_openapi *api)
{
        return api->etag;
}

/* --- the routes --- */

static void serve_openapi(struct gw_req *req, struct gw_out *out)
{
        const struct gw_openapi *api = req->gw->api;
        const char *inm = gw_header_joined(req->conn, MHD_HTTP_HEADER_IF_NONE_MATCH, req->arena);
        size_t len;
        const char *json;

        if (api == NULL) {
                gw_out_error(out, req, EJ_ERR_UNAVAILABLE, "no API description", NULL);
                return;
        }
        out->etag = gw_openapi_etag(api);
        if (gw_etag_matches(inm, api->tag)) {
                out->status = 304;
                return;
        }
        json = gw_openapi_json(api, &len);
        ej_buf_append(&out->body, json, len);
}

/* The reference page: Swagger UI (vendored into web/vendor/ by make) renders the document. */
static const char docs_page[] =
    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>API reference</title>\n<link rel=\"icon\" href=\"/favicon.svg\">\n"
    "<link rel=\"stylesheet\" href=\"/vendor/swagger-ui/swagger-ui.css\">\n</head>\n<body>\n"
    "<div id=\"api-docs\"><p>Loading the API reference of <a href=\"/api/openapi.json\">"
    "/api/openapi.json</a>…</p></div>\n"
    "<script src=\"/vendor/swagger-ui/swagger-ui-bundle.js\"></script>\n"
    "<script src=\"/api-docs.js\"></script>\n</body>\n</html>\n";

static void serve_docs(struct gw_req *req, struct gw_out *out)
{
        (void)req;
        out->content_type = "text/html; charset=utf-8";
        ej_buf_append(&out->body, docs_page, sizeof(docs_page) - 1);
}

const struct gw_hook gw_hook_openapi = {
    .local = serve_openapi,
    .doc = {.summary = "This document",
            .description = "The OpenAPI 3.1 description of this API, built at start-up from the "
                           "route table; ETag and If-None-Match give 304.",
            .schema = "{\"type\":\"object\",\"required\":[\"openapi\",\"info\",\"paths\"]}"}};

const struct gw_hook gw_hook_api_docs = {
    .local = serve_docs,
    .doc = {.summary = "API reference page",
            .description = "A readable reference rendering /api/openapi.json in the browser.",
            .media_type = "text/html; charset=utf-8",
            .schema = "{\"type\":\"string\"}"}};
