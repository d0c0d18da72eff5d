/* Unit tests for str.c: string views, growable buffers and JSON string escaping. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "str.h"

/* The JSON text ej_buf_append_json_str makes of `n` bytes of `s`, compared with `want`. */
static int json_is(const char *s, size_t n, const char *want)
{
        struct ej_buf b = EJ_BUF_INIT;
        int ok;

        ej_buf_append_json_str(&b, s, n);
        ok = b.p != NULL && strlen(b.p) == b.n && strcmp(b.p, want) == 0;
        if (!ok)
                fprintf(stderr, "  json of %zu bytes gave [%s], want [%s]\n", n, b.p ? b.p : "",
                        want);
        ej_buf_free(&b);
        return ok;
}

#define JSON_IS(lit, want) json_is((lit), sizeof(lit) - 1, (want))

/* True when the output holds no byte >= 0x80 and contains U+FFFD as an escape. */
static int json_replaced(const char *s, size_t n)
{
        struct ej_buf b = EJ_BUF_INIT;
        int ok = 1;

        ej_buf_append_json_str(&b, s, n);
        for (size_t i = 0; i < b.n; i++)
                ok = ok && (unsigned char)b.p[i] < 0x80;
        ok = ok && strstr(b.p, "\\ufffd") != NULL;
        ok = ok && b.p[0] == '"' && b.p[b.n - 1] == '"';
        ej_buf_free(&b);
        return ok;
}

#define JSON_REPLACED(lit) json_replaced((lit), sizeof(lit) - 1)

static void test_views(void)
{
        struct ej_str v = ej_str_c("submission");
        struct ej_str empty = ej_str_c(NULL);
        const char raw[] = {'s', 'u', 'b'};
        struct ej_str part = {raw, sizeof(raw)};

        CHECK(v.n == 10);
        CHECK(empty.n == 0 && empty.p != NULL);
        CHECK(ej_str_eq(v, EJ_STR_LIT("submission")));
        CHECK(!ej_str_eq(v, EJ_STR_LIT("submissions")));
        CHECK(!ej_str_eq(v, EJ_STR_LIT("Submission")));
        CHECK(ej_str_eq(empty, EJ_STR_LIT("")));
        CHECK(ej_str_eq_c(part, "sub"));
        CHECK(!ej_str_eq_c(part, "su"));
        CHECK(ej_str_eq_c(empty, ""));
        CHECK(ej_str_starts_with(v, "sub"));
        CHECK(ej_str_starts_with(v, ""));
        CHECK(!ej_str_starts_with(part, "subm"));
        CHECK(!ej_str_starts_with(v, "mission"));
}

static void test_buf(void)
{
        struct ej_buf b = EJ_BUF_INIT;
        struct ej_buf c;
        char *stolen;
        size_t cap;

        CHECK(b.p == NULL && b.n == 0 && b.cap == 0);
        ej_buf_append_c(&b, "vol");
        ej_buf_append_char(&b, ' ');
        ej_buf_appendf(&b, "%d, no. %s", 12, "3");
        ej_buf_append(&b, "xyz", 2);
        CHECK(b.n == strlen("vol 12, no. 3xy"));
        CHECK(strcmp(b.p, "vol 12, no. 3xy") == 0);
        CHECK(b.cap > b.n);

        /* Embedded NULs are kept; the buffer stays terminated. */
        ej_buf_append(&b, "\0z", 2);
        CHECK(b.n == 17 && b.p[15] == '\0' && b.p[16] == 'z' && b.p[17] == '\0');

        cap = b.cap;
        ej_buf_reset(&b);
        CHECK(b.n == 0 && b.p[0] == '\0' && b.cap == cap);

        /* Growth over many appends keeps every byte. */
        for (int i = 0; i < 10000; i++)
                ej_buf_append_char(&b, (char)('a' + i % 26));
        CHECK(b.n == 10000 && b.p[9999] == (char)('a' + 9999 % 26) && b.p[10000] == '\0');
        CHECK(b.p[26] == 'a' && b.p[27] == 'b');

        ej_buf_reserve(&b, 50000);
        CHECK(b.cap >= b.n + 50000 + 1);
        CHECK(b.n == 10000);

        stolen = ej_buf_steal(&b);
        CHECK(stolen != NULL && strlen(stolen) == 10000);
        CHECK(b.p == NULL && b.n == 0 && b.cap == 0);
        free(stolen);

        CHECK(ej_buf_steal(&b) == NULL);

        ej_buf_init(&c);
        ej_buf_appendf(&c, "%s=%ld", "limit", 1048576L);
        CHECK(strcmp(c.p, "limit=1048576") == 0 && c.n == 13);
        ej_buf_free(&c);
        CHECK(c.p == NULL && c.n == 0 && c.cap == 0);
        ej_buf_free(&c);
        ej_buf_free(NULL);
}

static void test_json_plain(void)
{
        CHECK(JSON_IS("", "\"\""));
        CHECK(JSON_IS("Peer review", "\"Peer review\""));
        CHECK(JSON_IS("a\"b", "\"a\\\"b\""));
        CHECK(JSON_IS("a\\b", "\"a\\\\b\""));
        CHECK(JSON_IS("/path", "\"/path\""));
        CHECK(JSON_IS("\n\r\t", "\"\\n\\r\\t\""));
        /* Other control characters, NUL included, as \u00XX. */
        CHECK(JSON_IS("\x01", "\"\\u0001\""));
        CHECK(JSON_IS("\x08\x0c", "\"\\u0008\\u000c\""));
        CHECK(JSON_IS("\x1f", "\"\\u001f\""));
        CHECK(JSON_IS("a\0b", "\"a\\u0000b\""));
        CHECK(JSON_IS("\x7f", "\"\x7f\"")); /* DEL needs no escape in JSON */
        /* HTML-significant characters never appear raw. */
        CHECK(
            JSON_IS("<script>&</script>", "\"\\u003cscript\\u003e\\u0026\\u003c/script\\u003e\""));

        /* Appending continues after what is already in the buffer. */
        {
                struct ej_buf b = EJ_BUF_INIT;

                ej_buf_append_c(&b, "{\"k\":");
                ej_buf_append_json_str(&b, "v", 1);
                ej_buf_append_char(&b, '}');
                CHECK(strcmp(b.p, "{\"k\":\"v\"}") == 0);
                ej_buf_free(&b);
        }
}

static void test_json_utf8(void)
{
        /* Valid multibyte sequences pass through unchanged. */
        CHECK(JSON_IS("caf\xc3\xa9", "\"caf\xc3\xa9\""));           /* é, 2 bytes */
        CHECK(JSON_IS("\xe2\x82\xac 5", "\"\xe2\x82\xac 5\""));     /* €, 3 bytes */
        CHECK(JSON_IS("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"")); /* emoji, 4 bytes */
        CHECK(JSON_IS("\xef\xbf\xbd", "\"\xef\xbf\xbd\""));         /* U+FFFD itself */
        CHECK(JSON_IS("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"")); /* U+10FFFF */

        /* Invalid bytes become U+FFFD and the text around them survives. */
        CHECK(JSON_IS("a\x80z", "\"a\\ufffdz\""));
        CHECK(JSON_IS("a\xffz", "\"a\\ufffdz\""));
        CHECK(JSON_REPLACED("\xc3"));             /* truncated at the end */
        CHECK(JSON_REPLACED("\xe2\x82"));         /* truncated 3-byte */
        CHECK(JSON_REPLACED("\xc0\xaf"));         /* overlong '/' */
        CHECK(JSON_REPLACED("\xe0\x80\xaf"));     /* overlong 3-byte */
        CHECK(JSON_REPLACED("\xed\xa0\x80"));     /* UTF-16 surrogate */
        CHECK(JSON_REPLACED("\xf4\x90\x80\x80")); /* above U+10FFFF */
        CHECK(JSON_REPLACED("\xf8\x88\x80\x80\x80"));
        /* A bad lead byte does not swallow the valid ASCII after it. */
        {
                struct ej_buf b = EJ_BUF_INIT;

                ej_buf_append_json_str(&b, "\xe2(x\xc3\xa9", 5);
                CHECK(strstr(b.p, "(x\xc3\xa9\"") != NULL);
                ej_buf_free(&b);
        }
}

static void test_utf8_valid(void)
{
        static const struct {
                const char *s;
                size_t n;
                bool ok;
        } cases[] = {
            {"", 0, true},
            {"plain ascii", 11, true},
            {"h\xc3\xa9llo", 6, true},      /* U+00E9 */
            {"\xe2\x82\xac", 3, true},      /* U+20AC */
            {"\xf0\x9f\x98\x80", 4, true},  /* U+1F600 */
            {"\xf4\x8f\xbf\xbf", 4, true},  /* U+10FFFF, the last */
            {"a\0b", 3, false},             /* NUL */
            {"\xff", 1, false},             /* never valid */
            {"\xc3", 1, false},             /* cut short */
            {"\xe2\x82", 2, false},         /* cut short */
            {"\xc3\x28", 2, false},         /* bad continuation */
            {"\xc0\xaf", 2, false},         /* overlong '/' */
            {"\xe0\x80\xaf", 3, false},     /* overlong */
            {"\xed\xa0\x80", 3, false},     /* surrogate U+D800 */
            {"\xf4\x90\x80\x80", 4, false}, /* above U+10FFFF */
            {"\x80", 1, false},             /* lone continuation */
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                bool got = ej_utf8_valid(cases[i].s, cases[i].n);

                if (got != cases[i].ok)
                        fprintf(stderr, "ej_utf8_valid case %zu gave %d\n", i, got);
                CHECK(got == cases[i].ok);
        }
}

int main(void)
{
        test_utf8_valid();
        test_views();
        test_buf();
        test_json_plain();
        test_json_utf8();
        return check_report();
}
