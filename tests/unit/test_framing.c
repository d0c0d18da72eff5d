/* Unit tests for gateway/framing.c: which header lists frame a request unambiguously. */
#include "../../gateway/framing.c"

#include "check.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static bool ok(const char *version, const struct gw_header *h, size_t n)
{
        const char *why = NULL;
        bool r = gw_framing_ok(version, h, n, &why);

        CHECK(r ? why == NULL : why != NULL && why[0] != '\0');
        return r;
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
        return check_report();
}
