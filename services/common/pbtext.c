/*
 * pbtext.c: the text of an unpacked protobuf message; see pbtext.h.
 */
#include "pbtext.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "str.h"

/* The member `f` of the message at `base` is in use: not a oneof member, or the one chosen. */
static bool in_use(const ProtobufCFieldDescriptor *f, const char *base)
{
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                return true;
        return *(const uint32_t *)(const void *)(base + f->quantifier_offset) == f->id;
}

static bool text_ok(const char *s)
{
        return s == NULL || ej_utf8_valid(s, strlen(s));
}

bool ej_pb_text_valid(const ProtobufCMessage *msg, struct ej_err *err)
{
        const ProtobufCMessageDescriptor *d = msg->descriptor;
        const char *base = (const char *)msg;

        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                const void *slot = base + f->offset;

                if ((f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) ||
                    !in_use(f, base))
                        continue;
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        size_t n = *(const size_t *)(const void *)(base + f->quantifier_offset);
                        void *const *items = *(void *const *const *)slot;

                        for (size_t k = 0; k < n; k++) {
                                if (f->type == PROTOBUF_C_TYPE_STRING
                                        ? !text_ok(items[k])
                                        : !ej_pb_text_valid(items[k], err))
                                        goto bad;
                        }
                        continue;
                }
                if (f->type == PROTOBUF_C_TYPE_STRING) {
                        if (!text_ok(*(const char *const *)slot))
                                goto bad;
                } else {
                        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)slot;

                        if (sub != NULL && !ej_pb_text_valid(sub, err))
                                return false;
                }
                continue;
        bad:
                if (f->type == PROTOBUF_C_TYPE_MESSAGE)
                        return false; /* err names the innermost field */
                ej_err_set(err, EJ_ERR_INVALID, f->name, "field \"%s\": not valid UTF-8 text",
                           f->name);
                return false;
        }
        return true;
}
