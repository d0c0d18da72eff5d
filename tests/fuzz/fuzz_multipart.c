/*
 * fuzz_multipart.c: the multipart/form-data upload form (gateway/stream_upload.c: absorb and
 * on_part over libmicrohttpd's post processor), without a connection or a service.
 *
 * Input: the Content-Type header value up to the first '\n', then the body. The second byte of
 * the input (when there is one) sets the size of the pieces the body arrives in, as MHD would
 * hand it over. The upload waits for its principal (nothing is sent); when its chunk buffer is
 * full, the driver takes the buffered bytes as a service would take a chunk. Properties:
 * absorb always makes progress; the bytes taken are exactly the file part's; in a complete
 * form (closing boundary reached) with a file, the kind is the whole value of its field (the
 * next boundary follows it in the body), never cut to what fits its buffer; at the end the form is
 * in one of its states and a refusal names its reason.
 */
#include "../../gateway/stream_upload.c"

#include "fuzz.h"

/* The fake connection whose only header is the Content-Type under test. */
static const char *fuzz_ctype;

enum MHD_Result MHD_lookup_connection_value_n(struct MHD_Connection *connection,
                                              enum MHD_ValueKind kind, const char *key,
                                              size_t key_size, const char **value_ptr,
                                              size_t *value_size_ptr)
{
        (void)connection;
        if (!(kind & MHD_HEADER_KIND) || key == NULL || key_size != 12 ||
            strncasecmp(key, MHD_HTTP_HEADER_CONTENT_TYPE, 12) != 0 || fuzz_ctype == NULL)
                return MHD_NO;
        if (value_ptr)
                *value_ptr = fuzz_ctype;
        if (value_size_ptr)
                *value_size_ptr = strlen(fuzz_ctype);
        return MHD_YES;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *nl = memchr(data, '\n', size);
        static char fake_conn[4096];
        struct upload *up;
        const char *body;
        size_t body_n, piece, taken = 0;
        bool complete = false;
        char *ctype;

        if (nl == NULL)
                return 0;
        ctype = xstrndup((const char *)data, (size_t)(nl - data));
        body = (const char *)nl + 1;
        body_n = size - (size_t)(nl - data) - 1;
        piece = size > 1 ? 1u + ((size_t)data[1] * 97u) % 4096u : 4096u;
        fuzz_ctype = ctype;

        up = xcalloc(1, sizeof(*up));
        up->base.ops = &upload_ops;
        pthread_mutex_init(&up->base.mu, NULL);
        up->phase = UP_AUTH;
        up->multipart = true;
        up->declared = (long long)body_n;
        up->pp = MHD_create_post_processor((struct MHD_Connection *)(void *)fake_conn, PP_BUFFER,
                                           on_part, up);
        if (up->pp == NULL)
                goto out; /* no boundary: first_call refuses the form */
        for (size_t off = 0; off < body_n && !failed(up);) {
                size_t k = body_n - off < piece ? body_n - off : piece;
                size_t used = absorb(up, body + off, k);

                if (failed(up))
                        break;
                if (used < k) {
                        /* The buffer is full: a chunk goes out. */
                        FUZZ_CHECK(up->buf_n > 0);
                        taken += up->buf_n;
                        up->buf_n = 0;
                }
                off += used;
        }
        if (!failed(up)) {
                /* As finish() does: a body that ends inside a part is refused. */
                complete = MHD_destroy_post_processor(up->pp) == MHD_YES;
                up->pp = NULL;
                taken += up->buf_n;
                FUZZ_CHECK(taken == up->file_bytes);
                FUZZ_CHECK(up->form >= FORM_BEFORE_FILE && up->form <= FORM_SECOND_FILE);
                FUZZ_CHECK(up->form != FORM_BEFORE_FILE || up->file_bytes == 0);
        } else {
                FUZZ_CHECK(up->base.fail.msg[0] != '\0');
        }
        /* What would be sent on: a complete form with its file. */
        if (complete && up->kind && up->form != FORM_BEFORE_FILE) {
                /* The kind is the whole of its field, never its first bytes. */
                char *whole = xmalloc(strlen(up->kind) + 6);

                FUZZ_CHECK(strlen(up->kind) < FIELD_MAX);
                sprintf(whole, "\n%s\r\n--", up->kind); /* MHD takes bare LF too */
                FUZZ_CHECK(memmem(body, body_n, whole, strlen(whole)) != NULL);
                free(whole);
        }
out:
        fuzz_ctype = NULL;
        pthread_mutex_destroy(&up->base.mu);
        destroy(&up->base);
        free(ctype);
        return 0;
}
