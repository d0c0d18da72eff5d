/*
 * mem.h: allocation that cannot fail, and the per-request arena.
 *
 * x*alloc log and abort on out-of-memory, so callers never test for NULL. An arena hands out
 * memory that lives until the arena is reset or destroyed: one per HTTP request and one per NATS
 * message, so handlers never call free. The caller owns the arena; an arena is used by one thread
 * at a time. ej_arena_pb_allocator() lets protobuf-c unpack into the arena.
 */
#ifndef EJ_MEM_H
#define EJ_MEM_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

struct ej_arena;

/* Creates an empty arena whose first block holds `first_block` bytes (0 = a default). */
struct ej_arena *ej_arena_create(size_t first_block);

/* Frees every block. Accepts NULL. */
void ej_arena_destroy(struct ej_arena *a);

/* Forgets every allocation but keeps the first block for reuse. */
void ej_arena_reset(struct ej_arena *a);

/* Returns `n` bytes aligned for any type, valid until reset/destroy. Never NULL. */
void *ej_arena_alloc(struct ej_arena *a, size_t n);

/* Like ej_arena_alloc, zero-filled. */
void *ej_arena_calloc(struct ej_arena *a, size_t n);

/* Copies `n` bytes of `s` and a terminating NUL into the arena. */
char *ej_arena_strndup(struct ej_arena *a, const char *s, size_t n);

/* Copies the NUL-terminated `s` into the arena; NULL gives NULL. */
char *ej_arena_strdup(struct ej_arena *a, const char *s);

/* printf into the arena. */
char *ej_arena_printf(struct ej_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Bytes handed out since the last reset (for tests and metrics). */
size_t ej_arena_used(const struct ej_arena *a);

/* A protobuf-c allocator whose allocations come from `a` and whose free does nothing.
 * Messages unpacked with it must not be passed to *_free_unpacked with another allocator. */
ProtobufCAllocator ej_arena_pb_allocator(struct ej_arena *a);

#endif
