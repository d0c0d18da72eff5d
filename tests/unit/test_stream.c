/*
 * The gateway's file streaming helpers: the chunk frame header (gateway/frame.c) compared byte
 * for byte with protobuf-c packing the same UploadFrame, the zero-copy view of FileData, and
 * the HTTP details of a download (gateway/stream_http.c): Range parsing into the DownloadOpen
 * fields, the Content-Disposition of a download (ASCII fallback and RFC 5987 form), and
 * If-None-Match against the ETag.
 */
#include "../../gateway/frame.c"
#include "../../gateway/stream_http.c"

#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "files.pb-c.h"

static bool range_is(const char *h, long long a, long long b, long long suffix)
{
        int64_t start = 7, end = 7, suf = 7;

        return gw_range_parse(h, &start, &end, &suf) && start == a && end == b && suf == suffix;
}

static bool range_ignored(const char *h)
{
        int64_t start = 7, end = 7, suf = 7;

        return !gw_range_parse(h, &start, &end, &suf);
}

static void test_range(void)
{
        CHECK(range_is("bytes=0-99", 0, 99, 0));
        CHECK(range_is("bytes=100-", 100, -1, 0));
        CHECK(range_is("bytes=-500", -1, -1, 500));
        CHECK(range_is("BYTES=5-5", 5, 5, 0));
        /* "bytes=-0" asks for nothing: sent as an empty range (end below start). */
        CHECK(range_is("bytes=-0", 1, 0, 0));
        /* Several ranges: the whole file. */
        CHECK(range_ignored("bytes=0-1,5-6"));
        /* Malformed: ignored, as RFC 9110 says. */
        CHECK(range_ignored(NULL));
        CHECK(range_ignored("items=0-1"));
        CHECK(range_ignored("bytes=5-1"));
        CHECK(range_ignored("bytes=a-b"));
        CHECK(range_ignored("bytes=1-2x"));
        CHECK(range_ignored("bytes=-"));
        CHECK(range_ignored("bytes=--5"));
        /* A suffix length is digits only (strtoll would take a sign or white space). */
        CHECK(range_ignored("bytes=- 59"));
        CHECK(range_ignored("bytes=-+5"));
        CHECK(range_ignored("bytes=-\t5"));
        CHECK(range_ignored("bytes=-\n5"));
}

static void test_disposition(void)
{
        struct ej_arena *a = ej_arena_create(0);
        const char *d;

        d = gw_disposition(a, "attachment", "paper.pdf");
        CHECK(strcmp(d, "attachment; filename=\"paper.pdf\"; filename*=UTF-8''paper.pdf") == 0);
        /* Quotes, backslashes, separators and non-ASCII never reach the quoted form. */
        d = gw_disposition(a, "inline", "a\"b\\c;d/e \xc3\xbc.pdf");
        CHECK(strcmp(d, "inline; filename=\"a_b_c_d_e __.pdf\"; "
                        "filename*=UTF-8''a%22b%5Cc%3Bd%2Fe%20%C3%BC.pdf") == 0);
        /* Header injection: CR and LF are gone from both forms. */
        d = gw_disposition(a, "attachment", "x\r\nSet-Cookie: a=b");
        CHECK(strchr(d, '\r') == NULL && strchr(d, '\n') == NULL);
        d = gw_disposition(a, "attachment", "");
        CHECK(strcmp(d, "attachment; filename=\"download\"; filename*=UTF-8''download") == 0);
        d = gw_disposition(a, "attachment", NULL);
        CHECK(strstr(d, "filename=\"download\"") != NULL);
        ej_arena_destroy(a);
}

static void test_etag(void)
{
        const char *sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        char tag[80];

        snprintf(tag, sizeof(tag), "\"%s\"", sha);
        CHECK(gw_etag_matches(tag, sha));
        CHECK(gw_etag_matches("*", sha));
        snprintf(tag, sizeof(tag), "\"x\", W/\"%s\"", sha);
        CHECK(gw_etag_matches(tag, sha));
        CHECK(!gw_etag_matches(sha, sha)); /* unquoted is not an entity tag */
        CHECK(!gw_etag_matches("\"abc\"", sha));
        CHECK(!gw_etag_matches(NULL, sha));
        CHECK(!gw_etag_matches("\"\"", ""));
}

/* The frame gw_frame_chunk_header writes in front of the data, byte for byte what protobuf-c
 * packs for the same UploadFrame. */
static void test_chunk_frame(void)
{
        static const size_t sizes[] = {0, 1, 127, 128, 16383, 16384, 65536, 262144};
        static const uint64_t seqs[] = {0, 1, 127, 128, 300, 1u << 20, UINT64_MAX};

        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                for (size_t j = 0; j < sizeof(seqs) / sizeof(seqs[0]); j++) {
                        size_t n = sizes[i];
                        uint8_t *buf = xmalloc(GW_FRAME_HDR_MAX + n + 1);
                        Ej__Files__UploadFrame f = EJ__FILES__UPLOAD_FRAME__INIT;
                        Ej__Files__UploadChunk c = EJ__FILES__UPLOAD_CHUNK__INIT;
                        uint8_t *want;
                        size_t want_n, hn;

                        for (size_t k = 0; k < n; k++)
                                buf[GW_FRAME_HDR_MAX + k] = (uint8_t)(k * 7 + j);
                        hn = gw_frame_chunk_header(buf, seqs[j], n);
                        c.seq = seqs[j];
                        c.data.data = buf + GW_FRAME_HDR_MAX;
                        c.data.len = n;
                        f.frame_case = EJ__FILES__UPLOAD_FRAME__FRAME_CHUNK;
                        f.chunk = &c;
                        want_n = protobuf_c_message_get_packed_size(&f.base);
                        want = xmalloc(want_n + 1);
                        protobuf_c_message_pack(&f.base, want);
                        CHECK(hn <= GW_FRAME_HDR_MAX);
                        CHECK(hn + n == want_n &&
                              memcmp(buf + GW_FRAME_HDR_MAX - hn, want, want_n) == 0);
                        free(want);
                        free(buf);
                }
        }
}

static void test_file_data_view(void)
{
        uint8_t payload[1000];
        Ej__Files__FileData d = EJ__FILES__FILE_DATA__INIT;
        uint8_t packed[1100];
        const uint8_t *p = NULL;
        size_t n = 99, len;

        for (size_t i = 0; i < sizeof(payload); i++)
                payload[i] = (uint8_t)i;
        d.data.data = payload;
        d.data.len = sizeof(payload);
        len = ej__files__file_data__pack(&d, packed);
        CHECK(gw_frame_file_data(packed, len, &p, &n) && n == sizeof(payload) &&
              memcmp(p, payload, n) == 0);
        /* An empty FileData packs to nothing: no bytes. */
        CHECK(gw_frame_file_data(packed, 0, &p, &n) && n == 0);
        /* Truncated or corrupt: refused, never read past the end. */
        CHECK(!gw_frame_file_data(packed, len - 1, &p, &n));
        CHECK(!gw_frame_file_data(packed, 1, &p, &n));
        {
                const uint8_t bad[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
                const uint8_t group[] = {0x0b};

                CHECK(!gw_frame_file_data(bad, sizeof(bad), &p, &n));
                CHECK(!gw_frame_file_data(group, sizeof(group), &p, &n));
        }
        /* Unknown fields around the data are skipped. */
        {
                uint8_t x[16] = {0x10, 0x05, 0x0a, 0x03, 'a', 'b', 'c', 0x1d, 1, 2, 3, 4};

                CHECK(gw_frame_file_data(x, 12, &p, &n) && n == 3 && memcmp(p, "abc", 3) == 0);
        }
}

int main(void)
{
        test_range();
        test_disposition();
        test_etag();
        test_chunk_frame();
        test_file_data_view();
        return check_report();
}
