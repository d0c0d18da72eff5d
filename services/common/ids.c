#include "ids.h"

#include <stdio.h>
#include <time.h>

#include <sodium.h>

enum ej_status ej_ids_init(struct ej_err *err)
{
        if (sodium_init() < 0)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "libsodium failed to initialise");
        return EJ_OK;
}

void ej_uuid(char out[EJ_UUID_LEN])
{
        unsigned char b[16];

        randombytes_buf(b, sizeof(b));
        b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
        b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
        snprintf(out, EJ_UUID_LEN,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                 b[15]);
}

bool ej_uuid_valid(const char *s)
{
        size_t i = 0;

        if (s == NULL)
                return false;
        for (; s[i]; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                char c = s[i];

                if (i >= 36)
                        return false;
                if (dash ? c != '-'
                         : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                             (c >= 'A' && c <= 'F')))
                        return false;
        }
        return i == 36;
}

void ej_random_token(char *out, size_t out_size, size_t nbytes)
{
        unsigned char b[64];

        if (nbytes > sizeof(b))
                nbytes = sizeof(b);
        randombytes_buf(b, nbytes);
        sodium_bin2base64(out, out_size, b, nbytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        sodium_memzero(b, sizeof(b));
}

void ej_sha256_hex(const void *p, size_t n, char out[EJ_SHA256_HEX_LEN])
{
        unsigned char h[crypto_hash_sha256_BYTES];

        crypto_hash_sha256(h, p, n);
        sodium_bin2hex(out, EJ_SHA256_HEX_LEN, h, sizeof(h));
}

long long ej_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long ej_mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
