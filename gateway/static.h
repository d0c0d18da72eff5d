/*
 * static.h: the browser app's files (GET/HEAD outside /api), each with an ETag and
 * Cache-Control: no-cache, so that revalidation is a 304.
 *
 * Ownership: main() owns struct gw_static; a response returned is the caller's. Thread
 * safety: read-only after gw_static_open.
 */
#ifndef EJ_GW_STATIC_H
#define EJ_GW_STATIC_H

#include <microhttpd.h>

struct gw_static;

/* Opens the web root; a missing directory only logs a warning (every file is then 404). */
struct gw_static *gw_static_open(const char *root);
void gw_static_close(struct gw_static *st); /* accepts NULL */

/* The response for GET/HEAD `path`, with *status set (200, 304, 404); NULL with *status 404
 * when there is nothing to serve (the caller answers with its JSON 404). */
struct MHD_Response *gw_static_response(struct gw_static *st, const char *path,
                                        const char *if_none_match, unsigned *status);

#endif
