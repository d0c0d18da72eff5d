/*
 * files.h: the files service's shared vocabulary, at the bottom of its modules.
 *
 * The service keeps uploaded files in content-addressed storage (storage.h) and their metadata
 * in its PostgreSQL schema "files". Requests follow proto/files.proto. Its modules form one
 * line, each including and calling only those below it:
 *
 *   main.c      settings, wiring, the runtime's start and stop hooks
 *   handlers.c  one function per operation (handlers.h)    sweep.c  the sweeper thread
 *   upload.c    uploads in progress (upload.h)
 *   content.c   kinds, types, names, FileInfo (content.h)  blind.c  anonymised copies
 *   store.c     every SQL statement (store.h)              storage*.c  the bytes (storage.h)
 *   files.h     constants, settings, a file row (this header; declares no functions)
 *
 * A lower module that must tell a higher one something takes a callback. Everything here is
 * plain data, set before threads start and only read afterwards.
 */
#ifndef EJ_FILES_H
#define EJ_FILES_H

#include <stdbool.h>
#include <stdint.h>

#include "grant.h"

#define FILES_CHUNK_SIZE      (256 * 1024)      /* data bytes per upload chunk and per read */
#define FILES_WINDOW          8                 /* upload chunks in flight without ack */
#define FILES_WRITEBACK_BYTES (4 * 1024 * 1024) /* an upload's writeback starts every 4 MiB */
#define FILES_SNIFF_BYTES     (64 * 1024)       /* bytes libmagic sees to decide the type */
#define FILES_NAME_MAX        200               /* characters of a display name */

/* An upload kind: its size limit and the content types it takes. */
struct files_kind {
        const char *name;         /* "manuscript", "image", "attachment", "galley" */
        int64_t max_size;         /* EJ_FILES_LIMIT_<NAME> */
        const char *const *types; /* NULL-terminated allow-list of MIME types */
};

#define FILES_N_KINDS 4

/* The settings, read by main.c only. */
struct files_config {
        char dir[512];     /* EJ_FILES_DIR: local blobs, and temp files of uploads under tmp/ */
        char tmp_dir[600]; /* <dir>/tmp/<replica>: this replica's upload temp files */
        char replica[40];  /* EJ_FILES_REPLICA_ID or random: names the chunk subjects */
        struct files_kind kinds[FILES_N_KINDS];
        int64_t idle_timeout_ms;   /* EJ_FILES_IDLE_TIMEOUT_S (60) */
        int64_t unattached_ttl_ms; /* EJ_FILES_UNATTACHED_TTL_S (86400) */
        int64_t sweep_interval_ms; /* EJ_FILES_SWEEP_INTERVAL_S (60) */
        int64_t orphan_grace_s;    /* EJ_FILES_ORPHAN_GRACE_S: an unreferenced blob's life (3600) */
        int64_t tmp_grace_s; /* EJ_FILES_TMP_GRACE_S: a gone replica's temp files are left this
                                long after its lock file was made (60) */
        long max_uploads;    /* EJ_FILES_MAX_UPLOADS: in progress on this replica (256) */
        long max_uploads_per_user;     /* EJ_FILES_MAX_UPLOADS_PER_USER: at once, per user (32) */
        struct ej_grant_key grant_key; /* EJ_GRANT_KEY */
};

/* A file row as the modules see it (strings in the caller's arena, or borrowed). */
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

#endif
