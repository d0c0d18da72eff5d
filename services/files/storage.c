/* storage.c: the backend-independent face of storage.h (argument checks and dispatch). */
#include "storage.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "storage_impl.h"

struct storage {
        const char *kind;
        const struct storage_ops *ops;
        void *impl;
};

struct storage *storage_wrap(const char *kind, const struct storage_ops *ops, void *impl)
{
        struct storage *s = xcalloc(1, sizeof(*s));

        s->kind = kind;
        s->ops = ops;
        s->impl = impl;
        return s;
}

void storage_destroy(struct storage *s)
{
        if (s == NULL)
                return;
        s->ops->destroy(s->impl);
        free(s);
}

const char *storage_kind(const struct storage *s)
{
        return s->kind;
}

bool storage_key_ok(const char *key)
{
        size_t i;

        if (key == NULL)
                return false;
        for (i = 0; key[i]; i++)
                if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f')))
                        return false;
        return i == 64;
}

static enum ej_status bad_key(struct ej_err *err)
{
        return ej_err_set(err, EJ_ERR_INVALID, NULL, "storage: a blob key is a hex SHA-256");
}

enum ej_status storage_put_file(struct storage *s, const char *key, const char *path, int64_t size,
                                bool *stored, struct ej_err *err)
{
        if (stored)
                *stored = false;
        if (!storage_key_ok(key))
                return bad_key(err);
        return s->ops->put_file(s->impl, key, path, size, stored, err);
}

enum ej_status storage_put_stream(struct storage *s, const char *key, int64_t size,
                                  storage_read_fn read_fn, void *ud, struct ej_err *err)
{
        if (!storage_key_ok(key))
                return bad_key(err);
        return s->ops->put_stream(s->impl, key, size, read_fn, ud, err);
}

enum ej_status storage_read(struct storage *s, const char *key, int64_t offset, size_t len,
                            void *buf, size_t *got, struct ej_err *err)
{
        *got = 0;
        if (!storage_key_ok(key))
                return bad_key(err);
        if (offset < 0)
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "storage: negative offset");
        if (len == 0)
                return EJ_OK;
        return s->ops->read(s->impl, key, offset, len, buf, got, err);
}

enum ej_status storage_fetch_file(struct storage *s, const char *key, const char *path,
                                  struct ej_err *err)
{
        if (!storage_key_ok(key))
                return bad_key(err);
        return s->ops->fetch_file(s->impl, key, path, err);
}

enum ej_status storage_head(struct storage *s, const char *key, int64_t *size, struct ej_err *err)
{
        *size = 0;
        if (!storage_key_ok(key))
                return bad_key(err);
        return s->ops->head(s->impl, key, size, err);
}

bool storage_exists(struct storage *s, const char *key, struct ej_err *err)
{
        int64_t size = 0;

        return storage_head(s, key, &size, err) == EJ_OK;
}

enum ej_status storage_delete(struct storage *s, const char *key, struct ej_err *err)
{
        if (!storage_key_ok(key))
                return bad_key(err);
        return s->ops->del(s->impl, key, err);
}
