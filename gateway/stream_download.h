/*
 * stream_download.h: file downloads streamed from the files service to HTTP
 * (GET/HEAD /api/files/{id}[?grant=], proto/files.proto).
 *
 * Once the caller is known (auth.c; anonymous when there is no live session: a grant may
 * admit anyone), download_open (the route's subject) gives the metadata and decides the Range;
 * the body is served by a content reader from a ring of prefetched FileRead replies,
 * GW_STREAM_READ_WINDOW requests ahead. When the next chunk has not arrived the reader suspends
 * the connection and returns 0 (the pattern microhttpd.h prescribes); the reply resumes it.
 * Multiple ranges ("bytes=0-1,5-6") are answered with the whole file (200).
 *
 * Thread safety: called from MHD threads; replies arrive on a NATS thread (stream_core.h).
 */
#ifndef EJ_GW_STREAM_DOWNLOAD_H
#define EJ_GW_STREAM_DOWNLOAD_H

#include <stddef.h>

#include <microhttpd.h>

#include "gateway.h"

/* FileRead requests kept in flight ahead of the HTTP reader. */
#define GW_STREAM_READ_WINDOW 8

/* The access handler of a download route: every MHD call of the request, the first included. */
enum MHD_Result gw_download_handle(struct gw_req *req, size_t *upload_data_size);

#endif
