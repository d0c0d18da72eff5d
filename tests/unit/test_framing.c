/* Unit tests for gateway/framing.c: which header lists frame a request unambiguously, which
 * heads hide a NUL, and how a header that came twice is read. */
#include "../../gateway/framing.c"

#include <string.h>

#include "check.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static bool ok(const char *version, const struct gw_header *h, size_t n)
{
        const char *why = NULL;
        bool r = gw_framing_ok(version, h, n, &why);

        CHECK(r ? why == NULL : why != NULL && why[0] != '\0');
        return r;
}

/* A head as libmicrohttpd leaves it: `raw` with the bytes it overwrote (CR, LF, the space after
 * the method, the colon, the space before the version) already NUL; `spans` name the strings. */
static bool clean(const char *raw, size_t len, const char *const *strings, size_t n)
{
        struct gw_span s[16];
        const char *at = raw;

        for (size_t i = 0; i < n; i++) {
                const char *p =
                    memmem(at, len - (size_t)(at - raw), strings[i], strlen(strings[i]));

                CHECK(p != NULL);
                if (p == NULL)
                        return false;
                s[i] = (struct gw_span){p, strlen(strings[i])};
                at = p + s[i].n;
        }
        return gw_head_clean(raw, len, s, n);
}

static void test_head_clean(void)
{
        /* "GET /a HTTP/1.1\r\nHost: h\r\n\r\n" after parsing. */
        static const char ok[] = "GET\0/a\0HTTP/1.1\0\0Host\0 h\0\0\0\0";
        static const char *const ok_s[] = {"GET", "/a", "HTTP/1.1", "Host", "h"};
        /* A NUL inside the target: the parser's string ends at "/a", "x" is left over. */
        static const char in_uri[] = "GET\0/a\0x\0HTTP/1.1\0\0Host\0 h\0\0\0\0";
        /* A NUL inside a value. */
        static const char in_value[] = "GET\0/a\0HTTP/1.1\0\0Host\0 h\0evil\0\0\0\0";
        /* Blanks the parser leaves: spaces, tabs. */
        static const char blanks[] = "GET\0 /a \0HTTP/1.1\0\0Host\0\t h\0\0\0\0";
        struct gw_span folded[2] = {{"elsewhere", 9}, {ok, 3}};

        CHECK(clean(ok, sizeof(ok) - 1, ok_s, 5));
        CHECK(!clean(in_uri, sizeof(in_uri) - 1, ok_s, 5));
        CHECK(!clean(in_value, sizeof(in_value) - 1, ok_s, 5));
        CHECK(clean(blanks, sizeof(blanks) - 1, ok_s, 5));
        CHECK(!gw_head_clean(ok, sizeof(ok) - 1, folded, 2)); /* a span outside the head */
        CHECK(!clean(ok, sizeof(ok) - 1, ok_s, 4));           /* "h" not a span: left over */
}

static void test_uri_nul(void)
{
        CHECK(gw_uri_has_nul("/api/search?query=a%00b", 23));
        CHECK(gw_uri_has_nul("/app.js%00.html", 15));
        CHECK(gw_uri_has_nul("/a%00", 5));
        CHECK(!gw_uri_has_nul("/a%2500", 7)); /* "%00" as text, escaped */
        CHECK(!gw_uri_has_nul("/a%0", 4));
        CHECK(!gw_uri_has_nul("/api/search?query=a%20b", 23));
        CHECK(gw_uri_has_nul("/a\0b", 4));
}

static void test_singletons(void)
{
        const struct gw_header two_ct[] = {
            {"Host", "h"}, {"Content-Type", "application/json"}, {"content-type", "text/plain"}};
        const struct gw_header two_cookie[] = {{"Host", "h"}, {"Cookie", "a=1"}, {"Cookie", "b=2"}};
        const struct gw_header two_origin[] = {{"Host", "h"}, {"Origin", "a"}, {"ORIGIN", "b"}};
        const struct gw_header two_range[] = {
            {"Host", "h"}, {"Range", "bytes=0-1"}, {"Range", "bytes=5-9"}};
        const struct gw_header two_idem[] = {
            {"Host", "h"}, {"Idempotency-Key", "a"}, {"Idempotency-Key", "b"}};
        const struct gw_header two_auth[] = {
            {"Host", "h"}, {"Authorization", "a"}, {"Authorization", "b"}};
        const struct gw_header two_inm[] = {
            {"Host", "h"}, {"If-None-Match", "\"a\""}, {"If-None-Match", "\"b\""}};
        const struct gw_header two_xff[] = {
            {"Host", "h"}, {"X-Forwarded-For", "1.2.3.4"}, {"X-Forwarded-For", "10.0.0.1"}};
        const struct gw_header two_accept[] = {{"Host", "h"}, {"Accept", "a"}, {"Accept", "b"}};

        CHECK(!ok("HTTP/1.1", two_ct, N(two_ct)));
        CHECK(!ok("HTTP/1.1", two_cookie, N(two_cookie)));
        CHECK(!ok("HTTP/1.1", two_origin, N(two_origin)));
        CHECK(!ok("HTTP/1.1", two_range, N(two_range)));
        CHECK(!ok("HTTP/1.1", two_idem, N(two_idem)));
        CHECK(!ok("HTTP/1.1", two_auth, N(two_auth)));
        /* List-valued: joined by the readers (gw_header_joined), not refused. */
        CHECK(ok("HTTP/1.1", two_inm, N(two_inm)));
        CHECK(ok("HTTP/1.1", two_xff, N(two_xff)));
        CHECK(ok("HTTP/1.1", two_accept, N(two_accept)));
}

int main(void)
{
        const struct gw_header plain[] = {{"Host", "h"}, {"Content-Length", "12"}};
        const struct gw_header chunked[] = {{"Host", "h"}, {"transfer-encoding", "Chunked"}};
        const struct gw_header two_cl[] = {
            {"Host", "h"}, {"Content-Length", "2"}, {"content-length", "40"}};
        const struct gw_header same_cl[] = {
            {"Host", "h"}, {"Content-Length", "2"}, {"Content-Length", "2"}};
        const struct gw_header cl_te[] = {
            {"Host", "h"}, {"Content-Length", "2"}, {"Transfer-Encoding", "chunked"}};
        const struct gw_header te_identity[] = {{"Host", "h"}, {"Transfer-Encoding", "identity"}};
        const struct gw_header te_list[] = {{"Host", "h"}, {"Transfer-Encoding", "gzip, chunked"}};
        const struct gw_header te_x[] = {{"Host", "h"}, {"Transfer-Encoding", "xchunked"}};
        const struct gw_header te_two[] = {
            {"Host", "h"}, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}};
        const struct gw_header te_empty[] = {{"Host", "h"}, {"Transfer-Encoding", NULL}};
        const struct gw_header spaced[] = {{"Host", "h"}, {"Transfer-Encoding ", "chunked"}};
        const struct gw_header empty_name[] = {{"Host", "h"}, {"", "x"}};
        const struct gw_header cl_sign[] = {{"Host", "h"}, {"Content-Length", "+2"}};
        const struct gw_header cl_empty[] = {{"Host", "h"}, {"Content-Length", ""}};
        const struct gw_header no_host[] = {{"Accept", "*/*"}};
        const struct gw_header two_hosts[] = {{"Host", "a"}, {"HOST", "b"}};

        CHECK(ok("HTTP/1.1", plain, N(plain)));
        CHECK(ok("HTTP/1.1", chunked, N(chunked)));
        CHECK(!ok("HTTP/1.1", two_cl, N(two_cl)));
        CHECK(!ok("HTTP/1.1", same_cl, N(same_cl))); /* even equal values: one is enough */
        CHECK(!ok("HTTP/1.1", cl_te, N(cl_te)));
        CHECK(!ok("HTTP/1.1", te_identity, N(te_identity)));
        CHECK(!ok("HTTP/1.1", te_list, N(te_list)));
        CHECK(!ok("HTTP/1.1", te_x, N(te_x)));
        CHECK(!ok("HTTP/1.1", te_two, N(te_two)));
        CHECK(!ok("HTTP/1.1", te_empty, N(te_empty)));
        CHECK(!ok("HTTP/1.1", spaced, N(spaced)));
        CHECK(!ok("HTTP/1.1", empty_name, N(empty_name)));
        CHECK(!ok("HTTP/1.1", cl_sign, N(cl_sign)));
        CHECK(!ok("HTTP/1.1", cl_empty, N(cl_empty)));
        CHECK(!ok("HTTP/1.1", no_host, N(no_host)));
        CHECK(ok("HTTP/1.0", no_host, N(no_host))); /* Host is HTTP/1.1's */
        CHECK(!ok("HTTP/1.1", two_hosts, N(two_hosts)));
        CHECK(!ok("HTTP/1.0", two_hosts, N(two_hosts)));
        CHECK(ok("HTTP/1.1", plain, N(plain)) && !gw_framing_ok("HTTP/1.1", two_cl, 3, NULL));
        test_head_clean();
        test_uri_nul();
        test_singletons();
        return check_report();
}
