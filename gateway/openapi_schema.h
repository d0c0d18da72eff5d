/*
 * openapi_schema.h: JSON Schemas of protobuf messages for the API description (openapi.c), as
 * the transcoder (services/common/pbjson.c) writes them (output: every field present, 64-bit
 * integers and enums as strings, an absent message as null) and reads them (input: any field
 * may be left out, 64-bit integers and enums also as numbers). Messages and enums become
 * components in b->schemas ("<full name>", "<full name>.Input" as read), referred to by $ref.
 *
 * Ownership: every json_t returned is a new reference for the caller. Not thread-safe: one
 * build runs on one thread at start-up.
 */
#ifndef EJ_GW_OPENAPI_SCHEMA_H
#define EJ_GW_OPENAPI_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* The state of one build of the document. */
struct gw_oa_build {
        json_t *schemas;   /* components.schemas */
        json_t *op_ids;    /* operationIds given so far */
        const char *bad;   /* what could not be described, NULL while all is well */
        char bad_buf[160]; /* room for `bad` */
};

#define GW_OA_REF_PREFIX "#/components/schemas/"

/* Notes the first thing that cannot be described (`what`, at `where`); the build then fails. */
void gw_oa_bad(struct gw_oa_build *b, const char *what, const char *where);

/* {"$ref": "#/components/schemas/<name>"}. */
json_t *gw_oa_ref(const char *name);

/* The JSON name (lowerCamelCase) of the proto field name `proto`, written into buf. */
const char *gw_oa_json_name(const char *proto, char *buf, size_t size);

/* True when the NULL-terminated `list` (may be NULL) holds `name`. */
bool gw_oa_listed(const char *name, const char *const *list);

/* The schema of one value of field `f` (an element, for a repeated field). */
json_t *gw_oa_value_schema(struct gw_oa_build *b, const ProtobufCFieldDescriptor *f, bool input);

/* The schema of field `f` as a member of its message (arrays, maps, null when unset). */
json_t *gw_oa_field_schema(struct gw_oa_build *b, const ProtobufCFieldDescriptor *f, bool input);

/* The object schema of `md` without the fields named in `leave_out` (proto names, may be NULL),
 * inline. */
json_t *gw_oa_message_schema(struct gw_oa_build *b, const ProtobufCMessageDescriptor *md,
                             bool input, const char *const *leave_out);

/* A $ref to the component of `md` (created on first use). */
json_t *gw_oa_message_ref(struct gw_oa_build *b, const ProtobufCMessageDescriptor *md, bool input);

#endif
