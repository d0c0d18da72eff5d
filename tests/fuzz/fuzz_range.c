/*
 * fuzz_range.c: the Range and If-None-Match readers of file downloads (gateway/stream_http.c).
 *
 * The first input byte's low bit picks the reader, the rest is the header value (up to a NUL,
 * as the HTTP library hands it over). Range: gw_range_parse accepts exactly one range of RFC
 * 9110's grammar, "bytes=" (any case) then first-pos "-" [last-pos] or "-" suffix-length, all
 * plain digits (spaces allowed after the '='), with last-pos >= first-pos, and gives back its
 * numbers (saturating at INT64_MAX). If-None-Match: "<value>\n<etag>"; gw_etag_matches is true
 * exactly when the value is "*" or holds the etag between double quotes.
 */
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "mem.h"
#include "stream_http.h"

/* Reads 1*DIGIT at *p (saturating); false when there is no digit. */
static bool digits(const char **p, int64_t *v)
{
        const char *s = *p;

        *v = 0;
        if (*s < '0' || *s > '9')
                return false;
        for (; *s >= '0' && *s <= '9'; s++) {
                int d = *s - '0';

                *v = *v > (INT64_MAX - d) / 10 ? INT64_MAX : *v * 10 + d;
        }
        *p = s;
        return true;
}

/* The grammar above, written out; the numbers as gw_range_parse reports them. */
static bool reference_range(const char *h, int64_t *start, int64_t *end, int64_t *suffix)
{
        const char *p = h;
        int64_t a, b = -1;

        if (strncasecmp(p, "bytes=", 6) != 0)
                return false;
        p += 6;
        while (*p == ' ')
                p++;
        if (*p == '-') {
                p++;
                if (!digits(&p, &a) || *p != '\0')
                        return false;
                *start = a == 0 ? 1 : -1;
                *end = a == 0 ? 0 : -1;
                *suffix = a;
                return true;
        }
        if (!digits(&p, &a) || *p++ != '-')
                return false;
        if (*p != '\0' && (!digits(&p, &b) || *p != '\0' || b < a))
                return false;
        *start = a;
        *end = b;
        *suffix = 0;
        return true;
}

static void fuzz_range(const char *h)
{
        int64_t s = 7, e = 7, x = 7, rs = 7, re = 7, rx = 7;
        bool ok = gw_range_parse(h, &s, &e, &x);

        FUZZ_CHECK(ok == reference_range(h, &rs, &re, &rx));
        if (ok)
                FUZZ_CHECK(s == rs && e == re && x == rx);
}

static void fuzz_etag(const char *text)
{
        const char *nl = strchr(text, '\n');
        char *inm, *quoted;
        const char *sha;
        bool want;

        if (nl == NULL)
                return;
        inm = xstrndup(text, (size_t)(nl - text));
        sha = nl + 1;
        quoted = xmalloc(strlen(sha) + 3);
        sprintf(quoted, "\"%s\"", sha);
        want = sha[0] != '\0' && (strcmp(inm, "*") == 0 || strstr(inm, quoted) != NULL);
        FUZZ_CHECK(gw_etag_matches(inm, sha) == want);
        free(inm);
        free(quoted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text;

        if (size < 1)
                return 0;
        text = xstrndup((const char *)data + 1, size - 1);
        if (data[0] & 1)
                fuzz_etag(text);
        else
                fuzz_range(text);
        free(text);
        return 0;
}
