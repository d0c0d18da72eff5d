/*
 * stream_http.c: the HTTP header details of file downloads; see stream_http.h.
 */
#include "stream_http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool gw_range_parse(const char *h, int64_t *start, int64_t *end, int64_t *suffix)
{
        const char *p;
        char *e;
        long long a = -1, b = -1;

        if (h == NULL || strncasecmp(h, "bytes=", 6) != 0)
                return false;
        p = h + 6;
        while (*p == ' ')
                p++;
        if (strchr(p, ','))
                return false; /* several ranges: the whole file */
        if (*p == '-') {
                long long n;

                /* suffix-length = 1*DIGIT: no sign, no white space (strtoll takes both) */
                if (p[1] < '0' || p[1] > '9')
                        return false;
                n = strtoll(p + 1, &e, 10);
                if (*e != '\0' || n < 0)
                        return false;
                *start = -1;
                *end = -1;
                *suffix = n;
                if (n == 0) { /* "bytes=-0" is unsatisfiable */
                        *start = 1;
                        *end = 0;
                        *suffix = 0;
                }
                return true;
        }
        if (*p < '0' || *p > '9')
                return false;
        a = strtoll(p, &e, 10);
        if (*e != '-')
                return false;
        p = e + 1;
        if (*p) {
                if (*p < '0' || *p > '9')
                        return false;
                b = strtoll(p, &e, 10);
                if (*e != '\0' || b < a)
                        return false;
        }
        *start = a;
        *end = b;
        *suffix = 0;
        return true;
}

const char *gw_disposition(struct ej_arena *a, const char *kind, const char *name)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t n = name ? strlen(name) : 0;
        char *ascii, *enc;
        size_t ai = 0, ei = 0;

        if (n == 0 || n > 1024) {
                name = "download";
                n = strlen(name);
        }
        ascii = ej_arena_alloc(a, n + 1);
        enc = ej_arena_alloc(a, 3 * n + 1);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)name[i];
                bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                             (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c);

                ascii[ai++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '%' &&
                               c != ';' && c != '/')
                                  ? (char)c
                                  : '_';
                if (plain && c != 0) {
                        enc[ei++] = (char)c;
                } else {
                        enc[ei++] = '%';
                        enc[ei++] = hex[c >> 4];
                        enc[ei++] = hex[c & 15];
                }
        }
        ascii[ai] = '\0';
        enc[ei] = '\0';
        return ej_arena_printf(a, "%s; filename=\"%s\"; filename*=UTF-8''%s", kind, ascii, enc);
}

bool gw_etag_matches(const char *inm, const char *sha)
{
        size_t n = strlen(sha);

        if (inm == NULL || n == 0)
                return false;
        if (strcmp(inm, "*") == 0)
                return true;
        for (const char *p = strstr(inm, sha); p; p = strstr(p + 1, sha))
                if (p > inm && p[-1] == '"' && p[n] == '"')
                        return true;
        return false;
}
