/*
 * frame.h: the protobuf framing of file bytes between the gateway and the files service
 * (proto/files.proto), written and read in place so that no chunk is copied to be framed.
 *
 * An upload chunk travels as UploadFrame{chunk: UploadChunk{seq, data}}. Its bytes are a short
 * header (tags and lengths) followed by the data itself, so the gateway keeps GW_FRAME_HDR_MAX
 * bytes free in front of its chunk buffer and writes the header there (gw_frame_chunk_header).
 * The output is exactly what protobuf_c_message_pack writes for the same message (proto3: a
 * zero seq is left out). A download chunk arrives as FileData{data}; gw_frame_file_data finds
 * the data inside the packed message without copying it.
 *
 * Pure functions: no allocation, thread-safe.
 */
#ifndef EJ_GW_FRAME_H
#define EJ_GW_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room before a chunk's data for its frame header: 3 tags and 4 varints. */
#define GW_FRAME_HDR_MAX 32

/* Writes into `out` the header of an UploadFrame holding chunk `seq` with `n` bytes of data,
 * placed so that it ends at out + GW_FRAME_HDR_MAX (where the data begins). Returns its length
 * h: the frame is the h bytes from out + GW_FRAME_HDR_MAX - h, then the data. */
size_t gw_frame_chunk_header(uint8_t out[GW_FRAME_HDR_MAX], uint64_t seq, size_t n);

/* Points *data and *len at FileData.data inside the packed FileData p[0..n) (borrowed from
 * p; *len 0 when the field is absent). False when the bytes are not a well-formed message. */
bool gw_frame_file_data(const uint8_t *p, size_t n, const uint8_t **data, size_t *len);

#endif
