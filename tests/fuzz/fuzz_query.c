/*
 * fuzz_query.c: the gateway's query binder (gw_bind_query, gateway/handlers.c) on the request
 * messages of the real route table.
 *
 * The first input byte picks a route with a request message, the rest is its query string
 * "k=v&k=v", cut and percent-decoded the way the HTTP library hands it over (a decoded NUL ends
 * the text, as it ends a C string). Each pair is bound in turn, as http.c does, until one is
 * refused. Properties: a refusal names its reason; whatever was bound leaves a message that
 * protobuf-c accepts, that packs to bytes the service unpacks to the same bytes, and whose JSON
 * the gateway's decoder reads back the same.
 */
#include <string.h>

#include "fuzz.h"
#include "handlers.h"
#include "mem.h"
#include "pbjson.h"
#include "routes.h"

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Percent-decodes s[0..n) into a new arena string. */
static char *unescape(struct ej_arena *a, const char *s, size_t n)
{
        char *out = ej_arena_alloc(a, n + 1);
        size_t o = 0;

        for (size_t i = 0; i < n; i++) {
                int hi, lo;

                if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
                    (lo = hexval(s[i + 2])) >= 0) {
                        out[o++] = (char)(hi * 16 + lo);
                        i += 2;
                } else {
                        out[o++] = s[i];
                }
        }
        out[o] = '\0';
        return out;
}

static void check_message(struct ej_arena *a, const ProtobufCMessage *m)
{
        ProtobufCAllocator alloc = ej_arena_pb_allocator(a);
        struct ej_buf first = EJ_BUF_INIT, again = EJ_BUF_INIT;
        ProtobufCMessage *back = NULL, *json_back = NULL;
        uint8_t *wire, *wire2;
        size_t n, n2;
        struct ej_err err;

        FUZZ_CHECK(protobuf_c_message_check(m));
        n = protobuf_c_message_get_packed_size(m);
        wire = xmalloc(n ? n : 1);
        FUZZ_CHECK(protobuf_c_message_pack(m, wire) == n);
        back = protobuf_c_message_unpack(m->descriptor, &alloc, n, wire);
        FUZZ_CHECK(back != NULL);
        n2 = protobuf_c_message_get_packed_size(back);
        wire2 = xmalloc(n2 ? n2 : 1);
        FUZZ_CHECK(protobuf_c_message_pack(back, wire2) == n2);
        FUZZ_CHECK(n2 == n && memcmp(wire, wire2, n) == 0);
        ej_pbjson_encode(m, 0, NULL, &first);
        FUZZ_CHECK(ej_pbjson_decode(m->descriptor, first.p, first.n, a, &json_back, &err) == EJ_OK);
        ej_pbjson_encode(json_back, 0, NULL, &again);
        FUZZ_CHECK(strcmp(first.p, again.p) == 0);
        ej_buf_free(&first);
        ej_buf_free(&again);
        free(wire);
        free(wire2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const struct gw_route *rows[512];
        static size_t n_rows;
        const char *q, *end;
        const struct gw_route *r;
        struct ej_arena *a;
        ProtobufCMessage *msg = NULL;
        struct ej_err err;

        if (n_rows == 0) {
                FUZZ_CHECK(gw_routes_resolve(&err) == EJ_OK);
                for (size_t i = 0; i < gw_routes_count && n_rows < 512; i++)
                        if (gw_routes[i].req_desc != NULL)
                                rows[n_rows++] = &gw_routes[i];
                FUZZ_CHECK(n_rows > 0);
        }
        if (size < 1)
                return 0;
        r = rows[data[0] % n_rows];
        a = ej_arena_create(0);
        FUZZ_CHECK(ej_pbjson_decode(r->req_desc, "", 0, a, &msg, &err) == EJ_OK);
        q = (const char *)data + 1;
        end = (const char *)data + size;
        while (q < end) {
                const char *amp = memchr(q, '&', (size_t)(end - q));
                const char *stop = amp ? amp : end;
                const char *eq = memchr(q, '=', (size_t)(stop - q));
                const char *key = unescape(a, q, (size_t)((eq ? eq : stop) - q));
                const char *value = eq ? unescape(a, eq + 1, (size_t)(stop - eq - 1)) : "";

                q = stop + 1;
                if (key[0] == '\0')
                        continue;
                if (gw_bind_query(msg, key, value, a, &err) != EJ_OK) {
                        FUZZ_CHECK(err.msg[0] != '\0');
                        break;
                }
        }
        check_message(a, msg);
        ej_arena_destroy(a);
        return 0;
}
