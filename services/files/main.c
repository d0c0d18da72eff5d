/* ej-files: file storage. Wiring only: settings, libmagic, the storage backend, the operation
 * table, and the runtime's start and stop hooks, which run the uploads in progress and the
 * sweeper on the runtime's NATS connection and database pool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "config.h"
#include "content.h"
#include "handlers.h"
#include "http_client.h"
#include "ids.h"
#include "log.h"
#include "service.h"
#include "storage.h"
#include "sweep.h"
#include "upload.h"

/* Generated from services/files/schema/ by tools/embed-sql.sh. */
extern const struct ej_migration ej_files_migrations[];
extern const unsigned long ej_files_migrations_n;

static const struct ej_service_consumer files_consumers[] = {
    {"files-user-erased", "ej.evt.users.erased", files_on_user_erased},
};

static const struct ej_op files_ops[] = {
    /* ej.files.upload.begin (the runtime dispatches on the subject's last word) */
    {"begin", &ej__files__upload_begin__descriptor, &ej__files__upload_begin_reply__descriptor,
     files_begin, false},
    /* ej.files.download.open */
    {"open", &ej__files__download_open__descriptor, &ej__files__file_meta__descriptor, files_open,
     false},
    {"read", &ej__files__file_read__descriptor, &ej__files__file_data__descriptor, files_read,
     false},
    {"attach", &ej__files__attach_request__descriptor, &ej__files__file_info__descriptor,
     files_attach, false},
    {"blind_copy", &ej__files__blind_copy_request__descriptor, &ej__files__file_info__descriptor,
     files_blind, false},
    {"info", &ej__files__info_request__descriptor, &ej__files__file_info__descriptor, files_info,
     false},
    {"gdpr_export", &ej__common__gdpr_export_request__descriptor,
     &ej__common__gdpr_export_part__descriptor, files_gdpr_export, false},
};

/* Reads the settings (see README and deploy/local/stack.sh for the variables). */
static enum ej_status load_config(struct files_config *cfg, struct ej_err *err)
{
        static const char *const limit_vars[FILES_N_KINDS] = {
            "EJ_FILES_LIMIT_MANUSCRIPT", "EJ_FILES_LIMIT_IMAGE", "EJ_FILES_LIMIT_ATTACHMENT",
            "EJ_FILES_LIMIT_GALLEY"};
        const char *replica = ej_env_str("EJ_FILES_REPLICA_ID", NULL);
        long v = 0;
        enum ej_status st;

        memset(cfg, 0, sizeof(*cfg));
        if (snprintf(cfg->dir, sizeof(cfg->dir), "%s", ej_env_str("EJ_FILES_DIR", "var/files")) >=
            (int)sizeof(cfg->dir))
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "EJ_FILES_DIR is too long");
        files_kinds_default(cfg->kinds);
        for (int i = 0; i < FILES_N_KINDS; i++) {
                st = ej_env_long(limit_vars[i], (long)cfg->kinds[i].max_size, 0, 1L << 40, &v, err);
                if (st != EJ_OK)
                        return st;
                cfg->kinds[i].max_size = v;
        }
        st = ej_env_long("EJ_FILES_IDLE_TIMEOUT_S", 60, 1, 86400, &v, err);
        if (st != EJ_OK)
                return st;
        cfg->idle_timeout_ms = (int64_t)v * 1000;
        st = ej_env_long("EJ_FILES_UNATTACHED_TTL_S", 86400, 1, 366L * 86400, &v, err);
        if (st != EJ_OK)
                return st;
        cfg->unattached_ttl_ms = (int64_t)v * 1000;
        st = ej_env_long("EJ_FILES_SWEEP_INTERVAL_S", 60, 1, 86400, &v, err);
        if (st != EJ_OK)
                return st;
        cfg->sweep_interval_ms = (int64_t)v * 1000;
        /* Longer than any upload takes between storing its bytes and committing its row. */
        st = ej_env_long("EJ_FILES_ORPHAN_GRACE_S", 3600, 0, 366L * 86400, &v, err);
        if (st != EJ_OK)
                return st;
        cfg->orphan_grace_s = v;
        st = ej_env_long("EJ_FILES_MAX_UPLOADS", 256, 1, 100000, &cfg->max_uploads, err);
        if (st != EJ_OK)
                return st;
        st = ej_env_long("EJ_FILES_MAX_UPLOADS_PER_USER", 32, 1, 100000, &cfg->max_uploads_per_user,
                         err);
        if (st != EJ_OK)
                return st;
        st = ej_grant_key_from_env(&cfg->grant_key, err);
        if (st != EJ_OK)
                return st;
        if (replica != NULL) {
                if (strlen(replica) >= sizeof(cfg->replica) ||
                    strspn(replica, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(replica))
                        return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                          "EJ_FILES_REPLICA_ID is lower-case letters, digits and "
                                          "dashes, at most %zu",
                                          sizeof(cfg->replica) - 1);
                snprintf(cfg->replica, sizeof(cfg->replica), "%s", replica);
        } else {
                ej_random_token(cfg->replica, sizeof(cfg->replica), 9);
                /* The token alphabet may hold '-' and '_'; subjects and paths want neither. */
                for (char *c = cfg->replica; *c; c++)
                        if (*c == '_' || *c == '-' || (*c >= 'A' && *c <= 'Z'))
                                *c = (*c >= 'A' && *c <= 'Z') ? (char)(*c - 'A' + 'a') : 'x';
        }
        return EJ_OK;
}

static enum ej_status open_storage(struct files_ctx *ctx, struct ej_err *err)
{
        const char *backend = ej_env_str("EJ_FILES_BACKEND", "local");
        struct storage_s3_config s3;
        long threshold = 0;
        long part = 0;
        bool create = false;
        enum ej_status st;

        if (strcmp(backend, "local") == 0)
                return storage_local_open(&ctx->storage, ctx->cfg.dir, err);
        if (strcmp(backend, "s3") != 0)
                return ej_err_set(err, EJ_ERR_INVALID, NULL,
                                  "EJ_FILES_BACKEND is \"local\" or \"s3\"");
        st = ej_env_long("EJ_S3_MULTIPART_THRESHOLD", 16L << 20, 5L << 20, 5L << 30, &threshold,
                         err);
        if (st == EJ_OK)
                st = ej_env_long("EJ_S3_PART_SIZE", 8L << 20, 5L << 20, 5L << 30, &part, err);
        if (st == EJ_OK)
                st = ej_env_bool("EJ_S3_CREATE_BUCKET", false, &create, err);
        if (st != EJ_OK)
                return st;
        memset(&s3, 0, sizeof(s3));
        s3.endpoint = ej_env_str("EJ_S3_ENDPOINT", NULL);
        s3.bucket = ej_env_str("EJ_S3_BUCKET", NULL);
        s3.region = ej_env_str("EJ_S3_REGION", "us-east-1");
        s3.access_key = ej_env_str("EJ_S3_ACCESS_KEY", NULL);
        s3.secret_key = ej_env_str("EJ_S3_SECRET_KEY", NULL);
        s3.multipart_threshold = threshold;
        s3.part_size = part;
        s3.create_bucket = create;
        return storage_s3_open(&ctx->storage, &s3, err);
}

/* The runtime's start hook: the uploads in progress and the sweeper, on its connections. */
static enum ej_status files_start(void *svc, const struct ej_service_env *env, struct ej_err *err)
{
        struct files_ctx *ctx = svc;
        const struct files_uploads_deps ud = {
            .cfg = &ctx->cfg,
            .storage = ctx->storage,
            .magic = ctx->magic,
            .bus = env->bus,
            .db_pool = env->db_pool,
        };
        struct files_sweeper_deps sd;
        enum ej_status st;

        ctx->uploads = files_uploads_create(&ud);
        sd = (struct files_sweeper_deps){
            .cfg = &ctx->cfg,
            .storage = ctx->storage,
            .uploads = ctx->uploads,
            .db_pool = env->db_pool,
        };
        st = files_sweeper_start(&ctx->sweeper, &sd, err);
        if (st != EJ_OK) {
                files_uploads_destroy(ctx->uploads);
                ctx->uploads = NULL;
        }
        return st;
}

/* The runtime's stop hook: no request runs any more; the bus and the pool are still open. */
static void files_stop(void *svc)
{
        struct files_ctx *ctx = svc;

        files_sweeper_stop(ctx->sweeper);
        ctx->sweeper = NULL;
        files_uploads_destroy(ctx->uploads);
        ctx->uploads = NULL;
}

static void ctx_free(struct files_ctx *ctx)
{
        storage_destroy(ctx->storage);
        files_magic_close(ctx->magic);
}

int main(void)
{
        struct files_ctx ctx;
        struct ej_err err;
        struct ej_service_def def;
        enum ej_status st;

        memset(&ctx, 0, sizeof(ctx));
        ej_err_clear(&err);
        ej_log_init("files", ej_env_str("EJ_LOG_LEVEL", "info"));
        st = ej_ids_init(&err);
        if (st == EJ_OK && sodium_init() < 0)
                st = ej_err_set(&err, EJ_ERR_INTERNAL, NULL, "libsodium does not start");
        if (st == EJ_OK)
                st = ej_http_global_init(&err);
        if (st == EJ_OK)
                st = load_config(&ctx.cfg, &err);
        if (st == EJ_OK)
                st = files_magic_open(&ctx.magic, &err);
        if (st == EJ_OK)
                st = files_tmp_prepare(&ctx.cfg, &err);
        if (st == EJ_OK)
                st = open_storage(&ctx, &err);
        if (st != EJ_OK) {
                fprintf(stderr, "ej-files: cannot start: %s\n", err.msg);
                ctx_free(&ctx);
                return 1;
        }
        ej_info(NULL, "replica %s, %s storage, uploads on ej.upload.%s.*", ctx.cfg.replica,
                storage_kind(ctx.storage), ctx.cfg.replica);

        memset(&def, 0, sizeof(def));
        def.name = "files";
        def.ops = files_ops;
        def.n_ops = sizeof(files_ops) / sizeof(files_ops[0]);
        def.migrations = ej_files_migrations;
        def.n_migrations = ej_files_migrations_n;
        def.svc = &ctx;
        def.consumers = files_consumers;
        def.n_consumers = sizeof(files_consumers) / sizeof(files_consumers[0]);
        def.start = files_start;
        def.stop = files_stop;
        st = ej_service_run(&def, &err);
        ctx_free(&ctx);
        if (st != EJ_OK) {
                fprintf(stderr, "ej-files: cannot start: %s\n", err.msg);
                return 1;
        }
        return 0;
}
