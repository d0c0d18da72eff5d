/*
 * blind.c: anonymised copies for double-blind review (see blind.h).
 *
 * PDFs go through libqpdf's C API: the trailer loses /Info, every dictionary reachable from the
 * trailer loses /Metadata and /PieceInfo, and markup annotations lose their author's name; the
 * writer then rewrites the whole file, so objects of earlier revisions are not carried over.
 * Zip containers (OOXML, ODF, plain zips) are rebuilt entry by entry with libzip: entries that
 * need no change are copied as their compressed bytes, the few that do are inflated, rewritten
 * and deflated again. RTF is filtered in memory group by group.
 */
#include "blind.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <qpdf/qpdf-c.h>
#include <zip.h>

#include "mem.h"
#include "str.h"

/* Bytes read at a time when copying or scanning. */
#define BLIND_CHUNK (64u * 1024u)
/* The largest part (a zip entry to rewrite, an RTF file) held in memory at once. */
#define BLIND_PART_MAX ((size_t)64 << 20)
/* The modification time every entry of a rebuilt zip gets: 2000-01-01T00:00:00Z. */
#define BLIND_ZIP_MTIME ((time_t)946684800)

enum blind_kind {
        BLIND_PDF,
        BLIND_ZIP, /* OOXML, ODF or a plain zip: told apart by content */
        BLIND_RTF,
        BLIND_COPY,
        BLIND_UNSUPPORTED
};

enum zip_flavour { ZIP_FLAVOUR_PLAIN, ZIP_FLAVOUR_OOXML, ZIP_FLAVOUR_ODF };

/* ---- Canary search ---------------------------------------------------------------------- */

struct scan_pat {
        char *p;
        size_t n;
};

/* Searches a sequence of byte streams for any of the canaries, as UTF-8 and as UTF-16 in both
 * byte orders. Within one stream a match may straddle the chunks it is fed in; scan_restart()
 * begins a new stream. */
struct scan {
        struct scan_pat *pats;
        size_t npats;
        size_t maxlen;
        char *carry; /* the last maxlen - 1 bytes of the current stream */
        size_t ncarry;
        char *win; /* carry + the head of the next chunk */
        bool hit;
        char where[128]; /* the part where the first hit was, for the message */
};

/* Appends the UTF-16 forms of the UTF-8 string `s` to `be` and `le`; false when `s` is not
 * valid UTF-8. */
static bool utf8_to_utf16(const char *s, struct ej_buf *be, struct ej_buf *le)
{
        const unsigned char *u = (const unsigned char *)s;
        while (*u) {
                uint32_t cp;
                int extra;
                if (u[0] < 0x80) {
                        cp = u[0];
                        extra = 0;
                } else if ((u[0] & 0xe0) == 0xc0) {
                        cp = u[0] & 0x1fu;
                        extra = 1;
                } else if ((u[0] & 0xf0) == 0xe0) {
                        cp = u[0] & 0x0fu;
                        extra = 2;
                } else if ((u[0] & 0xf8) == 0xf0) {
                        cp = u[0] & 0x07u;
                        extra = 3;
                } else {
                        return false;
                }
                for (int i = 1; i <= extra; i++) {
                        if ((u[i] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (u[i] & 0x3fu);
                }
                u += 1 + extra;
                uint16_t units[2];
                int nu = 1;
                if (cp >= 0x10000) {
                        cp -= 0x10000;
                        units[0] = (uint16_t)(0xd800 + (cp >> 10));
                        units[1] = (uint16_t)(0xdc00 + (cp & 0x3ff));
                        nu = 2;
                } else {
                        units[0] = (uint16_t)cp;
                }
                for (int i = 0; i < nu; i++) {
                        ej_buf_append_char(be, (char)(units[i] >> 8));
                        ej_buf_append_char(be, (char)(units[i] & 0xff));
                        ej_buf_append_char(le, (char)(units[i] & 0xff));
                        ej_buf_append_char(le, (char)(units[i] >> 8));
                }
        }
        return true;
}

static void scan_add(struct scan *s, char *p, size_t n)
{
        s->pats = xrealloc(s->pats, (s->npats + 1) * sizeof(*s->pats));
        s->pats[s->npats].p = p;
        s->pats[s->npats].n = n;
        s->npats++;
        if (n > s->maxlen)
                s->maxlen = n;
}

static void scan_init(struct scan *s, const char *const *canaries)
{
        memset(s, 0, sizeof(*s));
        for (size_t i = 0; canaries && canaries[i]; i++) {
                size_t n = strlen(canaries[i]);
                if (n == 0)
                        continue;
                scan_add(s, xstrndup(canaries[i], n), n);
                struct ej_buf be = EJ_BUF_INIT, le = EJ_BUF_INIT;
                if (utf8_to_utf16(canaries[i], &be, &le)) {
                        size_t nb = be.n, nl = le.n;
                        scan_add(s, ej_buf_steal(&be), nb);
                        scan_add(s, ej_buf_steal(&le), nl);
                }
                ej_buf_free(&be);
                ej_buf_free(&le);
        }
        if (s->maxlen > 0) {
                s->carry = xmalloc(s->maxlen);
                s->win = xmalloc(2 * s->maxlen);
        }
}

static void scan_free(struct scan *s)
{
        for (size_t i = 0; i < s->npats; i++)
                free(s->pats[i].p);
        free(s->pats);
        free(s->carry);
        free(s->win);
        memset(s, 0, sizeof(*s));
}

static bool scan_active(const struct scan *s)
{
        return s->npats > 0 && !s->hit;
}

/* Begins a new stream named `where` (printf-style, for the message). */
static void scan_restart(struct scan *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void scan_restart(struct scan *s, const char *fmt, ...)
{
        if (s->hit)
                return;
        s->ncarry = 0;
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(s->where, sizeof(s->where), fmt, ap);
        va_end(ap);
        if (w < 0)
                s->where[0] = '\0';
}

static bool scan_match(const struct scan *s, const char *p, size_t n)
{
        for (size_t i = 0; i < s->npats; i++) {
                if (s->pats[i].n <= n && memmem(p, n, s->pats[i].p, s->pats[i].n))
                        return true;
        }
        return false;
}

static void scan_feed(struct scan *s, const void *data, size_t n)
{
        if (!scan_active(s) || n == 0)
                return;
        const char *p = data;
        size_t keep = s->maxlen - 1;
        /* A match across the previous chunk and this one lies within carry + head. */
        if (s->ncarry > 0) {
                size_t head = n < keep ? n : keep;
                memcpy(s->win, s->carry, s->ncarry);
                memcpy(s->win + s->ncarry, p, head);
                if (scan_match(s, s->win, s->ncarry + head)) {
                        s->hit = true;
                        return;
                }
        }
        if (scan_match(s, p, n)) {
                s->hit = true;
                return;
        }
        if (keep == 0)
                return;
        if (n >= keep) {
                memcpy(s->carry, p + n - keep, keep);
                s->ncarry = keep;
        } else {
                size_t total = s->ncarry + n;
                size_t drop = total > keep ? total - keep : 0;
                memmove(s->carry, s->carry + drop, s->ncarry - drop);
                memcpy(s->carry + s->ncarry - drop, p, n);
                s->ncarry = total - drop;
        }
}

/* Feeds the whole file at `path` as one stream. */
static enum ej_status scan_file(struct scan *s, const char *path, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        char *chunk = NULL;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot reopen the copy: %s",
                                strerror(errno));
                goto out;
        }
        chunk = xmalloc(BLIND_CHUNK);
        scan_restart(s, "the file's bytes");
        for (;;) {
                ssize_t r = read(fd, chunk, BLIND_CHUNK);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot read the copy: %s",
                                        strerror(errno));
                        goto out_close;
                }
                if (r == 0)
                        break;
                scan_feed(s, chunk, (size_t)r);
        }
out_close:
        close(fd);
out:
        free(chunk);
        return st;
}

/* ---- Files ------------------------------------------------------------------------------ */

static enum ej_status write_all(int fd, const char *p, size_t n, struct ej_err *err)
{
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot write the copy: %s",
                                          strerror(errno));
                p += w;
                n -= (size_t)w;
        }
        return EJ_OK;
}

static int open_output(const char *dst_path)
{
        return open(dst_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

/* Reads the whole file into `out`; EJ_ERR_TOO_LARGE past BLIND_PART_MAX. */
static enum ej_status read_file(const char *path, struct ej_buf *out, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot open the file: %s",
                                  strerror(errno));
        for (;;) {
                ej_buf_reserve(out, BLIND_CHUNK);
                ssize_t r = read(fd, out->p + out->n, BLIND_CHUNK);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot read the file: %s",
                                        strerror(errno));
                        break;
                }
                if (r == 0)
                        break;
                out->n += (size_t)r;
                out->p[out->n] = '\0';
                if (out->n > BLIND_PART_MAX) {
                        st = ej_err_set(err, EJ_ERR_TOO_LARGE, NULL,
                                        "the file is too large to anonymise");
                        break;
                }
        }
        close(fd);
        return st;
}

static enum ej_status write_file(const char *path, const char *p, size_t n, struct ej_err *err)
{
        int fd = open_output(path);
        if (fd < 0)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot create the copy: %s",
                                  strerror(errno));
        enum ej_status st = write_all(fd, p, n, err);
        if (close(fd) != 0 && st == EJ_OK)
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot write the copy: %s",
                                strerror(errno));
        return st;
}

static enum ej_status copy_file(const char *src_path, const char *dst_path, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        char *chunk = NULL;
        int out = -1;
        int in = open(src_path, O_RDONLY | O_CLOEXEC);
        if (in < 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot open the file: %s",
                                strerror(errno));
                goto out;
        }
        out = open_output(dst_path);
        if (out < 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot create the copy: %s",
                                strerror(errno));
                goto out_close;
        }
        chunk = xmalloc(BLIND_CHUNK);
        for (;;) {
                ssize_t r = read(in, chunk, BLIND_CHUNK);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot read the file: %s",
                                        strerror(errno));
                        goto out_close;
                }
                if (r == 0)
                        break;
                st = write_all(out, chunk, (size_t)r, err);
                if (st != EJ_OK)
                        goto out_close;
        }
out_close:
        if (out >= 0 && close(out) != 0 && st == EJ_OK)
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot write the copy: %s",
                                strerror(errno));
        if (in >= 0)
                close(in);
out:
        free(chunk);
        return st;
}

static enum ej_status sync_file(const char *path, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0)
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot sync the copy: %s",
                                strerror(errno));
        if (fd >= 0)
                close(fd);
        return st;
}

/* ---- PDF -------------------------------------------------------------------------------- */

/* Object handles still to visit, and the object numbers already visited. */
struct pdf_walk {
        qpdf_data q;
        qpdf_oh *stack;
        size_t n, cap;
        unsigned char *seen;
        size_t nseen; /* bytes in `seen` */
};

static void walk_push(struct pdf_walk *w, qpdf_oh oh)
{
        if (w->n == w->cap) {
                w->cap = w->cap ? 2 * w->cap : 256;
                w->stack = xrealloc(w->stack, w->cap * sizeof(*w->stack));
        }
        w->stack[w->n++] = oh;
}

/* True the first time the indirect object `id` is met. */
static bool walk_first_visit(struct pdf_walk *w, int id)
{
        if (id <= 0)
                return true;
        size_t byte = (size_t)id / 8;
        if (byte >= w->nseen) {
                size_t grown = (byte + 1) * 2;
                w->seen = xrealloc(w->seen, grown);
                memset(w->seen + w->nseen, 0, grown - w->nseen);
                w->nseen = grown;
        }
        unsigned char bit = (unsigned char)(1u << ((size_t)id % 8));
        if (w->seen[byte] & bit)
                return false;
        w->seen[byte] |= bit;
        return true;
}

/* Copies the keys of the dictionary `dict` (the C API keeps one iterator per document, so it
 * must not be nested). The caller frees each key and the array. */
static char **dict_keys(qpdf_data q, qpdf_oh dict, size_t *count)
{
        char **keys = NULL;
        size_t n = 0;
        qpdf_oh_begin_dict_key_iter(q, dict);
        while (qpdf_oh_dict_more_keys(q)) {
                keys = xrealloc(keys, (n + 1) * sizeof(*keys));
                keys[n++] = xstrdup(qpdf_oh_dict_next_key(q));
        }
        *count = n;
        return keys;
}

static void free_keys(char **keys, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(keys[i]);
        free(keys);
}

/* Called for each object reached; `dict` is the object itself, or a stream's dictionary. */
typedef void (*pdf_visit_fn)(qpdf_data q, qpdf_oh oh, qpdf_oh dict, void *ctx);

/* Visits every object reachable from the trailer once (each indirect object once; direct
 * objects where they sit), without recursion: reference chains can be long. Stops early when
 * qpdf reports an error. */
static void pdf_walk(qpdf_data q, pdf_visit_fn visit, void *ctx)
{
        struct pdf_walk w = {.q = q};
        walk_push(&w, qpdf_get_trailer(q));
        while (w.n > 0 && !qpdf_has_error(q)) {
                qpdf_oh oh = w.stack[--w.n];
                if (qpdf_oh_is_indirect(q, oh) &&
                    !walk_first_visit(&w, qpdf_oh_get_object_id(q, oh))) {
                        qpdf_oh_release(q, oh);
                        continue;
                }
                enum qpdf_object_type_e t = qpdf_oh_get_type_code(q, oh);
                if (t == ot_array) {
                        visit(q, oh, oh, ctx);
                        int items = qpdf_oh_get_array_n_items(q, oh);
                        for (int i = 0; i < items; i++)
                                walk_push(&w, qpdf_oh_get_array_item(q, oh, i));
                        qpdf_oh_release(q, oh);
                        continue;
                }
                if (t != ot_dictionary && t != ot_stream) {
                        visit(q, oh, oh, ctx);
                        qpdf_oh_release(q, oh);
                        continue;
                }
                qpdf_oh dict = t == ot_stream ? qpdf_oh_get_dict(q, oh) : oh;
                visit(q, oh, dict, ctx);
                size_t nkeys = 0;
                char **keys = dict_keys(q, dict, &nkeys);
                for (size_t i = 0; i < nkeys; i++)
                        walk_push(&w, qpdf_oh_get_key(q, dict, keys[i]));
                free_keys(keys, nkeys);
                if (dict != oh)
                        qpdf_oh_release(q, dict);
                qpdf_oh_release(q, oh);
        }
        for (size_t i = 0; i < w.n; i++)
                qpdf_oh_release(q, w.stack[i]);
        free(w.stack);
        free(w.seen);
}

/* Removes what names people from one dictionary: XMP metadata, application private data, and
 * the author (/T) of markup annotations (a widget's /T is a form field's name, not a person). */
static void pdf_strip_visit(qpdf_data q, qpdf_oh oh, qpdf_oh dict, void *ctx)
{
        (void)oh;
        (void)ctx;
        if (!qpdf_oh_is_dictionary(q, dict))
                return;
        if (qpdf_oh_has_key(q, dict, "/Metadata"))
                qpdf_oh_remove_key(q, dict, "/Metadata");
        if (qpdf_oh_has_key(q, dict, "/PieceInfo"))
                qpdf_oh_remove_key(q, dict, "/PieceInfo");
        if (!qpdf_oh_has_key(q, dict, "/T") || !qpdf_oh_has_key(q, dict, "/Rect"))
                return;
        qpdf_oh subtype = qpdf_oh_get_key(q, dict, "/Subtype");
        qpdf_oh title = qpdf_oh_get_key(q, dict, "/T");
        if (qpdf_oh_is_name(q, subtype) && !qpdf_oh_is_name_and_equals(q, subtype, "/Widget") &&
            qpdf_oh_is_string(q, title)) {
                qpdf_oh author = qpdf_oh_new_string(q, "Author");
                qpdf_oh_replace_key(q, dict, "/T", author);
                qpdf_oh_release(q, author);
        }
        qpdf_oh_release(q, subtype);
        qpdf_oh_release(q, title);
}

static enum ej_status pdf_fail(qpdf_data q, struct ej_err *err, enum ej_status st, const char *what)
{
        const char *detail = "unknown error";
        if (qpdf_has_error(q)) {
                qpdf_error e = qpdf_get_error(q);
                detail = qpdf_get_error_message_detail(q, e);
        }
        return ej_err_set(err, st, NULL, "%s: %s", what, detail);
}

static enum ej_status pdf_blind(const char *src_path, const char *dst_path, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        qpdf_data q = qpdf_init();
        qpdf_silence_errors(q);
        qpdf_set_suppress_warnings(q, QPDF_TRUE);
        if (qpdf_read(q, src_path, NULL) & QPDF_ERRORS) {
                st = pdf_fail(q, err, EJ_ERR_INVALID, "the PDF cannot be read");
                goto out;
        }
        qpdf_oh trailer = qpdf_get_trailer(q);
        if (qpdf_oh_has_key(q, trailer, "/Info"))
                qpdf_oh_remove_key(q, trailer, "/Info");
        qpdf_oh_release(q, trailer);
        pdf_walk(q, pdf_strip_visit, NULL);
        if (qpdf_has_error(q)) {
                st = pdf_fail(q, err, EJ_ERR_INVALID, "the PDF cannot be anonymised");
                goto out;
        }
        if (qpdf_init_write(q, dst_path) & QPDF_ERRORS) {
                st = pdf_fail(q, err, EJ_ERR_INTERNAL, "cannot create the copy");
                goto out;
        }
        qpdf_set_object_stream_mode(q, qpdf_o_preserve);
        qpdf_set_preserve_encryption(q, QPDF_FALSE);
        qpdf_set_deterministic_ID(q, QPDF_TRUE);
        if (qpdf_write(q) & QPDF_ERRORS)
                st = pdf_fail(q, err, EJ_ERR_INVALID, "the PDF cannot be written");
out:
        qpdf_cleanup(&q);
        return st;
}

struct pdf_check {
        struct scan *scan;
};

/* Feeds every string, name, dictionary key and decoded stream of the object to the scan. */
static void pdf_check_visit(qpdf_data q, qpdf_oh oh, qpdf_oh dict, void *ctx)
{
        struct scan *s = ((struct pdf_check *)ctx)->scan;
        if (!scan_active(s))
                return;
        int id = qpdf_oh_get_object_id(q, oh);
        enum qpdf_object_type_e t = qpdf_oh_get_type_code(q, oh);
        if (t == ot_string) {
                size_t n = 0;
                const char *v = qpdf_oh_get_binary_string_value(q, oh, &n);
                scan_restart(s, "a PDF string");
                scan_feed(s, v, n);
                v = qpdf_oh_get_binary_utf8_value(q, oh, &n);
                scan_restart(s, "a PDF string");
                scan_feed(s, v, n);
        } else if (t == ot_name) {
                const char *v = qpdf_oh_get_name(q, oh);
                scan_restart(s, "a PDF name");
                scan_feed(s, v, strlen(v));
        }
        if (t == ot_dictionary || t == ot_stream) {
                size_t nkeys = 0;
                char **keys = dict_keys(q, dict, &nkeys);
                for (size_t i = 0; i < nkeys; i++) {
                        scan_restart(s, "a PDF dictionary key");
                        scan_feed(s, keys[i], strlen(keys[i]));
                }
                free_keys(keys, nkeys);
        }
        if (t == ot_stream) {
                unsigned char *data = NULL;
                size_t n = 0;
                QPDF_BOOL filtered = QPDF_FALSE;
                if (!(qpdf_oh_get_stream_data(q, oh, qpdf_dl_generalized, &filtered, &data, &n) &
                      QPDF_ERRORS)) {
                        scan_restart(s, "PDF stream %d", id);
                        scan_feed(s, data, n);
                }
                free(data);
        }
}

static enum ej_status pdf_check(const char *path, struct scan *s, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        struct pdf_check ctx = {.scan = s};
        qpdf_data q = qpdf_init();
        qpdf_silence_errors(q);
        qpdf_set_suppress_warnings(q, QPDF_TRUE);
        if (qpdf_read(q, path, NULL) & QPDF_ERRORS) {
                st = pdf_fail(q, err, EJ_ERR_INTERNAL, "the copy cannot be read back");
                goto out;
        }
        pdf_walk(q, pdf_check_visit, &ctx);
        if (qpdf_has_error(q))
                st = pdf_fail(q, err, EJ_ERR_INTERNAL, "the copy cannot be read back");
out:
        qpdf_cleanup(&q);
        return st;
}

/* ---- XML parts -------------------------------------------------------------------------- */

struct xml_subst {
        const char *name; /* attribute local name, or element qualified name */
        const char *value;
};

struct xml_rules {
        const struct xml_subst *attrs; /* matched on the local name, any prefix */
        size_t nattrs;
        const struct xml_subst *elems; /* text content replaced, matched on the qualified name */
        size_t nelems;
};

static const char *find_bytes(const char *p, const char *end, const char *needle)
{
        size_t n = strlen(needle);
        if ((size_t)(end - p) < n)
                return NULL;
        return memmem(p, (size_t)(end - p), needle, n);
}

static bool is_xml_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const char *subst_find(const struct xml_subst *list, size_t n, const char *name, size_t len)
{
        for (size_t i = 0; i < n; i++) {
                if (strlen(list[i].name) == len && memcmp(list[i].name, name, len) == 0)
                        return list[i].value;
        }
        return NULL;
}

/* Writes to `out` the XML in `in` with the values of the attributes and the text of the
 * elements named in `rules` replaced. Everything else is copied byte for byte; returns true
 * when some value actually changed. Not a validating parser: comments, CDATA, declarations and
 * processing instructions are skipped whole, and a start tag is read attribute by attribute. */
static bool xml_rewrite(const char *in, size_t n, const struct xml_rules *rules, struct ej_buf *out)
{
        const char *p = in, *end = in + n, *copied = in;
        bool changed = false;
        while (p < end) {
                const char *lt = memchr(p, '<', (size_t)(end - p));
                if (!lt)
                        break;
                p = lt + 1;
                const char *close = NULL;
                if (p < end && *p == '!') {
                        if (find_bytes(p, end, "!--") == p)
                                close = find_bytes(p, end, "-->");
                        else if (find_bytes(p, end, "![CDATA[") == p)
                                close = find_bytes(p, end, "]]>");
                        else
                                close = memchr(p, '>', (size_t)(end - p));
                }
                if (p < end && (*p == '?' || *p == '/'))
                        close = memchr(p, '>', (size_t)(end - p));
                if (p < end && (*p == '!' || *p == '?' || *p == '/')) {
                        if (!close)
                                break;
                        p = close + 1;
                        continue;
                }
                const char *name = p;
                while (p < end && !is_xml_space(*p) && *p != '>' && *p != '/')
                        p++;
                size_t name_len = (size_t)(p - name);
                bool self_closing = false;
                for (;;) {
                        while (p < end && is_xml_space(*p))
                                p++;
                        if (p >= end)
                                goto out;
                        if (*p == '>')
                                break;
                        if (*p == '/') {
                                self_closing = true;
                                p++;
                                continue;
                        }
                        const char *an = p;
                        while (p < end && *p != '=' && !is_xml_space(*p) && *p != '>')
                                p++;
                        const char *an_end = p;
                        while (p < end && is_xml_space(*p))
                                p++;
                        if (p >= end || *p != '=')
                                continue;
                        p++;
                        while (p < end && is_xml_space(*p))
                                p++;
                        if (p >= end || (*p != '"' && *p != '\''))
                                goto out;
                        char quote = *p++;
                        const char *val = p;
                        const char *val_end = memchr(p, quote, (size_t)(end - p));
                        if (!val_end)
                                goto out;
                        p = val_end + 1;
                        const char *local = an;
                        for (const char *c = an; c < an_end; c++) {
                                if (*c == ':')
                                        local = c + 1;
                        }
                        const char *v = subst_find(rules->attrs, rules->nattrs, local,
                                                   (size_t)(an_end - local));
                        if (v && (strlen(v) != (size_t)(val_end - val) ||
                                  memcmp(v, val, (size_t)(val_end - val)) != 0)) {
                                ej_buf_append(out, copied, (size_t)(val - copied));
                                ej_buf_append_c(out, v);
                                copied = val_end;
                                changed = true;
                        }
                }
                p++; /* past '>' */
                if (self_closing)
                        continue;
                const char *v = subst_find(rules->elems, rules->nelems, name, name_len);
                if (!v)
                        continue;
                const char *text_end = memchr(p, '<', (size_t)(end - p));
                if (!text_end)
                        break;
                if (strlen(v) != (size_t)(text_end - p) ||
                    memcmp(v, p, (size_t)(text_end - p)) != 0) {
                        ej_buf_append(out, copied, (size_t)(p - copied));
                        ej_buf_append_c(out, v);
                        copied = text_end;
                        changed = true;
                }
                p = text_end;
        }
out:
        ej_buf_append(out, copied, (size_t)(end - copied));
        return changed;
}

static const struct xml_subst ooxml_attrs[] = {
    {"author", "Author"},   /* w:author of comments, tracked changes, people */
    {"initials", "A"},      /* w:initials of comments */
    {"userId", "Author"},   /* w15:presenceInfo: an account name or e-mail address */
    {"providerId", "None"}, /* w15:presenceInfo: the account's directory */
};
static const struct xml_subst ooxml_elems[] = {
    {"author", "Author"}, /* spreadsheet comments list their authors as elements */
};
/* Parts that list people by attributes of their own. */
static const struct xml_subst ooxml_people_attrs[] = {
    {"author", "Author"},   {"initials", "A"},  {"userId", "Author"},
    {"providerId", "None"}, {"name", "Author"}, {"displayName", "Author"},
};
static const struct xml_subst odf_elems[] = {
    {"dc:creator", "Author"},           /* annotations and tracked changes */
    {"meta:creator-initials", "A"},     /* annotations */
    {"meta:initial-creator", "Author"}, /* should it appear outside meta.xml */
    {"text:author-name", "Author"},     /* author fields show the author's name */
    {"text:author-initials", "A"},
};

/* ---- Zip containers --------------------------------------------------------------------- */

static const char ooxml_core[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n"
    "<cp:coreProperties "
    "xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" "
    "xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:dcterms=\"http://purl.org/dc/terms/\" "
    "xmlns:dcmitype=\"http://purl.org/dc/dcmitype/\" "
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"></cp:coreProperties>";
static const char ooxml_app[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n"
    "<Properties "
    "xmlns=\"http://schemas.openxmlformats.org/officeDocument/2006/extended-properties\" "
    "xmlns:vt=\"http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes\">"
    "</Properties>";
static const char ooxml_custom[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\r\n"
    "<Properties "
    "xmlns=\"http://schemas.openxmlformats.org/officeDocument/2006/custom-properties\" "
    "xmlns:vt=\"http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes\">"
    "</Properties>";

/* Names of the entries a container's metadata lives in. */
struct zip_meta {
        char *core;   /* OOXML core properties */
        char *app;    /* OOXML extended (application) properties */
        char *custom; /* OOXML custom properties */
};

static void zip_meta_free(struct zip_meta *m)
{
        free(m->core);
        free(m->app);
        free(m->custom);
}

static enum ej_status zip_fail(zip_t *za, struct ej_err *err, enum ej_status st, const char *what)
{
        return ej_err_set(err, st, NULL, "%s: %s", what, zip_strerror(za));
}

/* Inflates entry `idx` into `out` (at most BLIND_PART_MAX bytes). */
static enum ej_status zip_read_entry(zip_t *za, zip_uint64_t idx, struct ej_buf *out,
                                     struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        zip_file_t *zf = zip_fopen_index(za, idx, 0);
        if (!zf)
                return zip_fail(za, err, EJ_ERR_INVALID, "a part of the document cannot be read");
        for (;;) {
                ej_buf_reserve(out, BLIND_CHUNK);
                zip_int64_t r = zip_fread(zf, out->p + out->n, BLIND_CHUNK);
                if (r < 0) {
                        st = ej_err_set(err, EJ_ERR_INVALID, NULL,
                                        "a part of the document cannot be read: %s",
                                        zip_file_strerror(zf));
                        break;
                }
                if (r == 0)
                        break;
                out->n += (size_t)r;
                out->p[out->n] = '\0';
                if (out->n > BLIND_PART_MAX) {
                        st = ej_err_set(err, EJ_ERR_TOO_LARGE, NULL,
                                        "a part of the document is too large to anonymise");
                        break;
                }
        }
        zip_fclose(zf);
        return st;
}

/* Returns a copy of the value of attribute `attr` in the tag starting at `tag`, or NULL. */
static char *tag_attr(const char *tag, const char *end, const char *attr)
{
        const char *gt = memchr(tag, '>', (size_t)(end - tag));
        if (!gt)
                return NULL;
        struct ej_buf pat = EJ_BUF_INIT;
        ej_buf_appendf(&pat, " %s=\"", attr);
        const char *a = find_bytes(tag, gt, pat.p);
        char *v = NULL;
        if (a) {
                a += pat.n;
                const char *q = memchr(a, '"', (size_t)(gt - a));
                if (q)
                        v = xstrndup(a, (size_t)(q - a));
        }
        ej_buf_free(&pat);
        return v;
}

/* Finds where the package relationships put the OOXML property parts (docProps/... by
 * convention, but the relationships are what counts). */
static enum ej_status ooxml_find_meta(zip_t *za, struct zip_meta *m, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        struct ej_buf rels = EJ_BUF_INIT;
        zip_int64_t idx = zip_name_locate(za, "_rels/.rels", 0);
        if (idx >= 0) {
                st = zip_read_entry(za, (zip_uint64_t)idx, &rels, err);
                if (st != EJ_OK)
                        goto out;
                const char *p = rels.p, *end = rels.p + rels.n;
                while ((p = find_bytes(p, end, "<Relationship ")) != NULL) {
                        char *type = tag_attr(p, end, "Type");
                        char *target = tag_attr(p, end, "Target");
                        p++;
                        if (!type || !target || strstr(target, "://")) {
                                free(type);
                                free(target);
                                continue;
                        }
                        const char *name = target[0] == '/' ? target + 1 : target;
                        size_t tl = strlen(type);
                        char **slot = NULL;
                        if (tl >= 16 && strcmp(type + tl - 16, "/core-properties") == 0)
                                slot = &m->core;
                        else if (tl >= 20 && strcmp(type + tl - 20, "/extended-properties") == 0)
                                slot = &m->app;
                        else if (tl >= 18 && strcmp(type + tl - 18, "/custom-properties") == 0)
                                slot = &m->custom;
                        if (slot && !*slot)
                                *slot = xstrdup(name);
                        free(type);
                        free(target);
                }
        }
        if (!m->core)
                m->core = xstrdup("docProps/core.xml");
        if (!m->app)
                m->app = xstrdup("docProps/app.xml");
        if (!m->custom)
                m->custom = xstrdup("docProps/custom.xml");
out:
        ej_buf_free(&rels);
        return st;
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), k = strlen(suffix);
        return n >= k && strcmp(s + n - k, suffix) == 0;
}

static enum zip_flavour zip_detect(zip_t *za)
{
        if (zip_name_locate(za, "[Content_Types].xml", 0) >= 0)
                return ZIP_FLAVOUR_OOXML;
        zip_int64_t idx = zip_name_locate(za, "mimetype", 0);
        if (idx < 0)
                return ZIP_FLAVOUR_PLAIN;
        struct ej_buf mt = EJ_BUF_INIT;
        enum zip_flavour f = ZIP_FLAVOUR_PLAIN;
        if (zip_read_entry(za, (zip_uint64_t)idx, &mt, NULL) == EJ_OK && mt.n > 0 &&
            strncmp(mt.p, "application/vnd.oasis.opendocument.", 35) == 0)
                f = ZIP_FLAVOUR_ODF;
        ej_buf_free(&mt);
        return f;
}

/* A neutral ODF meta.xml, keeping the document's ODF version. */
static void odf_meta(const struct ej_buf *old, struct ej_buf *out)
{
        char *version = NULL;
        const char *root =
            old->n ? find_bytes(old->p, old->p + old->n, "<office:document-meta") : NULL;
        if (root)
                version = tag_attr(root, old->p + old->n, "office:version");
        bool ok = version && version[0] && strlen(version) < 8 &&
                  strspn(version, "0123456789.") == strlen(version);
        ej_buf_appendf(out,
                       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                       "<office:document-meta "
                       "xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" "
                       "office:version=\"%s\"><office:meta/></office:document-meta>",
                       ok ? version : "1.2");
        free(version);
}

/* Decides what entry `name` becomes: fills `out` and sets `replaced` when it is rewritten;
 * clears `replaced` (and leaves `out` empty) when the entry is copied as it is. */
static enum ej_status zip_transform(zip_t *za, zip_uint64_t idx, const char *name,
                                    enum zip_flavour flavour, const struct zip_meta *m,
                                    struct ej_buf *out, bool *replaced, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        struct ej_buf data = EJ_BUF_INIT;
        *replaced = false;
        if (flavour == ZIP_FLAVOUR_OOXML) {
                const char *neutral = NULL;
                if (strcmp(name, m->core) == 0)
                        neutral = ooxml_core;
                else if (strcmp(name, m->app) == 0)
                        neutral = ooxml_app;
                else if (strcmp(name, m->custom) == 0)
                        neutral = ooxml_custom;
                if (neutral) {
                        ej_buf_append_c(out, neutral);
                        *replaced = true;
                        goto out;
                }
                if (!ends_with(name, ".xml") || strcmp(name, "[Content_Types].xml") == 0)
                        goto out;
                struct xml_rules rules = {ooxml_attrs, sizeof(ooxml_attrs) / sizeof(ooxml_attrs[0]),
                                          ooxml_elems, 0};
                if (ends_with(name, "/comments.xml") || strstr(name, "/comments") ||
                    strstr(name, "authors"))
                        rules.nelems = sizeof(ooxml_elems) / sizeof(ooxml_elems[0]);
                if (strstr(name, "commentAuthors") || strstr(name, "person")) {
                        rules.attrs = ooxml_people_attrs;
                        rules.nattrs = sizeof(ooxml_people_attrs) / sizeof(ooxml_people_attrs[0]);
                }
                st = zip_read_entry(za, idx, &data, err);
                if (st == EJ_OK)
                        *replaced = xml_rewrite(data.p, data.n, &rules, out);
        } else if (flavour == ZIP_FLAVOUR_ODF) {
                if (strcmp(name, "meta.xml") == 0) {
                        st = zip_read_entry(za, idx, &data, err);
                        if (st == EJ_OK) {
                                odf_meta(&data, out);
                                *replaced = true;
                        }
                        goto out;
                }
                if (!ends_with(name, ".xml"))
                        goto out;
                struct xml_rules rules = {NULL, 0, odf_elems,
                                          sizeof(odf_elems) / sizeof(odf_elems[0])};
                st = zip_read_entry(za, idx, &data, err);
                if (st == EJ_OK)
                        *replaced = xml_rewrite(data.p, data.n, &rules, out);
        }
out:
        if (!*replaced)
                ej_buf_reset(out);
        ej_buf_free(&data);
        return st;
}

/* Adds entry `idx` of `za` to `out`, rewritten or as its compressed bytes. */
static enum ej_status zip_copy_entry(zip_t *za, zip_t *out, zip_uint64_t idx,
                                     enum zip_flavour flavour, const struct zip_meta *m,
                                     struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        struct ej_buf data = EJ_BUF_INIT;
        zip_source_t *src = NULL;
        zip_stat_t zs;
        if (zip_stat_index(za, idx, 0, &zs) != 0)
                return zip_fail(za, err, EJ_ERR_INVALID, "the archive cannot be read");
        if ((zs.valid & ZIP_STAT_ENCRYPTION_METHOD) && zs.encryption_method != ZIP_EM_NONE)
                return ej_err_set(err, EJ_ERR_UNSUPPORTED, NULL,
                                  "the archive has encrypted entries");
        const char *name = zs.name;
        size_t nlen = strlen(name);
        if (nlen > 0 && name[nlen - 1] == '/') {
                zip_int64_t zi = zip_dir_add(out, name, ZIP_FL_ENC_GUESS);
                if (zi < 0 || zip_file_set_mtime(out, (zip_uint64_t)zi, BLIND_ZIP_MTIME, 0) != 0)
                        return zip_fail(out, err, EJ_ERR_INVALID, "cannot add a folder");
                return EJ_OK;
        }
        bool replaced = false;
        st = zip_transform(za, idx, name, flavour, m, &data, &replaced, err);
        if (st != EJ_OK)
                goto out;
        zip_int32_t method;
        if (replaced) {
                method = zs.comp_method == ZIP_CM_STORE ? ZIP_CM_STORE : ZIP_CM_DEFLATE;
                size_t n = data.n;
                char *p = ej_buf_steal(&data);
                /* libzip frees the buffer with free() once written. */
                src = zip_source_buffer(out, p, n, 1);
                if (!src) {
                        free(p);
                        st = zip_fail(out, err, EJ_ERR_INTERNAL, "cannot build the copy");
                        goto out;
                }
        } else {
                /* The compressed bytes as they are, so nothing is inflated and deflated again. */
                method = (zip_int32_t)zs.comp_method;
                src = zip_source_zip(out, za, idx, ZIP_FL_COMPRESSED, 0, -1);
                if (!src) {
                        st = zip_fail(out, err, EJ_ERR_INVALID, "cannot copy a part");
                        goto out;
                }
        }
        if (strcmp(name, "mimetype") == 0 && flavour == ZIP_FLAVOUR_ODF)
                method = ZIP_CM_STORE;
        zip_int64_t zi = zip_file_add(out, name, src, ZIP_FL_ENC_GUESS);
        if (zi < 0) {
                zip_source_free(src);
                st = zip_fail(out, err, EJ_ERR_INVALID, "cannot add a part");
                goto out;
        }
        if (zip_set_file_compression(out, (zip_uint64_t)zi, method, 0) != 0) {
                st = zip_fail(out, err, EJ_ERR_UNSUPPORTED, "a part uses an unknown compression");
                goto out;
        }
        if (zip_file_set_mtime(out, (zip_uint64_t)zi, BLIND_ZIP_MTIME, 0) != 0)
                st = zip_fail(out, err, EJ_ERR_INTERNAL, "cannot date a part");
out:
        ej_buf_free(&data);
        return st;
}

static enum ej_status zip_blind(const char *src_path, const char *dst_path, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        struct zip_meta meta = {0};
        zip_t *out = NULL;
        int zerr = 0;
        zip_t *za = zip_open(src_path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
        if (!za) {
                zip_error_t ze;
                zip_error_init_with_code(&ze, zerr);
                st = ej_err_set(err, EJ_ERR_INVALID, NULL, "the archive cannot be read: %s",
                                zip_error_strerror(&ze));
                zip_error_fini(&ze);
                goto out;
        }
        zip_int64_t count = zip_get_num_entries(za, 0);
        if (count <= 0) {
                st = ej_err_set(err, EJ_ERR_INVALID, NULL, "the archive is empty");
                goto out_close;
        }
        enum zip_flavour flavour = zip_detect(za);
        if (flavour == ZIP_FLAVOUR_OOXML) {
                st = ooxml_find_meta(za, &meta, err);
                if (st != EJ_OK)
                        goto out_close;
        }
        out = zip_open(dst_path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
        if (!out) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot create the copy");
                goto out_close;
        }
        /* ODF wants `mimetype` first, so a reader can identify the file from its first bytes. */
        zip_int64_t first = -1;
        if (flavour == ZIP_FLAVOUR_ODF) {
                first = zip_name_locate(za, "mimetype", 0);
                if (first >= 0)
                        st = zip_copy_entry(za, out, (zip_uint64_t)first, flavour, &meta, err);
        }
        for (zip_int64_t i = 0; i < count && st == EJ_OK; i++) {
                if (i != first)
                        st = zip_copy_entry(za, out, (zip_uint64_t)i, flavour, &meta, err);
        }
        if (st != EJ_OK) {
                zip_discard(out);
                goto out_close;
        }
        if (zip_close(out) != 0) {
                st = zip_fail(out, err, EJ_ERR_INTERNAL, "cannot write the copy");
                zip_discard(out);
        }
out_close:
        zip_discard(za);
out:
        zip_meta_free(&meta);
        return st;
}

static enum ej_status zip_check(const char *path, struct scan *s, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        char *chunk = NULL;
        int zerr = 0;
        zip_t *za = zip_open(path, ZIP_RDONLY, &zerr);
        if (!za)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "the copy cannot be read back");
        chunk = xmalloc(BLIND_CHUNK);
        zip_int64_t count = zip_get_num_entries(za, 0);
        for (zip_int64_t i = 0; i < count && scan_active(s); i++) {
                const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
                zip_file_t *zf = zip_fopen_index(za, (zip_uint64_t)i, 0);
                if (!name || !zf) {
                        st = zip_fail(za, err, EJ_ERR_INTERNAL, "the copy cannot be read back");
                        break;
                }
                scan_restart(s, "%s", name);
                zip_int64_t r;
                while ((r = zip_fread(zf, chunk, BLIND_CHUNK)) > 0)
                        scan_feed(s, chunk, (size_t)r);
                zip_fclose(zf);
                if (r < 0) {
                        st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "the copy cannot be read back");
                        break;
                }
        }
        zip_discard(za);
        free(chunk);
        return st;
}

/* ---- RTF -------------------------------------------------------------------------------- */

/* True when the group at `p` ('{') starts with the control word(s) `word` ("\\info",
 * "\\*\\userprops") followed by a delimiter (not a letter). */
static bool rtf_group_is(const char *p, const char *end, const char *word)
{
        size_t n = strlen(word);
        if ((size_t)(end - p) < n + 1 || memcmp(p + 1, word, n) != 0)
                return false;
        if ((size_t)(end - p) == n + 1)
                return true;
        char c = p[1 + n];
        return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

/* Returns where the text after the control sequence at `p` ('\\') resumes: past the backslash
 * and the next byte, or past the data of a \binN word (raw bytes that may hold braces); NULL
 * when that data runs past the end. A control word's letters are ordinary text to the callers. */
static const char *rtf_skip_control(const char *p, const char *end)
{
        if (end - p >= 5 && memcmp(p, "\\bin", 4) == 0 && p[4] >= '0' && p[4] <= '9') {
                const char *d = p + 4;
                size_t len = 0;
                while (d < end && *d >= '0' && *d <= '9' && len <= BLIND_PART_MAX)
                        len = len * 10 + (size_t)(*d++ - '0');
                if (d < end && *d == ' ')
                        d++;
                return (size_t)(end - d) < len ? NULL : d + len;
        }
        return end - p >= 2 ? p + 2 : end;
}

/* Returns the end (past '}') of the group starting at `p`, or NULL when it does not close.
 * Escaped braces and \binN data do not count; `children` gets the number of direct child
 * groups. */
static const char *rtf_group_end(const char *p, const char *end, size_t *children)
{
        int depth = 0;
        *children = 0;
        while (p && p < end) {
                char c = *p;
                if (c == '\\') {
                        p = rtf_skip_control(p, end);
                        continue;
                }
                if (c == '{') {
                        depth++;
                        if (depth == 2)
                                (*children)++;
                } else if (c == '}') {
                        depth--;
                        if (depth == 0)
                                return p + 1;
                }
                p++;
        }
        return NULL;
}

/* Writes the RTF in `in` to `out` without its information group (title, author, operator,
 * company, ...) and custom properties, and with anonymous annotation and revision authors. */
static enum ej_status rtf_strip(const char *in, size_t n, struct ej_buf *out, struct ej_err *err)
{
        const char *p = in, *end = in + n, *copied = in;
        while (p < end) {
                if (*p == '\\') {
                        p = rtf_skip_control(p, end);
                        if (!p)
                                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                                  "the RTF has binary data past its end");
                        continue;
                }
                if (*p != '{') {
                        p++;
                        continue;
                }
                const char *replacement = NULL;
                bool revtbl = false;
                if (rtf_group_is(p, end, "\\info") || rtf_group_is(p, end, "\\*\\userprops"))
                        replacement = "";
                else if (rtf_group_is(p, end, "\\*\\atnauthor"))
                        replacement = "{\\*\\atnauthor Author}";
                else if (rtf_group_is(p, end, "\\*\\atnid"))
                        replacement = "{\\*\\atnid A}";
                else if (rtf_group_is(p, end, "\\*\\revtbl"))
                        revtbl = true;
                if (!replacement && !revtbl) {
                        p++;
                        continue;
                }
                size_t children = 0;
                const char *group_end = rtf_group_end(p, end, &children);
                if (!group_end)
                        return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                          "the RTF has a group that does not close");
                ej_buf_append(out, copied, (size_t)(p - copied));
                if (revtbl) {
                        /* Revision marks refer to authors by index: keep the count. */
                        ej_buf_append_c(out, "{\\*\\revtbl {Unknown;}");
                        for (size_t i = 1; i < children; i++)
                                ej_buf_append_c(out, "{Author;}");
                        ej_buf_append_c(out, "}");
                } else {
                        ej_buf_append_c(out, replacement);
                }
                p = copied = group_end;
        }
        ej_buf_append(out, copied, (size_t)(end - copied));
        return EJ_OK;
}

static enum ej_status rtf_blind(const char *src_path, const char *dst_path, struct ej_err *err)
{
        struct ej_buf in = EJ_BUF_INIT, out = EJ_BUF_INIT;
        enum ej_status st = read_file(src_path, &in, err);
        if (st == EJ_OK)
                st = rtf_strip(in.p ? in.p : "", in.n, &out, err);
        if (st == EJ_OK)
                st = write_file(dst_path, out.p ? out.p : "", out.n, err);
        ej_buf_free(&in);
        ej_buf_free(&out);
        return st;
}

/* ---- Entry point ------------------------------------------------------------------------ */

static enum blind_kind blind_kind_of(const char *content_type)
{
        char t[128];
        size_t n = strcspn(content_type, ";");
        while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
                n--;
        if (n >= sizeof(t))
                return BLIND_UNSUPPORTED;
        for (size_t i = 0; i < n; i++) {
                char c = content_type[i];
                t[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        t[n] = '\0';
        if (strcmp(t, "application/pdf") == 0)
                return BLIND_PDF;
        if (strncmp(t, "application/vnd.openxmlformats-officedocument.", 46) == 0 ||
            strncmp(t, "application/vnd.oasis.opendocument.", 35) == 0 ||
            strcmp(t, "application/zip") == 0 || strcmp(t, "application/x-zip-compressed") == 0)
                return BLIND_ZIP;
        if (strcmp(t, "text/rtf") == 0 || strcmp(t, "application/rtf") == 0)
                return BLIND_RTF;
        if (strcmp(t, "text/plain") == 0 || strcmp(t, "text/x-tex") == 0 ||
            strcmp(t, "application/x-tex") == 0)
                return BLIND_COPY;
        return BLIND_UNSUPPORTED;
}

enum ej_status blind_copy(const char *src_path, const char *content_type, const char *dst_path,
                          const char *const *canaries, struct ej_err *err)
{
        enum ej_status st = EJ_OK;
        struct scan scan;
        scan_init(&scan, canaries);
        if (!src_path || !content_type || !dst_path) {
                st = ej_err_set(err, EJ_ERR_INVALID, NULL, "a path or the type is missing");
                goto out;
        }
        enum blind_kind kind = blind_kind_of(content_type);
        if (kind == BLIND_UNSUPPORTED) {
                st = ej_err_set(err, EJ_ERR_UNSUPPORTED, NULL,
                                "no anonymised copy can be made of a file of type %.80s",
                                content_type);
                goto out;
        }
        struct stat sb;
        if (stat(src_path, &sb) != 0) {
                st = ej_err_set(err, errno == ENOENT ? EJ_ERR_NOT_FOUND : EJ_ERR_INTERNAL, NULL,
                                "cannot open the file: %s", strerror(errno));
                goto out;
        }
        switch (kind) {
        case BLIND_PDF:
                st = pdf_blind(src_path, dst_path, err);
                break;
        case BLIND_ZIP:
                st = zip_blind(src_path, dst_path, err);
                break;
        case BLIND_RTF:
                st = rtf_blind(src_path, dst_path, err);
                break;
        default:
                st = copy_file(src_path, dst_path, err);
                break;
        }
        if (st == EJ_OK)
                st = sync_file(dst_path, err);
        if (st != EJ_OK || scan.npats == 0)
                goto out_unlink;
        st = scan_file(&scan, dst_path, err);
        if (st == EJ_OK && kind == BLIND_PDF)
                st = pdf_check(dst_path, &scan, err);
        if (st == EJ_OK && kind == BLIND_ZIP)
                st = zip_check(dst_path, &scan, err);
        if (st == EJ_OK && scan.hit)
                st = ej_err_set(err, EJ_ERR_CONFLICT, NULL,
                                "a name that must not appear is still in %s of the copy: it is "
                                "part of the content, which is not rewritten",
                                scan.where);
out_unlink:
        if (st != EJ_OK)
                unlink(dst_path);
out:
        scan_free(&scan);
        return st;
}
