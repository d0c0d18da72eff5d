#include "framing.h"

#include <string.h>
#include <strings.h>

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

bool gw_framing_ok(const char *version, const struct gw_header *h, size_t n, const char **why)
{
        size_t n_cl = 0, n_te = 0, n_host = 0;
        const char *te = NULL;

        for (size_t i = 0; i < n; i++) {
                if (!is_token(h[i].name))
                        return refuse(why, "a header name is not a token (a space before the "
                                           "colon, or a folded line)");
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
