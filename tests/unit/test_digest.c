/* Unit tests for digest.c: streaming SHA-256 against the known vectors and the one-shot hash. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "digest.h"
#include "ids.h"

static void test_vectors(void)
{
        struct ej_sha256 h;
        struct ej_err err;
        char hex[EJ_SHA256_HEX_LEN];

        CHECK(ej_sha256_init(&h, &err) == EJ_OK);
        ej_sha256_final_hex(&h, hex);
        CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
        CHECK(h.ctx == NULL);

        CHECK(ej_sha256_init(&h, &err) == EJ_OK);
        ej_sha256_update(&h, "abc", 3);
        ej_sha256_final_hex(&h, hex);
        CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
}

/* Any split of the input into updates gives the one-shot hash of the whole. */
static void test_streaming_matches_one_shot(void)
{
        static uint8_t data[300000];
        char whole[EJ_SHA256_HEX_LEN], parts[EJ_SHA256_HEX_LEN];
        const size_t steps[] = {1, 63, 64, 65, 4096, 262144};
        struct ej_err err;

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 2654435761u >> 13);
        ej_sha256_hex(data, sizeof(data), whole);
        for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
                struct ej_sha256 h;

                CHECK(ej_sha256_init(&h, &err) == EJ_OK);
                for (size_t off = 0; off < sizeof(data); off += steps[s]) {
                        size_t n = sizeof(data) - off < steps[s] ? sizeof(data) - off : steps[s];

                        ej_sha256_update(&h, data + off, n);
                }
                ej_sha256_final_hex(&h, parts);
                CHECK(strcmp(parts, whole) == 0);
        }
}

/* free on an unfinished, a finished and a zeroed hash: no leak, no double free. */
static void test_free(void)
{
        struct ej_sha256 h = {0};
        struct ej_err err;
        char hex[EJ_SHA256_HEX_LEN];

        ej_sha256_free(&h);
        CHECK(ej_sha256_init(&h, &err) == EJ_OK);
        ej_sha256_update(&h, "x", 1);
        ej_sha256_free(&h);
        CHECK(h.ctx == NULL);
        ej_sha256_free(&h);
        ej_sha256_final_hex(&h, hex); /* finishing a released hash gives the empty string */
        CHECK(hex[0] == '\0');
}

int main(void)
{
        struct ej_err err;

        CHECK(ej_ids_init(&err) == EJ_OK);
        test_vectors();
        test_streaming_matches_one_shot();
        test_free();
        return check_report();
}
