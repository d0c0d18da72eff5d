/*
 * str.h: borrowed string views and growable byte buffers.
 *
 * struct ej_str borrows memory it does not own (p may not be NUL-terminated). struct ej_buf owns
 * its heap memory: initialise with EJ_BUF_INIT or ej_buf_init, release with ej_buf_free. Its data
 * is always NUL-terminated after any append, so b.p can be used as a C string. A buffer is used
 * by one thread at a time.
 */
#ifndef EJ_STR_H
#define EJ_STR_H

#include <stdbool.h>
#include <stddef.h>

struct ej_str {
        const char *p;
        size_t n;
};

#define EJ_STR_LIT(s) ((struct ej_str){(s), sizeof(s) - 1})

/* A view of the NUL-terminated `s` (NULL gives the empty view). */
struct ej_str ej_str_c(const char *s);

/* True when both views hold the same bytes. */
bool ej_str_eq(struct ej_str a, struct ej_str b);

/* True when `a` equals the C string `s`. */
bool ej_str_eq_c(struct ej_str a, const char *s);

/* True when `a` starts with the C string `prefix`. */
bool ej_str_starts_with(struct ej_str a, const char *prefix);

struct ej_buf {
        char *p;
        size_t n;   /* bytes used, not counting the NUL */
        size_t cap; /* bytes allocated */
};

#define EJ_BUF_INIT                                                                                \
        {                                                                                          \
                NULL, 0, 0                                                                         \
        }

void ej_buf_init(struct ej_buf *b);

/* Releases the memory; the buffer is then empty and reusable. Accepts NULL. */
void ej_buf_free(struct ej_buf *b);

/* Empties the buffer, keeping its memory. */
void ej_buf_reset(struct ej_buf *b);

/* Ensures room for `extra` more bytes plus the NUL. */
void ej_buf_reserve(struct ej_buf *b, size_t extra);

void ej_buf_append(struct ej_buf *b, const void *p, size_t n);
void ej_buf_append_c(struct ej_buf *b, const char *s);
void ej_buf_append_char(struct ej_buf *b, char c);
void ej_buf_appendf(struct ej_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends `s` as a JSON string literal, quotes included, escaping what JSON requires (and '<',
 * '>', '&' so the output is safe inside HTML). Invalid UTF-8 bytes become U+FFFD. */
void ej_buf_append_json_str(struct ej_buf *b, const char *s, size_t n);

/* True when `s` (n bytes) is valid UTF-8 (shortest forms, no surrogates, at most U+10FFFF)
 * with no NUL byte. */
bool ej_utf8_valid(const char *s, size_t n);

/* Takes the buffer's memory (NUL-terminated; NULL when empty and never allocated); the caller
 * frees it with free(). The buffer is left empty. */
char *ej_buf_steal(struct ej_buf *b);

#endif
