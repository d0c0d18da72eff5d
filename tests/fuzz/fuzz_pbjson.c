/*
 * fuzz_pbjson.c: libFuzzer target for the JSON -> protobuf decoder (`make fuzz`).
 *
 * Decodes arbitrary bytes as an ej.test.All (every field kind). When that succeeds, the message
 * must encode, pack with protobuf-c, and read back: decoding the encoder's output and encoding
 * again must give the same text, with and without EJ_PBJSON_EMIT_DEFAULTS. The same input is
 * also read as "name\nvalue" for ej_pbjson_set_field, whose result must encode and read back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "pbjson.h"
#include "str.h"

#include "pbjson_test.pb-c.c"
#include "pbjson_test_p2.pb-c.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes `json` and encodes the result (without flags) into `out`; false when it does not
 * decode. */
static int reencode(struct ej_arena *a, const char *json, size_t n, struct ej_buf *out)
{
        ProtobufCMessage *m = NULL;
        struct ej_err err;

        if (ej_pbjson_decode(&ej__test__all__descriptor, json, n, a, &m, &err) != EJ_OK)
                return 0;
        ej_pbjson_encode(m, 0, NULL, out);
        return 1;
}

/* Sets the field named by the input's first line to the rest of the input. */
static void fuzz_set_field(struct ej_arena *a, const uint8_t *data, size_t size)
{
        const uint8_t *nl = memchr(data, '\n', size);
        struct ej_buf first = EJ_BUF_INIT, again = EJ_BUF_INIT;
        ProtobufCMessage *m = NULL;
        struct ej_err err;
        struct ej_str value;
        char *name;

        if (nl == NULL)
                return;
        name = ej_arena_strndup(a, (const char *)data, (size_t)(nl - data));
        value.p = (const char *)nl + 1;
        value.n = size - (size_t)(nl - data) - 1;
        if (ej_pbjson_decode(&ej__test__all__descriptor, "", 0, a, &m, &err) != EJ_OK)
                abort();
        if (ej_pbjson_set_field(m, name, value, a, &err) != EJ_OK)
                return;
        ej_pbjson_encode(m, 0, NULL, &first);
        if (!reencode(a, first.p, first.n, &again) || strcmp(first.p, again.p) != 0) {
                fprintf(stderr, "set_field result reads back differently:\n%s\n%s\n", first.p,
                        again.p);
                abort();
        }
        ej_buf_free(&first);
        ej_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ej_arena *a = ej_arena_create(0);
        struct ej_buf first = EJ_BUF_INIT, again = EJ_BUF_INIT, full = EJ_BUF_INIT;
        ProtobufCMessage *m = NULL;
        struct ej_err err;
        uint8_t *wire = NULL;
        size_t wire_n;

        if (ej_pbjson_decode(&ej__test__all__descriptor, (const char *)data, size, a, &m, &err) !=
            EJ_OK) {
                if (err.msg[0] == '\0')
                        abort(); /* every failure explains itself */
                goto out;
        }
        ej_pbjson_encode(m, 0, NULL, &first);
        ej_pbjson_encode(m, EJ_PBJSON_EMIT_DEFAULTS, NULL, &full);

        /* The decoded message is well-formed for protobuf-c. */
        wire_n = protobuf_c_message_get_packed_size(m);
        wire = xmalloc(wire_n);
        if (protobuf_c_message_pack(m, wire) != wire_n)
                abort();

        if (!reencode(a, first.p, first.n, &again) || strcmp(first.p, again.p) != 0) {
                fprintf(stderr, "re-encoding differs:\n%s\n%s\n", first.p, again.p);
                abort();
        }
        ej_buf_reset(&again);
        if (!reencode(a, full.p, full.n, &again) || strcmp(first.p, again.p) != 0) {
                fprintf(stderr, "EMIT_DEFAULTS output reads back differently:\n%s\n%s\n", first.p,
                        again.p);
                abort();
        }
out:
        fuzz_set_field(a, data, size);
        free(wire);
        ej_buf_free(&first);
        ej_buf_free(&again);
        ej_buf_free(&full);
        ej_arena_destroy(a);
        return 0;
}
