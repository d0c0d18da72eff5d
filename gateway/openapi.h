/*
 * openapi.h: the API describes itself. At start-up the gateway turns its route table (method,
 * pattern, access, success status, stream kind, hook) and the protobuf descriptors of each
 * route's request and response messages into one OpenAPI 3.1 document, served as
 * GET /api/openapi.json with an ETag; GET /api/docs is a reference page rendering it.
 *
 * The schemas follow what the transcoder (services/common/pbjson.c) really writes and reads:
 * lowerCamelCase names, 64-bit integers as strings, enums by name, bytes as base64, repeated
 * fields as arrays, maps as objects, nested messages as $ref components. A reply is written
 * with every field present (EJ_PBJSON_EMIT_DEFAULTS, an unset sub-message as null), so a
 * response schema requires every field but oneof members; a request may leave out any field.
 * Request and response shapes of one message are therefore two components: "<full name>" (as
 * written) and "<full name>.Input" (as read).
 *
 * Ownership: gw_openapi_create builds the document once; it is read-only afterwards and may be
 * read from any thread until gw_openapi_destroy.
 */
#ifndef EJ_GW_OPENAPI_H
#define EJ_GW_OPENAPI_H

#include <stdbool.h>
#include <stddef.h>

#include "routes.h"
#include "status.h"

struct gw_openapi;

struct gw_openapi_opts {
        const char *title;       /* info.title, e.g. the site's name */
        const char *cookie_name; /* the session cookie (the security scheme) */
        bool dev_mail;           /* describe the .dev_mail rows too */
};

/* Builds the document of the first `n` rows of `table` into *out. The rows must be final
 * (subjects and descriptors resolved). EJ_ERR_INTERNAL when a row cannot be described. */
enum ej_status gw_openapi_create(struct gw_openapi **out, const struct gw_route *table, size_t n,
                                 const struct gw_openapi_opts *opts, struct ej_err *err);

/* Frees the document. Accepts NULL. */
void gw_openapi_destroy(struct gw_openapi *api);

/* The document's JSON text (NUL-terminated, *len bytes) and its ETag (a quoted hash); both live
 * as long as `api`. */
const char *gw_openapi_json(const struct gw_openapi *api, size_t *len);
const char *gw_openapi_etag(const struct gw_openapi *api);

#endif
