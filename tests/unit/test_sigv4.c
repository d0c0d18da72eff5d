/*
 * Tests of AWS Signature Version 4 (services/common/sigv4.c) against AWS's published test suite
 * (aws-sig-v4-test-suite: example key AKIDEXAMPLE, region us-east-1, service "service", date
 * 20150830T123600Z) and the GET-with-Range example of the S3 documentation, which also signs
 * x-amz-content-sha256. For each case: the canonical request, the hash in the string to sign,
 * and the signature.
 */
#include <string.h>

#include <sodium.h>

#include "check.h"
#include "sigv4.h"

#define DATE       "20150830T123600Z"
#define HOST       "example.amazonaws.com"
#define EMPTY_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static const struct ej_sigv4_credentials suite = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service"};

struct vector {
        const char *name;
        const char *method;
        const char *path;
        const char *query;
        struct ej_sigv4_header headers[8];
        size_t n_headers;
        const char *payload_hash;
        const char *canonical;    /* the canonical request */
        const char *sts_hash;     /* last line of the string to sign */
        const char *signed_names; /* SignedHeaders */
        const char *signature;
};

static const struct vector vectors[] = {
    {"get-vanilla",
     "GET",
     "/",
     "",
     {{"Host", HOST}, {"X-Amz-Date", DATE}},
     2,
     EMPTY_HASH,
     "GET\n/\n\nhost:" HOST "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_HASH,
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"post-vanilla",
     "POST",
     "/",
     "",
     {{"Host", HOST}, {"X-Amz-Date", DATE}},
     2,
     EMPTY_HASH,
     "POST\n/\n\nhost:" HOST "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_HASH,
     NULL,
     "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-x-www-form-urlencoded",
     "POST",
     "/",
     "",
     {{"Content-Type", "application/x-www-form-urlencoded"}, {"Host", HOST}, {"X-Amz-Date", DATE}},
     3,
     "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:" HOST "\nx-amz-date:" DATE
     "\n\ncontent-type;host;x-amz-date\n"
     "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
     "content-type;host;x-amz-date",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
    {"get-header-value-trim",
     "GET",
     "/",
     "",
     {{"Host", HOST},
      {"My-Header1", " value1"},
      {"My-Header2", " \"a   b   c\""},
      {"X-Amz-Date", DATE}},
     4,
     EMPTY_HASH,
     "GET\n/\n\nhost:" HOST "\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:" DATE
     "\n\nhost;my-header1;my-header2;x-amz-date\n" EMPTY_HASH,
     "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
     "host;my-header1;my-header2;x-amz-date",
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    {"get-header-value-order",
     "GET",
     "/",
     "",
     {{"Host", HOST},
      {"My-Header1", "value4"},
      {"My-Header1", "value1"},
      {"My-Header1", "value3"},
      {"My-Header1", "value2"},
      {"X-Amz-Date", DATE}},
     6,
     EMPTY_HASH,
     "GET\n/\n\nhost:" HOST "\nmy-header1:value4,value1,value3,value2\nx-amz-date:" DATE
     "\n\nhost;my-header1;x-amz-date\n" EMPTY_HASH,
     "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
     "host;my-header1;x-amz-date",
     "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
    {"get-header-key-duplicate",
     "GET",
     "/",
     "",
     {{"Host", HOST},
      {"My-Header1", "value2"},
      {"My-Header1", "value2"},
      {"My-Header1", "value1"},
      {"X-Amz-Date", DATE}},
     5,
     EMPTY_HASH,
     "GET\n/\n\nhost:" HOST "\nmy-header1:value2,value2,value1\nx-amz-date:" DATE
     "\n\nhost;my-header1;x-amz-date\n" EMPTY_HASH,
     "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
     "host;my-header1;x-amz-date",
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {"get-vanilla-query-order-key-case",
     "GET",
     "/",
     "Param2=value2&Param1=value1",
     {{"Host", HOST}, {"X-Amz-Date", DATE}},
     2,
     EMPTY_HASH,
     "GET\n/\nParam1=value1&Param2=value2\nhost:" HOST "\nx-amz-date:" DATE
     "\n\nhost;x-amz-date\n" EMPTY_HASH,
     "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
     "host;x-amz-date",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"get-vanilla-query-order-key",
     "GET",
     "/",
     "Param1=value2&Param1=Value1",
     {{"Host", HOST}, {"X-Amz-Date", DATE}},
     2,
     EMPTY_HASH,
     "GET\n/\nParam1=Value1&Param1=value2\nhost:" HOST "\nx-amz-date:" DATE
     "\n\nhost;x-amz-date\n" EMPTY_HASH,
     "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
     "host;x-amz-date",
     "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
    {"get-vanilla-empty-query-key",
     "GET",
     "/",
     "Param1=value1",
     {{"Host", HOST}, {"X-Amz-Date", DATE}},
     2,
     EMPTY_HASH,
     "GET\n/\nParam1=value1\nhost:" HOST "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_HASH,
     "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
     "host;x-amz-date",
     "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
    {"get-vanilla-utf8-query",
     "GET",
     "/",
     "\xe1\x88\xb4=bar",
     {{"Host", HOST}, {"X-Amz-Date", DATE}},
     2,
     EMPTY_HASH,
     "GET\n/\n%E1%88%B4=bar\nhost:" HOST "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_HASH,
     "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
     "host;x-amz-date",
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    {"get-utf8",
     "GET",
     "/\xe1\x88\xb4",
     "",
     {{"Host", HOST}, {"X-Amz-Date", DATE}},
     2,
     EMPTY_HASH,
     "GET\n/%E1%88%B4\n\nhost:" HOST "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_HASH,
     "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
     "host;x-amz-date",
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
    {"get-unreserved",
     "GET",
     "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     "",
     {{"Host", HOST}, {"X-Amz-Date", DATE}},
     2,
     EMPTY_HASH,
     "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:" HOST
     "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_HASH,
     "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
     "host;x-amz-date",
     "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
    {"normalize-path/get-relative-relative",
     "GET",
     "/example1/example2/../..",
     "",
     {{"Host", HOST}, {"X-Amz-Date", DATE}},
     2,
     EMPTY_HASH,
     "GET\n/\n\nhost:" HOST "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_HASH,
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"normalize-path/get-slash",
     "GET",
     "//",
     "",
     {{"Host", HOST}, {"X-Amz-Date", DATE}},
     2,
     EMPTY_HASH,
     "GET\n/\n\nhost:" HOST "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_HASH,
     NULL,
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
};

static void sha256_hex(const char *p, size_t n, char out[EJ_SIGV4_HEX_LEN])
{
        unsigned char d[32];

        crypto_hash_sha256(d, (const unsigned char *)p, n);
        sodium_bin2hex(out, EJ_SIGV4_HEX_LEN, d, sizeof(d));
}

static void check_vector(const struct ej_sigv4_credentials *cred, const char *date, int s3,
                         const struct vector *v)
{
        struct ej_sigv4_request req = {v->method,    v->path,         v->query, v->headers,
                                       v->n_headers, v->payload_hash, s3 != 0};
        struct ej_buf canon;
        struct ej_buf sts;
        struct ej_err err;
        char names[256];
        char hash[EJ_SIGV4_HEX_LEN];
        char auth[1024];
        char sig[EJ_SIGV4_HEX_LEN];
        char want_auth[1024];
        int ok;

        ej_buf_init(&canon);
        ej_buf_init(&sts);
        CHECK(ej_sigv4_canonical_request(&req, &canon, names, sizeof(names), &err) == EJ_OK);
        ok = canon.p && strcmp(canon.p, v->canonical) == 0;
        CHECK(ok);
        if (!ok)
                fprintf(stderr, "%s: canonical request\n%s\n--- wanted\n%s\n", v->name,
                        canon.p ? canon.p : "", v->canonical);
        CHECK(strcmp(names, v->signed_names) == 0);
        ej_sigv4_string_to_sign(cred, date, canon.p ? canon.p : "", canon.n, &sts);
        sha256_hex(canon.p ? canon.p : "", canon.n, hash);
        if (v->sts_hash)
                CHECK(strcmp(hash, v->sts_hash) == 0);
        CHECK(sts.p && strncmp(sts.p, "AWS4-HMAC-SHA256\n", 17) == 0);
        CHECK(sts.p && strstr(sts.p, hash) != NULL);
        CHECK(ej_sigv4_authorization(cred, date, &req, auth, sizeof(auth), sig, &err) == EJ_OK);
        ok = strcmp(sig, v->signature) == 0;
        CHECK(ok);
        if (!ok)
                fprintf(stderr, "%s: signature %s, wanted %s\n", v->name, sig, v->signature);
        snprintf(want_auth, sizeof(want_auth),
                 "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, "
                 "Signature=%s",
                 cred->access_key, date, cred->region, cred->service, v->signed_names,
                 v->signature);
        CHECK(strcmp(auth, want_auth) == 0);
        ej_buf_free(&canon);
        ej_buf_free(&sts);
}

/* The S3 documentation's example: GET /test.txt with Range: bytes=0-9 and the empty payload's
 * hash in x-amz-content-sha256. */
static void test_s3_example(void)
{
        static const struct ej_sigv4_credentials s3 = {
            "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"};
        const struct vector v = {
            "s3-get-object-range",
            "GET",
            "/test.txt",
            NULL,
            {{"Host", "examplebucket.s3.amazonaws.com"},
             {"Range", "bytes=0-9"},
             {"x-amz-content-sha256", EMPTY_HASH},
             {"x-amz-date", "20130524T000000Z"}},
            4,
            EMPTY_HASH,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:" EMPTY_HASH "\nx-amz-date:20130524T000000Z\n\n"
            "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_HASH,
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
            "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"};

        check_vector(&s3, "20130524T000000Z", 1, &v);
}

static void test_signing_key(void)
{
        unsigned char key[32];
        unsigned char other[32];
        struct ej_sigv4_credentials west = suite;

        ej_sigv4_signing_key(&suite, DATE, key);
        west.region = "us-west-2";
        ej_sigv4_signing_key(&west, DATE, other);
        CHECK(memcmp(key, other, 32) != 0);
        ej_sigv4_signing_key(&suite, "20150831T000000Z", other);
        CHECK(memcmp(key, other, 32) != 0);
        ej_sigv4_signing_key(&suite, "20150830T000000Z", other);
        CHECK(memcmp(key, other, 32) == 0);
}

static void test_helpers(void)
{
        struct ej_buf b;
        char date[EJ_SIGV4_DATE_LEN];
        char auth[64];
        struct ej_err err;
        struct ej_sigv4_header h[] = {{"Host", HOST}, {"X-Amz-Date", DATE}};
        struct ej_sigv4_header bad[] = {{"", "x"}};
        struct ej_sigv4_request req = {"GET", "/", NULL, h, 2, EMPTY_HASH, false};
        struct ej_sigv4_request badreq = {"GET", "/", NULL, bad, 1, EMPTY_HASH, false};
        char names[64];

        ej_buf_init(&b);
        ej_sigv4_uri_encode(&b, "a b/c~ü+=", strlen("a b/c~ü+="), true);
        CHECK(strcmp(b.p, "a%20b/c~%C3%BC%2B%3D") == 0);
        ej_buf_reset(&b);
        ej_sigv4_uri_encode(&b, "a/b", 3, false);
        CHECK(strcmp(b.p, "a%2Fb") == 0);
        ej_sigv4_amz_date(1440938160, date);
        CHECK(strcmp(date, DATE) == 0);
        /* An S3 path is neither normalised nor stripped of empty segments. */
        {
                struct ej_sigv4_request s3req = {"GET", "/bucket/a/../b//c",       "uploads", h,
                                                 2,     EJ_SIGV4_UNSIGNED_PAYLOAD, true};

                CHECK(ej_sigv4_canonical_request(&s3req, &b, names, sizeof(names), &err) == EJ_OK);
                CHECK(strncmp(b.p, "GET\n/bucket/a/../b//c\nuploads=\n", 31) == 0);
                CHECK(strstr(b.p, "\nUNSIGNED-PAYLOAD") != NULL);
        }
        /* An already-encoded query is not encoded twice. */
        {
                struct ej_sigv4_request q = {"GET",      "/", "uploadId=a%2Fb&partNumber=2", h, 2,
                                             EMPTY_HASH, true};

                CHECK(ej_sigv4_canonical_request(&q, &b, names, sizeof(names), &err) == EJ_OK);
                CHECK(strstr(b.p, "\npartNumber=2&uploadId=a%2Fb\n") != NULL);
        }
        CHECK(ej_sigv4_canonical_request(&badreq, &b, names, sizeof(names), &err) ==
              EJ_ERR_INVALID);
        CHECK(ej_sigv4_canonical_request(&req, &b, names, 4, &err) == EJ_ERR_INVALID);
        CHECK(ej_sigv4_authorization(&suite, DATE, &req, auth, sizeof(auth), NULL, &err) ==
              EJ_ERR_INVALID);
        CHECK(ej_sigv4_authorization(&suite, "2015", &req, auth, sizeof(auth), NULL, &err) ==
              EJ_ERR_INVALID);
        ej_buf_free(&b);
}

int main(void)
{
        if (sodium_init() < 0)
                return 1;
        for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
                check_vector(&suite, DATE, 0, &vectors[i]);
        test_s3_example();
        test_signing_key();
        test_helpers();
        return check_report();
}
