#include "mem.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
        /* Logged with plain stdio: the logger itself may need memory. */
        fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n",
                n);
        abort();
}

void *xmalloc(size_t n)
{
        void *p = malloc(n ? n : 1);

        if (p == NULL)
                oom(n);
        return p;
}

void *xcalloc(size_t count, size_t size)
{
        void *p = calloc(count ? count : 1, size ? size : 1);

        if (p == NULL)
                oom(count * size);
        return p;
}

void *xrealloc(void *p, size_t n)
{
        void *q = realloc(p, n ? n : 1);

        if (q == NULL)
                oom(n);
        return q;
}

char *xstrdup(const char *s)
{
        return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
        char *p = xmalloc(n + 1);

        memcpy(p, s, n);
        p[n] = '\0';
        return p;
}

#define ARENA_ALIGN         16u
#define ARENA_DEFAULT_BLOCK 4096u

struct arena_block {
        struct arena_block *next;
        size_t size; /* usable bytes after the header */
        size_t used;
        _Alignas(16) unsigned char data[];
};

struct ej_arena {
        struct arena_block *head;  /* current block; older blocks follow */
        struct arena_block *first; /* the block kept across resets */
        size_t used_total;
};

static struct arena_block *block_new(size_t size)
{
        struct arena_block *b = xmalloc(sizeof(*b) + size);

        b->next = NULL;
        b->size = size;
        b->used = 0;
        return b;
}

struct ej_arena *ej_arena_create(size_t first_block)
{
        struct ej_arena *a = xmalloc(sizeof(*a));

        a->first = block_new(first_block ? first_block : ARENA_DEFAULT_BLOCK);
        a->head = a->first;
        a->used_total = 0;
        return a;
}

static void free_blocks_until(struct arena_block *b, const struct arena_block *stop)
{
        while (b != NULL && b != stop) {
                struct arena_block *next = b->next;

                free(b);
                b = next;
        }
}

void ej_arena_destroy(struct ej_arena *a)
{
        if (a == NULL)
                return;
        free_blocks_until(a->head, NULL);
        free(a);
}

void ej_arena_reset(struct ej_arena *a)
{
        free_blocks_until(a->head, a->first);
        a->first->next = NULL;
        a->first->used = 0;
        a->head = a->first;
        a->used_total = 0;
}

void *ej_arena_alloc(struct ej_arena *a, size_t n)
{
        struct arena_block *b = a->head;
        size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
        void *p;

        if (need == 0)
                need = ARENA_ALIGN;
        if (need < n)
                oom(n);
        if (b->size - b->used < need) {
                size_t size = b->size * 2;

                if (size < need)
                        size = need;
                b = block_new(size);
                b->next = a->head;
                a->head = b;
        }
        p = b->data + b->used;
        b->used += need;
        a->used_total += need;
        return p;
}

void *ej_arena_calloc(struct ej_arena *a, size_t n)
{
        void *p = ej_arena_alloc(a, n);

        memset(p, 0, n);
        return p;
}

char *ej_arena_strndup(struct ej_arena *a, const char *s, size_t n)
{
        char *p = ej_arena_alloc(a, n + 1);

        memcpy(p, s, n);
        p[n] = '\0';
        return p;
}

char *ej_arena_strdup(struct ej_arena *a, const char *s)
{
        if (s == NULL)
                return NULL;
        return ej_arena_strndup(a, s, strlen(s));
}

char *ej_arena_printf(struct ej_arena *a, const char *fmt, ...)
{
        va_list ap;
        int n;
        char *p;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return ej_arena_strdup(a, "");
        p = ej_arena_alloc(a, (size_t)n + 1);
        va_start(ap, fmt);
        (void)vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return p;
}

size_t ej_arena_used(const struct ej_arena *a)
{
        return a->used_total;
}

static void *pb_alloc(void *data, size_t size)
{
        return ej_arena_alloc(data, size);
}

static void pb_free(void *data, void *p)
{
        (void)data;
        (void)p;
}

ProtobufCAllocator ej_arena_pb_allocator(struct ej_arena *a)
{
        ProtobufCAllocator al = {.alloc = pb_alloc, .free = pb_free, .allocator_data = a};

        return al;
}
