#include "grant.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "config.h"

#define GRANT_VERSION 1
#define MAC_BYTES     crypto_auth_hmacsha256_BYTES
/* version byte + three fields and an expiry, each ended by '\n' but the last */
#define PAYLOAD_MAX (1 + 3 * (EJ_GRANT_FIELD_MAX + 1) + 24)

enum ej_status ej_grant_key_parse(const char *hex, struct ej_grant_key *out, struct ej_err *err)
{
        size_t bin_len = 0;
        const char *end = NULL;

        if (hex == NULL || strlen(hex) != 2 * EJ_GRANT_KEY_BYTES ||
            sodium_hex2bin(out->k, sizeof(out->k), hex, strlen(hex), NULL, &bin_len, &end) != 0 ||
            bin_len != EJ_GRANT_KEY_BYTES || *end != '\0')
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "a grant key is %d hex digits",
                                  2 * EJ_GRANT_KEY_BYTES);
        return EJ_OK;
}

enum ej_status ej_grant_key_from_env(struct ej_grant_key *out, struct ej_err *err)
{
        const char *v = ej_env_str(EJ_GRANT_KEY_ENV, NULL);

        if (v == NULL)
                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                  "%s is not set (64 hex digits shared by the services)",
                                  EJ_GRANT_KEY_ENV);
        if (ej_grant_key_parse(v, out, err) != EJ_OK) {
                ej_err_prefix(err, EJ_GRANT_KEY_ENV);
                return EJ_ERR_INVALID;
        }
        return EJ_OK;
}

/* True when `s` is 1..EJ_GRANT_FIELD_MAX bytes without control characters. */
static int field_ok(const char *s)
{
        size_t n;

        if (s == NULL)
                return 0;
        n = strlen(s);
        if (n == 0 || n > EJ_GRANT_FIELD_MAX)
                return 0;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return 0;
        return 1;
}

enum ej_status ej_grant_issue(const struct ej_grant_key *key, const char *file_id,
                              const char *user_id, const char *purpose, int64_t expires_at_ms,
                              char *out, size_t out_size, struct ej_err *err)
{
        unsigned char raw[PAYLOAD_MAX + MAC_BYTES];
        int n;

        if (!field_ok(file_id) || !field_ok(user_id) || !field_ok(purpose))
                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                  "a grant's file, user and purpose are 1 to %d printable bytes",
                                  EJ_GRANT_FIELD_MAX);
        raw[0] = GRANT_VERSION;
        n = snprintf((char *)raw + 1, PAYLOAD_MAX - 1, "%s\n%s\n%s\n%" PRId64, file_id, user_id,
                     purpose, expires_at_ms);
        if (n < 0 || n >= PAYLOAD_MAX - 1)
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "grant fields too long");
        crypto_auth_hmacsha256(raw + 1 + n, raw, (unsigned long long)(1 + n), key->k);
        if (sodium_base64_encoded_len((size_t)(1 + n) + MAC_BYTES,
                                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) > out_size)
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "grant buffer too small");
        sodium_bin2base64(out, out_size, raw, (size_t)(1 + n) + MAC_BYTES,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        sodium_memzero(raw, sizeof(raw));
        return EJ_OK;
}

/* Splits the signed payload (after the version byte) into its four fields, in place. */
static int split_payload(char *p, char **fields)
{
        for (int i = 0; i < 3; i++) {
                char *nl = strchr(p, '\n');

                if (nl == NULL)
                        return 0;
                *nl = '\0';
                fields[i] = p;
                p = nl + 1;
        }
        fields[3] = p;
        return 1;
}

enum ej_status ej_grant_verify(const struct ej_grant_key *key, const char *token,
                               const char *file_id, const char *user_id, int64_t now_ms,
                               char *purpose, size_t purpose_size, struct ej_err *err)
{
        unsigned char raw[PAYLOAD_MAX + MAC_BYTES + 1];
        char *fields[4];
        size_t len = 0;
        size_t body;
        char *end = NULL;
        long long expiry;

        if (purpose != NULL && purpose_size > 0)
                purpose[0] = '\0';
        if (token == NULL || token[0] == '\0')
                return ej_err_set(err, EJ_ERR_FORBIDDEN, "grant", "no grant");
        if (strlen(token) >= EJ_GRANT_TOKEN_MAX ||
            sodium_base642bin(raw, sizeof(raw) - 1, token, strlen(token), NULL, &len, NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
            len < 1 + 7 + MAC_BYTES || raw[0] != GRANT_VERSION)
                return ej_err_set(err, EJ_ERR_FORBIDDEN, "grant", "malformed grant");
        body = len - MAC_BYTES;
        if (crypto_auth_hmacsha256_verify(raw + body, raw, body, key->k) != 0)
                return ej_err_set(err, EJ_ERR_FORBIDDEN, "grant", "grant signature is not valid");
        raw[body] = '\0';
        if (memchr(raw + 1, '\0', body - 1) != NULL || !split_payload((char *)raw + 1, fields))
                return ej_err_set(err, EJ_ERR_FORBIDDEN, "grant", "malformed grant");
        expiry = strtoll(fields[3], &end, 10);
        if (end == fields[3] || *end != '\0')
                return ej_err_set(err, EJ_ERR_FORBIDDEN, "grant", "malformed grant");
        if (file_id == NULL || strcmp(fields[0], file_id) != 0)
                return ej_err_set(err, EJ_ERR_FORBIDDEN, "grant", "grant is for another file");
        if (strcmp(fields[1], EJ_GRANT_ANY_USER) != 0 &&
            (user_id == NULL || strcmp(fields[1], user_id) != 0))
                return ej_err_set(err, EJ_ERR_FORBIDDEN, "grant", "grant is for another user");
        if (now_ms >= expiry)
                return ej_err_set(err, EJ_ERR_FORBIDDEN, "grant", "grant has expired");
        if (purpose != NULL && purpose_size > 0 &&
            (size_t)snprintf(purpose, purpose_size, "%s", fields[2]) >= purpose_size)
                purpose[0] = '\0';
        return EJ_OK;
}
