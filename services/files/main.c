/* ej-files: file storage. Wiring only: settings, libmagic, the storage backend, the handler
 * table, and the hooks the runtime calls (service.h): init/fini for the service's own resources,
 * start/stop for the uploads in progress and the sweeper, which run on the runtime's NATS
 * connection and database pool. */
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

/* The handlers of `service Files` (proto/files.proto), one per method, and the files service's
 * own answer to gdpr_export (service Gdpr, common.proto; gdpr_erase keeps the runtime's empty
 * default: erasure acts on the event user.erased). */
static const struct ej_handler files_handlers[] = {
    {"upload_begin", files_begin, 0},
    {"download_open", files_open, 0},
    {"read", files_read, 0},
    {"attach", files_attach, 0},
    {"blind_copy", files_blind, 0},
    {"info", files_info, 0},
    {"gdpr_export", files_gdpr_export, 0},
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
        st = ej_env_long("EJ_FILES_TMP_GRACE_S", 60, 0, 86400, &v, err);
        if (st != EJ_OK)
                return st;
        cfg->tmp_grace_s = v;
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

/* The service's own resources, before the runtime takes requests (ej_service_main's init). */
static enum ej_status init(void *svc, struct ej_err *err)
{
        struct files_ctx *ctx = svc;
        enum ej_status st;

        st = sodium_init() < 0 ? ej_err_set(err, EJ_ERR_INTERNAL, NULL, "libsodium does not start")
                               : EJ_OK;
        if (st == EJ_OK)
                st = ej_http_global_init(err);
        if (st == EJ_OK)
                st = load_config(&ctx->cfg, err);
        if (st == EJ_OK)
                st = files_magic_open(&ctx->magic, err);
        if (st == EJ_OK)
                st = files_tmp_prepare(&ctx->cfg, err);
        if (st == EJ_OK)
                st = open_storage(ctx, err);
        if (st == EJ_OK)
                ej_info(NULL, "replica %s, %s storage, uploads on ej.upload.%s.*", ctx->cfg.replica,
                        storage_kind(ctx->storage), ctx->cfg.replica);
        return st;
}

static void fini(void *svc)
{
        ctx_free(svc);
}

int main(int argc, char **argv)
{
        struct files_ctx ctx;
        const struct ej_service_def def = {
            .api = &ej__files__files__descriptor,
            .handlers = files_handlers,
            .n_handlers = sizeof(files_handlers) / sizeof(files_handlers[0]),
            .migrations = ej_files_migrations,
            .n_migrations = ej_files_migrations_n,
            .svc = &ctx,
            .consumers = files_consumers,
            .n_consumers = sizeof(files_consumers) / sizeof(files_consumers[0]),
            .start = files_start,
            .stop = files_stop,
            .init = init,
            .fini = fini,
        };

        memset(&ctx, 0, sizeof(ctx));
        return ej_service_main(&def, argc, argv);
}
