/*
 * pbjson.h: JSON <-> protobuf-c messages, driven by the message descriptors, once for every
 * message type (no per-route JSON code anywhere).
 *
 * Follows the proto3 JSON mapping: field names in lowerCamelCase (the original proto names are
 * accepted on input too), 64-bit integers as strings (numbers accepted on input), enums by name
 * (numbers accepted on input), bytes as base64, repeated fields as arrays, nested messages as
 * objects, null as the default value. Unknown fields are rejected with an error naming them.
 *
 * All decoded memory comes from the caller's arena. Reentrant; no global state.
 */
#ifndef EJ_PBJSON_H
#define EJ_PBJSON_H

#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "mem.h"
#include "status.h"
#include "str.h"

/* Parses `json` (n bytes; n == 0 means "{}") into a new message of type `desc` allocated in
 * `arena`. Syntax errors give EJ_ERR_INVALID with the position ("line 1, column 12") in the
 * message and a sentence of ours (never the JSON library's text); type errors, unknown fields and
 * a NUL character inside a string give EJ_ERR_INVALID with err->field set to the field path in
 * lowerCamelCase ("user.email", "roles[2]"). Nesting deeper than 32 is refused. */
enum ej_status ej_pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t n,
                                struct ej_arena *arena, ProtobufCMessage **out, struct ej_err *err);

/* Sets the scalar (or enum) field called `name` (lowerCamelCase or proto name) of `msg` from the
 * text `value`, converting per the field's type; used for path and query parameters. A repeated
 * field gets `value` appended. EJ_ERR_NOT_FOUND when there is no such field, EJ_ERR_INVALID when
 * the text does not convert. */
enum ej_status ej_pbjson_set_field(ProtobufCMessage *msg, const char *name, struct ej_str value,
                                   struct ej_arena *arena, struct ej_err *err);

/* Writes the JSON name of the proto field name `proto` (lowerCamelCase, as protoc derives it)
 * into `out`, which has room for strlen(proto) + 1 bytes (the form is never longer); returns
 * its length. */
size_t ej_pbjson_json_name(const char *proto, char *out);

/* True when `f` is a map field (written as a JSON object; see pbjson.c for how it is known). */
bool ej_pbjson_is_map(const ProtobufCFieldDescriptor *f);

enum {
        EJ_PBJSON_EMIT_DEFAULTS = 1 << 0, /* write fields at their default value too */
};

/* Appends `msg` as JSON to `out`. `skip` (may be NULL) is a NULL-terminated list of proto field
 * names left out at the top level (e.g. a session token the gateway moves into a cookie). */
void ej_pbjson_encode(const ProtobufCMessage *msg, unsigned flags, const char *const *skip,
                      struct ej_buf *out);

#endif
