/*
 * frame.c: protobuf framing of file chunks; see frame.h.
 */
#include "frame.h"

#include <string.h>

/* Protobuf keys (field number << 3 | wire type). */
#define KEY_FRAME_CHUNK 0x0a /* UploadFrame.chunk = 1, length-delimited */
#define KEY_CHUNK_SEQ   0x08 /* UploadChunk.seq = 1, varint */
#define KEY_CHUNK_DATA  0x12 /* UploadChunk.data = 2, length-delimited */
#define FILE_DATA_FIELD 1    /* FileData.data */

enum wire { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

static size_t put_varint(uint8_t *p, uint64_t v)
{
        size_t n = 0;

        while (v >= 0x80) {
                p[n++] = (uint8_t)(v | 0x80);
                v >>= 7;
        }
        p[n++] = (uint8_t)v;
        return n;
}

static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
        uint64_t v = 0;

        for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
                uint8_t b = *(*p)++;

                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *out = v;
                        return true;
                }
        }
        return false;
}

size_t gw_frame_chunk_header(uint8_t out[GW_FRAME_HDR_MAX], uint64_t seq, size_t n)
{
        uint8_t h[GW_FRAME_HDR_MAX], inner[24];
        size_t in = 0, hn = 0;

        /* proto3: fields holding their default value are not written. */
        if (seq != 0) {
                inner[in++] = KEY_CHUNK_SEQ;
                in += put_varint(inner + in, seq);
        }
        if (n != 0) {
                inner[in++] = KEY_CHUNK_DATA;
                in += put_varint(inner + in, n);
        }
        h[hn++] = KEY_FRAME_CHUNK;
        hn += put_varint(h + hn, in + n);
        memcpy(h + hn, inner, in);
        hn += in;
        memcpy(out + GW_FRAME_HDR_MAX - hn, h, hn);
        return hn;
}

bool gw_frame_file_data(const uint8_t *p, size_t n, const uint8_t **data, size_t *len)
{
        const uint8_t *end = p + n;

        *data = p;
        *len = 0;
        while (p < end) {
                uint64_t key, v;

                if (!get_varint(&p, end, &key))
                        return false;
                switch (key & 7) {
                case WIRE_VARINT:
                        if (!get_varint(&p, end, &v))
                                return false;
                        break;
                case WIRE_LEN:
                        if (!get_varint(&p, end, &v) || v > (uint64_t)(end - p))
                                return false;
                        if (key >> 3 == FILE_DATA_FIELD) {
                                *data = p;
                                *len = (size_t)v;
                        }
                        p += v;
                        break;
                case WIRE_I64:
                        if (end - p < 8)
                                return false;
                        p += 8;
                        break;
                case WIRE_I32:
                        if (end - p < 4)
                                return false;
                        p += 4;
                        break;
                default:
                        return false;
                }
        }
        return true;
}
