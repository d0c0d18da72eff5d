#include "str.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

struct ej_str ej_str_c(const char *s)
{
        struct ej_str v = {s ? s : "", s ? strlen(s) : 0};

        return v;
}

bool ej_str_eq(struct ej_str a, struct ej_str b)
{
        return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

bool ej_str_eq_c(struct ej_str a, const char *s)
{
        return ej_str_eq(a, ej_str_c(s));
}

bool ej_str_starts_with(struct ej_str a, const char *prefix)
{
        size_t n = strlen(prefix);

        return a.n >= n && memcmp(a.p, prefix, n) == 0;
}

void ej_buf_init(struct ej_buf *b)
{
        b->p = NULL;
        b->n = 0;
        b->cap = 0;
}

void ej_buf_free(struct ej_buf *b)
{
        if (b == NULL)
                return;
        free(b->p);
        ej_buf_init(b);
}

void ej_buf_reset(struct ej_buf *b)
{
        b->n = 0;
        if (b->p)
                b->p[0] = '\0';
}

void ej_buf_reserve(struct ej_buf *b, size_t extra)
{
        size_t need = b->n + extra + 1;
        size_t cap;

        if (need <= b->cap)
                return;
        cap = b->cap ? b->cap : 64;
        while (cap < need)
                cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
}

void ej_buf_append(struct ej_buf *b, const void *p, size_t n)
{
        ej_buf_reserve(b, n);
        if (n)
                memcpy(b->p + b->n, p, n);
        b->n += n;
        b->p[b->n] = '\0';
}

void ej_buf_append_c(struct ej_buf *b, const char *s)
{
        ej_buf_append(b, s, strlen(s));
}

void ej_buf_append_char(struct ej_buf *b, char c)
{
        ej_buf_append(b, &c, 1);
}

void ej_buf_appendf(struct ej_buf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        ej_buf_reserve(b, (size_t)n);
        va_start(ap, fmt);
        (void)vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->n += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not valid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
        uint32_t cp;
        size_t len;

        if (s[0] < 0x80)
                return 1;
        if ((s[0] & 0xE0) == 0xC0) {
                len = 2;
                cp = s[0] & 0x1F;
        } else if ((s[0] & 0xF0) == 0xE0) {
                len = 3;
                cp = s[0] & 0x0F;
        } else if ((s[0] & 0xF8) == 0xF0) {
                len = 4;
                cp = s[0] & 0x07;
        } else {
                return 0;
        }
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        return len;
}

void ej_buf_append_json_str(struct ej_buf *b, const char *s, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *u = (const unsigned char *)s;
        size_t i = 0;

        ej_buf_reserve(b, n + 2);
        ej_buf_append_char(b, '"');
        while (i < n) {
                unsigned char c = u[i];
                size_t len;

                switch (c) {
                case '"':
                        ej_buf_append(b, "\\\"", 2);
                        i++;
                        continue;
                case '\\':
                        ej_buf_append(b, "\\\\", 2);
                        i++;
                        continue;
                case '\n':
                        ej_buf_append(b, "\\n", 2);
                        i++;
                        continue;
                case '\r':
                        ej_buf_append(b, "\\r", 2);
                        i++;
                        continue;
                case '\t':
                        ej_buf_append(b, "\\t", 2);
                        i++;
                        continue;
                case '<':
                case '>':
                case '&':
                        break;
                default:
                        if (c >= 0x20 && c < 0x80) {
                                ej_buf_append_char(b, (char)c);
                                i++;
                                continue;
                        }
                }
                if (c < 0x80) {
                        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

                        ej_buf_append(b, esc, sizeof(esc));
                        i++;
                        continue;
                }
                len = utf8_seq_len(u + i, n - i);
                if (len == 0) {
                        ej_buf_append(b, "\\ufffd", 6);
                        i++;
                } else {
                        ej_buf_append(b, u + i, len);
                        i += len;
                }
        }
        ej_buf_append_char(b, '"');
}

char *ej_buf_steal(struct ej_buf *b)
{
        char *p = b->p;

        ej_buf_init(b);
        return p;
}

bool ej_utf8_valid(const char *text, size_t n)
{
        const unsigned char *s = (const unsigned char *)text;
        size_t i = 0;

        while (i < n) {
                unsigned char c = s[i];
                uint32_t cp;
                size_t len;

                if (c == 0)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if ((c & 0xE0) == 0xC0) {
                        len = 2;
                        cp = c & 0x1F;
                } else if ((c & 0xF0) == 0xE0) {
                        len = 3;
                        cp = c & 0x0F;
                } else if ((c & 0xF8) == 0xF0) {
                        len = 4;
                        cp = c & 0x07;
                } else {
                        return false;
                }
                if (len > n - i)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3F);
                }
                if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
                    (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += len;
        }
        return true;
}
