/*
 * content.h: what a file is (content.c): upload kinds and the types they take, type detection
 * by content (libmagic, and the entries of zip containers), display names, and the FileInfo
 * message of a file row.
 *
 * struct files_magic owns the libmagic handle; files_sniff serialises on it, so one handle
 * serves every thread. The other functions hold no state.
 */
#ifndef EJ_FILES_CONTENT_H
#define EJ_FILES_CONTENT_H

#include <stdbool.h>
#include <stddef.h>

#include "files.pb-c.h"

#include "files.h"
#include "mem.h"
#include "status.h"

struct files_magic;

/* Fills the kinds with their allow-lists and default limits (manuscript 64 MiB, image 10 MiB,
 * attachment 64 MiB, galley 128 MiB). */
void files_kinds_default(struct files_kind kinds[FILES_N_KINDS]);

/* The kind named `name`, or NULL. */
const struct files_kind *files_kind_find(const struct files_config *cfg, const char *name);

/* Opens libmagic with its default database. On success *out is the caller's
 * (files_magic_close). */
enum ej_status files_magic_open(struct files_magic **out, struct ej_err *err);

/* Closes the handle. Accepts NULL. */
void files_magic_close(struct files_magic *m);

/* Asks libmagic for the MIME type of the `n` bytes at `p` (the start of a file); copies it into
 * `out`. Thread-safe. */
void files_sniff(struct files_magic *m, const void *p, size_t n, char *out, size_t out_size);

/* True when `type` is a zip container whose real type is decided from its entries. */
bool files_type_is_zip(const char *type);

/* True when `kind` takes `type`, or might take it once a zip's entries are known. */
bool files_kind_allows(const struct files_kind *kind, const char *type);

/* Decides the type of the zip at `path`: ODT (mimetype entry), DOCX ([Content_Types].xml and
 * word/document.xml), a LaTeX archive (application/zip with a .tex entry) or plain
 * "application/zip" (no .tex). EJ_ERR_UNSUPPORTED when it is not a readable zip. */
enum ej_status files_zip_type(const char *path, char *out, size_t out_size, struct ej_err *err);

/* Copies a display name made from the client's `name` into `out` (at least 4 * FILES_NAME_MAX
 * + 1 bytes): directory parts stripped, control and format characters, quotes, backslashes and
 * invalid UTF-8 removed, spaces collapsed, at most FILES_NAME_MAX characters (the extension
 * kept); "file" when nothing is left. */
void files_sanitize_name(const char *name, char *out, size_t out_size);

/* A FileInfo (in `a`) made from `row`. */
Ej__Files__FileInfo *files_info_from_row(struct ej_arena *a, const struct files_row *row);

#endif
