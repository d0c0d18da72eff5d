/* Unit tests for ids.c: UUIDs, random tokens, SHA-256 and clocks. */
#include <ctype.h>
#include <string.h>

#include "check.h"
#include "ids.h"

static int is_lower_hex(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* True when `s` is a lower-case RFC 4122 version 4 UUID. */
static int uuid_v4_shape(const char *s)
{
        if (strlen(s) != 36)
                return 0;
        for (int i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return 0;
                } else if (!is_lower_hex(s[i])) {
                        return 0;
                }
        }
        return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_uuid(void)
{
        char a[EJ_UUID_LEN], b[EJ_UUID_LEN];
        int all_ok = 1;

        ej_uuid(a);
        ej_uuid(b);
        CHECK(uuid_v4_shape(a));
        CHECK(uuid_v4_shape(b));
        CHECK(strcmp(a, b) != 0);
        /* Version and variant bits hold for every draw, not by luck. */
        for (int i = 0; i < 2000; i++) {
                ej_uuid(a);
                all_ok = all_ok && uuid_v4_shape(a);
        }
        CHECK(all_ok);
        CHECK(!uuid_v4_shape("0b6f1d2e-7f5c-1a39-9d0e-3c1b2a4f5e6d")); /* the check can fail */
}

static void test_uuid_valid(void)
{
        char a[EJ_UUID_LEN];

        ej_uuid(a);
        CHECK(ej_uuid_valid(a));
        CHECK(ej_uuid_valid("0B6F1D2E-7F5C-4A39-9D0E-3C1B2A4F5E6D"));
        CHECK(!ej_uuid_valid(NULL));
        CHECK(!ej_uuid_valid(""));
        CHECK(!ej_uuid_valid("0b6f1d2e-7f5c-4a39-9d0e-3c1b2a4f5e6"));   /* short */
        CHECK(!ej_uuid_valid("0b6f1d2e-7f5c-4a39-9d0e-3c1b2a4f5e6d0")); /* long */
        CHECK(!ej_uuid_valid("0b6f1d2e07f5c-4a39-9d0e-3c1b2a4f5e6d"));  /* dash missing */
        CHECK(!ej_uuid_valid("0b6f1d2g-7f5c-4a39-9d0e-3c1b2a4f5e6d"));  /* not hex */
        CHECK(!ej_uuid_valid("0b6f1d2e-7f5c-4a39-9d0e-3c1b2a4f5e6'"));  /* quote */
}

static int token_alphabet_ok(const char *s)
{
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
                        return 0;
        return 1;
}

static void test_token(void)
{
        char t1[64], t2[64], small[16];

        ej_random_token(t1, sizeof(t1), 32);
        ej_random_token(t2, sizeof(t2), 32);
        CHECK(strlen(t1) == 43); /* 32 bytes, base64 without padding */
        CHECK(token_alphabet_ok(t1) && token_alphabet_ok(t2));
        CHECK(strcmp(t1, t2) != 0);
        ej_random_token(t1, sizeof(t1), 16);
        CHECK(strlen(t1) == 22);
        CHECK(token_alphabet_ok(t1));
        ej_random_token(small, sizeof(small), 9);
        CHECK(strlen(small) == 12);
        CHECK(strchr(t1, '=') == NULL && strchr(t1, '+') == NULL && strchr(t1, '/') == NULL);
}

static void test_sha256(void)
{
        char hex[EJ_SHA256_HEX_LEN];

        /* FIPS 180-2 test vectors. */
        ej_sha256_hex("abc", 3, hex);
        CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
        ej_sha256_hex("", 0, hex);
        CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
        ej_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
        CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
        CHECK(strlen(hex) == 64);
}

static void test_clocks(void)
{
        long long now = ej_now_ms();
        long long m1 = ej_mono_ms(), m2 = ej_mono_ms();

        CHECK(now > 1600000000000LL);  /* after 2020 */
        CHECK(now < 32503680000000LL); /* before 3000: milliseconds, not micro */
        CHECK(m2 >= m1);
        CHECK(m1 >= 0);
}

int main(void)
{
        struct ej_err err;

        CHECK(ej_ids_init(&err) == EJ_OK);
        test_uuid();
        test_uuid_valid();
        test_token();
        test_sha256();
        test_clocks();
        return check_report();
}
