/*
 * blind.h: anonymised copies of manuscripts for double-blind review.
 *
 * blind_copy() reads a stored file and writes a derived copy from which the metadata that names
 * its authors has been removed; the files service serves that copy to reviewers and caches it.
 * What is removed, by content type (parameters such as "; charset=" are ignored):
 *   - application/pdf: the document information dictionary (/Info: Author, Creator, Producer,
 *     Title, Subject, Keywords, custom keys), every XMP stream (/Metadata in the catalog, on
 *     pages and on any other object) and application data (/PieceInfo); the authors (/T) of
 *     markup annotations become "Author". The whole file is rewritten (through libqpdf), so
 *     earlier revisions kept by incremental updates are gone too; the trailer /ID is derived from
 *     the content, not from the time or the file name (the same input gives the same bytes).
 *     Encryption without a user password is removed; a PDF that needs a password is refused.
 *   - OOXML (application/vnd.openxmlformats-officedocument.*: docx, xlsx, pptx): the core,
 *     extended (app) and custom property parts (found through _rels/.rels, docProps/ by
 *     convention) are replaced by empty ones, so [Content_Types].xml and the relationships stay
 *     valid; in every other XML part the authors of comments, tracked changes and people lists
 *     (attributes w:author, w15:author, ...) become "Author", initials "A", account ids
 *     (w15:userId, w15:providerId) neutral values. Other parts keep their bytes.
 *   - ODF (application/vnd.oasis.opendocument.*: odt, ods, odp): meta.xml is replaced by a
 *     neutral one of the same ODF version; in the other XML parts the authors of annotations and
 *     tracked changes (dc:creator) and author fields (text:author-name) become "Author".
 *     `mimetype` becomes the first entry, stored uncompressed, as ODF requires.
 *   - Every zip container (the above, and application/zip: a LaTeX source archive) is rebuilt:
 *     entry timestamps are fixed, archive and entry comments and extra fields (owner ids) are
 *     dropped; entries that need no change keep their compressed bytes.
 *   - text/rtf, application/rtf: the {\info ...} group (title, author, operator, company, ...)
 *     and custom properties ({\*\userprops}) are removed; annotation authors ({\*\atnauthor},
 *     {\*\atnid}) and the revision table's authors become "Author" / "A".
 *   - text/plain, text/x-tex, application/x-tex: copied unchanged (there is no metadata to remove;
 *     names in the text itself are the author's to anonymise).
 * Any other type (application/msword among them) gives EJ_ERR_UNSUPPORTED. A part held in memory
 * to be rewritten (an XML part, an RTF file) may be at most 64 MiB.
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
 * them in its raw bytes, in every inflated zip entry and in every decoded PDF stream, string,
 * name and key (each also as UTF-16 in both byte orders; byte for byte, case counts); a hit means
 * the author's name is in the content itself, which blind_copy does not rewrite, and gives
 * EJ_ERR_CONFLICT naming the part where it was found. Returns EJ_OK; EJ_ERR_UNSUPPORTED for a type
 * it does not handle; EJ_ERR_INVALID when the file is not what its type says (a damaged PDF, zip or
 * RTF); EJ_ERR_TOO_LARGE for a part over the limit; EJ_ERR_NOT_FOUND when `src_path` does not
 * exist; EJ_ERR_INTERNAL on an I/O failure. `err` may be NULL. */
enum ej_status blind_copy(const char *src_path, const char *content_type, const char *dst_path,
                          const char *const *canaries, struct ej_err *err);

#endif
