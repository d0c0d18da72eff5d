/*
 * fuzz_proto.c: every protobuf message a service reads off the bus, driven by the descriptors.
 *
 * The messages are the inputs of every method of every `service` block (Users, Files, Devmail,
 * and the Gdpr block every service serves), plus what a service reads besides its methods'
 * requests: the upload frames on an upload's chunk subject, the event envelope and the
 * user.erased payload. The first input byte picks the message; the second byte's low bit
 * picks the decoder, the rest is the input:
 *
 *   0  the protobuf wire form, unpacked as the service runtime does it (into an arena) and as
 *      the event consumers do it (malloc, then free_unpacked). What unpacks must pass
 *      protobuf_c_message_check and pack to bytes that unpack again to the same bytes (but see
 *      has_field_zero). The
 *      runtime's text check (pbtext.h) refuses it with a named field, or it is text and its
 *      JSON reads back, with the gateway's decoder, to the same JSON.
 *   1  JSON, decoded by the gateway's transcoder into that message (the route's request). What
 *      the gateway accepts passes the runtime's text check and packs to bytes the service can
 *      unpack, with the same content.
 */
#include <string.h>

#include "common.pb-c.h"
#include "devmail.pb-c.h"
#include "files.pb-c.h"
#include "fuzz.h"
#include "mem.h"
#include "pbjson.h"
#include "pbtext.h"
#include "str.h"
#include "users.pb-c.h"

#define MAX_MSGS 256

static const ProtobufCServiceDescriptor *const services[] = {
    &ej__users__users__descriptor,
    &ej__files__files__descriptor,
    &ej__devmail__devmail__descriptor,
    &ej__common__gdpr__descriptor,
};

/* Read by a service but not the input of a method. */
static const ProtobufCMessageDescriptor *const also_read[] = {
    &ej__files__upload_frame__descriptor,
    &ej__common__event__descriptor,
    &ej__users__user_erased__descriptor,
};

static const ProtobufCMessageDescriptor *msgs[MAX_MSGS];
static size_t n_msgs;

static void add_msg(const ProtobufCMessageDescriptor *d)
{
        for (size_t i = 0; i < n_msgs; i++)
                if (msgs[i] == d)
                        return;
        FUZZ_CHECK(n_msgs < MAX_MSGS);
        msgs[n_msgs++] = d;
}

static void list_msgs(void)
{
        for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++)
                for (unsigned m = 0; m < services[s]->n_methods; m++)
                        add_msg(services[s]->methods[m].input);
        for (size_t i = 0; i < sizeof(also_read) / sizeof(also_read[0]); i++)
                add_msg(also_read[i]);
}

/* Packs `m` into a new heap buffer of *n bytes. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
        uint8_t *out;

        FUZZ_CHECK(protobuf_c_message_check(m));
        *n = protobuf_c_message_get_packed_size(m);
        out = xmalloc(*n ? *n : 1);
        FUZZ_CHECK(protobuf_c_message_pack(m, out) == *n);
        return out;
}

/* True when `m` or a message inside it kept an unknown field numbered 0. protobuf-c takes a
 * field number 0 written in a long varint ("80 00") as an unknown field and packs it back in
 * the short form, which it then refuses; no handler reads unknown fields, and nothing repacks a
 * request, so such a message is only kept out of the repacking property. */
static bool has_field_zero(const ProtobufCMessage *m)
{
        const ProtobufCMessageDescriptor *d = m->descriptor;
        const char *base = (const char *)m;

        for (unsigned i = 0; i < m->n_unknown_fields; i++)
                if (m->unknown_fields[i].tag == 0)
                        return true;
        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                const void *slot = base + f->offset;

                if (f->type != PROTOBUF_C_TYPE_MESSAGE)
                        continue;
                if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    *(const uint32_t *)(const void *)(base + f->quantifier_offset) != f->id)
                        continue;
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        size_t n = *(const size_t *)(const void *)(base + f->quantifier_offset);
                        ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)slot;

                        for (size_t k = 0; k < n; k++)
                                if (has_field_zero(items[k]))
                                        return true;
                } else if (*(ProtobufCMessage *const *)slot != NULL &&
                           has_field_zero(*(ProtobufCMessage *const *)slot)) {
                        return true;
                }
        }
        return false;
}

/* `wire` (a packing of a valid message) unpacks and packs again to the same bytes. */
static void repack_stable(struct ej_arena *a, const ProtobufCMessageDescriptor *d,
                          const uint8_t *wire, size_t n)
{
        ProtobufCAllocator alloc = ej_arena_pb_allocator(a);
        ProtobufCMessage *m = protobuf_c_message_unpack(d, &alloc, n, wire);
        uint8_t *again;
        size_t again_n;

        FUZZ_CHECK(m != NULL);
        again = pack(m, &again_n);
        FUZZ_CHECK(again_n == n && memcmp(again, wire, n) == 0);
        free(again);
}

/* The JSON of `m` reads back, with the gateway's decoder, to the same JSON. */
static void json_stable(struct ej_arena *a, const ProtobufCMessage *m)
{
        struct ej_buf first = EJ_BUF_INIT, again = EJ_BUF_INIT;
        ProtobufCMessage *back = NULL;
        struct ej_err err;

        ej_pbjson_encode(m, 0, NULL, &first);
        if (ej_pbjson_decode(m->descriptor, first.p, first.n, a, &back, &err) != EJ_OK) {
                fprintf(stderr, "%s: the JSON does not read back (%s: %s):\n%s\n",
                        m->descriptor->name, err.field, err.msg, first.p);
                abort();
        }
        ej_pbjson_encode(back, 0, NULL, &again);
        if (strcmp(first.p, again.p) != 0) {
                fprintf(stderr, "%s: the JSON reads back differently:\n%s\n%s\n",
                        m->descriptor->name, first.p, again.p);
                abort();
        }
        ej_buf_free(&first);
        ej_buf_free(&again);
}

static void fuzz_wire(struct ej_arena *a, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                      size_t n)
{
        ProtobufCAllocator alloc = ej_arena_pb_allocator(a);
        ProtobufCMessage *m = protobuf_c_message_unpack(d, &alloc, n, p);
        ProtobufCMessage *heap = protobuf_c_message_unpack(d, NULL, n, p);
        uint8_t *wire, *heap_wire;
        size_t wire_n, heap_n;
        struct ej_err err = {0};

        /* Both allocators agree on whether the bytes are a message. */
        FUZZ_CHECK((m == NULL) == (heap == NULL));
        if (m == NULL)
                return;
        wire = pack(m, &wire_n);
        heap_wire = pack(heap, &heap_n);
        FUZZ_CHECK(heap_n == wire_n && memcmp(heap_wire, wire, wire_n) == 0);
        protobuf_c_message_free_unpacked(heap, NULL);
        free(heap_wire);
        if (!has_field_zero(m))
                repack_stable(a, d, wire, wire_n);
        /* The service runtime refuses strings that are not UTF-8 (pbtext.h); the rest is
         * text, and its JSON reads back exactly. */
        if (ej_pb_text_valid(m, &err))
                json_stable(a, m);
        else
                FUZZ_CHECK(err.status == EJ_ERR_INVALID && err.field[0] != '\0');
        free(wire);
}

static void fuzz_json(struct ej_arena *a, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                      size_t n)
{
        ProtobufCMessage *m = NULL;
        struct ej_err err;
        uint8_t *wire;
        size_t wire_n;

        if (ej_pbjson_decode(d, (const char *)p, n, a, &m, &err) != EJ_OK) {
                FUZZ_CHECK(err.msg[0] != '\0'); /* every refusal explains itself */
                return;
        }
        /* What the gateway accepts, the service runtime takes. */
        FUZZ_CHECK(ej_pb_text_valid(m, &err));
        wire = pack(m, &wire_n);
        repack_stable(a, d, wire, wire_n);
        json_stable(a, m);
        free(wire);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const ProtobufCMessageDescriptor *d;
        struct ej_arena *a;

        if (n_msgs == 0)
                list_msgs();
        if (size < 2)
                return 0;
        d = msgs[data[0] % n_msgs];
        a = ej_arena_create(0);
        if (data[1] & 1)
                fuzz_json(a, d, data + 2, size - 2);
        else
                fuzz_wire(a, d, data + 2, size - 2);
        ej_arena_destroy(a);
        return 0;
}
