/*
 * idem.c: stored answers of requests with an Idempotency-Key; see idem.h.
 */
#include "idem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define IDEM_KEEP_HOURS  "24"
#define IDEM_PURGE_EVERY 256u /* stores between two purges of old rows, per thread */

static const char idem_ddl[] =
    "CREATE TABLE IF NOT EXISTS idempotency (\n"
    "    scope text NOT NULL,\n"
    "    op text NOT NULL,\n"
    "    key text NOT NULL,\n"
    "    request_hash text NOT NULL,\n"
    "    status text,\n" /* NULL: the work committed, the answer is not stored yet */
    "    error text NOT NULL DEFAULT '',\n"
    "    field text NOT NULL DEFAULT '',\n"
    "    response bytea,\n"
    "    created_at timestamptz NOT NULL DEFAULT now(),\n"
    "    PRIMARY KEY (scope, op, key)\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created_at);\n";

const struct ej_migration ej_idem_migration = {"000_idempotency.sql", idem_ddl};

static const char sql_get[] = "SELECT request_hash, status, error, field, response "
                              "FROM idempotency WHERE scope = $1 AND op = $2 AND key = $3";

static const char sql_claim[] = "INSERT INTO idempotency (scope, op, key, request_hash) "
                                "VALUES ($1, $2, $3, $4)";

static const char sql_store[] =
    "INSERT INTO idempotency (scope, op, key, request_hash, status, error, field, response) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (scope, op, key) DO UPDATE SET "
    "status = EXCLUDED.status, error = EXCLUDED.error, field = EXCLUDED.field, "
    "response = EXCLUDED.response WHERE idempotency.request_hash = EXCLUDED.request_hash";

static const char sql_purge[] =
    "DELETE FROM idempotency WHERE created_at < now() - interval '" IDEM_KEEP_HOURS " hours'";

bool ej_idem_key_valid(const char *key)
{
        size_t n = 0;

        if (key == NULL)
                return false;
        for (; key[n]; n++)
                if ((unsigned char)key[n] < 0x21 || (unsigned char)key[n] > 0x7e ||
                    n >= EJ_IDEM_KEY_MAX)
                        return false;
        return n > 0;
}

enum ej_status ej_idem_begin(struct ej_idem *ic, const char *scope, const char *op, const char *key,
                             const void *data, size_t n, struct ej_err *err)
{
        ic->active = false;
        ic->claimed = false;
        if (key == NULL || key[0] == '\0')
                return EJ_OK;
        if (!ej_idem_key_valid(key))
                return ej_err_set(err, EJ_ERR_INVALID, "Idempotency-Key",
                                  "an Idempotency-Key is 1 to %d visible ASCII characters",
                                  EJ_IDEM_KEY_MAX);
        if (snprintf(ic->scope, sizeof(ic->scope), "%s", scope ? scope : "") >=
                (int)sizeof(ic->scope) ||
            snprintf(ic->op, sizeof(ic->op), "%s", op) >= (int)sizeof(ic->op))
                return ej_err_set(err, EJ_ERR_INVALID, NULL, "the caller or operation is too long");
        snprintf(ic->key, sizeof(ic->key), "%s", key);
        ej_sha256_hex(data, n, ic->hash);
        ic->active = true;
        return EJ_OK;
}

enum ej_status ej_idem_lookup(struct ej_idem *ic, struct ej_db *db, struct ej_arena *arena,
                              const ProtobufCMessageDescriptor *resp_desc, bool *found,
                              enum ej_status *answer, struct ej_err *answer_err,
                              ProtobufCMessage **resp, struct ej_err *err)
{
        const char *params[3] = {ic->scope, ic->op, ic->key};
        ProtobufCAllocator alloc = ej_arena_pb_allocator(arena);
        PGresult *res = NULL;
        unsigned char *bytes = NULL;
        size_t len = 0;
        enum ej_status st;

        *found = false;
        *resp = NULL;
        if (!ic->active)
                return EJ_OK;
        st = ej_db_exec(db, sql_get, 3, params, &res, err);
        if (st != EJ_OK || PQntuples(res) == 0)
                goto out;
        if (strcmp(ej_db_val(res, 0, 0), ic->hash) != 0) {
                st = ej_err_set(err, EJ_ERR_CONFLICT, "Idempotency-Key",
                                "this Idempotency-Key was used for a different request");
                goto out;
        }
        if (ej_db_isnull(res, 0, 1)) {
                st = ej_err_set(err, EJ_ERR_CONFLICT, "Idempotency-Key",
                                "the request with this Idempotency-Key was carried out, but its "
                                "answer is not available");
                goto out;
        }
        *found = true;
        *answer = ej_status_from_name(ej_db_val(res, 0, 1));
        ej_err_set(answer_err, *answer, ej_db_val(res, 0, 3), "%s", ej_db_val(res, 0, 2));
        if (*answer == EJ_OK) {
                bytes = PQunescapeBytea((const unsigned char *)ej_db_val(res, 0, 4), &len);
                if (bytes != NULL)
                        *resp = protobuf_c_message_unpack(resp_desc, &alloc, len, bytes);
                if (*resp == NULL)
                        st = ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                        "the stored answer is not a valid %s", resp_desc->name);
        }
out:
        if (bytes != NULL)
                PQfreemem(bytes);
        PQclear(res);
        return st;
}

enum ej_status ej_idem_claim(struct ej_db *db, void *ud, struct ej_err *err)
{
        struct ej_idem *ic = ud;
        const char *params[4];
        enum ej_status st;

        if (!ic->active || ic->claimed)
                return EJ_OK;
        params[0] = ic->scope;
        params[1] = ic->op;
        params[2] = ic->key;
        params[3] = ic->hash;
        st = ej_db_exec(db, sql_claim, 4, params, NULL, err);
        if (st == EJ_ERR_CONFLICT)
                ej_err_set(err, st, "Idempotency-Key",
                           "another request with this Idempotency-Key was carried out");
        ic->claimed = st == EJ_OK;
        return st;
}

/* True for answers that tell the client to try again: a retry must run the call again. */
static bool worth_storing(const struct ej_idem *ic, enum ej_status st)
{
        switch (st) {
        case EJ_OK:
                return true;
        case EJ_ERR_UNAVAILABLE:
        case EJ_ERR_TIMEOUT:
        case EJ_ERR_INTERNAL:
        case EJ_ERR_TOO_MANY:
        case EJ_ERR_OUTCOME_UNKNOWN:
                return false;
        default:
                /* A refusal is the answer only when the work it refused had committed. */
                return ic->claimed;
        }
}

void ej_idem_store(struct ej_idem *ic, struct ej_db *db, struct ej_arena *arena, enum ej_status st,
                   const struct ej_err *detail, const ProtobufCMessage *resp,
                   const char *request_id)
{
        const char *params[8];
        int lengths[8] = {0};
        int formats[8] = {0};
        uint8_t *packed = NULL;
        size_t n = 0;
        struct ej_err err;

        if (!ic->active || !worth_storing(ic, st))
                return;
        if (st == EJ_OK) {
                n = resp ? protobuf_c_message_get_packed_size(resp) : 0;
                packed = ej_arena_alloc(arena, n ? n : 1);
                if (resp)
                        protobuf_c_message_pack(resp, packed);
        }
        params[0] = ic->scope;
        params[1] = ic->op;
        params[2] = ic->key;
        params[3] = ic->hash;
        params[4] = ej_status_name(st);
        params[5] = st == EJ_OK ? "" : detail->msg;
        params[6] = st == EJ_OK ? "" : detail->field;
        params[7] = st == EJ_OK ? (const char *)packed : NULL;
        lengths[7] = (int)n;
        formats[7] = 1;
        ej_err_clear(&err);
        if (ej_db_exec_bin(db, sql_store, 8, params, lengths, formats, NULL, &err) != EJ_OK)
                ej_warn(request_id, "idempotency: the answer was not stored: %s", err.msg);
        if (++ic->stores % IDEM_PURGE_EVERY == 0 &&
            ej_db_exec(db, sql_purge, 0, NULL, NULL, &err) != EJ_OK)
                ej_warn(request_id, "idempotency: old answers were not removed: %s", err.msg);
}
