/*
 * head.h: the checks on a request head that the access handler's first call runs before
 * anything reads the body or routes the request. A refused request gets the JSON error body,
 * Connection: close and one answer, since nothing after it on the connection can be trusted:
 *   414  a request target over GW_URI_LIMIT bytes
 *   431  a head (request line and headers) over GW_HEAD_LIMIT bytes
 *   400  a NUL byte in the head, "%00" in the path or the query, a folded header line,
 *        ambiguous framing (framing.h), a query parameter given twice
 * libmicrohttpd answers by itself, in plain text, what it cannot parse or hold (its own 400,
 * 414, 431, 413 and 505; see the README), so its connection memory (GW_CONN_MEMORY) is sized
 * for GW_HEAD_LIMIT with room to spare: every head up to the limit reaches these checks.
 * Thread safety: runs on the request's MHD thread.
 */
#ifndef EJ_GW_HEAD_H
#define EJ_GW_HEAD_H

#include <stdbool.h>

#include <microhttpd.h>

#include "gateway.h"

/* The largest request head served: request line and headers, CRLFs included. */
#define GW_HEAD_LIMIT (16u * 1024u)

/* The largest request target (path and query, as sent) served. */
#define GW_URI_LIMIT (8u * 1024u)

/*
 * libmicrohttpd's memory per connection (MHD_OPTION_CONNECTION_MEMORY_LIMIT). It holds the head,
 * a copy of the Cookie header and 64 bytes for each header and each cookie; the read buffer
 * starts at half of it. 96 KiB holds a 16 KiB head whose Cookie header has some 700 cookies.
 * Below that, 500 short cookies (4.4 KB) overflowed the pool and libmicrohttpd 0.9.75 sent its
 * 431 with the header block twice. It is zeroed between the requests of a connection, so it is
 * not made larger than needed.
 */
#define GW_CONN_MEMORY (96u * 1024u)

/* The first call's checks on `req` (method and version as MHD passed them; req->raw_uri noted
 * when the request line was parsed). True when the request was refused: *ret holds what the
 * access handler returns. */
bool gw_head_refused(struct gw_req *req, const char *method, const char *version,
                     enum MHD_Result *ret);

#endif
