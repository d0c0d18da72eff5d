/*
 * fuzz_disposition.c: the Content-Disposition of a download (gw_disposition,
 * gateway/stream_http.c) for any stored file name.
 *
 * The first input byte's low bit picks "attachment" or "inline", the rest is the file name (up
 * to a NUL). Properties: the value is "<kind>; filename=\"<ascii>\"; filename*=UTF-8''<enc>",
 * all of it printable ASCII (nothing a header could be split or smuggled with); <ascii> holds
 * no quote, backslash, '%', ';' or '/'; <enc> holds only RFC 8187 attr-chars and %XX escapes
 * and decodes to the name exactly ("download" for an empty or over-long name), so the browser
 * saves the file under the name it was uploaded with.
 */
#include <string.h>

#include "fuzz.h"
#include "mem.h"
#include "stream_http.h"

static bool attr_char(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               (c != '\0' && strchr("!#$&+-.^_`|~", c) != NULL);
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *kind, *v, *q, *enc, *expect;
        char *name, *decoded;
        struct ej_arena *a;
        size_t kn, o = 0;

        if (size < 1)
                return 0;
        kind = (data[0] & 1) ? "inline" : "attachment";
        kn = strlen(kind);
        name = xstrndup((const char *)data + 1, size - 1);
        expect = name[0] == '\0' || strlen(name) > 1024 ? "download" : name;
        a = ej_arena_create(0);
        v = gw_disposition(a, kind, name);

        for (const char *p = v; *p; p++)
                FUZZ_CHECK(*p >= 0x20 && *p < 0x7f);
        FUZZ_CHECK(strncmp(v, kind, kn) == 0 && strncmp(v + kn, "; filename=\"", 12) == 0);
        q = v + kn + 12;
        enc = strstr(q, "\"; filename*=UTF-8''");
        FUZZ_CHECK(enc != NULL);
        FUZZ_CHECK((size_t)(enc - q) == strlen(expect));
        for (const char *p = q; p < enc; p++)
                FUZZ_CHECK(strchr("\"\\%;/", *p) == NULL);
        enc += strlen("\"; filename*=UTF-8''");
        decoded = xmalloc(strlen(enc) + 1);
        for (const char *p = enc; *p; p++) {
                if (*p == '%') {
                        int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);

                        FUZZ_CHECK(hi >= 0 && lo >= 0);
                        decoded[o++] = (char)(hi * 16 + lo);
                        p += 2;
                } else {
                        FUZZ_CHECK(attr_char(*p));
                        decoded[o++] = *p;
                }
        }
        decoded[o] = '\0';
        FUZZ_CHECK(strcmp(decoded, expect) == 0);
        free(decoded);
        free(name);
        ej_arena_destroy(a);
        return 0;
}
