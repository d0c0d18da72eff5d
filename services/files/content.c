/* content.c: upload kinds and their allowed types, type detection by content (libmagic, and
 * the entries of zip containers), display names, the FileInfo of a row (content.h). */
#include "content.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <magic.h>
#include <zip.h>

#define T_PDF   "application/pdf"
#define T_DOC   "application/msword"
#define T_DOCX  "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
#define T_ODT   "application/vnd.oasis.opendocument.text"
#define T_ZIP   "application/zip"
#define T_EMPTY "application/x-empty"

static const char *const manuscript_types[] = {T_PDF,        T_DOC,        T_DOCX,
                                               T_ODT,        "text/rtf",   "application/rtf",
                                               "text/plain", "text/x-tex", "application/x-tex",
                                               T_ZIP,        NULL};
static const char *const image_types[] = {"image/png", "image/jpeg", "image/webp", NULL};
static const char *const attachment_types[] = {T_PDF,        T_DOC,        T_DOCX,
                                               T_ODT,        "text/rtf",   "application/rtf",
                                               "text/plain", "text/x-tex", "application/x-tex",
                                               T_ZIP,        "image/png",  "image/jpeg",
                                               "image/webp", "text/csv",   T_EMPTY,
                                               NULL};
static const char *const galley_types[] = {T_PDF, NULL};

void files_kinds_default(struct files_kind kinds[FILES_N_KINDS])
{
        kinds[0] = (struct files_kind){"manuscript", 64LL << 20, manuscript_types};
        kinds[1] = (struct files_kind){"image", 10LL << 20, image_types};
        kinds[2] = (struct files_kind){"attachment", 64LL << 20, attachment_types};
        kinds[3] = (struct files_kind){"galley", 128LL << 20, galley_types};
}

const struct files_kind *files_kind_find(const struct files_config *cfg, const char *name)
{
        for (int i = 0; i < FILES_N_KINDS; i++)
                if (name && strcmp(cfg->kinds[i].name, name) == 0)
                        return &cfg->kinds[i];
        return NULL;
}

static size_t utf8_next(const unsigned char *p, size_t n, unsigned *cp);

/* True when the `n` bytes at `p` are UTF-8 text without control characters but tab and line
 * ends. */
static bool plain_text(const void *p, size_t n)
{
        const unsigned char *s = p;

        for (size_t i = 0; i < n;) {
                unsigned cp = 0;
                size_t len = utf8_next(s + i, n - i, &cp);

                if (len == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7f)
                        return false;
                i += len;
        }
        return true;
}

struct files_magic {
        magic_t handle; /* used under mu: libmagic handles are not thread-safe */
        pthread_mutex_t mu;
};

enum ej_status files_magic_open(struct files_magic **out, struct ej_err *err)
{
        magic_t m = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
        enum ej_status st;

        *out = NULL;
        if (m == NULL || magic_load(m, NULL) != 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "libmagic: %s",
                                m ? magic_error(m) : "cannot open");
                if (m)
                        magic_close(m);
                return st;
        }
        *out = xcalloc(1, sizeof(**out));
        (*out)->handle = m;
        pthread_mutex_init(&(*out)->mu, NULL);
        return EJ_OK;
}

void files_magic_close(struct files_magic *m)
{
        if (m == NULL)
                return;
        magic_close(m->handle);
        pthread_mutex_destroy(&m->mu);
        free(m);
}

void files_sniff(struct files_magic *m, const void *p, size_t n, char *out, size_t out_size)
{
        const char *t = NULL;

        if (n == 0) {
                snprintf(out, out_size, "%s", T_EMPTY);
                return;
        }
        pthread_mutex_lock(&m->mu);
        t = magic_buffer(m->handle, p, n);
        snprintf(out, out_size, "%s", t ? t : "application/octet-stream");
        pthread_mutex_unlock(&m->mu);
        /* libmagic wants a few bytes before it calls something text: a very short file of
         * printable UTF-8 is plain text. */
        if (strcmp(out, "application/octet-stream") == 0 && n < 16 && plain_text(p, n))
                snprintf(out, out_size, "text/plain");
}

bool files_type_is_zip(const char *type)
{
        return strcmp(type, T_ZIP) == 0 || strcmp(type, T_DOCX) == 0 || strcmp(type, T_ODT) == 0 ||
               strncmp(type, "application/vnd.openxmlformats-officedocument.", 46) == 0 ||
               strncmp(type, "application/vnd.oasis.opendocument.", 35) == 0;
}

bool files_kind_allows(const struct files_kind *kind, const char *type)
{
        bool zip = files_type_is_zip(type);

        for (size_t i = 0; kind->types[i]; i++) {
                if (strcmp(kind->types[i], type) == 0)
                        return true;
                /* A zip's real type is known only from its entries (at commit). */
                if (zip && files_type_is_zip(kind->types[i]))
                        return true;
        }
        return false;
}

/* The bytes of entry `name` (at most `cap - 1`), NUL-terminated, or -1. */
static long zip_entry_text(zip_t *z, const char *name, char *buf, size_t cap)
{
        zip_file_t *f = zip_fopen(z, name, 0);
        zip_int64_t n;

        if (f == NULL)
                return -1;
        n = zip_fread(f, buf, cap - 1);
        zip_fclose(f);
        if (n < 0)
                return -1;
        buf[n] = '\0';
        return (long)n;
}

enum ej_status files_zip_type(const char *path, char *out, size_t out_size, struct ej_err *err)
{
        int zerr = 0;
        zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);
        char mimetype[128];
        zip_int64_t n;
        bool tex = false;

        if (z == NULL)
                return ej_err_set(err, EJ_ERR_UNSUPPORTED, NULL,
                                  "the file looks like a zip archive but cannot be read as one");
        if (zip_entry_text(z, "mimetype", mimetype, sizeof(mimetype)) > 0) {
                snprintf(out, out_size, "%s", mimetype);
                zip_close(z);
                return EJ_OK;
        }
        if (zip_name_locate(z, "[Content_Types].xml", 0) >= 0 &&
            zip_name_locate(z, "word/document.xml", 0) >= 0) {
                snprintf(out, out_size, "%s", T_DOCX);
                zip_close(z);
                return EJ_OK;
        }
        n = zip_get_num_entries(z, 0);
        for (zip_int64_t i = 0; i < n && !tex; i++) {
                const char *name = zip_get_name(z, (zip_uint64_t)i, 0);
                size_t len = name ? strlen(name) : 0;

                tex = len > 4 && strcmp(name + len - 4, ".tex") == 0;
        }
        zip_close(z);
        snprintf(out, out_size, "%s", tex ? T_ZIP : "application/zip (no .tex file)");
        return EJ_OK;
}

/* Decodes one UTF-8 sequence at `p` (of `n` bytes); returns its length, 0 when invalid. */
static size_t utf8_next(const unsigned char *p, size_t n, unsigned *cp)
{
        size_t len;
        unsigned c;

        if (p[0] < 0x80) {
                *cp = p[0];
                return 1;
        }
        if (p[0] >= 0xc2 && p[0] <= 0xdf) {
                len = 2;
                c = p[0] & 0x1f;
        } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
                len = 3;
                c = p[0] & 0x0f;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                len = 4;
                c = p[0] & 0x07;
        } else {
                return 0;
        }
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (p[i] & 0x3f);
        }
        if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
            (c >= 0xd800 && c <= 0xdfff))
                return 0;
        *cp = c;
        return len;
}

/* Characters never shown: controls, bidi and zero-width format characters, BOM. */
static bool invisible(unsigned cp)
{
        return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x200b && cp <= 0x200f) ||
               (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff ||
               cp == 0xad;
}

void files_sanitize_name(const char *name, char *out, size_t out_size)
{
        const unsigned char *p = (const unsigned char *)(name ? name : "");
        const char *base = name ? name : "";
        size_t n;
        size_t k = 0;
        size_t chars = 0;
        size_t starts[FILES_NAME_MAX * 2 + 2]; /* byte offset of each kept character */
        bool space = false;
        char *dot;

        /* The last path component, for both separators. */
        for (const char *c = base; *c; c++)
                if (*c == '/' || *c == '\\')
                        base = c + 1;
        p = (const unsigned char *)base;
        n = strlen(base);
        out[0] = '\0';
        for (size_t i = 0; i < n && chars < FILES_NAME_MAX * 2;) {
                unsigned cp = 0;
                size_t len = utf8_next(p + i, n - i, &cp);

                if (len == 0) {
                        i++;
                        continue;
                }
                /* Quotes would break Content-Disposition; leading dots hide files. */
                if (invisible(cp) || cp == '"' || cp == '\'' || cp == '`' ||
                    (k == 0 && cp == '.')) {
                        i += len;
                        continue;
                }
                if (cp == ' ' || cp == '\t' || cp == 0xa0 || cp == 0x3000) {
                        space = k > 0;
                        i += len;
                        continue;
                }
                if (k + len + 2 >= out_size)
                        break;
                if (space) {
                        starts[chars++] = k;
                        out[k++] = ' ';
                        space = false;
                }
                starts[chars++] = k;
                if (strchr("<>:*?|", (int)cp) != NULL && cp < 0x80)
                        out[k++] = '_';
                else {
                        memcpy(out + k, p + i, len);
                        k += len;
                }
                i += len;
        }
        out[k] = '\0';
        /* No trailing dots or spaces. */
        while (k > 0 && (out[k - 1] == '.' || out[k - 1] == ' ')) {
                out[--k] = '\0';
                while (chars > 0 && starts[chars - 1] >= k)
                        chars--;
        }
        if (chars > FILES_NAME_MAX) {
                /* Keep the extension (up to 16 bytes) and cut the stem. */
                char ext[20] = "";

                dot = strrchr(out, '.');
                if (dot && strlen(dot) <= 16 && dot != out)
                        snprintf(ext, sizeof(ext), "%s", dot);
                {
                        size_t ext_chars = strlen(ext); /* ASCII or not, a safe upper bound */
                        size_t keep = FILES_NAME_MAX - (ext_chars < FILES_NAME_MAX ? ext_chars : 0);
                        size_t cut = starts[keep];

                        while (cut > 0 && out[cut - 1] == ' ')
                                cut--;
                        snprintf(out + cut, out_size - cut, "%s", ext);
                }
        }
        if (out[0] == '\0')
                snprintf(out, out_size, "file");
}

Ej__Files__FileInfo *files_info_from_row(struct ej_arena *a, const struct files_row *row)
{
        Ej__Files__FileInfo *fi = ej_arena_alloc(a, sizeof(*fi));

        ej__files__file_info__init(fi);
        fi->id = ej_arena_strdup(a, row->id);
        fi->sha256 = ej_arena_strdup(a, row->sha256);
        fi->size = row->size;
        fi->content_type = ej_arena_strdup(a, row->content_type);
        fi->name = ej_arena_strdup(a, row->name);
        fi->kind = ej_arena_strdup(a, row->kind);
        fi->created_at_ms = row->created_at_ms;
        fi->owner_id = ej_arena_strdup(a, row->owner_id);
        fi->resource = ej_arena_strdup(a, row->resource ? row->resource : "");
        fi->purpose = ej_arena_strdup(a, row->purpose ? row->purpose : "");
        fi->public_ = row->public_;
        fi->blind_of = ej_arena_strdup(a, row->blind_of ? row->blind_of : "");
        return fi;
}
