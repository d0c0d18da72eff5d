/*
 * blind.h: anonymised copies of manuscripts for double-blind review.
 *
 * blind_copy() reads a stored file and writes a derived copy from which the metadata that names
 * its authors has been removed; the files service serves that copy to reviewers and caches it.
 * What is removed, by content type (parameters such as "; charset=" are ignored):
 *   - application/pdf: the document information dictionary (/Info: Author, Creator, Producer,
 *     Title, Subject, Keywords, custom keys) and every XMP stream (/Metadata in the catalog, on
 *     pages and on any other object). The whole file is rewritten (through libqpdf), so earlier
 *     revisions kept by incremental updates are gone too; the trailer /ID is derived from the
 *     content, not from the time or the file name.
 *   - OOXML (application/vnd.openxmlformats-officedocument.*: docx, xlsx, pptx): docProps/core.xml
 *     and docProps/app.xml are replaced by neutral ones, docProps/custom.xml is dropped (with its
 *     [Content_Types].xml override and relationship), and the authors of comments and tracked
 *     changes (w:author, w:initials) in the word/ parts become "Reviewer" / "Author".
 *   - ODF (application/vnd.oasis.opendocument.*: odt, ods, odp): meta.xml is replaced by a
 *     neutral one; the authors of annotations and tracked changes (dc:creator in content.xml)
 *     become "Author". `mimetype` stays the first entry, stored uncompressed.
 *   - Zip containers: entry timestamps are fixed, and archive and entry comments and extra
 *     fields (owner ids) are dropped; every other entry's bytes are kept as they were.
 *   - text/rtf, application/rtf: the {\info ...} group (author, operator, company, ...) is removed.
 *   - text/plain, text/x-tex, application/x-tex: copied unchanged (there is no metadata to remove;
 *     names in the text itself are the author's to anonymise).
 *   - application/zip (a LaTeX source archive): rewritten as a zip container (above).
 * Any other type (application/msword among them) gives EJ_ERR_UNSUPPORTED.
 *
 * The output's file name is the caller's business: it should be neutral (e.g. "manuscript.pdf"),
 * never derived from the upload's name.
 *
 * Ownership: the caller owns both paths and the canary list; nothing is retained after return.
 * The output is written to `dst_path` directly (the caller renames it into place); on failure
 * `dst_path` is removed. Thread safety: reentrant; concurrent calls must use distinct outputs.
 */
#ifndef EJ_FILES_BLIND_H
#define EJ_FILES_BLIND_H

#include "status.h"

/* Writes to `dst_path` an anonymised copy of the file at `src_path`, whose type (decided by its
 * content) is `content_type`. `canaries` may be NULL or a NULL-terminated list of strings that
 * must not survive (the authors' names, say): after writing, the output is searched for each of
 * them in its raw bytes, in every inflated zip entry and in every decoded PDF stream and string
 * (also as UTF-16BE); a hit means the author's name is in the content itself, which blind_copy
 * does not rewrite, and gives EJ_ERR_CONFLICT naming the part where it was found.
 * Returns EJ_OK; EJ_ERR_UNSUPPORTED for a type it does not handle; EJ_ERR_INVALID when the file
 * is not what its type says (a damaged PDF or zip); EJ_ERR_NOT_FOUND when `src_path` does not
 * exist; EJ_ERR_INTERNAL on an I/O failure. `err` may be NULL. */
enum ej_status blind_copy(const char *src_path, const char *content_type, const char *dst_path,
                          const char *const *canaries, struct ej_err *err);

#endif
