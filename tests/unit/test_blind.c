/*
 * Unit tests for blind.c: anonymised copies for double-blind review.
 *
 * Every sample is built here: PDFs written by hand (with a correct xref table, one of them with
 * an incremental update whose older revision names the author), DOCX, ODT and zip files built
 * with libzip, RTF and text. A canary author name is planted in each file's metadata; the test
 * proves that the copy holds it nowhere: not in its raw bytes, not in any inflated zip entry, not
 * in any decoded PDF stream or string (the PDF is expanded with `qpdf --qdf`), and that the copy
 * is still valid (`qpdf --check`, libzip's consistency check) with its content unchanged.
 */
#include "../../services/files/blind.c"

#include <dirent.h>
#include <sys/wait.h>

#include "check.h"

#define CANARY "Zelda Quackenbush"

static char tmp_dir[] = "/tmp/ej-test-blind-XXXXXX";

/* A path in the test's directory (a static buffer per call site is not needed: callers copy). */
static char *tmp_path(const char *name)
{
        struct ej_buf b = EJ_BUF_INIT;
        ej_buf_appendf(&b, "%s/%s", tmp_dir, name);
        return ej_buf_steal(&b);
}

static bool file_exists(const char *path)
{
        struct stat sb;
        return stat(path, &sb) == 0;
}

static void put_file(const char *path, const char *p, size_t n)
{
        CHECK(write_file(path, p, n, NULL) == EJ_OK);
}

static struct ej_buf get_file(const char *path)
{
        struct ej_buf b = EJ_BUF_INIT;
        if (read_file(path, &b, NULL) != EJ_OK)
                ej_buf_reset(&b);
        return b;
}

static bool has_bytes(const char *p, size_t n, const char *needle, size_t nn)
{
        return p && nn <= n && memmem(p, n, needle, nn) != NULL;
}

static bool has_str(const struct ej_buf *b, const char *needle)
{
        return has_bytes(b->p, b->n, needle, strlen(needle));
}

/* The canary as UTF-16BE, and the hexadecimal spellings PDF strings may take. */
static void canary_forms(struct ej_buf forms[6])
{
        struct ej_buf be = EJ_BUF_INIT, le = EJ_BUF_INIT;
        utf8_to_utf16(CANARY, &be, &le);
        ej_buf_append_c(&forms[0], CANARY);
        ej_buf_append(&forms[1], be.p, be.n);
        ej_buf_append(&forms[2], le.p, le.n);
        for (size_t i = 0; i < be.n; i++) {
                ej_buf_appendf(&forms[3], "%02x", (unsigned char)be.p[i]);
                ej_buf_appendf(&forms[4], "%02X", (unsigned char)be.p[i]);
        }
        for (const char *c = CANARY; *c; c++)
                ej_buf_appendf(&forms[5], "%02x", (unsigned char)*c);
        ej_buf_free(&be);
        ej_buf_free(&le);
}

/* Which spellings of the canary (bit i for canary_forms()[i]) the bytes hold. */
static unsigned canary_in(const char *p, size_t n)
{
        struct ej_buf forms[6] = {EJ_BUF_INIT, EJ_BUF_INIT, EJ_BUF_INIT,
                                  EJ_BUF_INIT, EJ_BUF_INIT, EJ_BUF_INIT};
        unsigned found = 0;
        canary_forms(forms);
        for (unsigned i = 0; i < 6; i++) {
                if (has_bytes(p, n, forms[i].p, forms[i].n))
                        found |= 1u << i;
                ej_buf_free(&forms[i]);
        }
        return found;
}

static unsigned canary_in_file(const char *path)
{
        struct ej_buf b = get_file(path);
        unsigned found = canary_in(b.p, b.n);
        ej_buf_free(&b);
        return found;
}

/* Runs a shell command; returns its exit status (-1 when it did not exit). */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
        char cmd[1024];
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        if (w < 0 || (size_t)w >= sizeof(cmd))
                return -1;
        int rc = system(cmd);
        return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static bool qpdf_checks(const char *path)
{
        return run("qpdf --check '%s' >/dev/null 2>&1", path) == 0;
}

/* The canary spellings in the PDF with every stream decoded and every object stream expanded
 * (qpdf's QDF form), in the latest revision. */
static unsigned pdf_canary_deep(const char *path)
{
        char *qdf = tmp_path("expanded.qdf");
        unsigned found = 0x80000000u; /* "could not tell" counts as found */
        int rc = run("qpdf --qdf --object-streams=disable --decode-level=generalized '%s' '%s' "
                     ">/dev/null 2>&1",
                     path, qdf);
        if (rc == 0 || rc == 3)
                found = canary_in_file(qdf);
        unlink(qdf);
        free(qdf);
        return found;
}

/* ---- Hand-written PDFs ------------------------------------------------------------------ */

struct pdfw {
        struct ej_buf b;
        size_t off[32];
};

static void pdf_begin(struct pdfw *w)
{
        memset(w, 0, sizeof(*w));
        ej_buf_append_c(&w->b, "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
}

static void pdf_obj(struct pdfw *w, int id, const char *body)
{
        w->off[id] = w->b.n;
        ej_buf_appendf(&w->b, "%d 0 obj\n%s\nendobj\n", id, body);
}

static void pdf_stream(struct pdfw *w, int id, const char *dict, const char *data)
{
        w->off[id] = w->b.n;
        ej_buf_appendf(&w->b, "%d 0 obj\n<< /Length %zu %s >>\nstream\n%s\nendstream\nendobj\n", id,
                       strlen(data), dict, data);
}

/* Writes an xref section for objects `ids` (0 ends the list; `full` adds the free entry 0 and
 * expects ids 1..n in order) and the trailer. Returns the offset of the section. */
static size_t pdf_xref(struct pdfw *w, const int *ids, bool full, int size, int info, size_t prev)
{
        size_t at = w->b.n;
        ej_buf_append_c(&w->b, "xref\n");
        if (full) {
                int n = 0;
                while (ids[n])
                        n++;
                ej_buf_appendf(&w->b, "0 %d\n0000000000 65535 f \n", n + 1);
                for (int i = 0; i < n; i++)
                        ej_buf_appendf(&w->b, "%010zu 00000 n \n", w->off[ids[i]]);
        } else {
                for (int i = 0; ids[i]; i++)
                        ej_buf_appendf(&w->b, "%d 1\n%010zu 00000 n \n", ids[i], w->off[ids[i]]);
        }
        ej_buf_appendf(&w->b, "trailer\n<< /Size %d /Root 1 0 R", size);
        if (info)
                ej_buf_appendf(&w->b, " /Info %d 0 R", info);
        if (prev)
                ej_buf_appendf(&w->b, " /Prev %zu", prev);
        ej_buf_appendf(&w->b, " >>\nstartxref\n%zu\n%%%%EOF\n", at);
        return at;
}

static const char xmp[] =
    "<?xpacket begin=\"\xef\xbb\xbf\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n"
    "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF "
    "xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">"
    "<rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" "
    "xmlns:pdf=\"http://ns.adobe.com/pdf/1.3/\"><dc:creator><rdf:Seq><rdf:li>" CANARY
    "</rdf:li></rdf:Seq></dc:creator><pdf:Producer>" CANARY "'s tools</pdf:Producer>"
    "</rdf:Description></rdf:RDF></x:xmpmeta>\n<?xpacket end=\"w\"?>";

/* A one-page PDF with the canary in the information dictionary (also as a UTF-16BE string), in
 * the catalog's and the page's XMP, and as the author of a text annotation. */
static void make_pdf(const char *path)
{
        struct pdfw w;
        struct ej_buf keywords = EJ_BUF_INIT, info = EJ_BUF_INIT, hex = EJ_BUF_INIT,
                      le = EJ_BUF_INIT;
        utf8_to_utf16(CANARY, &hex, &le);
        ej_buf_append_c(&keywords, "<FEFF");
        for (size_t i = 0; i < hex.n; i++)
                ej_buf_appendf(&keywords, "%02X", (unsigned char)hex.p[i]);
        ej_buf_append_c(&keywords, ">");
        ej_buf_appendf(&info,
                       "<< /Author (" CANARY ") /Creator (" CANARY "'s editor) /Producer (Typeset "
                       "by " CANARY ") /Title (A study of ducks) /Subject (Ducks) /Keywords %s "
                       "/ReviewedBy (" CANARY ") >>",
                       keywords.p);
        pdf_begin(&w);
        pdf_obj(&w, 1, "<< /Type /Catalog /Pages 2 0 R /Metadata 5 0 R >>");
        pdf_obj(&w, 2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
        pdf_obj(&w, 3,
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                "/Metadata 7 0 R /Annots [8 0 R] /PieceInfo << /Editor << /Private (" CANARY
                ") >> >> /Resources << /Font << /F1 9 0 R >> >> >>");
        pdf_stream(&w, 4, "", "BT /F1 12 Tf 72 720 Td (Anonymous manuscript) Tj ET");
        pdf_stream(&w, 5, "/Type /Metadata /Subtype /XML", xmp);
        pdf_obj(&w, 6, info.p);
        pdf_stream(&w, 7, "/Type /Metadata /Subtype /XML", xmp);
        pdf_obj(&w, 8,
                "<< /Type /Annot /Subtype /Text /Rect [100 100 120 120] /T (" CANARY
                ") /Contents (Please check the sample size) >>");
        pdf_obj(&w, 9, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
        int ids[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0};
        pdf_xref(&w, ids, true, 10, 6, 0);
        put_file(path, w.b.p, w.b.n);
        ej_buf_free(&w.b);
        ej_buf_free(&keywords);
        ej_buf_free(&info);
        ej_buf_free(&hex);
        ej_buf_free(&le);
}

/* A PDF whose first revision names the author in its information dictionary and in its page
 * text; an incremental update replaces both. Only the old revision holds the canary. */
static void make_pdf_updated(const char *path)
{
        struct pdfw w;
        pdf_begin(&w);
        pdf_obj(&w, 1, "<< /Type /Catalog /Pages 2 0 R >>");
        pdf_obj(&w, 2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
        pdf_obj(&w, 3,
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                "/Resources << /Font << /F1 5 0 R >> >> >>");
        pdf_stream(&w, 4, "", "BT /F1 12 Tf 72 720 Td (by " CANARY ") Tj ET");
        pdf_obj(&w, 5, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
        pdf_obj(&w, 6, "<< /Author (" CANARY ") /Title (Draft) >>");
        int ids[] = {1, 2, 3, 4, 5, 6, 0};
        size_t first = pdf_xref(&w, ids, true, 7, 6, 0);
        pdf_stream(&w, 4, "", "BT /F1 12 Tf 72 720 Td (by Anonymous) Tj ET");
        pdf_obj(&w, 6, "<< /Title (Submitted version) >>");
        int changed[] = {4, 6, 0};
        pdf_xref(&w, changed, false, 7, 6, first);
        put_file(path, w.b.p, w.b.n);
        ej_buf_free(&w.b);
}

/* A PDF with no metadata whose page text names the author. */
static void make_pdf_named_in_text(const char *path)
{
        struct pdfw w;
        pdf_begin(&w);
        pdf_obj(&w, 1, "<< /Type /Catalog /Pages 2 0 R >>");
        pdf_obj(&w, 2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
        pdf_obj(&w, 3,
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                "/Resources << /Font << /F1 5 0 R >> >> >>");
        pdf_stream(&w, 4, "", "BT /F1 12 Tf 72 720 Td (by " CANARY ") Tj ET");
        pdf_obj(&w, 5, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
        int ids[] = {1, 2, 3, 4, 5, 0};
        pdf_xref(&w, ids, true, 6, 0, 0);
        put_file(path, w.b.p, w.b.n);
        ej_buf_free(&w.b);
}

static void test_pdf(void)
{
        char *src = tmp_path("paper.pdf"), *dst = tmp_path("blind.pdf");
        char *packed = tmp_path("packed.pdf"), *dst2 = tmp_path("blind2.pdf");
        const char *canaries[] = {CANARY, NULL};
        struct ej_err err = {0};

        make_pdf(src);
        /* The sample is a valid PDF, and the checks below can see each spelling of the canary. */
        CHECK(qpdf_checks(src));
        CHECK((pdf_canary_deep(src) & 0x9u) == 0x9u); /* plain and UTF-16BE hex */

        CHECK(blind_copy(src, "application/pdf", dst, canaries, &err) == EJ_OK);
        if (err.msg[0])
                fprintf(stderr, "  blind_copy: %s\n", err.msg);
        CHECK(qpdf_checks(dst));
        CHECK(canary_in_file(dst) == 0);
        CHECK(pdf_canary_deep(dst) == 0);
        struct ej_buf out = get_file(dst);
        CHECK(!has_str(&out, "/Info"));
        CHECK(!has_str(&out, "/Metadata"));
        CHECK(!has_str(&out, "/PieceInfo"));
        CHECK(!has_str(&out, "Ducks"));
        CHECK(has_str(&out, "/T (Author)"));
        CHECK(has_str(&out, "(Please check the sample size)"));
        ej_buf_free(&out);
        /* The page text is there (compressed by the writer: look in the expanded form). */
        char *qdf = tmp_path("paper.qdf");
        CHECK(run("qpdf --qdf '%s' '%s' >/dev/null 2>&1", dst, qdf) == 0);
        struct ej_buf expanded = get_file(qdf);
        CHECK(has_str(&expanded, "(Anonymous manuscript)"));
        ej_buf_free(&expanded);
        unlink(qdf);
        free(qdf);

        /* The same input gives the same bytes (the /ID does not depend on time or name). */
        CHECK(blind_copy(src, "application/pdf", dst2, NULL, NULL) == EJ_OK);
        struct ej_buf a = get_file(dst), b = get_file(dst2);
        CHECK(a.n > 0 && a.n == b.n && memcmp(a.p, b.p, a.n) == 0);
        ej_buf_free(&a);
        ej_buf_free(&b);

        /* Compressed object streams: the information dictionary is deflated inside one. */
        CHECK(run("qpdf --object-streams=generate --compress-streams=y '%s' '%s' >/dev/null 2>&1",
                  src, packed) == 0);
        struct ej_buf pk = get_file(packed);
        CHECK(!has_str(&pk, "/Author"));    /* the dictionary is compressed... */
        CHECK(pdf_canary_deep(packed) & 1); /* ...and the deep check still finds the canary */
        ej_buf_free(&pk);
        CHECK(blind_copy(packed, "application/pdf", dst, canaries, &err) == EJ_OK);
        CHECK(qpdf_checks(dst));
        CHECK(canary_in_file(dst) == 0);
        CHECK(pdf_canary_deep(dst) == 0);
        CHECK(run("qpdf --show-npages '%s' 2>/dev/null | grep -qx 1", dst) == 0);

        /* Encrypted with an owner password only: the copy is decrypted, and clean. */
        char *enc = tmp_path("encrypted.pdf");
        CHECK(run("qpdf --encrypt '' owner 256 -- '%s' '%s' >/dev/null 2>&1", src, enc) == 0);
        CHECK(!(canary_in_file(enc) & 1));
        CHECK(blind_copy(enc, "application/pdf", dst, canaries, &err) == EJ_OK);
        CHECK(qpdf_checks(dst));
        CHECK(run("qpdf --show-encryption '%s' 2>/dev/null | grep -q 'not encrypted'", dst) == 0);
        CHECK(pdf_canary_deep(dst) == 0);
        /* With a user password it cannot be read, so no copy is made. */
        CHECK(run("qpdf --encrypt user owner 256 -- '%s' '%s' >/dev/null 2>&1", src, enc) == 0);
        CHECK(blind_copy(enc, "application/pdf", dst, NULL, &err) == EJ_ERR_INVALID);
        CHECK(!file_exists(dst));
        free(enc);

        free(src);
        free(dst);
        free(packed);
        free(dst2);
}

static void test_pdf_incremental(void)
{
        char *src = tmp_path("updated.pdf"), *dst = tmp_path("blind-updated.pdf");
        const char *canaries[] = {CANARY, NULL};

        make_pdf_updated(src);
        CHECK(qpdf_checks(src));
        CHECK(canary_in_file(src) & 1);     /* the old revision is in the file's bytes */
        CHECK(!(pdf_canary_deep(src) & 1)); /* but not in the current revision */
        CHECK(blind_copy(src, "application/pdf", dst, canaries, NULL) == EJ_OK);
        CHECK(qpdf_checks(dst));
        CHECK(canary_in_file(dst) == 0);
        CHECK(pdf_canary_deep(dst) == 0);
        char *qdf = tmp_path("updated.qdf");
        CHECK(run("qpdf --qdf '%s' '%s' >/dev/null 2>&1", dst, qdf) == 0);
        struct ej_buf q = get_file(qdf);
        CHECK(has_str(&q, "(by Anonymous)"));
        CHECK(!has_str(&q, "Submitted version")); /* the current /Info is gone as well */
        ej_buf_free(&q);
        unlink(qdf);
        free(qdf);
        free(src);
        free(dst);
}

static void test_pdf_errors(void)
{
        char *src = tmp_path("named.pdf"), *dst = tmp_path("blind-named.pdf");
        char *junk = tmp_path("junk.pdf"), *missing = tmp_path("missing.pdf");
        const char *canaries[] = {CANARY, NULL};
        struct ej_err err = {0};

        /* The author's name in the page text is content: the copy is made but the check refuses
         * it and leaves no file behind. */
        make_pdf_named_in_text(src);
        CHECK(blind_copy(src, "application/pdf", dst, canaries, &err) == EJ_ERR_CONFLICT);
        CHECK(err.status == EJ_ERR_CONFLICT && strstr(err.msg, "stream") != NULL);
        CHECK(!file_exists(dst));
        CHECK(blind_copy(src, "application/pdf", dst, NULL, NULL) == EJ_OK);
        CHECK(file_exists(dst));
        unlink(dst);

        put_file(junk, "%PDF-1.4\nnot really a PDF\n", 26);
        CHECK(blind_copy(junk, "application/pdf", dst, NULL, &err) == EJ_ERR_INVALID);
        CHECK(!file_exists(dst));
        CHECK(blind_copy(missing, "application/pdf", dst, NULL, &err) == EJ_ERR_NOT_FOUND);
        CHECK(blind_copy(src, "application/msword", dst, NULL, &err) == EJ_ERR_UNSUPPORTED);
        CHECK(blind_copy(src, "image/svg+xml", dst, NULL, &err) == EJ_ERR_UNSUPPORTED);
        CHECK(blind_copy(NULL, "application/pdf", dst, NULL, &err) == EJ_ERR_INVALID);
        CHECK(!file_exists(dst));
        free(src);
        free(dst);
        free(junk);
        free(missing);
}

/* ---- Zip containers --------------------------------------------------------------------- */

struct part {
        const char *name;
        const char *data;
        bool stored;
};

/* Builds a zip of `parts` (NULL name ends), with the canary in the archive comment, in an entry
 * comment and in an extra field. */
static void make_zip(const char *path, const struct part *parts)
{
        int zerr = 0;
        zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
        CHECK(z != NULL);
        if (!z)
                return;
        for (const struct part *p = parts; p->name; p++) {
                zip_source_t *s = zip_source_buffer(z, p->data, strlen(p->data), 0);
                zip_int64_t i = zip_file_add(z, p->name, s, 0);
                CHECK(i >= 0);
                zip_set_file_compression(z, (zip_uint64_t)i,
                                         p->stored ? ZIP_CM_STORE : ZIP_CM_DEFLATE, 0);
                if (p == parts) {
                        zip_file_set_comment(z, (zip_uint64_t)i, "edited by " CANARY, 27, 0);
                        zip_file_extra_field_set(z, (zip_uint64_t)i, 0x6666, ZIP_EXTRA_FIELD_NEW,
                                                 (const zip_uint8_t *)CANARY, 17, ZIP_FL_CENTRAL);
                }
        }
        zip_set_archive_comment(z, "packed by " CANARY, 27);
        CHECK(zip_close(z) == 0);
}

/* The inflated bytes of entry `name`, or an empty buffer. */
static struct ej_buf zip_part(const char *path, const char *name)
{
        struct ej_buf b = EJ_BUF_INIT;
        int zerr = 0;
        zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);
        if (!z)
                return b;
        zip_int64_t i = zip_name_locate(z, name, 0);
        if (i >= 0 && zip_read_entry(z, (zip_uint64_t)i, &b, NULL) != EJ_OK)
                ej_buf_reset(&b);
        zip_discard(z);
        return b;
}

/* True when the archive passes libzip's consistency check and no entry, inflated, nor any name
 * or comment holds the canary. */
static bool zip_clean(const char *path)
{
        int zerr = 0;
        bool ok = canary_in_file(path) == 0;
        zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
        if (!z)
                return false;
        zip_int64_t n = zip_get_num_entries(z, 0);
        for (zip_int64_t i = 0; i < n; i++) {
                struct ej_buf b = EJ_BUF_INIT;
                zip_uint32_t clen = 0;
                const char *comment = zip_file_get_comment(z, (zip_uint64_t)i, &clen, 0);
                ok = ok && clen == 0 && (!comment || comment[0] == '\0');
                ok = ok && zip_read_entry(z, (zip_uint64_t)i, &b, NULL) == EJ_OK;
                ok = ok && canary_in(b.p, b.n) == 0;
                ej_buf_free(&b);
        }
        int alen = 0;
        zip_get_archive_comment(z, &alen, 0);
        ok = ok && alen == 0;
        zip_discard(z);
        return ok;
}

/* True when `name` is in both archives with the same method, sizes and CRC: its compressed
 * bytes were carried over. */
static bool zip_same_entry(const char *a_path, const char *b_path, const char *name)
{
        int zerr = 0;
        zip_t *a = zip_open(a_path, ZIP_RDONLY, &zerr), *b = zip_open(b_path, ZIP_RDONLY, &zerr);
        zip_stat_t sa, sb;
        bool ok = a && b && zip_stat(a, name, 0, &sa) == 0 && zip_stat(b, name, 0, &sb) == 0 &&
                  sa.comp_method == sb.comp_method && sa.comp_size == sb.comp_size &&
                  sa.size == sb.size && sa.crc == sb.crc;
        if (a)
                zip_discard(a);
        if (b)
                zip_discard(b);
        return ok;
}

static const char docx_types[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
    "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
    "<Default Extension=\"rels\" "
    "ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>"
    "<Default Extension=\"xml\" ContentType=\"application/xml\"/>"
    "<Override PartName=\"/word/document.xml\" "
    "ContentType=\"application/"
    "vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>"
    "<Override PartName=\"/word/comments.xml\" "
    "ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.comments+xml\"/>"
    "<Override PartName=\"/docProps/core.xml\" "
    "ContentType=\"application/vnd.openxmlformats-package.core-properties+xml\"/>"
    "<Override PartName=\"/docProps/app.xml\" "
    "ContentType=\"application/vnd.openxmlformats-officedocument.extended-properties+xml\"/>"
    "<Override PartName=\"/docProps/custom.xml\" "
    "ContentType=\"application/vnd.openxmlformats-officedocument.custom-properties+xml\"/>"
    "</Types>";
static const char docx_rels[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
    "<Relationship Id=\"rId1\" "
    "Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" "
    "Target=\"word/document.xml\"/>"
    "<Relationship Id=\"rId2\" "
    "Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/"
    "core-properties\" Target=\"docProps/core.xml\"/>"
    "<Relationship Id=\"rId3\" "
    "Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
    "extended-properties\" Target=\"docProps/app.xml\"/>"
    "<Relationship Id=\"rId4\" "
    "Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
    "custom-properties\" Target=\"/docProps/custom.xml\"/>"
    "</Relationships>";
static const char docx_document[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
    "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">"
    "<w:body><w:p><w:commentRangeStart w:id=\"0\"/><w:r><w:t>Ducks prefer ponds.</w:t></w:r>"
    "<w:commentRangeEnd w:id=\"0\"/><w:r><w:commentReference w:id=\"0\"/></w:r></w:p>"
    "</w:body></w:document>";
static const char docx_document_tracked[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
    "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">"
    "<w:body><w:p><w:ins w:id=\"1\" w:author=\"" CANARY "\" w:date=\"2026-01-01T00:00:00Z\">"
    "<w:r><w:t>Ducks prefer ponds.</w:t></w:r></w:ins><w:del w:id=\"2\" w:author='" CANARY
    "'><w:r><w:delText>lakes</w:delText></w:r></w:del></w:p></w:body></w:document>";
static const char docx_comments[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
    "<w:comments xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">"
    "<w:comment w:id=\"0\" w:author=\"" CANARY "\" w:date=\"2026-01-01T00:00:00Z\" "
    "w:initials=\"ZQ\"><w:p><w:r><w:t>Cite the pond survey.</w:t></w:r></w:p></w:comment>"
    "</w:comments>";
static const char docx_people[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
    "<w15:people xmlns:w15=\"http://schemas.microsoft.com/office/word/2012/wordml\">"
    "<w15:person w15:author=\"" CANARY "\"><w15:presenceInfo w15:providerId=\"AD\" "
    "w15:userId=\"S::zq@example.org::" CANARY "\"/></w15:person></w15:people>";
static const char docx_core[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
    "<cp:coreProperties "
    "xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" "
    "xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>Ducks</dc:title>"
    "<dc:creator>" CANARY "</dc:creator><cp:lastModifiedBy>" CANARY "</cp:lastModifiedBy>"
    "</cp:coreProperties>";
static const char docx_app[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
    "<Properties "
    "xmlns=\"http://schemas.openxmlformats.org/officeDocument/2006/extended-properties\">"
    "<Template>C:\\Users\\" CANARY "\\Normal.dotm</Template><Company>" CANARY
    " Labs</Company></Properties>";
static const char docx_custom[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
    "<Properties "
    "xmlns=\"http://schemas.openxmlformats.org/officeDocument/2006/custom-properties\" "
    "xmlns:vt=\"http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes\">"
    "<property fmtid=\"{D5CDD505-2E9C-101B-9397-08002B2CF9AE}\" pid=\"2\" name=\"Owner\">"
    "<vt:lpwstr>" CANARY "</vt:lpwstr></property></Properties>";

static void test_docx(void)
{
        char *src = tmp_path("paper.docx"), *dst = tmp_path("blind.docx");
        const char *canaries[] = {CANARY, NULL};
        const char *type =
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        const struct part parts[] = {
            {"[Content_Types].xml", docx_types, false},
            {"_rels/.rels", docx_rels, false},
            {"word/document.xml", docx_document, false},
            {"word/comments.xml", docx_comments, false},
            {"word/people.xml", docx_people, false},
            {"word/media/image1.png", "\x89PNG not really", true},
            {"docProps/core.xml", docx_core, false},
            {"docProps/app.xml", docx_app, false},
            {"docProps/custom.xml", docx_custom, false},
            {NULL, NULL, false},
        };
        struct ej_err err = {0};

        make_zip(src, parts);
        CHECK(!zip_clean(src)); /* the check sees the planted canaries */
        CHECK(blind_copy(src, type, dst, canaries, &err) == EJ_OK);
        if (err.msg[0])
                fprintf(stderr, "  blind_copy: %s\n", err.msg);
        CHECK(zip_clean(dst));

        /* The main part and the package structure are untouched, byte for byte. */
        struct ej_buf doc = zip_part(dst, "word/document.xml");
        CHECK(doc.n == strlen(docx_document) && memcmp(doc.p, docx_document, doc.n) == 0);
        ej_buf_free(&doc);
        CHECK(zip_same_entry(src, dst, "word/document.xml"));
        CHECK(zip_same_entry(src, dst, "word/media/image1.png"));
        struct ej_buf types = zip_part(dst, "[Content_Types].xml");
        CHECK(types.n == strlen(docx_types) && memcmp(types.p, docx_types, types.n) == 0);
        ej_buf_free(&types);

        struct ej_buf comments = zip_part(dst, "word/comments.xml");
        CHECK(has_str(&comments, "w:author=\"Author\""));
        CHECK(has_str(&comments, "w:initials=\"A\""));
        CHECK(has_str(&comments, "Cite the pond survey."));
        ej_buf_free(&comments);
        struct ej_buf core = zip_part(dst, "docProps/core.xml");
        CHECK(has_str(&core, "<cp:coreProperties") && !has_str(&core, "Ducks"));
        ej_buf_free(&core);
        struct ej_buf app = zip_part(dst, "docProps/app.xml");
        CHECK(has_str(&app, "extended-properties") && !has_str(&app, "Template"));
        ej_buf_free(&app);
        struct ej_buf custom = zip_part(dst, "docProps/custom.xml");
        CHECK(has_str(&custom, "custom-properties") && !has_str(&custom, "Owner"));
        ej_buf_free(&custom);

        /* Same entries, same order. */
        int zerr = 0;
        zip_t *a = zip_open(src, ZIP_RDONLY, &zerr), *b = zip_open(dst, ZIP_RDONLY, &zerr);
        CHECK(a && b && zip_get_num_entries(a, 0) == zip_get_num_entries(b, 0));
        for (zip_int64_t i = 0; a && b && i < zip_get_num_entries(a, 0); i++)
                CHECK(strcmp(zip_get_name(a, (zip_uint64_t)i, 0),
                             zip_get_name(b, (zip_uint64_t)i, 0)) == 0);
        if (a)
                zip_discard(a);
        if (b)
                zip_discard(b);
        free(src);
        free(dst);
}

static void test_docx_tracked_changes(void)
{
        char *src = tmp_path("tracked.docx"), *dst = tmp_path("blind-tracked.docx");
        const char *type =
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        const struct part parts[] = {
            {"[Content_Types].xml", docx_types, false},
            {"_rels/.rels", docx_rels, false},
            {"word/document.xml", docx_document_tracked, false},
            {"docProps/core.xml", docx_core, false},
            {NULL, NULL, false},
        };
        make_zip(src, parts);
        CHECK(blind_copy(src, type, dst, NULL, NULL) == EJ_OK);
        CHECK(zip_clean(dst));
        /* Only the authors' names changed. */
        struct ej_buf want = EJ_BUF_INIT;
        const char *p = docx_document_tracked, *hit;
        while ((hit = strstr(p, CANARY)) != NULL) {
                ej_buf_append(&want, p, (size_t)(hit - p));
                ej_buf_append_c(&want, "Author");
                p = hit + strlen(CANARY);
        }
        ej_buf_append_c(&want, p);
        struct ej_buf doc = zip_part(dst, "word/document.xml");
        CHECK(doc.n == want.n && memcmp(doc.p, want.p, doc.n) == 0);
        ej_buf_free(&doc);
        ej_buf_free(&want);
        free(src);
        free(dst);
}

static const char odt_meta[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<office:document-meta xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" "
    "xmlns:meta=\"urn:oasis:names:tc:opendocument:xmlns:meta:1.0\" "
    "xmlns:dc=\"http://purl.org/dc/elements/1.1/\" office:version=\"1.3\"><office:meta>"
    "<meta:initial-creator>" CANARY "</meta:initial-creator><dc:creator>" CANARY
    "</dc:creator><meta:user-defined meta:name=\"Owner\">" CANARY
    "</meta:user-defined></office:meta></office:document-meta>";
static const char odt_content[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<office:document-content "
    "xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" "
    "xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" "
    "xmlns:dc=\"http://purl.org/dc/elements/1.1/\" office:version=\"1.3\"><office:body>"
    "<office:text><text:p>Ducks prefer ponds.<office:annotation><dc:creator>" CANARY
    "</dc:creator><text:p>Cite the pond survey.</text:p></office:annotation></text:p>"
    "</office:text></office:body></office:document-content>";
static const char odt_styles[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<office:document-styles xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" "
    "office:version=\"1.3\"/>";
static const char odt_manifest[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" "
    "manifest:version=\"1.3\"><manifest:file-entry manifest:full-path=\"/\" "
    "manifest:media-type=\"application/vnd.oasis.opendocument.text\"/>"
    "<manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/>"
    "<manifest:file-entry manifest:full-path=\"meta.xml\" manifest:media-type=\"text/xml\"/>"
    "</manifest:manifest>";

static void test_odt(void)
{
        char *src = tmp_path("paper.odt"), *dst = tmp_path("blind.odt");
        const char *canaries[] = {CANARY, NULL};
        /* `mimetype` is not first here: the copy must put it first. */
        const struct part parts[] = {
            {"META-INF/manifest.xml", odt_manifest, false},
            {"mimetype", "application/vnd.oasis.opendocument.text", true},
            {"content.xml", odt_content, false},
            {"styles.xml", odt_styles, false},
            {"meta.xml", odt_meta, false},
            {NULL, NULL, false},
        };
        struct ej_err err = {0};

        make_zip(src, parts);
        CHECK(!zip_clean(src));
        CHECK(blind_copy(src, "application/vnd.oasis.opendocument.text", dst, canaries, &err) ==
              EJ_OK);
        if (err.msg[0])
                fprintf(stderr, "  blind_copy: %s\n", err.msg);
        CHECK(zip_clean(dst));

        /* ODF: the file starts with the stored `mimetype` entry and no extra field. */
        struct ej_buf raw = get_file(dst);
        CHECK(raw.n > 77 && memcmp(raw.p, "PK\x03\x04", 4) == 0);
        CHECK(raw.n > 77 && raw.p[8] == 0 && raw.p[9] == 0);   /* method: stored */
        CHECK(raw.n > 77 && raw.p[26] == 8 && raw.p[27] == 0); /* name length */
        CHECK(raw.n > 77 && raw.p[28] == 0 && raw.p[29] == 0); /* extra field length */
        CHECK(raw.n > 77 &&
              memcmp(raw.p + 30, "mimetypeapplication/vnd.oasis.opendocument.text", 47) == 0);
        ej_buf_free(&raw);

        struct ej_buf meta = zip_part(dst, "meta.xml");
        CHECK(has_str(&meta, "office:version=\"1.3\"") && !has_str(&meta, "Owner"));
        ej_buf_free(&meta);
        struct ej_buf content = zip_part(dst, "content.xml");
        CHECK(has_str(&content, "<dc:creator>Author</dc:creator>"));
        CHECK(has_str(&content, "Ducks prefer ponds.") &&
              has_str(&content, "Cite the pond survey."));
        CHECK(content.n == strlen(odt_content) - strlen(CANARY) + strlen("Author"));
        ej_buf_free(&content);
        CHECK(zip_same_entry(src, dst, "styles.xml"));
        CHECK(zip_same_entry(src, dst, "META-INF/manifest.xml"));
        free(src);
        free(dst);
}

static void test_plain_zip(void)
{
        char *src = tmp_path("sources.zip"), *dst = tmp_path("blind.zip");
        const char *main_tex = "\\documentclass{article}\\begin{document}Ducks.\\end{document}";
        const struct part parts[] = {
            {"paper/", "", true},
            {"paper/main.tex", main_tex, false},
            {NULL, NULL, false},
        };
        make_zip(src, parts);
        CHECK(canary_in_file(src) & 1);
        CHECK(blind_copy(src, "application/zip", dst, NULL, NULL) == EJ_OK);
        CHECK(zip_clean(dst));
        struct ej_buf tex = zip_part(dst, "paper/main.tex");
        CHECK(tex.n == strlen(main_tex) && memcmp(tex.p, main_tex, tex.n) == 0);
        ej_buf_free(&tex);

        /* A zip that is not one. */
        put_file(src, "PK\x03\x04 broken", 11);
        CHECK(blind_copy(src, "application/zip", dst, NULL, NULL) == EJ_ERR_INVALID);
        CHECK(!file_exists(dst));
        free(src);
        free(dst);
}

/* ---- RTF and text ----------------------------------------------------------------------- */

static void test_rtf(void)
{
        char *src = tmp_path("paper.rtf"), *dst = tmp_path("blind.rtf");
        const char *canaries[] = {CANARY, NULL};
        const char rtf[] =
            "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times;}}"
            "{\\info{\\title Ducks}{\\author " CANARY "}{\\operator Z. \\{Q\\} " CANARY "}"
            "{\\company " CANARY " Labs}{\\creatim\\yr2026\\mo1\\dy1}}"
            "{\\*\\userprops {\\propname Owner}\\proptype30{\\staticval " CANARY "}}"
            "{\\*\\revtbl {Unknown;}{" CANARY ";}}"
            "\\pard Ducks prefer \\{ponds\\}.{\\*\\atnid ZQ}{\\*\\atnauthor " CANARY "}\\chatn"
            "{\\*\\annotation Cite the survey.}\\par}";
        const char want[] = "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times;}}"
                            "{\\*\\revtbl {Unknown;}{Author;}}"
                            "\\pard Ducks prefer \\{ponds\\}.{\\*\\atnid A}{\\*\\atnauthor "
                            "Author}\\chatn{\\*\\annotation Cite the survey.}\\par}";
        put_file(src, rtf, sizeof(rtf) - 1);
        CHECK(blind_copy(src, "text/rtf", dst, canaries, NULL) == EJ_OK);
        struct ej_buf out = get_file(dst);
        CHECK(canary_in(out.p, out.n) == 0);
        CHECK(out.n == sizeof(want) - 1 && memcmp(out.p, want, out.n) == 0);
        if (out.n != sizeof(want) - 1 || memcmp(out.p, want, out.n) != 0)
                fprintf(stderr, "  rtf gave: %s\n", out.p ? out.p : "");
        ej_buf_free(&out);

        /* A destination word that only starts like \info is kept. */
        const char lookalike[] = "{\\rtf1{\\infotext keep}\\par}";
        put_file(src, lookalike, sizeof(lookalike) - 1);
        CHECK(blind_copy(src, "application/rtf", dst, NULL, NULL) == EJ_OK);
        out = get_file(dst);
        CHECK(out.n == sizeof(lookalike) - 1 && memcmp(out.p, lookalike, out.n) == 0);
        ej_buf_free(&out);

        /* \binN data is raw: braces in it are not groups, inside \info or out. */
        const char bin[] = "{\\rtf1{\\info{\\author " CANARY "}{\\*\\x\\bin2 }}}}"
                           "{\\*\\blob\\bin3 {\\i}x\\par}";
        const char bin_want[] = "{\\rtf1{\\*\\blob\\bin3 {\\i}x\\par}";
        put_file(src, bin, sizeof(bin) - 1);
        CHECK(blind_copy(src, "text/rtf", dst, canaries, NULL) == EJ_OK);
        out = get_file(dst);
        CHECK(out.n == sizeof(bin_want) - 1 && memcmp(out.p, bin_want, out.n) == 0);
        ej_buf_free(&out);
        const char bin_short[] = "{\\rtf1\\bin9 {}";
        put_file(src, bin_short, sizeof(bin_short) - 1);
        CHECK(blind_copy(src, "text/rtf", dst, NULL, NULL) == EJ_ERR_INVALID);

        const char broken[] = "{\\rtf1{\\info{\\author " CANARY "}";
        put_file(src, broken, sizeof(broken) - 1);
        CHECK(blind_copy(src, "text/rtf", dst, NULL, NULL) == EJ_ERR_INVALID);
        CHECK(!file_exists(dst));
        free(src);
        free(dst);
}

static void test_text(void)
{
        char *src = tmp_path("paper.tex"), *dst = tmp_path("blind.tex");
        const char tex[] = "\\documentclass{article}\n\\begin{document}\nDucks.\n\\end{document}\n";
        put_file(src, tex, sizeof(tex) - 1);
        CHECK(blind_copy(src, "text/x-tex", dst, NULL, NULL) == EJ_OK);
        struct ej_buf out = get_file(dst);
        CHECK(out.n == sizeof(tex) - 1 && memcmp(out.p, tex, out.n) == 0);
        ej_buf_free(&out);
        CHECK(blind_copy(src, "Text/Plain; charset=us-ascii", dst, NULL, NULL) == EJ_OK);
        /* A name in the text itself is the author's to remove: the check reports it. */
        const char *canaries[] = {"Ducks", NULL};
        struct ej_err err = {0};
        CHECK(blind_copy(src, "text/plain", dst, canaries, &err) == EJ_ERR_CONFLICT);
        CHECK(!file_exists(dst));
        put_file(src, "", 0);
        CHECK(blind_copy(src, "text/plain", dst, canaries, NULL) == EJ_OK);
        out = get_file(dst);
        CHECK(file_exists(dst) && out.n == 0);
        ej_buf_free(&out);
        free(src);
        free(dst);
}

/* ---- Internals -------------------------------------------------------------------------- */

static void test_scan(void)
{
        const char *canaries[] = {CANARY, "", NULL};
        struct scan s;
        scan_init(&s, canaries);
        CHECK(s.npats == 3);
        scan_restart(&s, "one");
        scan_feed(&s, "written by Zelda Qu", 19);
        CHECK(!s.hit);
        scan_feed(&s, "a", 1);
        scan_feed(&s, "ckenbush.", 9); /* straddles three chunks */
        CHECK(s.hit && strcmp(s.where, "one") == 0);
        scan_free(&s);

        scan_init(&s, canaries);
        scan_restart(&s, "a");
        scan_feed(&s, "Zelda Qu", 8);
        scan_restart(&s, "b");
        scan_feed(&s, "ackenbush", 9); /* a new stream does not continue the old one */
        CHECK(!s.hit);
        struct ej_buf be = EJ_BUF_INIT, le = EJ_BUF_INIT;
        utf8_to_utf16(CANARY, &be, &le);
        scan_restart(&s, "utf16");
        scan_feed(&s, le.p, 5);
        scan_feed(&s, le.p + 5, le.n - 5);
        CHECK(s.hit && strcmp(s.where, "utf16") == 0);
        ej_buf_free(&be);
        ej_buf_free(&le);
        scan_free(&s);

        scan_init(&s, NULL);
        CHECK(!scan_active(&s));
        scan_free(&s);
}

static void test_xml_rewrite(void)
{
        struct xml_rules rules = {ooxml_attrs, 4, odf_elems, 1};
        const char same[] = "<?xml version=\"1.0\"?><!-- w:author=\"x\" --><a b=\"c\"><![CDATA["
                            "<dc:creator>x</dc:creator>]]><w:c w:author=\"Author\"/></a>";
        struct ej_buf out = EJ_BUF_INIT;
        CHECK(!xml_rewrite(same, sizeof(same) - 1, &rules, &out));
        CHECK(out.n == sizeof(same) - 1 && memcmp(out.p, same, out.n) == 0);
        ej_buf_reset(&out);
        const char named[] = "<r><x:y  w:author = 'Ann' w:date=\"d\"/><dc:creator>Ann</dc:creator>"
                             "<dc:creator/></r>";
        CHECK(xml_rewrite(named, sizeof(named) - 1, &rules, &out));
        CHECK(strcmp(out.p, "<r><x:y  w:author = 'Author' w:date=\"d\"/><dc:creator>Author"
                            "</dc:creator><dc:creator/></r>") == 0);
        ej_buf_free(&out);
        /* Truncated input is copied as it is. */
        const char cut[] = "<a w:author=\"Ann";
        CHECK(!xml_rewrite(cut, sizeof(cut) - 1, &rules, &out));
        CHECK(out.n == sizeof(cut) - 1);
        ej_buf_free(&out);
}

static void remove_tmp_dir(void)
{
        DIR *d = opendir(tmp_dir);
        if (!d)
                return;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                char *p = tmp_path(e->d_name);
                unlink(p);
                free(p);
        }
        closedir(d);
        rmdir(tmp_dir);
}

int main(void)
{
        if (!mkdtemp(tmp_dir)) {
                perror("mkdtemp");
                return 1;
        }
        bool have_qpdf = run("qpdf --version >/dev/null 2>&1") == 0;
        CHECK(have_qpdf); /* tools/install-deps.sh installs it */
        test_scan();
        test_xml_rewrite();
        if (have_qpdf) {
                test_pdf();
                test_pdf_incremental();
                test_pdf_errors();
        }
        test_docx();
        test_docx_tracked_changes();
        test_odt();
        test_plain_zip();
        test_rtf();
        test_text();
        remove_tmp_dir();
        return check_report();
}
