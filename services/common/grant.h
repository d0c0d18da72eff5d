/*
 * grant.h: short-lived signed grants to read one file.
 *
 * The service that owns a resource (a submission, a review, an article) decides who may read the
 * files attached to it and hands that person a grant; the files service only verifies it. A grant
 * is bound to one file id, one user id ("*" = anyone, for public material), a purpose ("read",
 * "review", "galley", ...) and an absolute expiry. Its token is compact and URL-safe:
 *
 *   base64url (no padding) of  0x01 | file_id \n user_id \n purpose \n expires_at_ms (decimal)
 *                              | HMAC-SHA256 of everything before it (32 bytes)
 *
 * signed with libsodium's crypto_auth_hmacsha256 under a key every service shares (EJ_GRANT_KEY,
 * 64 hex digits = 32 bytes), and compared in constant time. Fields may not contain control
 * characters. Nothing here allocates; the caller owns every buffer. Thread safety: all functions
 * are reentrant (call sodium_init() once in main before threads start).
 */
#ifndef EJ_GRANT_H
#define EJ_GRANT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define EJ_GRANT_KEY_BYTES 32
#define EJ_GRANT_TOKEN_MAX 640 /* bytes of a token, NUL included */
#define EJ_GRANT_FIELD_MAX 128 /* bytes of file_id, user_id or purpose, NUL excluded */
#define EJ_GRANT_ANY_USER  "*"
#define EJ_GRANT_KEY_ENV   "EJ_GRANT_KEY"

struct ej_grant_key {
        unsigned char k[EJ_GRANT_KEY_BYTES];
};

/* Parses a key written as 64 hex digits. EJ_ERR_INVALID when it is not. */
enum ej_status ej_grant_key_parse(const char *hex, struct ej_grant_key *out, struct ej_err *err);

/* Reads the key from EJ_GRANT_KEY (start-up only: reads the environment). EJ_ERR_INVALID with a
 * sentence naming the variable when it is unset or malformed. */
enum ej_status ej_grant_key_from_env(struct ej_grant_key *out, struct ej_err *err);

/* Issues a token for (file_id, user_id, purpose) valid until `expires_at_ms` (Unix epoch ms)
 * into `out` (`out_size` bytes, EJ_GRANT_TOKEN_MAX is always enough). EJ_ERR_INVALID when a field
 * is empty, too long or holds a control character. */
enum ej_status ej_grant_issue(const struct ej_grant_key *key, const char *file_id,
                              const char *user_id, const char *purpose, int64_t expires_at_ms,
                              char *out, size_t out_size, struct ej_err *err);

/* Verifies `token` for reading `file_id` by `user_id` at `now_ms`. EJ_OK when the signature is
 * ours, the file id matches, the grant's user is `user_id` or "*", and now_ms < expiry; then
 * copies the grant's purpose into `purpose` (`purpose_size` bytes, may be NULL/0). Otherwise
 * EJ_ERR_FORBIDDEN with the reason in `err` (malformed, bad signature, another file, another
 * user, expired). */
enum ej_status ej_grant_verify(const struct ej_grant_key *key, const char *token,
                               const char *file_id, const char *user_id, int64_t now_ms,
                               char *purpose, size_t purpose_size, struct ej_err *err);

#endif
