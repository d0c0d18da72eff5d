/*
 * http.h: the libmicrohttpd side of the gateway: the daemon and its access handler, which
 * dispatches every request (local answers, static files, JSON calls through upstream.c, file
 * streams through stream_upload.c and stream_download.c).
 *
 * Ownership: the daemon lives in struct gw (gw->mhd). Thread safety: start and stop from
 * main() only.
 */
#ifndef EJ_GW_HTTP_H
#define EJ_GW_HTTP_H

#include "gateway.h"
#include "status.h"

/* Starts MHD on cfg->http_addr. */
enum ej_status gw_http_start(struct gw *gw, struct ej_err *err);

/* Stops accepting new connections. */
void gw_http_quiesce(struct gw *gw);

/* Closes every connection and stops the threads. Accepts a never-started gateway. */
void gw_http_stop(struct gw *gw);

/* The port MHD bound (useful when EJ_HTTP_ADDR gives port 0). */
int gw_http_port(struct gw *gw);

#endif
