/* storage_local.c: blobs in a local directory, <dir>/ab/cd/<sha256>, written atomically. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "mem.h"
#include "storage.h"
#include "storage_impl.h"

struct local {
        char *dir;
        char *tmp; /* <dir>/tmp: temp files of streamed puts */
};

/* <dir>/ab/cd/<key> into `out`. */
static void blob_path(const struct local *l, const char *key, char out[PATH_MAX])
{
        snprintf(out, PATH_MAX, "%s/%.2s/%.2s/%s", l->dir, key, key + 2, key);
}

static enum ej_status io_err(struct ej_err *err, const char *what, const char *path)
{
        return ej_err_set(err, errno == ENOENT ? EJ_ERR_NOT_FOUND : EJ_ERR_INTERNAL, NULL,
                          "storage: %s %s: %s", what, path, strerror(errno));
}

static int mkdir_ok(const char *path)
{
        return mkdir(path, 0750) == 0 || errno == EEXIST;
}

/* mkdir -p: every missing parent of `path` too. */
static int mkdir_parents(const char *path)
{
        char buf[PATH_MAX];
        size_t n = strlen(path);

        if (n == 0 || n >= sizeof(buf))
                return 0;
        memcpy(buf, path, n + 1);
        for (size_t i = 1; i < n; i++) {
                if (buf[i] != '/')
                        continue;
                buf[i] = '\0';
                if (!mkdir_ok(buf))
                        return 0;
                buf[i] = '/';
        }
        return mkdir_ok(buf);
}

static int fsync_dir(const char *path)
{
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int rc;

        if (fd < 0)
                return -1;
        rc = fsync(fd);
        close(fd);
        return rc;
}

/* Copies the file at `src` to a new temp file beside the blob and returns its path in `tmp`. */
static enum ej_status copy_to_temp(const struct local *l, const char *src, char tmp[PATH_MAX],
                                   struct ej_err *err)
{
        char buf[65536];
        int in = open(src, O_RDONLY | O_CLOEXEC);
        int out = -1;
        enum ej_status st = EJ_OK;
        ssize_t n;

        snprintf(tmp, PATH_MAX, "%s/put-XXXXXX", l->tmp);
        if (in < 0)
                return io_err(err, "open", src);
        out = mkostemp(tmp, O_CLOEXEC);
        if (out < 0) {
                st = io_err(err, "create", tmp);
                goto out;
        }
        while ((n = read(in, buf, sizeof(buf))) > 0) {
                if (write(out, buf, (size_t)n) != n) {
                        st = io_err(err, "write", tmp);
                        goto out;
                }
        }
        if (n < 0)
                st = io_err(err, "read", src);
out:
        if (in >= 0)
                close(in);
        if (out >= 0)
                close(out);
        if (st != EJ_OK && out >= 0)
                unlink(tmp);
        return st;
}

static enum ej_status local_put_file(void *impl, const char *key, const char *path, int64_t size,
                                     bool *stored, struct ej_err *err)
{
        struct local *l = impl;
        char final[PATH_MAX];
        char dir[PATH_MAX];
        char copied[PATH_MAX] = "";
        const char *src = path;
        struct stat sb;
        int fd;

        (void)size;
        blob_path(l, key, final);
        if (stat(final, &sb) == 0) {
                /* Identical content is already stored: this copy is not needed. */
                unlink(path);
                return EJ_OK;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return io_err(err, "open", path);
        if (fsync(fd) != 0) {
                close(fd);
                return io_err(err, "fsync", path);
        }
        close(fd);
        snprintf(dir, sizeof(dir), "%s/%.2s", l->dir, key);
        if (!mkdir_ok(dir))
                return io_err(err, "mkdir", dir);
        snprintf(dir, sizeof(dir), "%s/%.2s/%.2s", l->dir, key, key + 2);
        if (!mkdir_ok(dir))
                return io_err(err, "mkdir", dir);
        if (rename(src, final) != 0) {
                enum ej_status st;

                if (errno != EXDEV)
                        return io_err(err, "rename", final);
                /* Another file system: copy beside the blob first, then rename. */
                st = copy_to_temp(l, path, copied, err);
                if (st != EJ_OK)
                        return st;
                fd = open(copied, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fsync(fd) != 0 || rename(copied, final) != 0) {
                        st = io_err(err, "store", final);
                        if (fd >= 0)
                                close(fd);
                        unlink(copied);
                        return st;
                }
                close(fd);
                unlink(path);
        }
        if (fsync_dir(dir) != 0)
                return io_err(err, "fsync", dir);
        if (stored)
                *stored = true;
        return EJ_OK;
}

static enum ej_status local_put_stream(void *impl, const char *key, int64_t size,
                                       storage_read_fn read_fn, void *ud, struct ej_err *err)
{
        struct local *l = impl;
        char tmp[PATH_MAX];
        char buf[65536];
        char hex[EJ_SHA256_HEX_LEN];
        struct ej_sha256 sha = {0};
        int64_t total = 0;
        enum ej_status st = EJ_OK;
        long n;
        int fd;

        snprintf(tmp, sizeof(tmp), "%s/put-XXXXXX", l->tmp);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return io_err(err, "create", tmp);
        st = ej_sha256_init(&sha, err);
        if (st != EJ_OK)
                goto out;
        while ((n = read_fn(ud, buf, sizeof(buf))) > 0) {
                if (write(fd, buf, (size_t)n) != (ssize_t)n) {
                        st = io_err(err, "write", tmp);
                        goto out;
                }
                ej_sha256_update(&sha, buf, (size_t)n);
                total += n;
        }
        if (n < 0) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "storage: the source failed");
                goto out;
        }
        ej_sha256_final_hex(&sha, hex);
        if (strcmp(hex, key) != 0 || (size >= 0 && total != size)) {
                st = ej_err_set(err, EJ_ERR_INVALID, NULL,
                                "storage: the content does not match its key");
                goto out;
        }
        close(fd);
        fd = -1;
        st = local_put_file(l, key, tmp, total, NULL, err);
out:
        ej_sha256_free(&sha);
        if (fd >= 0)
                close(fd);
        if (st != EJ_OK)
                unlink(tmp);
        return st;
}

static enum ej_status local_read(void *impl, const char *key, int64_t offset, size_t len, void *buf,
                                 size_t *got, struct ej_err *err)
{
        struct local *l = impl;
        char path[PATH_MAX];
        size_t done = 0;
        int fd;

        blob_path(l, key, path);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return io_err(err, "open", path);
        while (done < len) {
                ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)offset + (off_t)done);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        enum ej_status st = io_err(err, "read", path);

                        close(fd);
                        return st;
                }
                if (n == 0)
                        break;
                done += (size_t)n;
        }
        close(fd);
        *got = done;
        return EJ_OK;
}

static enum ej_status local_fetch_file(void *impl, const char *key, const char *path,
                                       struct ej_err *err)
{
        struct local *l = impl;
        char src[PATH_MAX];
        char buf[65536];
        int in;
        int out;
        ssize_t n;
        enum ej_status st = EJ_OK;

        blob_path(l, key, src);
        in = open(src, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return io_err(err, "open", src);
        out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0) {
                st = io_err(err, "create", path);
                close(in);
                return st;
        }
        while ((n = read(in, buf, sizeof(buf))) > 0)
                if (write(out, buf, (size_t)n) != n) {
                        st = io_err(err, "write", path);
                        break;
                }
        if (n < 0)
                st = io_err(err, "read", src);
        close(in);
        close(out);
        if (st != EJ_OK)
                unlink(path);
        return st;
}

static enum ej_status local_head(void *impl, const char *key, int64_t *size, struct ej_err *err)
{
        struct local *l = impl;
        char path[PATH_MAX];
        struct stat sb;

        blob_path(l, key, path);
        if (stat(path, &sb) != 0)
                return io_err(err, "stat", path);
        *size = (int64_t)sb.st_size;
        return EJ_OK;
}

static enum ej_status local_del(void *impl, const char *key, struct ej_err *err)
{
        struct local *l = impl;
        char path[PATH_MAX];

        blob_path(l, key, path);
        if (unlink(path) != 0 && errno != ENOENT)
                return io_err(err, "delete", path);
        return EJ_OK;
}

static void local_destroy(void *impl)
{
        struct local *l = impl;

        if (l == NULL)
                return;
        free(l->dir);
        free(l->tmp);
        free(l);
}

static const struct storage_ops local_ops = {local_put_file,   local_put_stream, local_read,
                                             local_fetch_file, local_head,       local_del,
                                             local_destroy};

enum ej_status storage_local_open(struct storage **out, const char *dir, struct ej_err *err)
{
        struct local *l;
        char tmp[PATH_MAX];

        *out = NULL;
        if (snprintf(tmp, sizeof(tmp), "%s/tmp", dir) >= (int)sizeof(tmp))
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "storage: directory name too long");
        if (!mkdir_parents(dir) || !mkdir_ok(tmp))
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "storage: cannot create %s: %s",
                                  tmp, strerror(errno));
        if (access(tmp, W_OK) != 0)
                return ej_err_set(err, EJ_ERR_UNAVAILABLE, NULL, "storage: cannot write %s: %s",
                                  tmp, strerror(errno));
        l = xcalloc(1, sizeof(*l));
        l->dir = xstrdup(dir);
        l->tmp = xstrdup(tmp);
        *out = storage_wrap("local", &local_ops, l);
        return EJ_OK;
}
