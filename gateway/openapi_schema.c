/*
 * openapi_schema.c: JSON Schemas of protobuf messages for the API description; see
 * openapi_schema.h. Mirrors pbjson.c's choices: the names come from ej_pbjson_json_name and map
 * fields are known by ej_pbjson_is_map, so the two cannot drift apart.
 */
#include "openapi_schema.h"

#include <stdio.h>
#include <string.h>

#include "pbjson.h"
#include "str.h"

#define INPUT_SUFFIX ".Input"

void gw_oa_bad(struct gw_oa_build *b, const char *what, const char *where)
{
        if (b->bad == NULL) {
                int w = snprintf(b->bad_buf, sizeof(b->bad_buf), "%s: %s", where, what);

                if (w < 0 || (size_t)w >= sizeof(b->bad_buf))
                        b->bad_buf[sizeof(b->bad_buf) - 1] = '\0'; /* cut: still says where */
                b->bad = b->bad_buf;
        }
}

json_t *gw_oa_ref(const char *name)
{
        return json_pack("{s:s+}", "$ref", GW_OA_REF_PREFIX, name);
}

/* A name too long for buf is cut to fit (proto field names are far shorter than the 128 bytes
 * the callers give). */
const char *gw_oa_json_name(const char *proto, char *buf, size_t size)
{
        if (strlen(proto) >= size) {
                memcpy(buf, proto, size - 1);
                buf[size - 1] = '\0';
                return buf;
        }
        ej_pbjson_json_name(proto, buf);
        return buf;
}

/* --- schemas of messages, as written (output) and as read (input) --- */

static json_t *enum_ref(struct gw_oa_build *b, const ProtobufCEnumDescriptor *ed)
{
        if (json_object_get(b->schemas, ed->name) == NULL) {
                json_t *names = json_array();

                for (unsigned i = 0; i < ed->n_values; i++)
                        json_array_append_new(names, json_string(ed->values[i].name));
                json_object_set_new(b->schemas, ed->name,
                                    json_pack("{s:s,s:o}", "type", "string", "enum", names));
        }
        return gw_oa_ref(ed->name);
}

/* The schema of one value of field `f` (an element, for a repeated field). */
json_t *gw_oa_value_schema(struct gw_oa_build *b, const ProtobufCFieldDescriptor *f, bool input)
{
        const char *int64_text = "^-?[0-9]+$";
        const char *uint64_text = "^[0-9]+$";

        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING:
                return json_pack("{s:s}", "type", "string");
        case PROTOBUF_C_TYPE_BYTES:
                return json_pack("{s:s,s:s}", "type", "string", "contentEncoding", "base64");
        case PROTOBUF_C_TYPE_BOOL:
                return json_pack("{s:s}", "type", "boolean");
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
                return json_pack("{s:s,s:s}", "type", "integer", "format", "int32");
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                return json_pack("{s:s,s:i,s:I}", "type", "integer", "minimum", 0, "maximum",
                                 (json_int_t)4294967295LL);
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                if (input)
                        return json_pack("{s:[s,s],s:s,s:s}", "type", "string", "integer", "format",
                                         "int64", "pattern", int64_text);
                return json_pack("{s:s,s:s,s:s}", "type", "string", "format", "int64", "pattern",
                                 int64_text);
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                if (input)
                        return json_pack("{s:[s,s],s:s,s:i}", "type", "string", "integer",
                                         "pattern", uint64_text, "minimum", 0);
                return json_pack("{s:s,s:s}", "type", "string", "pattern", uint64_text);
        case PROTOBUF_C_TYPE_FLOAT:
        case PROTOBUF_C_TYPE_DOUBLE:
                return json_pack("{s:[{s:s,s:s},{s:[s,s,s]}]}", "anyOf", "type", "number", "format",
                                 f->type == PROTOBUF_C_TYPE_FLOAT ? "float" : "double", "enum",
                                 "NaN", "Infinity", "-Infinity");
        case PROTOBUF_C_TYPE_ENUM:
                /* Written by name (a value this build does not know stays a number); read by
                 * name or number. */
                if (input)
                        return json_pack("{s:[o,{s:s}]}", "anyOf", enum_ref(b, f->descriptor),
                                         "type", "integer");
                return enum_ref(b, f->descriptor);
        case PROTOBUF_C_TYPE_MESSAGE:
                return gw_oa_message_ref(b, f->descriptor, input);
        default:
                gw_oa_bad(b, "a field of an unknown type", f->name);
                return json_object();
        }
}

/* The schema of field `f` as a member of its message. */
json_t *gw_oa_field_schema(struct gw_oa_build *b, const ProtobufCFieldDescriptor *f, bool input)
{
        if (ej_pbjson_is_map(f)) {
                const ProtobufCMessageDescriptor *entry = f->descriptor;

                return json_pack("{s:s,s:o}", "type", "object", "additionalProperties",
                                 gw_oa_value_schema(b, &entry->fields[1], input));
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
                return json_pack("{s:s,s:o}", "type", "array", "items",
                                 gw_oa_value_schema(b, f, input));
        /* Written as null when unset: a sub-message, or a field with presence. */
        if (!input && (f->type == PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_OPTIONAL))
                return json_pack("{s:[o,{s:s}]}", "anyOf", gw_oa_value_schema(b, f, input), "type",
                                 "null");
        return gw_oa_value_schema(b, f, input);
}

bool gw_oa_listed(const char *name, const char *const *list)
{
        for (; list != NULL && *list != NULL; list++)
                if (strcmp(*list, name) == 0)
                        return true;
        return false;
}

/* The object schema of `md` without the fields named in `leave_out` (proto names, may be
 * NULL). As written, every field is present but oneof members (only the one in use is). */
json_t *gw_oa_message_schema(struct gw_oa_build *b, const ProtobufCMessageDescriptor *md,
                             bool input, const char *const *leave_out)
{
        json_t *props = json_object();
        json_t *required = json_array();
        json_t *s;

        for (unsigned i = 0; i < md->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &md->fields[i];
                char name[128];

                if (gw_oa_listed(f->name, leave_out))
                        continue;
                gw_oa_json_name(f->name, name, sizeof(name));
                json_object_set_new(props, name, gw_oa_field_schema(b, f, input));
                if (input ? f->label == PROTOBUF_C_LABEL_REQUIRED
                          : !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                        json_array_append_new(required, json_string(name));
        }
        s = json_pack("{s:s,s:o,s:b}", "type", "object", "properties", props,
                      "additionalProperties", 0);
        if (json_array_size(required) > 0)
                json_object_set_new(s, "required", required);
        else
                json_decref(required);
        return s;
}

json_t *gw_oa_message_ref(struct gw_oa_build *b, const ProtobufCMessageDescriptor *md, bool input)
{
        struct ej_buf name;
        json_t *ref;

        ej_buf_init(&name);
        ej_buf_appendf(&name, "%s%s", md->name, input ? INPUT_SUFFIX : "");
        if (json_object_get(b->schemas, name.p) == NULL) {
                /* A placeholder first: a message may contain itself. */
                json_object_set_new(b->schemas, name.p, json_object());
                json_object_set_new(b->schemas, name.p, gw_oa_message_schema(b, md, input, NULL));
        }
        ref = gw_oa_ref(name.p);
        ej_buf_free(&name);
        return ref;
}
