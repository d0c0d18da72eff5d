#include "sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "mem.h"

/* A header while it is being canonicalised: lower-case name, trimmed value. */
struct canon_header {
        char *name;
        char *value;
        size_t order; /* position in the request, to keep duplicates in their order */
};

static int is_unreserved(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.' || c == '_' || c == '~';
}

void ej_sigv4_uri_encode(struct ej_buf *out, const char *p, size_t n, bool keep_slash)
{
        static const char hex[] = "0123456789ABCDEF";

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)p[i];

                if (is_unreserved(c) || (keep_slash && c == '/')) {
                        ej_buf_append_char(out, (char)c);
                } else {
                        char e[3] = {'%', hex[c >> 4], hex[c & 15]};

                        ej_buf_append(out, e, 3);
                }
        }
}

static int hex_val(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Appends `n` bytes of `p` percent-decoded (a malformed escape is kept as it is). */
static void uri_decode(struct ej_buf *out, const char *p, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (p[i] == '%' && i + 2 < n && hex_val(p[i + 1]) >= 0 && hex_val(p[i + 2]) >= 0) {
                        ej_buf_append_char(out, (char)(hex_val(p[i + 1]) * 16 + hex_val(p[i + 2])));
                        i += 2;
                } else {
                        ej_buf_append_char(out, p[i]);
                }
        }
}

/* Appends the canonical URI of `path`: for S3 the path encoded as it is; otherwise with empty
 * and dot segments removed first. */
static void canonical_uri(struct ej_buf *out, const char *path, bool s3)
{
        const char *segs[128];
        size_t lens[128];
        size_t n = 0;
        const char *p = path;
        size_t plen;

        if (path == NULL || path[0] == '\0') {
                ej_buf_append_char(out, '/');
                return;
        }
        if (s3) {
                ej_sigv4_uri_encode(out, path, strlen(path), true);
                return;
        }
        plen = strlen(path);
        while (*p) {
                const char *slash;
                size_t len;

                while (*p == '/')
                        p++;
                if (*p == '\0')
                        break;
                slash = strchr(p, '/');
                len = slash ? (size_t)(slash - p) : strlen(p);
                if (len == 1 && p[0] == '.') {
                        /* stays in place */
                } else if (len == 2 && p[0] == '.' && p[1] == '.') {
                        if (n > 0)
                                n--;
                } else if (n < sizeof(segs) / sizeof(segs[0])) {
                        segs[n] = p;
                        lens[n] = len;
                        n++;
                }
                p += len;
        }
        for (size_t i = 0; i < n; i++) {
                ej_buf_append_char(out, '/');
                ej_sigv4_uri_encode(out, segs[i], lens[i], false);
        }
        /* A trailing slash survives normalisation ("/example/" stays "/example/"). */
        if (n == 0 || path[plen - 1] == '/')
                ej_buf_append_char(out, '/');
}

struct query_param {
        char *name; /* encoded */
        char *value;
};

static int cmp_param(const void *a, const void *b)
{
        const struct query_param *x = a;
        const struct query_param *y = b;
        int c = strcmp(x->name, y->name);

        return c != 0 ? c : strcmp(x->value, y->value);
}

/* Encodes one query component: decoded first, so an already-encoded query is not encoded
 * twice. */
static char *encode_component(const char *p, size_t n)
{
        struct ej_buf raw;
        struct ej_buf enc;

        ej_buf_init(&raw);
        ej_buf_init(&enc);
        uri_decode(&raw, p, n);
        ej_sigv4_uri_encode(&enc, raw.p ? raw.p : "", raw.n, false);
        ej_buf_free(&raw);
        if (enc.p == NULL)
                return xstrdup("");
        return ej_buf_steal(&enc);
}

static void canonical_query(struct ej_buf *out, const char *query)
{
        struct query_param *params = NULL;
        size_t n = 0;
        size_t cap = 0;
        const char *p = query;

        if (query == NULL || query[0] == '\0')
                return;
        while (*p) {
                const char *amp = strchr(p, '&');
                size_t len = amp ? (size_t)(amp - p) : strlen(p);
                const char *eq = memchr(p, '=', len);

                if (len > 0) {
                        if (n == cap) {
                                cap = cap ? 2 * cap : 8;
                                params = xrealloc(params, cap * sizeof(*params));
                        }
                        if (eq) {
                                params[n].name = encode_component(p, (size_t)(eq - p));
                                params[n].value =
                                    encode_component(eq + 1, len - (size_t)(eq - p) - 1);
                        } else {
                                params[n].name = encode_component(p, len);
                                params[n].value = xstrdup("");
                        }
                        n++;
                }
                p += len;
                if (*p == '&')
                        p++;
        }
        if (n > 0)
                qsort(params, n, sizeof(*params), cmp_param);
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        ej_buf_append_char(out, '&');
                ej_buf_append_c(out, params[i].name);
                ej_buf_append_char(out, '=');
                ej_buf_append_c(out, params[i].value);
                free(params[i].name);
                free(params[i].value);
        }
        free(params);
}

static int cmp_header(const void *a, const void *b)
{
        const struct canon_header *x = a;
        const struct canon_header *y = b;
        int c = strcmp(x->name, y->name);

        if (c != 0)
                return c;
        return x->order < y->order ? -1 : x->order > y->order;
}

/* The value trimmed, with every run of spaces and tabs inside turned into one space. */
static char *canonical_value(const char *v)
{
        size_t n = strlen(v);
        char *out = xmalloc(n + 1);
        size_t k = 0;
        int space = 0;

        for (size_t i = 0; i < n; i++) {
                char c = v[i];

                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                        space = k > 0;
                        continue;
                }
                if (space)
                        out[k++] = ' ';
                space = 0;
                out[k++] = c;
        }
        out[k] = '\0';
        return out;
}

enum ej_status ej_sigv4_canonical_request(const struct ej_sigv4_request *req, struct ej_buf *out,
                                          char *signed_headers, size_t signed_headers_size,
                                          struct ej_err *err)
{
        struct canon_header *h = NULL;
        struct ej_buf names;
        enum ej_status st = EJ_OK;

        ej_buf_reset(out);
        ej_buf_init(&names);
        h = xcalloc(req->n_headers ? req->n_headers : 1, sizeof(*h));
        for (size_t i = 0; i < req->n_headers; i++) {
                const char *name = req->headers[i].name;

                if (name == NULL || name[0] == '\0') {
                        st = ej_err_set(err, EJ_ERR_INVALID, NULL, "sigv4: empty header name");
                        goto out;
                }
                h[i].name = xstrdup(name);
                for (char *c = h[i].name; *c; c++)
                        if (*c >= 'A' && *c <= 'Z')
                                *c = (char)(*c - 'A' + 'a');
                h[i].value = canonical_value(req->headers[i].value ? req->headers[i].value : "");
                h[i].order = i;
        }
        if (req->n_headers > 1)
                qsort(h, req->n_headers, sizeof(*h), cmp_header);

        ej_buf_append_c(out, req->method);
        ej_buf_append_char(out, '\n');
        canonical_uri(out, req->path, req->s3);
        ej_buf_append_char(out, '\n');
        canonical_query(out, req->query);
        ej_buf_append_char(out, '\n');
        for (size_t i = 0; i < req->n_headers; i++) {
                /* Repeated names become one line with the values joined by commas. */
                if (i > 0 && strcmp(h[i].name, h[i - 1].name) == 0) {
                        ej_buf_append_char(out, ',');
                        ej_buf_append_c(out, h[i].value);
                        continue;
                }
                if (i > 0)
                        ej_buf_append_char(out, '\n');
                ej_buf_append_c(out, h[i].name);
                ej_buf_append_char(out, ':');
                ej_buf_append_c(out, h[i].value);
                if (names.n > 0)
                        ej_buf_append_char(&names, ';');
                ej_buf_append_c(&names, h[i].name);
        }
        ej_buf_append_c(out, "\n\n");
        ej_buf_append(out, names.p ? names.p : "", names.n);
        ej_buf_append_char(out, '\n');
        ej_buf_append_c(out, req->payload_hash ? req->payload_hash : EJ_SIGV4_UNSIGNED_PAYLOAD);
        if (names.n + 1 > signed_headers_size) {
                st = ej_err_set(err, EJ_ERR_INVALID, NULL, "sigv4: too many signed headers");
                goto out;
        }
        memcpy(signed_headers, names.p ? names.p : "", names.n);
        signed_headers[names.n] = '\0';
out:
        for (size_t i = 0; i < req->n_headers; i++) {
                free(h[i].name);
                free(h[i].value);
        }
        free(h);
        ej_buf_free(&names);
        return st;
}

static void sha256_hex(const void *p, size_t n, char out[EJ_SIGV4_HEX_LEN])
{
        unsigned char d[crypto_hash_sha256_BYTES];

        crypto_hash_sha256(d, p, n);
        sodium_bin2hex(out, EJ_SIGV4_HEX_LEN, d, sizeof(d));
}

void ej_sigv4_string_to_sign(const struct ej_sigv4_credentials *cred, const char *amz_date,
                             const char *canonical, size_t n, struct ej_buf *out)
{
        char hash[EJ_SIGV4_HEX_LEN];

        sha256_hex(canonical, n, hash);
        ej_buf_reset(out);
        ej_buf_appendf(out, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", amz_date, amz_date,
                       cred->region, cred->service, hash);
}

static void hmac(unsigned char out[32], const unsigned char *key, size_t key_len, const char *msg,
                 size_t msg_len)
{
        crypto_auth_hmacsha256_state st;

        crypto_auth_hmacsha256_init(&st, key, key_len);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, msg_len);
        crypto_auth_hmacsha256_final(&st, out);
}

void ej_sigv4_signing_key(const struct ej_sigv4_credentials *cred, const char *amz_date,
                          unsigned char key[32])
{
        struct ej_buf secret;
        unsigned char k1[32];
        unsigned char k2[32];
        unsigned char k3[32];

        ej_buf_init(&secret);
        ej_buf_appendf(&secret, "AWS4%s", cred->secret_key);
        hmac(k1, (const unsigned char *)secret.p, secret.n, amz_date, 8);
        hmac(k2, k1, 32, cred->region, strlen(cred->region));
        hmac(k3, k2, 32, cred->service, strlen(cred->service));
        hmac(key, k3, 32, "aws4_request", strlen("aws4_request"));
        sodium_memzero(secret.p, secret.n);
        sodium_memzero(k1, sizeof(k1));
        sodium_memzero(k2, sizeof(k2));
        sodium_memzero(k3, sizeof(k3));
        ej_buf_free(&secret);
}

enum ej_status ej_sigv4_authorization(const struct ej_sigv4_credentials *cred, const char *amz_date,
                                      const struct ej_sigv4_request *req, char *out,
                                      size_t out_size, char signature[EJ_SIGV4_HEX_LEN],
                                      struct ej_err *err)
{
        struct ej_buf canon;
        struct ej_buf sts;
        char signed_headers[1024];
        char sig[EJ_SIGV4_HEX_LEN];
        unsigned char key[32];
        unsigned char mac[32];
        enum ej_status st;
        int n;

        ej_buf_init(&canon);
        ej_buf_init(&sts);
        if (strlen(amz_date) != EJ_SIGV4_DATE_LEN - 1) {
                st = ej_err_set(err, EJ_ERR_INVALID, NULL, "sigv4: malformed date");
                goto out;
        }
        st = ej_sigv4_canonical_request(req, &canon, signed_headers, sizeof(signed_headers), err);
        if (st != EJ_OK)
                goto out;
        ej_sigv4_string_to_sign(cred, amz_date, canon.p, canon.n, &sts);
        ej_sigv4_signing_key(cred, amz_date, key);
        hmac(mac, key, sizeof(key), sts.p, sts.n);
        sodium_bin2hex(sig, sizeof(sig), mac, sizeof(mac));
        sodium_memzero(key, sizeof(key));
        n = snprintf(out, out_size,
                     "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, "
                     "Signature=%s",
                     cred->access_key, amz_date, cred->region, cred->service, signed_headers, sig);
        if (n < 0 || (size_t)n >= out_size) {
                st = ej_err_set(err, EJ_ERR_INVALID, NULL, "sigv4: authorization too long");
                goto out;
        }
        if (signature)
                memcpy(signature, sig, sizeof(sig));
out:
        ej_buf_free(&canon);
        ej_buf_free(&sts);
        return st;
}

void ej_sigv4_amz_date(time_t t, char out[EJ_SIGV4_DATE_LEN])
{
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(out, EJ_SIGV4_DATE_LEN, "%Y%m%dT%H%M%SZ", &tm);
}
