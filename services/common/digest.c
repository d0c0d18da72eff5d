/* digest.c: streaming SHA-256 on libcrypto's EVP interface (digest.h). */
#include "digest.h"

#include <openssl/evp.h>

enum ej_status ej_sha256_init(struct ej_sha256 *h, struct ej_err *err)
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();

        h->ctx = NULL;
        if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(ctx);
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot start a SHA-256 hash");
        }
        h->ctx = ctx;
        return EJ_OK;
}

void ej_sha256_update(struct ej_sha256 *h, const void *p, size_t n)
{
        /* With a SHA-256 context from init, EVP_DigestUpdate fails only on a NULL context. */
        if (h->ctx != NULL && n > 0)
                (void)EVP_DigestUpdate(h->ctx, p, n);
}

void ej_sha256_final_hex(struct ej_sha256 *h, char out[EJ_SHA256_HEX_LEN])
{
        static const char digits[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;

        if (h->ctx == NULL || EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len != 32)
                len = 0;
        for (unsigned int i = 0; i < len; i++) {
                out[2 * i] = digits[md[i] >> 4];
                out[2 * i + 1] = digits[md[i] & 15];
        }
        out[2 * len] = '\0';
        ej_sha256_free(h);
}

void ej_sha256_free(struct ej_sha256 *h)
{
        EVP_MD_CTX_free(h->ctx);
        h->ctx = NULL;
}
