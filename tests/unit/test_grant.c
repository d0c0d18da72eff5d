/* Tests of the signed file grants (services/common/grant.c): round trip, every refusal reason,
 * tampering, keys. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "check.h"
#include "grant.h"

#define FILE_A "3f2b8c1e-0000-4000-8000-00000000000a"
#define FILE_B "3f2b8c1e-0000-4000-8000-00000000000b"
#define USER_1 "9a7d0c55-0000-4000-8000-000000000001"
#define USER_2 "9a7d0c55-0000-4000-8000-000000000002"
#define NOW    1700000000000LL

static struct ej_grant_key key;
static struct ej_grant_key other_key;

static void test_keys(void)
{
        struct ej_err err;
        struct ej_grant_key k;
        char hex[2 * EJ_GRANT_KEY_BYTES + 2];

        memset(hex, 'a', 2 * EJ_GRANT_KEY_BYTES);
        hex[2 * EJ_GRANT_KEY_BYTES] = '\0';
        CHECK(ej_grant_key_parse(hex, &k, &err) == EJ_OK);
        CHECK(k.k[0] == 0xaa && k.k[EJ_GRANT_KEY_BYTES - 1] == 0xaa);
        hex[5] = 'z';
        CHECK(ej_grant_key_parse(hex, &k, &err) == EJ_ERR_INVALID);
        hex[5] = 'a';
        hex[2 * EJ_GRANT_KEY_BYTES - 1] = '\0';
        CHECK(ej_grant_key_parse(hex, &k, &err) == EJ_ERR_INVALID);
        hex[2 * EJ_GRANT_KEY_BYTES - 1] = 'a';
        hex[2 * EJ_GRANT_KEY_BYTES] = 'a';
        hex[2 * EJ_GRANT_KEY_BYTES + 1] = '\0';
        CHECK(ej_grant_key_parse(hex, &k, &err) == EJ_ERR_INVALID);
        CHECK(ej_grant_key_parse("", &k, &err) == EJ_ERR_INVALID);
        CHECK(ej_grant_key_parse(NULL, &k, &err) == EJ_ERR_INVALID);
}

static void test_round_trip(void)
{
        struct ej_err err;
        char tok[EJ_GRANT_TOKEN_MAX];
        char purpose[32];

        CHECK(ej_grant_issue(&key, FILE_A, USER_1, "review", NOW + 60000, tok, sizeof(tok), &err) ==
              EJ_OK);
        /* URL-safe alphabet, no padding. */
        CHECK(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
              strlen(tok));
        CHECK(strlen(tok) < 200);
        CHECK(ej_grant_verify(&key, tok, FILE_A, USER_1, NOW, purpose, sizeof(purpose), &err) ==
              EJ_OK);
        CHECK(strcmp(purpose, "review") == 0);
        CHECK(ej_grant_verify(&key, tok, FILE_A, USER_1, NOW + 59999, NULL, 0, &err) == EJ_OK);

        /* Expired: at the expiry instant and after. */
        CHECK(ej_grant_verify(&key, tok, FILE_A, USER_1, NOW + 60000, purpose, sizeof(purpose),
                              &err) == EJ_ERR_FORBIDDEN);
        CHECK(strstr(err.msg, "expired") != NULL);
        CHECK(purpose[0] == '\0');
        /* Another file, another user, anonymous. */
        CHECK(ej_grant_verify(&key, tok, FILE_B, USER_1, NOW, NULL, 0, &err) == EJ_ERR_FORBIDDEN);
        CHECK(strstr(err.msg, "another file") != NULL);
        CHECK(ej_grant_verify(&key, tok, FILE_A, USER_2, NOW, NULL, 0, &err) == EJ_ERR_FORBIDDEN);
        CHECK(strstr(err.msg, "another user") != NULL);
        CHECK(ej_grant_verify(&key, tok, FILE_A, "", NOW, NULL, 0, &err) == EJ_ERR_FORBIDDEN);
        CHECK(ej_grant_verify(&key, tok, FILE_A, NULL, NOW, NULL, 0, &err) == EJ_ERR_FORBIDDEN);
        /* Another key. */
        CHECK(ej_grant_verify(&other_key, tok, FILE_A, USER_1, NOW, NULL, 0, &err) ==
              EJ_ERR_FORBIDDEN);
        CHECK(strstr(err.msg, "signature") != NULL);
}

static void test_any_user(void)
{
        struct ej_err err;
        char tok[EJ_GRANT_TOKEN_MAX];

        CHECK(ej_grant_issue(&key, FILE_A, EJ_GRANT_ANY_USER, "galley", NOW + 1000, tok,
                             sizeof(tok), &err) == EJ_OK);
        CHECK(ej_grant_verify(&key, tok, FILE_A, USER_1, NOW, NULL, 0, &err) == EJ_OK);
        CHECK(ej_grant_verify(&key, tok, FILE_A, "", NOW, NULL, 0, &err) == EJ_OK);
        CHECK(ej_grant_verify(&key, tok, FILE_B, "", NOW, NULL, 0, &err) == EJ_ERR_FORBIDDEN);
}

static void test_tampering(void)
{
        struct ej_err err;
        char tok[EJ_GRANT_TOKEN_MAX];
        char forged[EJ_GRANT_TOKEN_MAX];
        unsigned char raw[EJ_GRANT_TOKEN_MAX];
        size_t len = 0;
        int flips_refused = 1;

        CHECK(ej_grant_issue(&key, FILE_A, USER_1, "read", NOW + 1000, tok, sizeof(tok), &err) ==
              EJ_OK);
        /* Every single-bit change of the decoded token is refused. */
        CHECK(sodium_base642bin(raw, sizeof(raw), tok, strlen(tok), NULL, &len, NULL,
                                sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0);
        for (size_t i = 0; i < len; i++) {
                for (int b = 0; b < 8; b++) {
                        raw[i] ^= (unsigned char)(1u << b);
                        sodium_bin2base64(forged, sizeof(forged), raw, len,
                                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
                        if (ej_grant_verify(&key, forged, FILE_A, USER_1, NOW, NULL, 0, &err) !=
                            EJ_ERR_FORBIDDEN)
                                flips_refused = 0;
                        raw[i] ^= (unsigned char)(1u << b);
                }
        }
        CHECK(flips_refused);
        /* Truncated, extended, empty, garbage. */
        snprintf(forged, sizeof(forged), "%s", tok);
        forged[strlen(forged) - 3] = '\0';
        CHECK(ej_grant_verify(&key, forged, FILE_A, USER_1, NOW, NULL, 0, &err) ==
              EJ_ERR_FORBIDDEN);
        snprintf(forged, sizeof(forged), "%sAAAA", tok);
        CHECK(ej_grant_verify(&key, forged, FILE_A, USER_1, NOW, NULL, 0, &err) ==
              EJ_ERR_FORBIDDEN);
        CHECK(ej_grant_verify(&key, "", FILE_A, USER_1, NOW, NULL, 0, &err) == EJ_ERR_FORBIDDEN);
        CHECK(ej_grant_verify(&key, NULL, FILE_A, USER_1, NOW, NULL, 0, &err) == EJ_ERR_FORBIDDEN);
        CHECK(ej_grant_verify(&key, "!!!!", FILE_A, USER_1, NOW, NULL, 0, &err) ==
              EJ_ERR_FORBIDDEN);
        CHECK(ej_grant_verify(&key, "AQ", FILE_A, USER_1, NOW, NULL, 0, &err) == EJ_ERR_FORBIDDEN);
}

static void test_fields(void)
{
        struct ej_err err;
        char tok[EJ_GRANT_TOKEN_MAX];
        char longf[EJ_GRANT_FIELD_MAX + 2];
        char small[8];

        CHECK(ej_grant_issue(&key, "", USER_1, "read", NOW, tok, sizeof(tok), &err) ==
              EJ_ERR_INVALID);
        CHECK(ej_grant_issue(&key, FILE_A, "", "read", NOW, tok, sizeof(tok), &err) ==
              EJ_ERR_INVALID);
        CHECK(ej_grant_issue(&key, FILE_A, USER_1, "", NOW, tok, sizeof(tok), &err) ==
              EJ_ERR_INVALID);
        /* A newline would let one field spill into the next. */
        CHECK(ej_grant_issue(&key, FILE_A "\n" USER_2, USER_1, "read", NOW, tok, sizeof(tok),
                             &err) == EJ_ERR_INVALID);
        CHECK(ej_grant_issue(&key, FILE_A, USER_1,
                             "re\x01"
                             "ad",
                             NOW, tok, sizeof(tok), &err) == EJ_ERR_INVALID);
        memset(longf, 'f', sizeof(longf) - 1);
        longf[sizeof(longf) - 1] = '\0';
        CHECK(ej_grant_issue(&key, longf, USER_1, "read", NOW, tok, sizeof(tok), &err) ==
              EJ_ERR_INVALID);
        longf[EJ_GRANT_FIELD_MAX] = '\0';
        CHECK(ej_grant_issue(&key, longf, longf, longf, NOW + 5, tok, sizeof(tok), &err) == EJ_OK);
        CHECK(ej_grant_verify(&key, tok, longf, longf, NOW, NULL, 0, &err) == EJ_OK);
        CHECK(ej_grant_issue(&key, FILE_A, USER_1, "read", NOW, small, sizeof(small), &err) ==
              EJ_ERR_INVALID);
}

int main(void)
{
        if (sodium_init() < 0) {
                fprintf(stderr, "test_grant: sodium_init failed\n");
                return 1;
        }
        randombytes_buf(key.k, sizeof(key.k));
        randombytes_buf(other_key.k, sizeof(other_key.k));
        test_keys();
        test_round_trip();
        test_any_user();
        test_tampering();
        test_fields();
        return check_report();
}
