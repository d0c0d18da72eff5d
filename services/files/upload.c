/*
 * upload.c: uploads in progress on this replica.
 *
 * Each upload has a temp file under this replica's temp directory, a running SHA-256, the first
 * bytes for libmagic, and an async subscription of its own on its chunk subject
 * ("ej.upload.<replica>.<upload id>", outside ej.files.> so no queue worker sees it). nats.c
 * delivers one subscription's messages in order on one thread, so the frames of one upload never
 * run concurrently and its state needs no lock while a frame is handled; the registry lock only
 * guards membership and the finished/busy/last-activity fields that the sweeper reads.
 *
 * The subscriptions and replies use the runtime's NATS connection, and a commit borrows a
 * connection from the runtime's database pool (service.h). Measured against the earlier design
 * (a second NATS connection and a database pool of the upload side's own), through the gateway
 * on one 2-core machine that other work kept at a load of 8 to 19, the two builds swapped in
 * and out of one stack 40 times each: one 50 MiB upload 40.0 -> 40.8 MB/s (median, x1.02), its
 * download 84.1 -> 81.4 MB/s (x0.97), four concurrent 20 MiB uploads 46.3 -> 41.1 MB/s (x0.89,
 * mean x0.96), all well inside the run-to-run spread (95% intervals of the ratios about
 * 0.75 to 1.25); the service's CPU time per 50 MiB upload 340 -> 335 ms and per four uploads
 * 610 -> 545 ms. tests/bench/files.sh, 8 alternating runs: upload 40 -> 42 MB/s, download 73 ->
 * 85 MB/s, 16 concurrent uploads 40.5 -> 36.5 MB/s. Nothing measured justifies a second
 * connection.
 *
 * Life of an upload: started by files_upload_start (begin), finished exactly once (commit,
 * abort frame, error, idle expiry or shutdown): the temp file is closed and removed (or
 * consumed by storage) and the subscription is unsubscribed; nats.c then calls on_complete
 * after the last callback has returned, which unlinks the upload from the registry and frees
 * it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.pb-c.h"

#include "upload.h"

#include "bus.h"
#include "content.h"
#include "db_pool.h"
#include "digest.h"
#include "ids.h"
#include "log.h"
#include "storage.h"
#include "store.h"

struct upload {
        struct files_uploads *reg;
        char id[EJ_UUID_LEN];
        char subject[128];
        char user_id[EJ_GRANT_FIELD_MAX + 1];
        const struct files_kind *kind;
        char name[4 * FILES_NAME_MAX + 1];
        char tmp_path[PATH_MAX];
        int fd;
        struct ej_sha256 sha;
        uint64_t next_seq;
        int64_t received;
        int64_t flushing; /* bytes handed to the kernel's writeback so far */
        unsigned char *sniff;
        size_t sniff_n;
        bool sniffed; /* the first bytes were checked against the kind */
        natsSubscription *sub;
        struct ej_arena *arena;
        /* guarded by the registry lock */
        bool finished;
        bool busy;
        long long last_ms;
        struct upload *next;
};

struct files_uploads {
        struct files_uploads_deps deps;
        pthread_mutex_t mu;
        pthread_cond_t gone; /* signalled when an upload leaves the registry */
        struct upload *head;
        size_t n;
};

struct files_uploads *files_uploads_create(const struct files_uploads_deps *deps)
{
        struct files_uploads *r = xcalloc(1, sizeof(*r));

        r->deps = *deps;
        pthread_mutex_init(&r->mu, NULL);
        pthread_cond_init(&r->gone, NULL);
        return r;
}

size_t files_uploads_count(struct files_uploads *r)
{
        size_t n;

        pthread_mutex_lock(&r->mu);
        n = r->n;
        pthread_mutex_unlock(&r->mu);
        return n;
}

/* Releases the upload's file and subscription; the caller has set u->finished under the lock.
 * Safe from the upload's own callback and from other threads. */
static void release(struct upload *u)
{
        if (u->fd >= 0) {
                close(u->fd);
                u->fd = -1;
        }
        if (u->tmp_path[0])
                unlink(u->tmp_path);
        natsSubscription_Unsubscribe(u->sub);
}

/* Marks `u` finished (once) and releases it. */
static void finish(struct upload *u)
{
        struct files_uploads *r = u->reg;
        bool first;

        pthread_mutex_lock(&r->mu);
        first = !u->finished;
        u->finished = true;
        pthread_mutex_unlock(&r->mu);
        if (first)
                release(u);
}

static void on_complete(void *closure)
{
        struct upload *u = closure;
        struct files_uploads *r = u->reg;

        pthread_mutex_lock(&r->mu);
        for (struct upload **pp = &r->head; *pp; pp = &(*pp)->next) {
                if (*pp == u) {
                        *pp = u->next;
                        r->n--;
                        break;
                }
        }
        pthread_cond_broadcast(&r->gone);
        pthread_mutex_unlock(&r->mu);
        natsSubscription_Destroy(u->sub);
        ej_arena_destroy(u->arena);
        ej_sha256_free(&u->sha);
        free(u->sniff);
        free(u);
}

/* Decides the type from the first bytes (and, for a zip at commit, from its entries). */
static enum ej_status check_type(struct upload *u, bool final, char *type, size_t type_size,
                                 struct ej_err *err)
{
        const struct files_kind *k = u->kind;
        enum ej_status st;

        files_sniff(u->reg->deps.magic, u->sniff, u->sniff_n, type, type_size);
        if (!files_kind_allows(k, type))
                return ej_err_set(err, EJ_ERR_UNSUPPORTED, "file",
                                  "files of type %s are not accepted as %s", type, k->name);
        u->sniffed = true;
        if (!final || !files_type_is_zip(type))
                return EJ_OK;
        st = files_zip_type(u->tmp_path, type, type_size, err);
        if (st != EJ_OK)
                return st;
        for (size_t i = 0; k->types[i]; i++)
                if (strcmp(k->types[i], type) == 0)
                        return EJ_OK;
        return ej_err_set(err, EJ_ERR_UNSUPPORTED, "file",
                          "files of type %s are not accepted as %s", type, k->name);
}

static enum ej_status write_all(int fd, const uint8_t *p, size_t n, struct ej_err *err)
{
        while (n > 0) {
                ssize_t w = write(fd, p, n);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot write the upload: %s",
                                          strerror(errno));
                p += w;
                n -= (size_t)w;
        }
        return EJ_OK;
}

/*
 * Starts the disk writes of what has arrived, every FILES_WRITEBACK_BYTES, without waiting for
 * them: the fsync at commit then waits only for the tail instead of the whole file, so the disk
 * works while the rest of the body is still on the wire. Advisory: a failure only costs time.
 */
static void start_writeback(struct upload *u, int64_t len)
{
        int64_t end = u->received + len;

        if (end - u->flushing < FILES_WRITEBACK_BYTES)
                return;
        (void)sync_file_range(u->fd, u->flushing, end - u->flushing, SYNC_FILE_RANGE_WRITE);
        u->flushing = end;
}

static enum ej_status on_chunk(struct upload *u, const Ej__Files__UploadChunk *c,
                               Ej__Files__UploadChunkAck *ack, struct ej_err *err)
{
        size_t len = c->data.len;
        enum ej_status st;

        if (c->seq != u->next_seq)
                return ej_err_set(err, EJ_ERR_INVALID, "seq",
                                  "chunk %" PRIu64 " out of order (expected %" PRIu64 ")", c->seq,
                                  u->next_seq);
        if (len == 0 || len > FILES_CHUNK_SIZE)
                return ej_err_set(err, EJ_ERR_INVALID, "data", "a chunk holds 1 to %d bytes",
                                  FILES_CHUNK_SIZE);
        if (u->received + (int64_t)len > u->kind->max_size)
                return ej_err_set(err, EJ_ERR_TOO_LARGE, "file",
                                  "the file is over the limit of %" PRId64 " bytes for %s",
                                  u->kind->max_size, u->kind->name);
        st = write_all(u->fd, c->data.data, len, err);
        if (st != EJ_OK)
                return st;
        ej_sha256_update(&u->sha, c->data.data, len);
        start_writeback(u, (int64_t)len);
        if (u->sniff_n < FILES_SNIFF_BYTES) {
                size_t take =
                    FILES_SNIFF_BYTES - u->sniff_n < len ? FILES_SNIFF_BYTES - u->sniff_n : len;

                if (u->sniff == NULL)
                        u->sniff = xmalloc(FILES_SNIFF_BYTES);
                memcpy(u->sniff + u->sniff_n, c->data.data, take);
                u->sniff_n += take;
        }
        u->received += (int64_t)len;
        u->next_seq++;
        /* The type is known from the first chunk: a wrong one is refused before the rest comes. */
        if (!u->sniffed) {
                char type[160];

                st = check_type(u, false, type, sizeof(type), err);
                if (st != EJ_OK)
                        return st;
        }
        ack->seq = c->seq;
        ack->received = u->received;
        return EJ_OK;
}

static enum ej_status on_commit(struct upload *u, const Ej__Files__UploadCommit *c,
                                Ej__Files__FileInfo **info, struct ej_err *err)
{
        const struct files_uploads_deps *deps = &u->reg->deps;
        struct files_row row;
        char sha[EJ_SHA256_HEX_LEN];
        char type[160];
        char file_id[EJ_UUID_LEN];
        struct ej_db *db = NULL;
        bool stored = false;
        enum ej_status st;

        if (c->total_chunks != u->next_seq || c->total_size != u->received)
                return ej_err_set(err, EJ_ERR_INVALID, "total_size",
                                  "the commit says %" PRIu64 " chunks and %" PRId64
                                  " bytes, %" PRIu64 " and %" PRId64 " arrived",
                                  c->total_chunks, c->total_size, u->next_seq, u->received);
        st = check_type(u, true, type, sizeof(type), err);
        if (st != EJ_OK)
                return st;
        ej_sha256_final_hex(&u->sha, sha);
        if (close(u->fd) != 0) {
                u->fd = -1;
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "cannot close the upload: %s",
                                  strerror(errno));
        }
        u->fd = -1;
        st = storage_put_file(deps->storage, sha, u->tmp_path, u->received, &stored, err);
        if (st != EJ_OK)
                return st;
        u->tmp_path[0] = '\0'; /* consumed by storage */
        ej_uuid(file_id);
        memset(&row, 0, sizeof(row));
        row.id = file_id;
        row.sha256 = sha;
        row.size = u->received;
        row.content_type = type;
        row.name = u->name;
        row.kind = u->kind->name;
        row.owner_id = u->user_id;
        row.resource = "";
        row.purpose = "";
        st = ej_db_pool_take(deps->db_pool, &db, err);
        if (st == EJ_OK)
                st = store_file_insert(db, &row, err);
        ej_db_pool_put(deps->db_pool, db);
        if (st != EJ_OK)
                return st;
        *info = files_info_from_row(u->arena, &row);
        ej_info(NULL, "upload %s committed as file %s (%" PRId64 " bytes, %s%s)", u->id, file_id,
                u->received, type, stored ? "" : ", content already stored");
        return EJ_OK;
}

/* Handles one frame on the upload's chunk subject (in order, on the subscription's thread). */
static void on_frame(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
        struct upload *u = closure;
        struct files_uploads *r = u->reg;
        Ej__Files__UploadFrame *frame = NULL;
        Ej__Files__UploadChunkAck ack = EJ__FILES__UPLOAD_CHUNK_ACK__INIT;
        Ej__Common__Empty empty = EJ__COMMON__EMPTY__INIT;
        Ej__Files__FileInfo *info = NULL;
        const ProtobufCMessage *resp = NULL;
        ProtobufCAllocator alloc;
        struct ej_err err;
        enum ej_status st = EJ_OK;
        bool done = false;

        (void)nc;
        (void)sub;
        ej_err_clear(&err);
        pthread_mutex_lock(&r->mu);
        if (u->finished) {
                pthread_mutex_unlock(&r->mu);
                ej_err_set(&err, EJ_ERR_NOT_FOUND, NULL, "the upload is over");
                ej_bus_respond(r->deps.bus, msg, EJ_ERR_NOT_FOUND, &err, NULL);
                natsMsg_Destroy(msg);
                return;
        }
        u->busy = true;
        pthread_mutex_unlock(&r->mu);

        ej_arena_reset(u->arena);
        alloc = ej_arena_pb_allocator(u->arena);
        frame = (Ej__Files__UploadFrame *)protobuf_c_message_unpack(
            &ej__files__upload_frame__descriptor, &alloc, (size_t)natsMsg_GetDataLength(msg),
            (const uint8_t *)natsMsg_GetData(msg));
        if (frame == NULL) {
                st = ej_err_set(&err, EJ_ERR_INVALID, NULL, "not an UploadFrame");
        } else if (frame->frame_case == EJ__FILES__UPLOAD_FRAME__FRAME_CHUNK) {
                st = on_chunk(u, frame->chunk, &ack, &err);
                resp = &ack.base;
        } else if (frame->frame_case == EJ__FILES__UPLOAD_FRAME__FRAME_COMMIT) {
                st = on_commit(u, frame->commit, &info, &err);
                resp = info ? &info->base : NULL;
                done = true;
        } else if (frame->frame_case == EJ__FILES__UPLOAD_FRAME__FRAME_ABORT) {
                ej_info(NULL, "upload %s aborted by the client: %s", u->id,
                        frame->abort->reason ? frame->abort->reason : "");
                resp = &empty.base;
                done = true;
        } else {
                st = ej_err_set(&err, EJ_ERR_INVALID, NULL, "an empty UploadFrame");
        }
        /* Any failure ends the upload: nothing of it stays. */
        if (st != EJ_OK || done)
                finish(u);
        if (st != EJ_OK && frame != NULL &&
            frame->frame_case != EJ__FILES__UPLOAD_FRAME__FRAME_ABORT)
                ej_info(NULL, "upload %s ended: %s %s", u->id, ej_status_name(st), err.msg);
        ej_bus_respond(r->deps.bus, msg, st, &err, st == EJ_OK ? resp : NULL);
        natsMsg_Destroy(msg);
        pthread_mutex_lock(&r->mu);
        u->busy = false;
        u->last_ms = ej_mono_ms();
        pthread_mutex_unlock(&r->mu);
}

enum ej_status files_upload_start(struct files_uploads *r, struct ej_arena *a, const char *user_id,
                                  const struct files_kind *kind, const char *name,
                                  Ej__Files__UploadBeginReply *reply, struct ej_err *err)
{
        const struct files_config *cfg = r->deps.cfg;
        natsConnection *nc = ej_bus_conn(r->deps.bus);
        struct upload *u;
        long mine = 0;
        size_t total;
        natsStatus s;

        /* Uploads hold a file, a subscription and a thread each: bounded, per user and in all. */
        pthread_mutex_lock(&r->mu);
        total = r->n;
        for (struct upload *o = r->head; o; o = o->next)
                mine += !o->finished && strcmp(o->user_id, user_id) == 0;
        pthread_mutex_unlock(&r->mu);
        if (mine >= cfg->max_uploads_per_user)
                return ej_err_set(err, EJ_ERR_TOO_MANY, NULL,
                                  "at most %ld uploads at once; finish one first",
                                  cfg->max_uploads_per_user);
        if ((long)total >= cfg->max_uploads)
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "too many uploads in progress");
        u = xcalloc(1, sizeof(*u));
        u->reg = r;
        u->fd = -1;
        u->kind = kind;
        ej_uuid(u->id);
        snprintf(u->user_id, sizeof(u->user_id), "%s", user_id);
        snprintf(u->name, sizeof(u->name), "%s", name);
        snprintf(u->subject, sizeof(u->subject), "ej.upload.%s.%s", cfg->replica, u->id);
        if (snprintf(u->tmp_path, sizeof(u->tmp_path), "%s/%s.part", cfg->tmp_dir, u->id) >=
            (int)sizeof(u->tmp_path)) {
                free(u);
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "temp path too long");
        }
        u->fd = open(u->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (u->fd < 0) {
                ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "cannot create a temp file: %s",
                           strerror(errno));
                free(u);
                return EJ_ERR_UNAVAILABLE;
        }
        if (ej_sha256_init(&u->sha, err) != EJ_OK) {
                close(u->fd);
                unlink(u->tmp_path);
                free(u);
                return EJ_ERR_INTERNAL;
        }
        u->arena = ej_arena_create(FILES_CHUNK_SIZE + 16384);
        u->last_ms = ej_mono_ms();

        pthread_mutex_lock(&r->mu);
        u->next = r->head;
        r->head = u;
        r->n++;
        pthread_mutex_unlock(&r->mu);

        s = natsConnection_Subscribe(&u->sub, nc, u->subject, on_frame, u);
        if (s == NATS_OK)
                s = natsSubscription_SetOnCompleteCB(u->sub, on_complete, u);
        /* The gateway sends the first chunk as soon as it has our reply (on another connection):
         * the server must know the subscription before that. */
        if (s == NATS_OK)
                s = natsConnection_FlushTimeout(nc, 5000);
        if (s != NATS_OK) {
                ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "cannot subscribe to %s: %s", u->subject,
                           natsStatus_GetText(s));
                if (u->sub != NULL) {
                        finish(u); /* on_complete frees it */
                } else {
                        pthread_mutex_lock(&r->mu);
                        for (struct upload **pp = &r->head; *pp; pp = &(*pp)->next)
                                if (*pp == u) {
                                        *pp = u->next;
                                        break;
                                }
                        r->n--;
                        pthread_mutex_unlock(&r->mu);
                        close(u->fd);
                        unlink(u->tmp_path);
                        ej_arena_destroy(u->arena);
                        free(u);
                }
                return EJ_ERR_UNAVAILABLE;
        }
        reply->upload_id = ej_arena_strdup(a, u->id);
        reply->chunk_subject = ej_arena_strdup(a, u->subject);
        reply->chunk_size = FILES_CHUNK_SIZE;
        reply->window = FILES_WINDOW;
        reply->max_size = kind->max_size;
        reply->idle_timeout_ms = cfg->idle_timeout_ms;
        return EJ_OK;
}

/* Finishes every upload not busy with a frame (`all`), or those idle for longer than the idle
 * timeout; returns how many. */
static size_t finish_where(struct files_uploads *r, bool all)
{
        struct upload *picked[64];
        size_t n = 0;
        size_t total = 0;
        long long now = ej_mono_ms();

        do {
                n = 0;
                pthread_mutex_lock(&r->mu);
                for (struct upload *u = r->head; u && n < 64; u = u->next) {
                        if (u->finished || u->busy)
                                continue;
                        if (!all && now - u->last_ms < r->deps.cfg->idle_timeout_ms)
                                continue;
                        u->finished = true;
                        picked[n++] = u;
                }
                pthread_mutex_unlock(&r->mu);
                for (size_t i = 0; i < n; i++) {
                        ej_info(NULL, "upload %s aborted: %s", picked[i]->id,
                                all ? "the service is stopping" : "idle");
                        release(picked[i]);
                }
                total += n;
        } while (n == 64);
        return total;
}

void files_uploads_expire(struct files_uploads *r)
{
        (void)finish_where(r, false);
}

void files_uploads_destroy(struct files_uploads *r)
{
        long long deadline = ej_mono_ms() + 5000;

        if (r == NULL)
                return;
        /* Busy uploads finish their frame first; then every one is ended. */
        for (;;) {
                struct timespec ts;

                finish_where(r, true);
                pthread_mutex_lock(&r->mu);
                if (r->n == 0 || ej_mono_ms() > deadline) {
                        pthread_mutex_unlock(&r->mu);
                        break;
                }
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 50 * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&r->gone, &r->mu, &ts);
                pthread_mutex_unlock(&r->mu);
        }
        pthread_mutex_lock(&r->mu);
        if (r->n != 0) {
                size_t left = r->n;

                /* Callbacks still running: leave the registry to them rather than free it. */
                pthread_mutex_unlock(&r->mu);
                ej_warn(NULL, "%zu uploads did not finish in time", left);
                return;
        }
        pthread_mutex_unlock(&r->mu);
        pthread_cond_destroy(&r->gone);
        pthread_mutex_destroy(&r->mu);
        free(r);
}

/* Removes the files in `dir` and `dir` itself (one level: upload temp files). */
static void remove_dir(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        char path[PATH_MAX];

        if (d == NULL)
                return;
        while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path))
                        unlink(path);
        }
        closedir(d);
        rmdir(dir);
}

void files_tmp_reclaim(const struct files_config *cfg)
{
        char root[600];
        char path[PATH_MAX];
        DIR *d;
        struct dirent *e;
        time_t now = time(NULL);

        snprintf(root, sizeof(root), "%s/tmp", cfg->dir);
        d = opendir(root);
        if (d == NULL)
                return;
        while ((e = readdir(d)) != NULL) {
                size_t n = strlen(e->d_name);
                struct stat sb;
                int fd;

                if (snprintf(path, sizeof(path), "%s/%s", root, e->d_name) >= (int)sizeof(path) ||
                    stat(path, &sb) != 0)
                        continue;
                if (n > 5 && strcmp(e->d_name + n - 5, ".lock") == 0) {
                        /* A lock nobody holds: its replica is gone (flock is released when a
                         * process dies, however it dies). A lock file younger than the grace
                         * period may be a replica's that is just starting: left alone. */
                        if (sb.st_mtime > now - (time_t)cfg->tmp_grace_s)
                                continue;
                        fd = open(path, O_RDWR | O_CLOEXEC);
                        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
                                char dir[PATH_MAX];

                                snprintf(dir, sizeof(dir), "%s/%.*s", root, (int)(n - 5),
                                         e->d_name);
                                remove_dir(dir);
                                unlink(path);
                                ej_info(NULL, "reclaimed the temp files of replica %.*s, gone",
                                        (int)(n - 5), e->d_name);
                        }
                        if (fd >= 0)
                                close(fd);
                } else if (strncmp(e->d_name, "put-", 4) == 0 && sb.st_mtime < now - 3600) {
                        unlink(path);
                }
        }
        closedir(d);
}

enum ej_status files_tmp_prepare(struct files_config *cfg, struct ej_err *err)
{
        char root[600];
        char path[PATH_MAX];
        int fd;

        snprintf(root, sizeof(root), "%s/tmp", cfg->dir);
        if ((mkdir(cfg->dir, 0750) != 0 && errno != EEXIST) ||
            (mkdir(root, 0750) != 0 && errno != EEXIST))
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "cannot create %s: %s", root,
                                  strerror(errno));
        files_tmp_reclaim(cfg);
        snprintf(path, sizeof(path), "%s/%s.lock", root, cfg->replica);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        /* A fresh time on the lock file keeps other replicas' sweepers off it while we start. */
        if (fd >= 0)
                (void)futimens(fd, NULL);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
                if (fd >= 0)
                        close(fd);
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL,
                                  "cannot lock %s (another replica with the same id?)", path);
        }
        /* The descriptor stays open (and the lock held) until the process exits. */
        if (snprintf(cfg->tmp_dir, sizeof(cfg->tmp_dir), "%s/%s", root, cfg->replica) >=
            (int)sizeof(cfg->tmp_dir))
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "EJ_FILES_DIR is too long");
        if (mkdir(cfg->tmp_dir, 0700) != 0 && errno != EEXIST)
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "cannot create %s: %s",
                                  cfg->tmp_dir, strerror(errno));
        return EJ_OK;
}
