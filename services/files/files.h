/*
 * files.h: the files service's own declarations (shared by its main.c, handlers.c, upload.c,
 * content.c and store.c).
 *
 * The service keeps uploaded files in content-addressed storage (storage.h) and their metadata
 * in its PostgreSQL schema "files". Requests follow proto/files.proto. Stateless operations
 * (begin, open, read, attach, blind_copy, info, gdpr_export) run on the runtime's worker
 * threads (service.h); an upload in progress is served by the replica that began it, on a
 * subscription of its own (upload.c). One struct files_ctx per process, created in main() and
 * handed to every handler as call->svc; its fields are set before threads start and only read
 * afterwards, except the parts guarded by their own mutexes (the upload registry, the libmagic
 * handle, the database pool).
 */
#ifndef EJ_FILES_H
#define EJ_FILES_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.pb-c.h"
#include "files.pb-c.h"

#include "bus.h"
#include "db.h"
#include "grant.h"
#include "mem.h"
#include "service.h"
#include "storage.h"

#define FILES_CHUNK_SIZE  (256 * 1024) /* data bytes per upload chunk and per read */
#define FILES_WINDOW      8            /* upload chunks in flight without ack */
#define FILES_SNIFF_BYTES (64 * 1024)  /* bytes libmagic sees to decide the type */
#define FILES_NAME_MAX    200          /* characters of a display name */

/* An upload kind: its size limit and the content types it takes. */
struct files_kind {
        const char *name;         /* "manuscript", "image", "attachment", "galley" */
        int64_t max_size;         /* EJ_FILES_LIMIT_<NAME> */
        const char *const *types; /* NULL-terminated allow-list of MIME types */
};

#define FILES_N_KINDS 4

struct files_config {
        char dir[512];     /* EJ_FILES_DIR: local blobs, and temp files of uploads under tmp/ */
        char tmp_dir[600]; /* <dir>/tmp/<replica>: this replica's upload temp files */
        char replica[40];  /* EJ_FILES_REPLICA_ID or random: names the chunk subjects */
        struct files_kind kinds[FILES_N_KINDS];
        int64_t idle_timeout_ms;   /* EJ_FILES_IDLE_TIMEOUT_S (60) */
        int64_t unattached_ttl_ms; /* EJ_FILES_UNATTACHED_TTL_S (86400) */
        int64_t sweep_interval_ms; /* EJ_FILES_SWEEP_INTERVAL_S (60) */
        int64_t orphan_grace_s;    /* EJ_FILES_ORPHAN_GRACE_S: an unreferenced blob's life (3600) */
        long max_uploads;          /* EJ_FILES_MAX_UPLOADS: in progress on this replica (256) */
        long max_uploads_per_user; /* EJ_FILES_MAX_UPLOADS_PER_USER: at once, per user (32) */
        struct ej_grant_key grant_key; /* EJ_GRANT_KEY */
        const char *db_url;            /* EJ_DB_URL (the upload side opens its own connections) */
};

struct files_uploads; /* upload.c: the uploads in progress on this replica */

struct files_ctx {
        struct files_config cfg;
        struct storage *storage;
        struct ej_bus *bus; /* this replica's own connection for chunk subscriptions */
        struct files_uploads *uploads;
        void *magic; /* magic_t, used under magic_mu */
        pthread_mutex_t magic_mu;
        pthread_mutex_t db_mu; /* the pool of connections of the upload side */
        struct ej_db *db_pool[8];
        int n_db_pool;
        pthread_t sweeper;
        bool sweeper_started;
        pthread_mutex_t stop_mu;
        pthread_cond_t stop_cv;
        bool stopping;
};

/* ---- content.c: kinds, types, names ------------------------------------------------------ */

/* Fills the kinds with their allow-lists and default limits (manuscript 64 MiB, image 10 MiB,
 * attachment 64 MiB, galley 128 MiB). */
void files_kinds_default(struct files_kind kinds[FILES_N_KINDS]);

/* The kind named `name`, or NULL. */
const struct files_kind *files_kind_find(const struct files_config *cfg, const char *name);

/* Asks libmagic for the MIME type of the `n` bytes at `p` (the start of a file); copies it into
 * `out`. Thread-safe (serialised on ctx->magic_mu). */
void files_sniff(struct files_ctx *ctx, const void *p, size_t n, char *out, size_t out_size);

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

/* ---- store.c: every SQL statement of the service ------------------------------------------- */

/* A file row as the handlers see it (strings in the caller's arena). */
struct files_row {
        const char *id;
        const char *sha256;
        int64_t size;
        const char *content_type;
        const char *name;
        const char *kind;
        const char *owner_id;
        const char *resource;
        const char *purpose;
        bool public_;
        const char *blind_of;
        int64_t created_at_ms;
};

/* Records a committed upload: the blob (or clears its orphan mark), the file row and the event
 * file.uploaded, in one transaction. Fills created_at_ms. */
enum ej_status store_file_insert(struct ej_db *db, struct files_row *row, struct ej_err *err);

/* Loads file `id` into `row` (strings in `a`). EJ_ERR_NOT_FOUND when there is none (also for a
 * malformed id). */
enum ej_status store_file_get(struct ej_db *db, struct ej_arena *a, const char *id,
                              struct files_row *row, struct ej_err *err);

/* Sets resource, purpose and public of file `id` (and of its anonymised copy, if any). */
enum ej_status store_file_attach(struct ej_db *db, const char *id, const char *resource,
                                 const char *purpose, bool public_, struct ej_err *err);

/* The anonymised copy of `source_id`, if one was made. */
enum ej_status store_blind_get(struct ej_db *db, struct ej_arena *a, const char *source_id,
                               struct files_row *row, struct ej_err *err);

/* Every file uploaded by `owner_id`, oldest first, as an arena array. */
enum ej_status store_files_by_owner(struct ej_db *db, struct ej_arena *a, const char *owner_id,
                                    struct files_row **rows, size_t *n, struct ej_err *err);

/* Erasure of a person: deletes their unattached uploads (never the attached scholarly files)
 * and marks blobs no file refers to any more as orphaned, for the sweeper to delete after the
 * grace period. Counts in `*removed`. Runs in the caller's transaction. */
enum ej_status store_erase_owner(struct ej_db *db, const char *owner_id, long *removed,
                                 struct ej_err *err);

/* Deletes unattached files older than `ttl_ms` and marks blobs no file refers to as orphaned;
 * returns how many files went in `*removed`. */
enum ej_status store_sweep_unattached(struct ej_db *db, int64_t ttl_ms, long *removed,
                                      struct ej_err *err);

/* Takes one blob orphaned for longer than `grace_s` and still unreferenced, deletes its row,
 * and returns its key in `key` (65 bytes); EJ_ERR_NOT_FOUND when there is none. The caller
 * deletes the bytes. */
enum ej_status store_take_orphan(struct ej_db *db, int64_t grace_s, char key[65],
                                 struct ej_err *err);

/* ---- upload.c: uploads in progress --------------------------------------------------------- */

/* Creates the registry and starts nothing yet. */
struct files_uploads *files_uploads_create(void);

/* Aborts every upload in progress (temp files removed) and frees the registry. Accepts NULL. */
void files_uploads_destroy(struct files_ctx *ctx);

/* Begins an upload for `user_id` of `kind` (sizes already checked): creates its temp file,
 * subscribes to its chunk subject and fills `reply`. Strings of `reply` live in `a`. */
enum ej_status files_upload_start(struct files_ctx *ctx, struct ej_arena *a, const char *user_id,
                                  const struct files_kind *kind, const char *name,
                                  int64_t declared_size, Ej__Files__UploadBeginReply *reply,
                                  struct ej_err *err);

/* Aborts uploads idle for longer than the idle timeout. Called by the sweeper. */
void files_uploads_expire(struct files_ctx *ctx);

/* The number of uploads in progress (for tests and metrics). */
size_t files_uploads_count(struct files_ctx *ctx);

/* Removes what crashed earlier runs left in <dir>/tmp: the directories of replicas whose lock
 * is free. Then creates and locks this replica's own directory (the lock lives as long as the
 * process). */
enum ej_status files_tmp_prepare(struct files_config *cfg, struct ej_err *err);

/* Borrows a database connection for the upload side; files_db_put gives it back. */
enum ej_status files_db_take(struct files_ctx *ctx, struct ej_db **db, struct ej_err *err);
void files_db_put(struct files_ctx *ctx, struct ej_db *db);

/* Fills a FileInfo (in `a`) from a row. */
Ej__Files__FileInfo *files_info_from_row(struct ej_arena *a, const struct files_row *row);

/* ---- handlers.c: one function per operation (proto/files.proto) ---------------------------- */

enum ej_status files_begin(struct ej_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, struct ej_err *err);
enum ej_status files_open(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                          struct ej_err *err);
enum ej_status files_read(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                          struct ej_err *err);
enum ej_status files_attach(struct ej_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage *resp, struct ej_err *err);
enum ej_status files_blind(struct ej_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, struct ej_err *err);
enum ej_status files_info(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                          struct ej_err *err);
/* Consumer of the durable event user.erased (ej.evt.users.erased, payload ej.users.UserErased;
 * an ej_event_fn run by the service runtime): forgets the person's unattached uploads. Attached
 * files stay with the scholarly record; their owner_id is the erased account's id, which no
 * longer names anybody. Redelivery is harmless. */
enum ej_status files_on_user_erased(struct ej_db *db, const Ej__Common__Event *ev,
                                    const char *subject, void *ud, struct ej_err *err);
enum ej_status files_gdpr_export(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err);

/* The sweeper thread's body: idle uploads, unattached files, orphaned blobs. */
void *files_sweeper_main(void *arg);

#endif
