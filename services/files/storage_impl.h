/*
 * storage_impl.h: what a storage backend implements (private to storage*.c). Each function has
 * the contract of its storage_* counterpart in storage.h.
 */
#ifndef EJ_FILES_STORAGE_IMPL_H
#define EJ_FILES_STORAGE_IMPL_H

#include "storage.h"

struct storage_ops {
        enum ej_status (*put_file)(void *impl, const char *key, const char *path, int64_t size,
                                   bool *stored, struct ej_err *err);
        enum ej_status (*put_stream)(void *impl, const char *key, int64_t size,
                                     storage_read_fn read_fn, void *ud, struct ej_err *err);
        enum ej_status (*read)(void *impl, const char *key, int64_t offset, size_t len, void *buf,
                               size_t *got, struct ej_err *err);
        enum ej_status (*fetch_file)(void *impl, const char *key, const char *path,
                                     struct ej_err *err);
        enum ej_status (*head)(void *impl, const char *key, int64_t *size, struct ej_err *err);
        enum ej_status (*del)(void *impl, const char *key, struct ej_err *err);
        void (*destroy)(void *impl);
};

/* Wraps a backend's state in a struct storage (owned by the caller). */
struct storage *storage_wrap(const char *kind, const struct storage_ops *ops, void *impl);

#endif
