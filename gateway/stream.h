/*
 * stream.h: file bodies streamed between HTTP and the files service (proto/files.proto).
 *
 * Uploads (PUT /api/files?kind=&name=, raw body; POST /api/files, multipart/form-data with a
 * "file" field and a "kind" field or query parameter): the body is cut into chunks of the
 * service's chunk_size and sent as UploadChunk requests on the upload's chunk subject, at most
 * `window` unacknowledged; when the window is full the HTTP connection is suspended and the
 * next ack resumes it, so TCP pushes back on the client and the gateway holds one chunk buffer
 * per upload, never the file. After the body, UploadCommit; the answer is the FileInfo (201).
 * An error from the service (413, 415, ...) fails the upload at once: the rest of the body is
 * read and dropped unforwarded and the error is the answer. A client that goes away mid-upload
 * makes the gateway send UploadAbort.
 *
 * Downloads (GET/HEAD /api/files/{id}[?grant=]): ej.files.download.open gives the metadata
 * (and decides the Range); the body is served by a content reader from a ring of prefetched
 * FileRead replies, `GW_STREAM_READ_WINDOW` requests ahead. When the next chunk has not arrived
 * the reader suspends the connection and returns 0 (the pattern microhttpd.h prescribes); the
 * reply resumes it. Multiple ranges ("bytes=0-1,5-6") are answered with the whole file (200).
 *
 * Upload chunks are at most EJ_FILES_UPLOAD_CHUNK bytes (65536) with at most
 * EJ_FILES_UPLOAD_WINDOW (8) unacknowledged, each capped by what the service's begin reply allows.
 * What is in flight sits in the files service's subscription queue: on the 2-core dev box, 16
 * concurrent uploads grew the service by about 35 MiB with its own 256 KiB x 8, and by about
 * 9 MiB with 64 KiB x 8, for the same throughput.
 *
 * Every exchange has its own reply subject "<inbox>.<stream id>.<tag><n>" on one subscription;
 * a sweeper thread fails exchanges past EJ_REQUEST_TIMEOUT_MS (504) and resumes their
 * connections. No thread waits on NATS.
 *
 * Ownership: main() owns struct gw_streams. A struct gw_stream is created by the first call of
 * the access handler for a file route, hangs off its struct gw_req, and is freed when the last
 * of (the request, an in-flight content reader's response) lets go of it. Thread safety: every
 * function may be called from any MHD thread; replies arrive on a NATS thread.
 */
#ifndef EJ_GW_STREAM_H
#define EJ_GW_STREAM_H

#include <microhttpd.h>

#include "status.h"

struct gw;
struct gw_req;
struct gw_streams;

/* FileRead requests kept in flight ahead of the HTTP reader. */
#define GW_STREAM_READ_WINDOW 8

/* Subscribes the streams' reply inbox and starts the sweeper. */
enum ej_status gw_streams_create(struct gw_streams **out, struct gw *gw, struct ej_err *err);

/* Fails every stream still waiting (their connections are resumed and answer 503 or close).
 * Call before stopping MHD: a suspended connection must not outlive the daemon. */
void gw_streams_fail_all(struct gw_streams *ss);

/* Stops the sweeper, unsubscribes, frees. Streams still alive must have been failed. NULL ok. */
void gw_streams_destroy(struct gw_streams *ss);

/* The access handler for a request whose route streams (req->route->stream set): called for
 * every MHD call of that request, the first included. */
enum MHD_Result gw_stream_handle(struct gw_req *req, const char *upload_data,
                                 size_t *upload_data_size);

/* The request is over (MHD's completion callback): aborts an unfinished upload, drops
 * prefetched chunks, releases the request's hold on the stream. */
void gw_stream_completed(struct gw_req *req, enum MHD_RequestTerminationCode toe);

#endif
