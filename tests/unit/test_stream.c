/*
 * The gateway's file streaming helpers (gateway/stream.c): HTTP Range parsing into the
 * DownloadOpen fields, the Content-Disposition of a download (ASCII fallback and RFC 5987 form),
 * If-None-Match against the ETag, the chunk frame's protobuf header written by hand (checked by
 * unpacking it with protobuf-c), and the zero-copy view of FileData.
 */
#include "../../gateway/stream.c"

#include "check.h"

/* stream.c's calls into the rest of the gateway; these tests never reach them. */
void gw_common_headers(struct MHD_Response *resp, const char *rid, bool no_store)
{
        (void)resp;
        (void)rid;
        (void)no_store;
}

void gw_out_error(struct gw_out *out, struct gw_req *req, enum ej_status st, const char *message,
                  const char *field)
{
        (void)out;
        (void)req;
        (void)st;
        (void)message;
        (void)field;
}

void gw_out_denied(struct gw_out *out, struct gw_req *req, enum gw_access why)
{
        (void)out;
        (void)req;
        (void)why;
}

bool gw_consent_blocks(const struct gw_route *route, bool consent_required)
{
        (void)route;
        return consent_required;
}

bool gw_sessions_get(struct gw_sessions *s, const char *hash, struct ej_arena *arena,
                     struct gw_principal *out)
{
        (void)s;
        (void)hash;
        (void)arena;
        (void)out;
        return false;
}

const char *gw_join_roles(struct ej_arena *arena, size_t n, char *const *roles)
{
        (void)arena;
        (void)n;
        (void)roles;
        return "";
}

static bool range_is(const char *h, long long a, long long b, long long suffix)
{
        struct gw_stream st = {0};

        return parse_range(&st, h) && st.range_start == a && st.range_end == b &&
               st.range_suffix == suffix;
}

static bool range_ignored(const char *h)
{
        struct gw_stream st = {0};

        return !parse_range(&st, h);
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
}

static void test_disposition(void)
{
        struct ej_arena *a = ej_arena_create(0);
        const char *d;

        d = disposition(a, "attachment", "paper.pdf");
        CHECK(strcmp(d, "attachment; filename=\"paper.pdf\"; filename*=UTF-8''paper.pdf") == 0);
        /* Quotes, backslashes, separators and non-ASCII never reach the quoted form. */
        d = disposition(a, "inline", "a\"b\\c;d/e \xc3\xbc.pdf");
        CHECK(strcmp(d, "inline; filename=\"a_b_c_d_e __.pdf\"; "
                        "filename*=UTF-8''a%22b%5Cc%3Bd%2Fe%20%C3%BC.pdf") == 0);
        /* Header injection: CR and LF are gone from both forms. */
        d = disposition(a, "attachment", "x\r\nSet-Cookie: a=b");
        CHECK(strchr(d, '\r') == NULL && strchr(d, '\n') == NULL);
        d = disposition(a, "attachment", "");
        CHECK(strcmp(d, "attachment; filename=\"download\"; filename*=UTF-8''download") == 0);
        d = disposition(a, "attachment", NULL);
        CHECK(strstr(d, "filename=\"download\"") != NULL);
        ej_arena_destroy(a);
}

static void test_etag(void)
{
        const char *sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        char tag[80];

        snprintf(tag, sizeof(tag), "\"%s\"", sha);
        CHECK(etag_matches(tag, sha));
        CHECK(etag_matches("*", sha));
        snprintf(tag, sizeof(tag), "\"x\", W/\"%s\"", sha);
        CHECK(etag_matches(tag, sha));
        CHECK(!etag_matches(sha, sha)); /* unquoted is not an entity tag */
        CHECK(!etag_matches("\"abc\"", sha));
        CHECK(!etag_matches(NULL, sha));
        CHECK(!etag_matches("\"\"", ""));
}

/* The header send_chunk writes before the data, unpacked by protobuf-c. */
static void test_chunk_frame(void)
{
        static const size_t sizes[] = {1, 127, 128, 16383, 16384, 65536, 262144};
        static const uint64_t seqs[] = {0, 1, 127, 128, 300, 1u << 20};

        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                for (size_t j = 0; j < sizeof(seqs) / sizeof(seqs[0]); j++) {
                        size_t n = sizes[i];
                        uint8_t *buf = xmalloc(FRAME_HDR + n);
                        uint8_t h[FRAME_HDR], inner[24];
                        size_t in = 0, hn = 0;
                        Ej__Files__UploadFrame *f;

                        for (size_t k = 0; k < n; k++)
                                buf[FRAME_HDR + k] = (uint8_t)(k * 7 + j);
                        /* The same steps as send_chunk. */
                        inner[in++] = 0x08;
                        in += put_varint(inner + in, seqs[j]);
                        inner[in++] = 0x12;
                        in += put_varint(inner + in, n);
                        h[hn++] = 0x0a;
                        hn += put_varint(h + hn, in + n);
                        memcpy(h + hn, inner, in);
                        hn += in;
                        CHECK(hn <= FRAME_HDR);
                        memcpy(buf + FRAME_HDR - hn, h, hn);
                        f = ej__files__upload_frame__unpack(NULL, hn + n, buf + FRAME_HDR - hn);
                        CHECK(f && f->frame_case == EJ__FILES__UPLOAD_FRAME__FRAME_CHUNK &&
                              f->chunk->seq == seqs[j] && f->chunk->data.len == n &&
                              memcmp(f->chunk->data.data, buf + FRAME_HDR, n) == 0);
                        if (f)
                                ej__files__upload_frame__free_unpacked(f, NULL);
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
        CHECK(file_data_view(packed, len, &p, &n) && n == sizeof(payload) &&
              memcmp(p, payload, n) == 0);
        /* An empty FileData packs to nothing: no bytes. */
        CHECK(file_data_view(packed, 0, &p, &n) && n == 0);
        /* Truncated or corrupt: refused, never read past the end. */
        CHECK(!file_data_view(packed, len - 1, &p, &n));
        CHECK(!file_data_view(packed, 1, &p, &n));
        {
                const uint8_t bad[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
                const uint8_t group[] = {0x0b};

                CHECK(!file_data_view(bad, sizeof(bad), &p, &n));
                CHECK(!file_data_view(group, sizeof(group), &p, &n));
        }
        /* Unknown fields around the data are skipped. */
        {
                uint8_t x[16] = {0x10, 0x05, 0x0a, 0x03, 'a', 'b', 'c', 0x1d, 1, 2, 3, 4};

                CHECK(file_data_view(x, 12, &p, &n) && n == 3 && memcmp(p, "abc", 3) == 0);
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
