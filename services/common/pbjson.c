/*
 * pbjson.c: the proto3 JSON mapping for protobuf-c messages, driven by their descriptors.
 *
 * Decoding parses with jansson, then walks the tree against the descriptor, allocating every
 * string, array and sub-message from the caller's arena; the jansson tree is released before
 * returning. Encoding writes straight into an ej_buf without building a tree: it runs for every
 * API reply.
 *
 * protobuf-c 1.4 descriptors carry no json_name, so the lowerCamelCase name is derived from the
 * proto name the way protoc does it (drop each '_', upper-case the letter after it).
 *
 * Map fields (repeated FooEntry messages with "key" = 1 and "value" = 2) are recognised by shape,
 * as protobuf-c does not record the map_entry option, and map to JSON objects.
 *
 * Choices the mapping leaves open:
 * - duplicate keys in a JSON object are a syntax error, and so is giving one field under both
 *   its names; a oneof takes one member; proto2 required fields must be present;
 * - jansson reads JSON integers as long long, so a uint64 above INT64_MAX must come as a string
 *   (which is how the encoder writes every 64-bit integer anyway);
 * - EJ_PBJSON_EMIT_DEFAULTS writes an unset field that has presence (proto2 optional, a NULL
 *   sub-message) as null, so that it reads back as unset; oneof members not in use are left out;
 * - -0.0 is written "-0.0" (parsers read "-0" as the integer 0); floats get the shortest text
 *   that reads back as the same value.
 */
#include "pbjson.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define PBJSON_MAX_DEPTH 32
#define PBJSON_PATH_MAX  256

/* The smallest double that rounds to infinity as a float: FLT_MAX plus half its last step. */
#define FLOAT_OVERFLOW 0x1.ffffffp+127

/* ---------------------------------------------------------------------------------------------
 * Names and descriptors
 */

/* True when `key` (n bytes) is the lowerCamelCase form of the proto name `proto`. */
static bool json_name_eq(const char *proto, const char *key, size_t n)
{
        bool up = false;
        size_t i = 0;

        for (; *proto; proto++) {
                char c = *proto;

                if (c == '_') {
                        up = true;
                        continue;
                }
                if (up && c >= 'a' && c <= 'z')
                        c = (char)(c - 'a' + 'A');
                up = false;
                if (i >= n || key[i] != c)
                        return false;
                i++;
        }
        return i == n;
}

/* Writes the lowerCamelCase form of `proto` into `out` (room for strlen(proto) + 1 bytes, as
 * the form is never longer) and returns its length. */
static size_t json_name(const char *proto, char *out)
{
        bool up = false;
        size_t i = 0;

        for (; *proto; proto++) {
                char c = *proto;

                if (c == '_') {
                        up = true;
                        continue;
                }
                if (up && c >= 'a' && c <= 'z')
                        c = (char)(c - 'a' + 'A');
                up = false;
                out[i++] = c;
        }
        out[i] = '\0';
        return i;
}

/* The field whose proto name or lowerCamelCase name is `key` (n bytes), or NULL. */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const char *key, size_t n)
{
        for (unsigned i = 0; i < desc->n_fields; i++) {
                const char *name = desc->fields[i].name;

                if (strncmp(name, key, n) == 0 && name[n] == '\0')
                        return &desc->fields[i];
        }
        for (unsigned i = 0; i < desc->n_fields; i++) {
                if (json_name_eq(desc->fields[i].name, key, n))
                        return &desc->fields[i];
        }
        return NULL;
}

/* True when the field is a map: a repeated message named after the field plus "Entry" whose two
 * fields are key = 1 and value = 2 (the shape protoc gives every map). */
static bool is_map_field(const ProtobufCFieldDescriptor *f)
{
        const ProtobufCMessageDescriptor *md = f->descriptor;
        const char *want = f->name;
        const char *got;
        bool up = true;

        if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE ||
            md == NULL || md->n_fields != 2 || md->fields[0].id != 1 || md->fields[1].id != 2 ||
            strcmp(md->fields[0].name, "key") != 0 || strcmp(md->fields[1].name, "value") != 0)
                return false;
        /* The entry's name is the field name in UpperCamelCase followed by "Entry". */
        got = md->short_name;
        for (; *want; want++) {
                char c = *want;

                if (c == '_') {
                        up = true;
                        continue;
                }
                if (up && c >= 'a' && c <= 'z')
                        c = (char)(c - 'a' + 'A');
                up = false;
                if (*got++ != c)
                        return false;
        }
        return strcmp(got, "Entry") == 0;
}

/* Bytes one element of the field's type takes in a message or a repeated array. */
static size_t elem_size(ProtobufCType t)
{
        switch (t) {
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                return sizeof(uint64_t);
        case PROTOBUF_C_TYPE_DOUBLE:
                return sizeof(double);
        case PROTOBUF_C_TYPE_FLOAT:
                return sizeof(float);
        case PROTOBUF_C_TYPE_BOOL:
                return sizeof(protobuf_c_boolean);
        case PROTOBUF_C_TYPE_STRING:
                return sizeof(char *);
        case PROTOBUF_C_TYPE_BYTES:
                return sizeof(ProtobufCBinaryData);
        case PROTOBUF_C_TYPE_MESSAGE:
                return sizeof(ProtobufCMessage *);
        case PROTOBUF_C_TYPE_ENUM:
                return sizeof(int);
        default:
                return sizeof(uint32_t);
        }
}

/* How an error names what the field wanted. */
static const char *type_expect(ProtobufCType t)
{
        switch (t) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
                return "an integer (int32)";
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                return "an integer (uint32)";
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                return "an integer or a string holding one (int64)";
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                return "an integer or a string holding one (uint64)";
        case PROTOBUF_C_TYPE_FLOAT:
        case PROTOBUF_C_TYPE_DOUBLE:
                return "a number";
        case PROTOBUF_C_TYPE_BOOL:
                return "true or false";
        case PROTOBUF_C_TYPE_ENUM:
                return "an enum name or number";
        case PROTOBUF_C_TYPE_STRING:
                return "a string";
        case PROTOBUF_C_TYPE_BYTES:
                return "a base64 string";
        case PROTOBUF_C_TYPE_MESSAGE:
                return "an object";
        }
        return "a value";
}

static bool is_64bit_int(ProtobufCType t)
{
        return t == PROTOBUF_C_TYPE_INT64 || t == PROTOBUF_C_TYPE_SINT64 ||
               t == PROTOBUF_C_TYPE_SFIXED64 || t == PROTOBUF_C_TYPE_UINT64 ||
               t == PROTOBUF_C_TYPE_FIXED64;
}

/* True when an OPTIONAL field of this type has a has_ flag at quantifier_offset (protobuf-c
 * gives one to every optional type but strings and messages, whose NULL means unset). */
static bool has_flag(const ProtobufCFieldDescriptor *f)
{
        return f->label == PROTOBUF_C_LABEL_OPTIONAL &&
               (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0 && f->type != PROTOBUF_C_TYPE_STRING &&
               f->type != PROTOBUF_C_TYPE_MESSAGE;
}

/* ---------------------------------------------------------------------------------------------
 * Text conversions shared by the decoder (numbers given as strings) and ej_pbjson_set_field
 */

/* An integer before it is fitted to a field: sign and magnitude. */
struct intval {
        bool neg;
        uint64_t mag;
};

enum conv {
        CONV_OK = 0,
        CONV_SYNTAX,   /* not an integer / not a number at all */
        CONV_FRACTION, /* a number, but not integral */
        CONV_RANGE,    /* out of the field's range */
};

/* Parses an optional '-' and decimal digits, nothing else. */
static enum conv parse_int_text(const char *s, size_t n, struct intval *iv)
{
        size_t i = 0;

        iv->neg = false;
        iv->mag = 0;
        if (n > 0 && s[0] == '-') {
                iv->neg = true;
                i = 1;
        }
        if (i == n)
                return CONV_SYNTAX;
        for (; i < n; i++) {
                unsigned d = (unsigned)(unsigned char)s[i] - '0';

                if (d > 9)
                        return CONV_SYNTAX;
                if (iv->mag > (UINT64_MAX - d) / 10)
                        return CONV_RANGE;
                iv->mag = iv->mag * 10 + d;
        }
        return CONV_OK;
}

static enum conv intval_from_double(double d, struct intval *iv)
{
        if (!isfinite(d) || d != trunc(d))
                return CONV_FRACTION;
        if (fabs(d) >= 18446744073709551616.0)
                return CONV_RANGE;
        iv->neg = d < 0;
        iv->mag = (uint64_t)fabs(d);
        return CONV_OK;
}

/* Stores `iv` into the integer or enum field slot `dst` when it fits the field's type. */
static enum conv store_int(ProtobufCType t, struct intval iv, void *dst)
{
        int64_t lo;
        uint64_t hi;
        int64_t sv;

        switch (t) {
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                if ((iv.neg && iv.mag != 0) || iv.mag > UINT32_MAX)
                        return CONV_RANGE;
                *(uint32_t *)dst = (uint32_t)iv.mag;
                return CONV_OK;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                if (iv.neg && iv.mag != 0)
                        return CONV_RANGE;
                *(uint64_t *)dst = iv.mag;
                return CONV_OK;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                lo = INT64_MIN;
                hi = INT64_MAX;
                break;
        default: /* 32-bit signed and enums */
                lo = INT32_MIN;
                hi = INT32_MAX;
                break;
        }
        if (iv.neg) {
                if (iv.mag > (uint64_t)(-(lo + 1)) + 1)
                        return CONV_RANGE;
                sv = iv.mag == 0 ? 0 : -(int64_t)(iv.mag - 1) - 1;
        } else {
                if (iv.mag > hi)
                        return CONV_RANGE;
                sv = (int64_t)iv.mag;
        }
        if (is_64bit_int(t))
                *(int64_t *)dst = sv;
        else if (t == PROTOBUF_C_TYPE_ENUM)
                *(int *)dst = (int)sv;
        else
                *(int32_t *)dst = (int32_t)sv;
        return CONV_OK;
}

/* Parses "NaN", "Infinity", "-Infinity" or a plain decimal number (no hex, no "inf"). */
static enum conv parse_float_text(const char *s, size_t n, double *out)
{
        char tmp[64];
        char *end = NULL;

        if (n == 3 && memcmp(s, "NaN", 3) == 0) {
                *out = NAN;
                return CONV_OK;
        }
        if (n == 8 && memcmp(s, "Infinity", 8) == 0) {
                *out = INFINITY;
                return CONV_OK;
        }
        if (n == 9 && memcmp(s, "-Infinity", 9) == 0) {
                *out = -INFINITY;
                return CONV_OK;
        }
        if (n == 0 || n >= sizeof(tmp))
                return CONV_SYNTAX;
        for (size_t i = 0; i < n; i++) {
                if (strchr("0123456789+-.eE", s[i]) == NULL || s[i] == '\0')
                        return CONV_SYNTAX;
        }
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        *out = strtod(tmp, &end);
        if (end != tmp + n)
                return CONV_SYNTAX;
        if (!isfinite(*out))
                return CONV_RANGE;
        return CONV_OK;
}

/* Stores a double into a float or double slot; floats must be in range. */
static enum conv store_float(ProtobufCType t, double d, void *dst)
{
        if (t == PROTOBUF_C_TYPE_DOUBLE) {
                *(double *)dst = d;
                return CONV_OK;
        }
        if (isfinite(d) && fabs(d) >= FLOAT_OVERFLOW)
                return CONV_RANGE;
        *(float *)dst = (float)d;
        return CONV_OK;
}

static int b64_value(unsigned char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+' || c == '-')
                return 62;
        if (c == '/' || c == '_')
                return 63;
        return -1;
}

/* Decodes standard or URL-safe base64, padding optional, into the arena; `out` is only written
 * on success. */
static bool b64_decode(const char *s, size_t n, struct ej_arena *arena, ProtobufCBinaryData *out)
{
        size_t m = n, pad = 0, o = 0, len;
        uint32_t acc = 0;
        unsigned bits = 0;
        uint8_t *p = NULL;

        while (m > 0 && s[m - 1] == '=' && pad < 2) {
                m--;
                pad++;
        }
        if ((pad > 0 && n % 4 != 0) || m % 4 == 1)
                return false;
        len = m / 4 * 3 + (m % 4 == 0 ? 0 : m % 4 - 1);
        if (len > 0)
                p = ej_arena_alloc(arena, len);
        for (size_t i = 0; i < m; i++) {
                int v = b64_value((unsigned char)s[i]);

                if (v < 0)
                        return false;
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        p[o++] = (uint8_t)(acc >> bits);
                }
        }
        out->len = len;
        out->data = p;
        return true;
}

/* Writes the decimal form of an unsigned value at the end of `end` and returns its start. */
static char *fmt_u64(uint64_t v, char *end)
{
        do {
                *--end = (char)('0' + v % 10);
                v /= 10;
        } while (v != 0);
        return end;
}

static char *fmt_i64(int64_t v, char *end)
{
        uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        char *p = fmt_u64(mag, end);

        if (v < 0)
                *--p = '-';
        return p;
}

/*
 * Converts `s` (n bytes) to the scalar or enum field `f`, storing it in the slot `dst`.
 * `canonical` (map keys) demands the one spelling the encoder would write, so that two keys of
 * a JSON object never name the same entry. Returns EJ_OK or EJ_ERR_INVALID naming `path`.
 */
static enum ej_status text_to_slot(const ProtobufCFieldDescriptor *f, const char *s, size_t n,
                                   bool canonical, void *dst, struct ej_arena *arena,
                                   const char *path, struct ej_err *err)
{
        struct intval iv;
        enum conv c = CONV_SYNTAX;
        double d;

        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING:
                /* One pass on the common path: ej_utf8_valid also refuses NUL; the second look
                 * only picks the message. */
                if (!ej_utf8_valid(s, n)) {
                        if (memchr(s, '\0', n) != NULL)
                                return ej_err_set(err, EJ_ERR_INVALID, path,
                                                  "field \"%s\" must not contain a NUL character",
                                                  path);
                        return ej_err_set(err, EJ_ERR_INVALID, path,
                                          "field \"%s\": not valid UTF-8 text", path);
                }
                *(char **)dst = ej_arena_strndup(arena, s, n);
                return EJ_OK;
        case PROTOBUF_C_TYPE_BYTES:
                if (!b64_decode(s, n, arena, dst))
                        return ej_err_set(err, EJ_ERR_INVALID, path,
                                          "field \"%s\": expected base64 data", path);
                return EJ_OK;
        case PROTOBUF_C_TYPE_BOOL:
                if ((n == 4 && memcmp(s, "true", 4) == 0) || (!canonical && n == 1 && s[0] == '1'))
                        *(protobuf_c_boolean *)dst = 1;
                else if ((n == 5 && memcmp(s, "false", 5) == 0) ||
                         (!canonical && n == 1 && s[0] == '0'))
                        *(protobuf_c_boolean *)dst = 0;
                else
                        return ej_err_set(err, EJ_ERR_INVALID, path,
                                          "field \"%s\": expected true or false", path);
                return EJ_OK;
        case PROTOBUF_C_TYPE_FLOAT:
        case PROTOBUF_C_TYPE_DOUBLE:
                c = parse_float_text(s, n, &d);
                if (c == CONV_OK)
                        c = store_float(f->type, d, dst);
                break;
        case PROTOBUF_C_TYPE_MESSAGE:
                return ej_err_set(err, EJ_ERR_INVALID, path,
                                  "field \"%s\": a message cannot be set from text", path);
        case PROTOBUF_C_TYPE_ENUM: {
                const ProtobufCEnumValue *ev = NULL;
                char name[128];

                if (n < sizeof(name)) {
                        memcpy(name, s, n);
                        name[n] = '\0';
                        if (memchr(s, '\0', n) == NULL)
                                ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor,
                                                                                  name);
                }
                if (ev != NULL) {
                        *(int *)dst = ev->value;
                        return EJ_OK;
                }
                c = parse_int_text(s, n, &iv);
                if (c == CONV_OK)
                        c = store_int(f->type, iv, dst);
                if (c == CONV_SYNTAX)
                        return ej_err_set(err, EJ_ERR_INVALID, path,
                                          "field \"%s\": unknown value \"%.*s\" of enum %s", path,
                                          (int)(n > 64 ? 64 : n), s,
                                          ((const ProtobufCEnumDescriptor *)f->descriptor)->name);
                break;
        }
        default:
                c = parse_int_text(s, n, &iv);
                if (c == CONV_OK && canonical) {
                        char tmp[24];
                        char *p = fmt_u64(iv.mag, tmp + sizeof(tmp));

                        if (iv.neg)
                                *--p = '-';
                        /* "01" or "-0" would let two keys of one object name the same entry. */
                        if ((iv.neg && iv.mag == 0) || (size_t)(tmp + sizeof(tmp) - p) != n ||
                            memcmp(p, s, n) != 0)
                                c = CONV_SYNTAX;
                }
                if (c == CONV_OK)
                        c = store_int(f->type, iv, dst);
                break;
        }
        if (c == CONV_RANGE)
                return ej_err_set(err, EJ_ERR_INVALID, path, "field \"%s\": value out of range",
                                  path);
        if (c != CONV_OK)
                return ej_err_set(err, EJ_ERR_INVALID, path, "field \"%s\": expected %s", path,
                                  type_expect(f->type));
        return EJ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Decoding
 */

struct dec {
        struct ej_arena *arena;
        struct ej_err *err;
        char path[PBJSON_PATH_MAX]; /* lowerCamelCase path of the value being decoded */
        size_t path_n;
};

/* Appends to the path (truncating when full) and returns the length to restore. */
static size_t path_push(struct dec *d, const char *sep, const char *s, size_t n)
{
        size_t old = d->path_n;
        size_t room = sizeof(d->path) - 1 - d->path_n;
        size_t k = strlen(sep);

        if (d->path_n == 0 && sep[0] == '.')
                k = 0;
        if (k > room)
                k = room;
        memcpy(d->path + d->path_n, sep, k);
        d->path_n += k;
        room -= k;
        if (n > room)
                n = room;
        memcpy(d->path + d->path_n, s, n);
        d->path_n += n;
        d->path[d->path_n] = '\0';
        return old;
}

static size_t path_push_field(struct dec *d, const char *proto_name)
{
        char name[PBJSON_PATH_MAX];
        size_t len = strlen(proto_name);

        if (len >= sizeof(name))
                len = sizeof(name) - 1;
        memcpy(name, proto_name, len);
        name[len] = '\0';
        len = json_name(name, name);
        return path_push(d, ".", name, len);
}

static size_t path_push_index(struct dec *d, size_t i)
{
        char tmp[24];
        size_t old = path_push(d, "[", "", 0);
        const char *p = fmt_u64(i, tmp + sizeof(tmp) - 1);

        tmp[sizeof(tmp) - 1] = ']';
        path_push(d, "", p, (size_t)(tmp + sizeof(tmp) - p));
        return old;
}

static void path_pop(struct dec *d, size_t old)
{
        d->path_n = old;
        d->path[old] = '\0';
}

static enum ej_status type_error(struct dec *d, const ProtobufCFieldDescriptor *f)
{
        return ej_err_set(d->err, EJ_ERR_INVALID, d->path, "field \"%s\": expected %s", d->path,
                          type_expect(f->type));
}

static enum ej_status decode_message(struct dec *d, const ProtobufCMessageDescriptor *desc,
                                     json_t *obj, int depth, ProtobufCMessage **out);

/* Decodes one non-null JSON value into the slot `dst` of field `f` (one element for repeated
 * fields). */
static enum ej_status decode_value(struct dec *d, const ProtobufCFieldDescriptor *f, json_t *v,
                                   void *dst, int depth)
{
        struct intval iv;
        enum conv c;

        switch (f->type) {
        case PROTOBUF_C_TYPE_MESSAGE:
                if (!json_is_object(v))
                        return type_error(d, f);
                return decode_message(d, f->descriptor, v, depth + 1, (ProtobufCMessage **)dst);
        case PROTOBUF_C_TYPE_STRING:
                /* jansson has checked the UTF-8; a NUL (parsed so that the field can be named)
                 * is refused here, as the C strings of the message cannot hold it. */
                if (!json_is_string(v))
                        return type_error(d, f);
                if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
                        return ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                          "field \"%s\" must not contain a NUL character", d->path);
                *(char **)dst =
                    ej_arena_strndup(d->arena, json_string_value(v), json_string_length(v));
                return EJ_OK;
        case PROTOBUF_C_TYPE_BOOL:
                if (!json_is_boolean(v))
                        return type_error(d, f);
                *(protobuf_c_boolean *)dst = json_is_true(v);
                return EJ_OK;
        case PROTOBUF_C_TYPE_BYTES:
        case PROTOBUF_C_TYPE_ENUM:
                if (json_is_integer(v) && f->type == PROTOBUF_C_TYPE_ENUM)
                        break;
                if (!json_is_string(v))
                        return type_error(d, f);
                return text_to_slot(f, json_string_value(v), json_string_length(v), false, dst,
                                    d->arena, d->path, d->err);
        case PROTOBUF_C_TYPE_FLOAT:
        case PROTOBUF_C_TYPE_DOUBLE:
                if (json_is_string(v))
                        return text_to_slot(f, json_string_value(v), json_string_length(v), false,
                                            dst, d->arena, d->path, d->err);
                if (!json_is_number(v))
                        return type_error(d, f);
                if (store_float(f->type, json_number_value(v), dst) != CONV_OK)
                        return ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                          "field \"%s\": value out of range", d->path);
                return EJ_OK;
        default:
                if (json_is_string(v))
                        return text_to_slot(f, json_string_value(v), json_string_length(v), false,
                                            dst, d->arena, d->path, d->err);
                break;
        }
        /* An integer field (or an enum given by number) holding a JSON number. */
        if (json_is_integer(v)) {
                json_int_t i = json_integer_value(v);

                iv.neg = i < 0;
                iv.mag = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
                c = CONV_OK;
        } else if (json_is_real(v)) {
                c = intval_from_double(json_real_value(v), &iv);
        } else {
                return type_error(d, f);
        }
        if (c == CONV_OK)
                c = store_int(f->type, iv, dst);
        if (c == CONV_FRACTION)
                return ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                  "field \"%s\": expected an integer, not a fraction", d->path);
        if (c != CONV_OK)
                return ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                  "field \"%s\": value out of range", d->path);
        return EJ_OK;
}

static enum ej_status decode_repeated(struct dec *d, const ProtobufCFieldDescriptor *f, json_t *arr,
                                      char *base, int depth)
{
        size_t size = elem_size(f->type);
        size_t n = json_array_size(arr);
        char *elems = NULL;
        enum ej_status st = EJ_OK;

        if (!json_is_array(arr))
                return ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                  "field \"%s\": expected an array", d->path);
        if (n > 0)
                elems = ej_arena_calloc(d->arena, n * size);
        for (size_t i = 0; i < n && st == EJ_OK; i++) {
                size_t old = path_push_index(d, i);
                json_t *v = json_array_get(arr, i);

                if (json_is_null(v))
                        st = ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                        "field \"%s\": null is not allowed in an array", d->path);
                else
                        st = decode_value(d, f, v, elems + i * size, depth);
                path_pop(d, old);
        }
        if (st == EJ_OK) {
                *(size_t *)(base + f->quantifier_offset) = n;
                *(char **)(base + f->offset) = elems;
        }
        return st;
}

static enum ej_status decode_map(struct dec *d, const ProtobufCFieldDescriptor *f, json_t *obj,
                                 char *base, int depth)
{
        const ProtobufCMessageDescriptor *md = f->descriptor;
        const ProtobufCFieldDescriptor *kf = &md->fields[0];
        const ProtobufCFieldDescriptor *vf = &md->fields[1];
        size_t n = json_object_size(obj), i = 0;
        ProtobufCMessage **entries = NULL;
        enum ej_status st = EJ_OK;
        const char *key;
        json_t *v;

        if (!json_is_object(obj))
                return ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                  "field \"%s\": expected an object (map)", d->path);
        if (depth + 1 > PBJSON_MAX_DEPTH)
                return ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                  "field \"%s\": nesting deeper than %d", d->path,
                                  PBJSON_MAX_DEPTH);
        if (n > 0)
                entries = ej_arena_alloc(d->arena, n * sizeof(*entries));
        json_object_foreach(obj, key, v)
        {
                size_t klen = strlen(key);
                size_t old = path_push(d, "[", key, klen);
                ProtobufCMessage *e = ej_arena_alloc(d->arena, md->sizeof_message);

                path_push(d, "", "]", 1);
                protobuf_c_message_init(md, e);
                st = text_to_slot(kf, key, klen, true, (char *)e + kf->offset, d->arena, d->path,
                                  d->err);
                if (st == EJ_OK && json_is_null(v))
                        st =
                            ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                       "field \"%s\": null is not allowed as a map value", d->path);
                if (st == EJ_OK)
                        st = decode_value(d, vf, v, (char *)e + vf->offset, depth + 1);
                path_pop(d, old);
                if (st != EJ_OK)
                        break;
                entries[i++] = e;
        }
        if (st == EJ_OK) {
                *(size_t *)(base + f->quantifier_offset) = i;
                *(ProtobufCMessage ***)(base + f->offset) = entries;
        }
        return st;
}

/* Marks in decode_message's per-field state. */
enum { FIELD_SEEN = 1, FIELD_SET = 2 };

static enum ej_status decode_field(struct dec *d, const ProtobufCFieldDescriptor *f, json_t *v,
                                   char *base, int depth)
{
        enum ej_status st;
        uint32_t *oneof_case = NULL;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                if (is_map_field(f))
                        return decode_map(d, f, v, base, depth);
                return decode_repeated(d, f, v, base, depth);
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                oneof_case = (uint32_t *)(base + f->quantifier_offset);
                if (*oneof_case != 0 && *oneof_case != f->id)
                        return ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                          "field \"%s\": another field of the same oneof is "
                                          "already set",
                                          d->path);
        }
        st = decode_value(d, f, v, base + f->offset, depth);
        if (st != EJ_OK)
                return st;
        if (oneof_case != NULL)
                *oneof_case = f->id;
        else if (has_flag(f))
                *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
        return EJ_OK;
}

static enum ej_status decode_message(struct dec *d, const ProtobufCMessageDescriptor *desc,
                                     json_t *obj, int depth, ProtobufCMessage **out)
{
        ProtobufCMessage *m;
        unsigned char *marks = NULL;
        enum ej_status st = EJ_OK;
        const char *key;
        json_t *v;

        if (depth > PBJSON_MAX_DEPTH)
                return ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                  "field \"%s\": nesting deeper than %d", d->path,
                                  PBJSON_MAX_DEPTH);
        m = ej_arena_alloc(d->arena, desc->sizeof_message);
        protobuf_c_message_init(desc, m);
        if (desc->n_fields > 0)
                marks = ej_arena_calloc(d->arena, desc->n_fields);
        json_object_foreach(obj, key, v)
        {
                size_t klen = strlen(key);
                const ProtobufCFieldDescriptor *f = find_field(desc, key, klen);
                size_t old;
                unsigned idx;

                if (f == NULL) {
                        old = path_push(d, ".", key, klen);
                        st = ej_err_set(d->err, EJ_ERR_INVALID, d->path, "unknown field \"%s\"",
                                        d->path);
                        path_pop(d, old);
                        break;
                }
                old = path_push_field(d, f->name);
                idx = (unsigned)(f - desc->fields);
                if (marks[idx] & FIELD_SEEN) {
                        st = ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                        "field \"%s\" given twice (JSON and proto names)", d->path);
                } else {
                        marks[idx] |= FIELD_SEEN;
                        /* null means "the default": the field stays as message_init left it. */
                        if (!json_is_null(v)) {
                                st = decode_field(d, f, v, (char *)m, depth);
                                marks[idx] |= FIELD_SET;
                        }
                }
                path_pop(d, old);
                if (st != EJ_OK)
                        break;
        }
        for (unsigned i = 0; st == EJ_OK && i < desc->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &desc->fields[i];

                if (f->label == PROTOBUF_C_LABEL_REQUIRED && !(marks[i] & FIELD_SET)) {
                        size_t old = path_push_field(d, f->name);

                        st = ej_err_set(d->err, EJ_ERR_INVALID, d->path,
                                        "missing required field \"%s\"", d->path);
                        path_pop(d, old);
                }
        }
        if (st == EJ_OK)
                *out = m;
        return st;
}

/* A sentence for people telling why jansson refused a document; static storage. */
static const char *syntax_reason(const json_error_t *jerr)
{
        /* jansson's own texts name its flags and internals (JSON_ALLOW_NUL, "'[' or '{'
         * expected near end of file"); the client gets a sentence of ours for each code. */
        switch (json_error_code(jerr)) {
        case json_error_out_of_memory:
                return "the document is too large to read";
        case json_error_stack_overflow:
                return "the document is nested too deeply";
        case json_error_invalid_utf8:
                return "the text is not valid UTF-8";
        case json_error_premature_end_of_input:
                return "the document ends too early";
        case json_error_end_of_input_expected:
                return "there is more text after the JSON value";
        case json_error_null_character:
                return "a string must not contain a NUL character";
        case json_error_null_byte_in_key:
                return "a field name must not contain a NUL character";
        case json_error_duplicate_key:
                return "a field is given twice";
        case json_error_numeric_overflow:
                return "a number is too large";
        case json_error_invalid_syntax:
        case json_error_invalid_format:
        default:
                return "this is not valid JSON syntax";
        }
}

enum ej_status ej_pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t n,
                                struct ej_arena *arena, ProtobufCMessage **out, struct ej_err *err)
{
        struct dec d = {.arena = arena, .err = err, .path = "", .path_n = 0};
        json_t *root = NULL;
        json_error_t jerr;
        enum ej_status st;

        *out = NULL;
        if (n == 0) {
                ProtobufCMessage *m = ej_arena_alloc(arena, desc->sizeof_message);

                protobuf_c_message_init(desc, m);
                *out = m;
                return EJ_OK;
        }
        /* Duplicate keys are refused: which one would win is not defined by JSON. */
        /* NUL characters are let through the parser so that the field holding one is named. */
        root =
            json_loadb(json, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (root == NULL)
                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                  "malformed JSON at line %d, column %d: %s", jerr.line,
                                  jerr.column, syntax_reason(&jerr));
        if (!json_is_object(root)) {
                st = ej_err_set(err, EJ_ERR_INVALID, NULL, "the body must be a JSON object");
                goto out_decref;
        }
        st = decode_message(&d, desc, root, 1, out);
out_decref:
        json_decref(root);
        return st;
}

enum ej_status ej_pbjson_set_field(ProtobufCMessage *msg, const char *name, struct ej_str value,
                                   struct ej_arena *arena, struct ej_err *err)
{
        const ProtobufCFieldDescriptor *f = find_field(msg->descriptor, name, strlen(name));
        char path[64];
        char *base = (char *)msg;
        enum ej_status st;

        if (f == NULL)
                return ej_err_set(err, EJ_ERR_NOT_FOUND, name, "unknown field \"%s\"", name);
        if (strlen(f->name) < sizeof(path))
                json_name(f->name, path);
        else
                snprintf(path, sizeof(path), "%s", name);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
                return ej_err_set(err, EJ_ERR_INVALID, path,
                                  "field \"%s\": a message cannot be set from text", path);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                size_t size = elem_size(f->type);
                size_t *count = (size_t *)(base + f->quantifier_offset);
                char **elems = (char **)(base + f->offset);
                char *grown = ej_arena_calloc(arena, (*count + 1) * size);

                st = text_to_slot(f, value.p, value.n, false, grown + *count * size, arena, path,
                                  err);
                if (st == EJ_OK) {
                        if (*count > 0)
                                memcpy(grown, *elems, *count * size);
                        *elems = grown;
                        (*count)++;
                }
                return st;
        }
        st = text_to_slot(f, value.p, value.n, false, base + f->offset, arena, path, err);
        if (st != EJ_OK)
                return st;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
                *(uint32_t *)(base + f->quantifier_offset) = f->id;
        else if (has_flag(f))
                *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
        return EJ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Encoding
 */

/* Room for n more bytes at the end of b; buf_commit then accounts for what was written. */
static char *buf_room(struct ej_buf *b, size_t n)
{
        ej_buf_reserve(b, n);
        return b->p + b->n;
}

static void buf_commit(struct ej_buf *b, size_t n)
{
        b->n += n;
        b->p[b->n] = '\0';
}

/* Writes `"jsonName":`, preceded by a comma unless it is the object's first member. */
static void write_key(struct ej_buf *b, const char *proto_name, bool first)
{
        size_t len = strlen(proto_name);
        char *p = buf_room(b, len + 4);
        size_t k = 0;

        if (!first)
                p[k++] = ',';
        p[k++] = '"';
        k += json_name(proto_name, p + k);
        p[k++] = '"';
        p[k++] = ':';
        buf_commit(b, k);
}

/* Shortest "%.*g" form that reads back as the same value. */
static void write_double(struct ej_buf *b, double v, bool is_float)
{
        char tmp[40];
        int n = 0;

        if (isnan(v)) {
                ej_buf_append(b, "\"NaN\"", 5);
                return;
        }
        if (isinf(v)) {
                if (v > 0)
                        ej_buf_append(b, "\"Infinity\"", 10);
                else
                        ej_buf_append(b, "\"-Infinity\"", 11);
                return;
        }
        /* JSON parsers read "-0" as the integer 0; "-0.0" keeps the sign. */
        if (v == 0 && signbit(v)) {
                ej_buf_append(b, "-0.0", 4);
                return;
        }
        for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
                double back;

                n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
                back = strtod(tmp, NULL);
                if (is_float ? fabs(back) < FLOAT_OVERFLOW && (float)back == (float)v : back == v)
                        break;
        }
        if (n > 0 && (size_t)n < sizeof(tmp))
                ej_buf_append(b, tmp, (size_t)n);
        else
                ej_buf_append_char(b, '0');
}

static void write_base64(struct ej_buf *b, const uint8_t *s, size_t n)
{
        static const char alphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *p = buf_room(b, (n + 2) / 3 * 4 + 2);
        size_t k = 0, i = 0;

        p[k++] = '"';
        for (; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

                p[k++] = alphabet[v >> 18];
                p[k++] = alphabet[(v >> 12) & 63];
                p[k++] = alphabet[(v >> 6) & 63];
                p[k++] = alphabet[v & 63];
        }
        if (n - i == 1) {
                uint32_t v = (uint32_t)s[i] << 16;

                p[k++] = alphabet[v >> 18];
                p[k++] = alphabet[(v >> 12) & 63];
                p[k++] = '=';
                p[k++] = '=';
        } else if (n - i == 2) {
                uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;

                p[k++] = alphabet[v >> 18];
                p[k++] = alphabet[(v >> 12) & 63];
                p[k++] = alphabet[(v >> 6) & 63];
                p[k++] = '=';
        }
        p[k++] = '"';
        buf_commit(b, k);
}

/* Writes a JSON string. Most strings in replies are plain printable ASCII: those are copied in
 * one go; anything else goes through ej_buf_append_json_str, which gives the same output. */
static void write_str(struct ej_buf *b, const char *s)
{
        size_t n = 0;
        char *p;

        for (;; n++) {
                unsigned char c = (unsigned char)s[n];

                if (c == '\0')
                        break;
                if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' ||
                    c == '&') {
                        ej_buf_append_json_str(b, s, n + strlen(s + n));
                        return;
                }
        }
        p = buf_room(b, n + 2);
        p[0] = '"';
        memcpy(p + 1, s, n);
        p[n + 1] = '"';
        buf_commit(b, n + 2);
}

static void write_message(struct ej_buf *b, const ProtobufCMessage *m, unsigned flags,
                          const char *const *skip);

/* Writes the integer in slot `p`; 64-bit values are quoted per the proto3 mapping. */
static void write_int(struct ej_buf *b, ProtobufCType t, const void *p)
{
        char tmp[24];
        char *end = tmp + sizeof(tmp);
        char *s;
        bool quote = is_64bit_int(t);

        switch (t) {
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                s = fmt_u64(*(const uint32_t *)p, end);
                break;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                s = fmt_u64(*(const uint64_t *)p, end);
                break;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                s = fmt_i64(*(const int64_t *)p, end);
                break;
        case PROTOBUF_C_TYPE_ENUM:
                s = fmt_i64(*(const int *)p, end);
                break;
        default:
                s = fmt_i64(*(const int32_t *)p, end);
                break;
        }
        if (quote) {
                size_t n = (size_t)(end - s);
                char *o = buf_room(b, n + 2);

                o[0] = '"';
                memcpy(o + 1, s, n);
                o[n + 1] = '"';
                buf_commit(b, n + 2);
        } else {
                ej_buf_append(b, s, (size_t)(end - s));
        }
}

/* Writes one value of field `f` held in slot `p` (one element for repeated fields). */
static void write_value(struct ej_buf *b, const ProtobufCFieldDescriptor *f, const void *p,
                        unsigned flags)
{
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(const char *const *)p;

                write_str(b, s ? s : "");
                break;
        }
        case PROTOBUF_C_TYPE_BYTES: {
                const ProtobufCBinaryData *bd = p;

                write_base64(b, bd->data, bd->data ? bd->len : 0);
                break;
        }
        case PROTOBUF_C_TYPE_BOOL:
                if (*(const protobuf_c_boolean *)p)
                        ej_buf_append(b, "true", 4);
                else
                        ej_buf_append(b, "false", 5);
                break;
        case PROTOBUF_C_TYPE_FLOAT:
                write_double(b, *(const float *)p, true);
                break;
        case PROTOBUF_C_TYPE_DOUBLE:
                write_double(b, *(const double *)p, false);
                break;
        case PROTOBUF_C_TYPE_ENUM: {
                const ProtobufCEnumValue *ev =
                    protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);

                /* A value this build does not know (proto3 enums are open) stays a number. */
                if (ev != NULL)
                        write_str(b, ev->name);
                else
                        write_int(b, f->type, p);
                break;
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;

                if (sub == NULL)
                        ej_buf_append(b, "null", 4);
                else
                        write_message(b, sub, flags, NULL);
                break;
        }
        default:
                write_int(b, f->type, p);
                break;
        }
}

/* Writes a map key: JSON object keys are strings, so numbers and bools are quoted. */
static void write_map_key(struct ej_buf *b, const ProtobufCFieldDescriptor *kf, const void *p)
{
        if (kf->type == PROTOBUF_C_TYPE_STRING) {
                write_value(b, kf, p, 0);
        } else if (kf->type == PROTOBUF_C_TYPE_BOOL || is_64bit_int(kf->type)) {
                /* bools need quotes added; 64-bit integers already come quoted. */
                if (kf->type == PROTOBUF_C_TYPE_BOOL)
                        ej_buf_append_char(b, '"');
                write_value(b, kf, p, 0);
                if (kf->type == PROTOBUF_C_TYPE_BOOL)
                        ej_buf_append_char(b, '"');
        } else {
                ej_buf_append_char(b, '"');
                write_int(b, kf->type, p);
                ej_buf_append_char(b, '"');
        }
}

static void write_repeated(struct ej_buf *b, const ProtobufCFieldDescriptor *f, const char *base,
                           unsigned flags)
{
        size_t n = *(const size_t *)(base + f->quantifier_offset);
        const char *elems = *(const char *const *)(base + f->offset);
        size_t size = elem_size(f->type);

        if (is_map_field(f)) {
                const ProtobufCMessageDescriptor *md = f->descriptor;
                const ProtobufCMessage *const *entries = (const ProtobufCMessage *const *)elems;

                ej_buf_append_char(b, '{');
                for (size_t i = 0; i < n; i++) {
                        const char *e = (const char *)entries[i];

                        if (i > 0)
                                ej_buf_append_char(b, ',');
                        write_map_key(b, &md->fields[0], e + md->fields[0].offset);
                        ej_buf_append_char(b, ':');
                        write_value(b, &md->fields[1], e + md->fields[1].offset, flags);
                }
                ej_buf_append_char(b, '}');
                return;
        }
        ej_buf_append_char(b, '[');
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        ej_buf_append_char(b, ',');
                write_value(b, f, elems + i * size, flags);
        }
        ej_buf_append_char(b, ']');
}

/* True when a proto3 field (no presence) holds its default value. */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
        switch (f->type) {
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(const char *const *)p;

                return s == NULL || s[0] == '\0';
        }
        case PROTOBUF_C_TYPE_BYTES:
                return ((const ProtobufCBinaryData *)p)->len == 0;
        case PROTOBUF_C_TYPE_MESSAGE:
                return *(const ProtobufCMessage *const *)p == NULL;
        case PROTOBUF_C_TYPE_BOOL:
                return *(const protobuf_c_boolean *)p == 0;
        case PROTOBUF_C_TYPE_ENUM:
                return *(const int *)p == 0;
        default:
                /* Compares bits, so -0.0 counts as set, as it reads back differently. */
                if (elem_size(f->type) == 8)
                        return *(const uint64_t *)p == 0;
                return *(const uint32_t *)p == 0;
        }
}

/* Whether a field with presence (proto2 optional) is set. */
static bool optional_is_set(const ProtobufCFieldDescriptor *f, const char *base)
{
        const void *p = base + f->offset;

        if (f->type == PROTOBUF_C_TYPE_STRING) {
                const char *s = *(const char *const *)p;

                return s != NULL && s != (const char *)f->default_value;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
                return *(const ProtobufCMessage *const *)p != NULL;
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
}

static bool skipped(const char *name, const char *const *skip)
{
        for (; skip != NULL && *skip != NULL; skip++) {
                if (strcmp(*skip, name) == 0)
                        return true;
        }
        return false;
}

static void write_message(struct ej_buf *b, const ProtobufCMessage *m, unsigned flags,
                          const char *const *skip)
{
        const ProtobufCMessageDescriptor *desc = m->descriptor;
        const char *base = (const char *)m;
        bool defaults = (flags & EJ_PBJSON_EMIT_DEFAULTS) != 0;
        bool first = true;

        ej_buf_append_char(b, '{');
        for (unsigned i = 0; i < desc->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &desc->fields[i];
                const void *p = base + f->offset;

                if (skip != NULL && skipped(f->name, skip))
                        continue;
                if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                        /* Only the member in use, whatever its value; never the others. */
                        if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                                continue;
                } else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        if (!defaults && *(const size_t *)(base + f->quantifier_offset) == 0)
                                continue;
                        write_key(b, f->name, first);
                        first = false;
                        write_repeated(b, f, base, flags);
                        continue;
                } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
                        if (!optional_is_set(f, base)) {
                                /* Unset is not the default value: null keeps that apart. */
                                if (defaults) {
                                        write_key(b, f->name, first);
                                        first = false;
                                        ej_buf_append(b, "null", 4);
                                }
                                continue;
                        }
                } else if (f->label == PROTOBUF_C_LABEL_NONE) {
                        if (!defaults && is_default(f, p))
                                continue;
                }
                write_key(b, f->name, first);
                first = false;
                write_value(b, f, p, flags);
        }
        ej_buf_append_char(b, '}');
}

void ej_pbjson_encode(const ProtobufCMessage *msg, unsigned flags, const char *const *skip,
                      struct ej_buf *out)
{
        write_message(out, msg, flags, skip);
}

size_t ej_pbjson_json_name(const char *proto, char *out)
{
        return json_name(proto, out);
}

bool ej_pbjson_is_map(const ProtobufCFieldDescriptor *f)
{
        return is_map_field(f);
}
