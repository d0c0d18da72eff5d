#include "head.h"

#include <string.h>

#include "framing.h"
#include "render.h"

#define GW_MAX_HEADERS 128

struct header_list {
        struct gw_header h[GW_MAX_HEADERS];
        size_t n;
        bool overflow;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
        struct header_list *l = cls;

        (void)kind;
        if (l->n == GW_MAX_HEADERS) {
                l->overflow = true;
                return MHD_NO;
        }
        l->h[l->n++] = (struct gw_header){key, value};
        return MHD_YES;
}

/* True when a query parameter name repeats (or there are more than GW_MAX_HEADERS): the gateway
 * binds each to one field, and no route takes a list from the query, so a second copy could
 * only be read one way by us and another by whatever sits in front. */
static bool query_repeats(struct gw_req *req)
{
        struct header_list *q = ej_arena_alloc(req->arena, sizeof(*q));

        q->n = 0;
        q->overflow = false;
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_header, q);
        if (q->overflow)
                return true;
        for (size_t i = 0; i < q->n; i++)
                for (size_t j = i + 1; j < q->n; j++)
                        if (strcmp(q->h[i].name, q->h[j].name) == 0)
                                return true;
        return false;
}

/* The spans of the head the parser cut out, in req's arena: method, target, version and each
 * header's name and value. */
static struct gw_span *head_spans(struct gw_req *req, const char *method, const char *version,
                                  const struct header_list *l, size_t *n)
{
        struct gw_span *s = ej_arena_alloc(req->arena, (3 + 2 * l->n) * sizeof(*s));
        size_t k = 0;

        s[k++] = (struct gw_span){method, strlen(method)};
        s[k++] = (struct gw_span){req->raw_uri, req->raw_uri_len};
        s[k++] = (struct gw_span){version, strlen(version)};
        for (size_t i = 0; i < l->n; i++) {
                s[k++] = (struct gw_span){l->h[i].name, strlen(l->h[i].name)};
                if (l->h[i].value)
                        s[k++] = (struct gw_span){l->h[i].value, strlen(l->h[i].value)};
        }
        *n = k;
        return s;
}

static bool refuse(struct gw_req *req, unsigned status, const char *code, const char *why,
                   enum MHD_Result *ret)
{
        struct gw_out out = {0};

        if (status == 400)
                gw_out_error(&out, req, EJ_ERR_INVALID, why, NULL);
        else
                gw_out_error_code(&out, req, status, code, why);
        out.close = true;
        *ret = gw_render_send(req, &out);
        return true;
}

bool gw_head_refused(struct gw_req *req, const char *method, const char *version,
                     enum MHD_Result *ret)
{
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
        size_t head_len = ci ? ci->header_size : 0;
        struct header_list *l = ej_arena_alloc(req->arena, sizeof(*l));
        struct gw_span *spans;
        size_t n_spans = 0;
        const char *why = NULL;

        if (req->raw_uri_len > GW_URI_LIMIT)
                return refuse(req, 414, "uri_too_long", "the request target is longer than 8 KiB",
                              ret);
        if (head_len > GW_HEAD_LIMIT)
                return refuse(req, 431, "headers_too_large",
                              "the request line and headers are larger than 16 KiB", ret);
        l->n = 0;
        l->overflow = false;
        MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_header, l);
        if (l->overflow)
                return refuse(req, 431, "headers_too_large", "more than 128 header lines", ret);
        if (req->raw_uri_nul)
                return refuse(req, 400, NULL, "a NUL (%00) in the path or the query", ret);
        spans = head_spans(req, method, version, l, &n_spans);
        if (head_len == 0 || !gw_head_clean(method, head_len, spans, n_spans))
                return refuse(req, 400, NULL,
                              "a NUL byte in the request line or a header, or a folded header "
                              "line",
                              ret);
        if (!gw_framing_ok(version, l->h, l->n, &why))
                return refuse(req, 400, NULL, why, ret);
        if (query_repeats(req))
                return refuse(req, 400, NULL,
                              "a query parameter came more than once (or more than 128 of them)",
                              ret);
        return false;
}
