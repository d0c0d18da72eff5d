#include "framing.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "str.h"

/* RFC 9110 5.6.2: tchar. */
static bool is_token(const char *s)
{
        static const char extra[] = "!#$%&'*+-.^_`|~";

        if (s == NULL || *s == '\0')
                return false;
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c != '\0' && strchr(extra, c) != NULL)))
                        return false;
        }
        return true;
}

static bool all_digits(const char *s)
{
        if (s == NULL || *s == '\0')
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

static bool refuse(const char **why, const char *text)
{
        if (why)
                *why = text;
        return false;
}

/* Headers the gateway reads as one value, where a second copy would be ambiguous: which one
 * a proxy in front acted on is unknown. List-valued headers the gateway reads (If-None-Match,
 * X-Forwarded-For) are joined instead (gw_header_joined). */
static const char *const singletons[] = {
    "Authorization", "Content-Type", "Cookie",         "Expect", "Idempotency-Key",
    "If-Range",      "Origin",       "Sec-Fetch-Site", "Range",  "X-Request-Id",
};

static const char *singleton_of(const char *name)
{
        for (size_t i = 0; i < sizeof(singletons) / sizeof(singletons[0]); i++)
                if (strcasecmp(name, singletons[i]) == 0)
                        return singletons[i];
        return NULL;
}

/* True when a singleton header `name` occurs again after index i. */
static bool repeated(const struct gw_header *h, size_t n, size_t i)
{
        for (size_t j = i + 1; j < n; j++)
                if (strcasecmp(h[i].name, h[j].name) == 0)
                        return true;
        return false;
}

bool gw_framing_ok(const char *version, const struct gw_header *h, size_t n, const char **why)
{
        size_t n_cl = 0, n_te = 0, n_host = 0;
        const char *te = NULL;

        for (size_t i = 0; i < n; i++) {
                if (!is_token(h[i].name))
                        return refuse(why, "a header name is not a token (a space before the "
                                           "colon, or a folded line)");
                if (singleton_of(h[i].name) && repeated(h, n, i))
                        return refuse(why, "a header that takes one value came more than once "
                                           "(Authorization, Content-Type, Cookie, Expect, "
                                           "Idempotency-Key, If-Range, Origin, Range, "
                                           "Sec-Fetch-Site or X-Request-Id)");
                if (strcasecmp(h[i].name, "Content-Length") == 0) {
                        n_cl++;
                        if (!all_digits(h[i].value))
                                return refuse(why, "Content-Length is not a number");
                } else if (strcasecmp(h[i].name, "Transfer-Encoding") == 0) {
                        n_te++;
                        te = h[i].value;
                } else if (strcasecmp(h[i].name, "Host") == 0) {
                        n_host++;
                }
        }
        if (n_cl > 1)
                return refuse(why, "more than one Content-Length");
        if (n_te > 1)
                return refuse(why, "more than one Transfer-Encoding");
        if (n_te == 1 && n_cl == 1)
                return refuse(why, "both Content-Length and Transfer-Encoding");
        if (n_te == 1 && (te == NULL || strcasecmp(te, "chunked") != 0))
                return refuse(why, "the only Transfer-Encoding taken is chunked");
        if (n_host > 1)
                return refuse(why, "more than one Host");
        if (n_host == 0 && version != NULL && strcmp(version, "HTTP/1.0") != 0)
                return refuse(why, "an HTTP/1.1 request needs a Host header");
        return true;
}

static int span_cmp(const void *a, const void *b)
{
        const char *pa = ((const struct gw_span *)a)->p;
        const char *pb = ((const struct gw_span *)b)->p;

        return pa < pb ? -1 : pa > pb;
}

/* The bytes the parser leaves between the strings it cut out: the NULs it wrote over a space,
 * a colon, CR and LF, and the spaces and tabs around them. */
static bool blank_run(const char *p, const char *end)
{
        for (; p < end; p++)
                if (*p != '\0' && *p != ' ' && *p != '\t')
                        return false;
        return true;
}

bool gw_head_clean(const char *head, size_t len, struct gw_span *spans, size_t n)
{
        const char *at = head;
        const char *end = head + len;

        qsort(spans, n, sizeof(*spans), span_cmp);
        for (size_t i = 0; i < n; i++) {
                const char *p = spans[i].p;
                const char *q = p + spans[i].n;

                if (p < head || q > end)
                        return false; /* a string rebuilt elsewhere: a folded line */
                if (p > at && !blank_run(at, p))
                        return false;
                if (q > at)
                        at = q;
        }
        return blank_run(at, end);
}

bool gw_uri_has_nul(const char *uri, size_t n)
{
        for (size_t i = 0; i + 2 < n; i++)
                if (uri[i] == '%' && uri[i + 1] == '0' && uri[i + 2] == '0')
                        return true;
        return memchr(uri, '\0', n) != NULL;
}

struct joined {
        const char *name;
        struct ej_buf buf;
        const char *first;
        size_t count;
};

static enum MHD_Result join_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
        struct joined *j = cls;

        (void)kind;
        if (strcasecmp(key, j->name) != 0)
                return MHD_YES;
        if (j->count++ == 0) {
                j->first = value;
                return MHD_YES;
        }
        if (j->count == 2)
                ej_buf_append_c(&j->buf, j->first ? j->first : "");
        ej_buf_append_c(&j->buf, ", ");
        ej_buf_append_c(&j->buf, value ? value : "");
        return MHD_YES;
}

const char *gw_header_joined(struct MHD_Connection *conn, const char *name, struct ej_arena *arena)
{
        struct joined j = {.name = name, .buf = EJ_BUF_INIT};
        const char *out;

        MHD_get_connection_values(conn, MHD_HEADER_KIND, join_one, &j);
        if (j.count < 2) {
                ej_buf_free(&j.buf);
                return j.first;
        }
        out = ej_arena_strndup(arena, j.buf.p, j.buf.n);
        ej_buf_free(&j.buf);
        return out;
}
