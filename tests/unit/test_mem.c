/* Unit tests for mem.c: the x*alloc helpers, the arena, and protobuf-c unpacking into it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mem.h"
#include "users.pb-c.h"

static int aligned16(const void *p)
{
        return ((uintptr_t)p % 16) == 0;
}

static int is_zero(const char *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i] != 0)
                        return 0;
        return 1;
}

static void test_x_alloc(void)
{
        char *p = xmalloc(0);
        char *s;

        CHECK(p != NULL);
        free(p);

        p = xcalloc(8, 4);
        CHECK(p != NULL);
        CHECK(is_zero(p, 32));
        p = xrealloc(p, 1000);
        p[999] = 'x';
        CHECK(p[999] == 'x');
        free(p);

        s = xstrdup("editor");
        CHECK(strcmp(s, "editor") == 0);
        free(s);
        s = xstrndup("reviewer", 6);
        CHECK(strcmp(s, "review") == 0);
        free(s);
}

static void test_arena_basic(void)
{
        struct ej_arena *a = ej_arena_create(64);
        char *p1, *p2, *big, *z;
        int all_aligned = 1, intact = 1;
        char *ptrs[200];

        CHECK(ej_arena_used(a) == 0);
        p1 = ej_arena_alloc(a, 3);
        p2 = ej_arena_alloc(a, 5);
        CHECK(p1 != NULL && p2 != NULL && p1 != p2);
        CHECK(aligned16(p1) && aligned16(p2));
        CHECK(ej_arena_used(a) >= 8);
        memcpy(p1, "ab", 3);
        memcpy(p2, "cdef", 5);

        /* Many allocations cross block boundaries; earlier ones must stay intact. */
        for (int i = 0; i < 200; i++) {
                ptrs[i] = ej_arena_alloc(a, (size_t)(i % 37) + 1);
                all_aligned = all_aligned && aligned16(ptrs[i]);
                memset(ptrs[i], 'A' + (i % 26), (size_t)(i % 37) + 1);
        }
        CHECK(all_aligned);
        for (int i = 0; i < 200; i++)
                for (int j = 0; j < (i % 37) + 1; j++)
                        intact = intact && ptrs[i][j] == 'A' + (i % 26);
        CHECK(intact);
        CHECK(strcmp(p1, "ab") == 0 && strcmp(p2, "cdef") == 0);

        /* Larger than any block so far. */
        big = ej_arena_alloc(a, 100000);
        memset(big, 7, 100000);
        CHECK(big[0] == 7 && big[99999] == 7);
        CHECK(ej_arena_used(a) >= 100000);

        z = ej_arena_calloc(a, 333);
        CHECK(is_zero(z, 333));
        CHECK(ej_arena_alloc(a, 0) != NULL);

        ej_arena_reset(a);
        CHECK(ej_arena_used(a) == 0);
        p1 = ej_arena_alloc(a, 10);
        CHECK(p1 != NULL && aligned16(p1));
        CHECK(ej_arena_used(a) >= 10);
        /* Reused memory from before the reset is handed out zeroed by calloc. */
        memset(p1, 0x5a, 10);
        ej_arena_reset(a);
        z = ej_arena_calloc(a, 10);
        CHECK(is_zero(z, 10));
        ej_arena_destroy(a);
        ej_arena_destroy(NULL);

        a = ej_arena_create(0);
        CHECK(ej_arena_alloc(a, 1) != NULL);
        ej_arena_destroy(a);
}

static void test_arena_strings(void)
{
        struct ej_arena *a = ej_arena_create(0);
        const char *src = "Journal of Examples";
        char *s;

        s = ej_arena_strdup(a, src);
        CHECK(s != src && strcmp(s, src) == 0);
        CHECK(ej_arena_strdup(a, NULL) == NULL);
        s = ej_arena_strndup(a, src, 7);
        CHECK(strcmp(s, "Journal") == 0);
        s = ej_arena_strndup(a, "x\0y", 3);
        CHECK(s[0] == 'x' && s[1] == '\0' && s[2] == 'y' && s[3] == '\0');
        s = ej_arena_printf(a, "%s #%d", "issue", 12);
        CHECK(strcmp(s, "issue #12") == 0);
        s = ej_arena_printf(a, "%s", "");
        CHECK(s != NULL && s[0] == '\0');
        ej_arena_destroy(a);
}

/* Packs a user with the heap, unpacks it into an arena, and reads it back. */
static void test_pb_allocator(void)
{
        Ej__Users__User u;
        Ej__Users__UserResponse resp;
        char *roles[] = {"author", "reviewer", "editor"};
        uint8_t *wire;
        size_t n;
        struct ej_arena *a = ej_arena_create(128);
        ProtobufCAllocator al = ej_arena_pb_allocator(a);
        Ej__Users__UserResponse *out;
        size_t used_before;

        ej__users__user__init(&u);
        u.id = "0b6f1d2e-7f5c-4a39-9d0e-3c1b2a4f5e6d";
        u.name = "Ada Lovelace";
        u.email = "ada@example.org";
        u.n_roles = 3;
        u.roles = roles;
        u.created_at_ms = 1795000000123LL;
        ej__users__user_response__init(&resp);
        resp.user = &u;

        n = ej__users__user_response__get_packed_size(&resp);
        wire = xmalloc(n);
        CHECK(ej__users__user_response__pack(&resp, wire) == n);

        CHECK(al.allocator_data == a);
        used_before = ej_arena_used(a);
        out = ej__users__user_response__unpack(&al, n, wire);
        /* The wire buffer is gone before we read: nothing may point into it. */
        memset(wire, 0, n);
        free(wire);
        CHECK(out != NULL);
        CHECK(ej_arena_used(a) > used_before);
        if (out != NULL && out->user != NULL) {
                CHECK(strcmp(out->user->id, u.id) == 0);
                CHECK(strcmp(out->user->name, "Ada Lovelace") == 0);
                CHECK(strcmp(out->user->email, "ada@example.org") == 0);
                CHECK(out->user->n_roles == 3);
                CHECK(out->user->n_roles == 3 && strcmp(out->user->roles[0], "author") == 0 &&
                      strcmp(out->user->roles[2], "editor") == 0);
                CHECK(out->user->created_at_ms == 1795000000123LL);
        } else {
                CHECK(!"unpacked message has no user");
        }
        /* Garbage does not unpack, and the failure path frees through the no-op free. */
        {
                static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};

                CHECK(ej__users__register_response__unpack(&al, sizeof(junk), junk) == NULL);
        }
        /* Everything goes away with the arena: no free_unpacked call. */
        ej_arena_destroy(a);
}

int main(void)
{
        test_x_alloc();
        test_arena_basic();
        test_arena_strings();
        test_pb_allocator();
        return check_report();
}
