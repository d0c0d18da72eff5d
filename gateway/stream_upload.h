/*
 * stream_upload.h: file uploads streamed from HTTP to the files service (proto/files.proto).
 *
 * PUT /api/files?kind=&name= takes the raw body; POST /api/files a multipart/form-data form
 * with a "file" field and a "kind" field (before the file) or query parameter; a form that ends
 * before its closing boundary, or a kind field over 255 bytes or holding a NUL, is refused with
 * 400 (never stored cut short or cut at the NUL). Once the caller
 * is known (auth.c), upload_begin (the route's subject) opens the upload; the body is cut into
 * chunks of the service's chunk_size and sent as UploadChunk frames on the upload's chunk
 * subject, at most `window` unacknowledged; when the window is full the HTTP connection is
 * suspended and the next ack resumes it, so TCP pushes back on the client and the gateway holds
 * one chunk buffer per upload, never the file. After the body, UploadCommit; the answer is the
 * FileInfo (201). An error from the service (413, 415, ...) fails the upload at once: the rest
 * of the body is read and dropped unforwarded and the error is the answer. A client that goes
 * away mid-upload makes the gateway send UploadAbort.
 *
 * Chunks are at most EJ_FILES_UPLOAD_CHUNK bytes (65536) with at most EJ_FILES_UPLOAD_WINDOW (8)
 * unacknowledged, each capped by what the service's begin reply allows. What is in flight sits
 * in the files service's subscription queue: on the 2-core dev box, 16 concurrent uploads grew
 * the service by about 35 MiB with its own 256 KiB x 8, and by about 9 MiB with 64 KiB x 8, for
 * the same throughput.
 *
 * Thread safety: called from MHD threads; replies arrive on a NATS thread (stream_core.h).
 */
#ifndef EJ_GW_STREAM_UPLOAD_H
#define EJ_GW_STREAM_UPLOAD_H

#include <stddef.h>

#include <microhttpd.h>
#include <nats/nats.h>

#include "gateway.h"
#include "stream_core.h"

/* The access handler of an upload route: every MHD call of the request, the first included. */
enum MHD_Result gw_upload_handle(struct gw_req *req, const char *upload_data,
                                 size_t *upload_data_size);

/* For gw_streams_create: a begin answered after its client left is aborted at once. */
void gw_upload_orphan(struct gw_streams *ss, char tag, natsMsg *m);

#endif
