/*
 * stream_http.h: the HTTP header details of file downloads: the Range header (one range; RFC
 * 9110), the Content-Disposition of a file name (ASCII fallback and RFC 5987 form), and
 * If-None-Match against a file's ETag (its SHA-256 hex, quoted).
 *
 * Pure functions over borrowed strings; thread-safe.
 */
#ifndef EJ_GW_STREAM_HTTP_H
#define EJ_GW_STREAM_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "mem.h"

/* Reads a Range header `h` (may be NULL) of one range into what DownloadOpen asks:
 * "bytes=a-b" (b -1 when open-ended) or "bytes=-n" (the last n bytes: start and end -1,
 * suffix n; "bytes=-0" asks for nothing and becomes start 1, end 0). False when there is no
 * usable range: absent, malformed or several ranges (the whole file is sent). */
bool gw_range_parse(const char *h, int64_t *start, int64_t *end, int64_t *suffix);

/* The Content-Disposition value "<kind>; filename=...; filename*=UTF-8''..." for `name`
 * ("download" when empty or absurdly long), in `arena`. */
const char *gw_disposition(struct ej_arena *arena, const char *kind, const char *name);

/* True when If-None-Match `inm` (may be NULL) names the entity tag "<sha>" or is "*". */
bool gw_etag_matches(const char *inm, const char *sha);

#endif
