/* handlers_admin.c: administration of accounts: listing, creating and editing users,
 * their roles, deactivation and erasure by an admin, the activity log, and the command line's
 * create-user and seed-bench. */
#include "handlers_internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define USERS_QUERY_MAX 200 /* bytes of a users-list search */

/* ---- users and the activity log --------------------------------------------------------- */

static unsigned page_limit(const Ej__Common__PageRequest *page)
{
        unsigned limit = page && page->limit ? page->limit : USERS_PAGE_DEFAULT;

        return limit > USERS_PAGE_MAX ? USERS_PAGE_MAX : limit;
}

enum ej_status users_list_users(struct ej_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__ListUsersRequest *in = (const Ej__Users__ListUsersRequest *)req;
        Ej__Users__ListUsersResponse *out = (Ej__Users__ListUsersResponse *)resp;
        struct users_list_query q;
        struct ej_str query = users_trimmed(in->query);
        Ej__Common__PageInfo *page;
        bool exact = true;
        enum ej_status st = users_need_role(call, "admin", err);

        if (st != EJ_OK)
                return st;
        if (query.n > USERS_QUERY_MAX || users_text_chars(query) < 0)
                return ej_err_set(err, EJ_ERR_INVALID, "query",
                                  "the search must be at most %d bytes of text", USERS_QUERY_MAX);
        if (in->role[0] && !users_in_list(users_valid_roles, in->role))
                return ej_err_set(err, EJ_ERR_INVALID, "role",
                                  "the role is one of author, reviewer, editor, admin");
        if (in->sort[0] && strcmp(in->sort, "name") != 0 && strcmp(in->sort, "email") != 0 &&
            strcmp(in->sort, "created") != 0)
                return ej_err_set(err, EJ_ERR_INVALID, "sort", "sort by name, email or created");
        if (in->status[0] && strcmp(in->status, "active") != 0 &&
            strcmp(in->status, "deactivated") != 0 && strcmp(in->status, "unverified") != 0)
                return ej_err_set(err, EJ_ERR_INVALID, "status",
                                  "the status is active, deactivated or unverified");
        q.query = ej_arena_strndup(call->arena, query.p, query.n);
        q.role = in->role;
        q.sort = in->sort[0] ? in->sort : "name";
        q.desc = in->desc;
        q.status = in->status;
        q.cursor = in->page && in->page->cursor ? in->page->cursor : "";
        q.limit = page_limit(in->page);
        page = ej_arena_alloc(call->arena, sizeof(*page));
        ej__common__page_info__init(page);
        st = store_users_list(call->db, call->arena, &q, &out->users, &out->n_users,
                              &page->next_cursor, &page->total, &exact, err);
        out->page = page;
        out->total_exact = exact;
        return st;
}

enum ej_status users_get_user(struct ej_call *call, const ProtobufCMessage *req,
                              ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__UserIdRequest *in = (const Ej__Users__UserIdRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        enum ej_status st = users_need_user(call, err);

        if (st != EJ_OK)
                return st;
        if (strcmp(in->user_id, call->user_id) != 0 && !ej_call_has_role(call, "admin"))
                return ej_err_set(err, EJ_ERR_FORBIDDEN, NULL, "this needs the admin role");
        st = users_need_user_id(in->user_id, err);
        if (st == EJ_OK)
                st = store_user_get(call->db, call->arena, in->user_id, &out->user, err);
        return st;
}

/* Checks `roles` (n names, each valid, no duplicates needed). */
static enum ej_status check_roles(char **roles, size_t n, struct ej_err *err)
{
        for (size_t i = 0; i < n; i++)
                if (!users_in_list(users_valid_roles, roles[i]))
                        return ej_err_set(err, EJ_ERR_INVALID, "roles",
                                          "each role is one of author, reviewer, editor, admin");
        return EJ_OK;
}

enum ej_status users_create_user(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__CreateUserRequest *in = (const Ej__Users__CreateUserRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        static const char *const default_roles[] = {USERS_DEFAULT_ROLE};
        struct users_profile_in p;
        struct users_account_plan plan;
        char *email = NULL;
        enum ej_status st = users_need_role(call, "admin", err);

        if (st == EJ_OK)
                st = users_check_profile(call, in->name, in->affiliation, in->orcid, in->bio, &p,
                                         err);
        if (st == EJ_OK)
                st = users_check_email(call, in->email, "email", &email, err);
        if (st == EJ_OK)
                st = check_roles(in->roles, in->n_roles, err);
        if (st != EJ_OK)
                return st;
        memset(&plan, 0, sizeof(plan));
        plan.p = &p;
        plan.email = email;
        plan.roles = in->n_roles ? (const char *const *)in->roles : default_roles;
        plan.n_roles = in->n_roles ? in->n_roles : 1;
        plan.act_kind = "user_created";
        plan.inviter = users_caller_name(call);
        plan.role_label = plan.roles[0];
        return users_account_create(call, &plan, &out->user, err);
}

enum ej_status users_update_user(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__UpdateUserRequest *in = (const Ej__Users__UpdateUserRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        struct users_profile_in p;
        struct users_act act = users_act_of(call, "user_updated", in->user_id, NULL);
        char *email = NULL;
        enum ej_status st = users_need_role(call, "admin", err);

        if (st == EJ_OK)
                st = users_need_user_id(in->user_id, err);
        if (st == EJ_OK)
                st = users_check_profile(call, in->name, in->affiliation, in->orcid, in->bio, &p,
                                         err);
        if (st == EJ_OK)
                st = users_check_email(call, in->email, "email", &email, err);
        if (st == EJ_OK)
                st = store_user_admin_update(call->db, in->user_id, p.name, email, p.affiliation,
                                             p.orcid, p.bio, &act, err);
        if (st != EJ_OK)
                return st;
        users_announce_user(call, in->user_id);
        return store_user_get(call->db, call->arena, in->user_id, &out->user, err);
}

static enum ej_status role_change(struct ej_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, bool grant, struct ej_err *err)
{
        const Ej__Users__RoleRequest *in = (const Ej__Users__RoleRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        struct users_act act;
        enum ej_status st = users_need_role(call, "admin", err);

        if (st == EJ_OK)
                st = users_need_user_id(in->user_id, err);
        if (st != EJ_OK)
                return st;
        if (!users_in_list(users_valid_roles, in->role))
                return ej_err_set(err, EJ_ERR_INVALID, "role",
                                  "the role is one of author, reviewer, editor, admin");
        act = users_act_of(call, grant ? "role_granted" : "role_revoked", in->user_id,
                           users_details1(call->arena, "role", in->role));
        st = grant ? store_role_grant(call->db, in->user_id, in->role, call->user_id, &act, err)
                   : store_role_revoke(call->db, in->user_id, in->role, &act, err);
        if (st != EJ_OK)
                return st;
        users_announce_user(call, in->user_id);
        return store_user_get(call->db, call->arena, in->user_id, &out->user, err);
}

enum ej_status users_grant_role(struct ej_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage *resp, struct ej_err *err)
{
        return role_change(call, req, resp, true, err);
}

enum ej_status users_revoke_role(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        return role_change(call, req, resp, false, err);
}

static enum ej_status set_active(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, bool active, struct ej_err *err)
{
        const Ej__Users__UserIdRequest *in = (const Ej__Users__UserIdRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        struct users_act act =
            users_act_of(call, active ? "reactivated" : "deactivated", in->user_id, NULL);
        enum ej_status st = users_need_role(call, "admin", err);

        if (st == EJ_OK)
                st = users_need_user_id(in->user_id, err);
        if (st != EJ_OK)
                return st;
        if (!active && strcmp(in->user_id, call->user_id) == 0)
                return ej_err_set(err, EJ_ERR_CONFLICT, "user_id",
                                  "you cannot deactivate your own account");
        st = store_user_set_active(call->db, in->user_id, active, &act, err);
        if (st != EJ_OK)
                return st;
        users_announce_user(call, in->user_id);
        return store_user_get(call->db, call->arena, in->user_id, &out->user, err);
}

enum ej_status users_deactivate_user(struct ej_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, struct ej_err *err)
{
        return set_active(call, req, resp, false, err);
}

enum ej_status users_reactivate_user(struct ej_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, struct ej_err *err)
{
        return set_active(call, req, resp, true, err);
}

enum ej_status users_erase_user(struct ej_call *call, const ProtobufCMessage *req,
                                ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__UserIdRequest *in = (const Ej__Users__UserIdRequest *)req;
        struct users_act act = users_act_of(call, "erasure", in->user_id, NULL);
        enum ej_status st = users_need_role(call, "admin", err);

        (void)resp;
        if (st == EJ_OK)
                st = users_need_user_id(in->user_id, err);
        if (st != EJ_OK)
                return st;
        if (strcmp(in->user_id, call->user_id) == 0)
                return ej_err_set(err, EJ_ERR_CONFLICT, "user_id",
                                  "erase your own account from your profile, not as an admin");
        act.client_addr = NULL;
        st = store_user_erase(call->db, in->user_id, call->user_id, &act, err);
        if (st == EJ_OK)
                users_announce_user(call, in->user_id);
        return st;
}

enum ej_status users_list_activity(struct ej_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__ListActivityRequest *in = (const Ej__Users__ListActivityRequest *)req;
        Ej__Users__ListActivityResponse *out = (Ej__Users__ListActivityResponse *)resp;
        Ej__Common__PageInfo *page;
        enum ej_status st = users_need_role(call, "admin", err);

        if (st != EJ_OK)
                return st;
        if (strlen(in->kind) > 64)
                return ej_err_set(err, EJ_ERR_INVALID, "kind", "no such kind of activity");
        if (in->user_id[0] && !ej_uuid_valid(in->user_id))
                return ej_err_set(err, EJ_ERR_INVALID, "user_id", "not a user id");
        if (in->from_ms < 0 || in->from_ms > EJ_TIME_MS_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "from_ms",
                                  "fromMs must be a time in milliseconds since 1970, up to the "
                                  "year 9999 (0 for no lower bound)");
        if (in->to_ms < 0 || in->to_ms > EJ_TIME_MS_MAX)
                return ej_err_set(err, EJ_ERR_INVALID, "to_ms",
                                  "toMs must be a time in milliseconds since 1970, up to the "
                                  "year 9999 (0 for no upper bound)");
        if (in->to_ms > 0 && in->to_ms < in->from_ms)
                return ej_err_set(err, EJ_ERR_INVALID, "to_ms", "the time range is empty");
        page = ej_arena_alloc(call->arena, sizeof(*page));
        ej__common__page_info__init(page);
        st = store_activity_list(call->db, call->arena, in->kind, in->user_id, in->from_ms,
                                 in->to_ms, in->page && in->page->cursor ? in->page->cursor : "",
                                 page_limit(in->page), &out->entries, &out->n_entries,
                                 &page->next_cursor, err);
        out->page = page;
        return st;
}

/* ---- command line ----------------------------------------------------------------------- */

/* A call for the command line: no bus, no caller, no client address. */
static void cli_call(struct ej_call *call, struct users_ctx *ctx, struct ej_db *db,
                     struct ej_arena *a)
{
        memset(call, 0, sizeof(*call));
        call->arena = a;
        call->db = db;
        call->request_id = "cli";
        call->user_id = "";
        call->roles = "";
        call->client_addr = "";
        call->svc = ctx;
}

enum ej_status users_cli_create_user(struct users_ctx *ctx, struct ej_db *db, const char *email,
                                     const char *name, const char *roles, const char *password,
                                     bool update, char id_out[37], struct ej_err *err)
{
        struct ej_arena *a = ej_arena_create(0);
        struct ej_call call;
        struct users_profile_in p;
        struct users_account_plan plan;
        Ej__Users__User *user = NULL;
        char **role_list;
        size_t n_roles = 0;
        char *mail_addr = NULL;
        char *roles_copy;
        enum ej_status st;

        cli_call(&call, ctx, db, a);
        roles_copy = ej_arena_strdup(a, roles && roles[0] ? roles : USERS_DEFAULT_ROLE);
        /* Split on commas into the arena. */
        n_roles = 1;
        for (char *q = roles_copy; *q; q++)
                n_roles += *q == ',';
        role_list = ej_arena_alloc(a, n_roles * sizeof(*role_list));
        {
                char *save = NULL;
                size_t i = 0;

                for (char *r = strtok_r(roles_copy, ",", &save); r && i < n_roles;
                     r = strtok_r(NULL, ",", &save))
                        role_list[i++] = r;
                n_roles = i;
        }
        st = users_check_email(&call, email, "email", &mail_addr, err);
        if (st == EJ_OK)
                st = users_check_profile(&call, name, "", "", "", &p, err);
        if (st == EJ_OK)
                st = n_roles > 0 ? check_roles(role_list, n_roles, err)
                                 : ej_err_set(err, EJ_ERR_INVALID, "roles", "give a role");
        if (st == EJ_OK && password)
                st = users_check_password(password, "password", err);
        if (st != EJ_OK)
                goto out;
        st = store_user_by_email(db, a, mail_addr, &user, NULL, err);
        if (st == EJ_OK && !update) {
                st =
                    ej_err_set(err, EJ_ERR_CONFLICT, "email",
                               "an account with this e-mail address already exists (%s)", user->id);
                goto out;
        }
        if (st == EJ_OK) {
                struct users_act act = {"user_updated", NULL, user->id, NULL, NULL};

                for (size_t i = 0; i < n_roles && st == EJ_OK; i++)
                        st = store_role_grant(db, user->id, role_list[i], NULL, NULL, err);
                if (st == EJ_OK && password) {
                        char hash[crypto_pwhash_STRBYTES];
                        char *current = NULL;

                        /* The same password again (a demo restart) keeps the sessions. */
                        st = store_user_password_hash(db, a, user->id, &current, err);
                        if (st == EJ_OK && !users_password_verify(ctx, current, password)) {
                                st = users_password_hash(ctx, password, hash, err);
                                if (st == EJ_OK)
                                        st =
                                            store_password_set(db, user->id, hash, NULL, &act, err);
                                sodium_memzero(hash, sizeof(hash));
                        }
                        if (st == EJ_OK)
                                st = store_user_mark_verified(db, user->id, err);
                }
                if (st == EJ_OK && user->deactivated)
                        st = store_user_set_active(db, user->id, true, NULL, err);
                if (st == EJ_OK)
                        snprintf(id_out, 37, "%s", user->id);
                goto out;
        }
        if (st != EJ_ERR_NOT_FOUND)
                goto out;
        memset(&plan, 0, sizeof(plan));
        plan.p = &p;
        plan.email = mail_addr;
        plan.password = password;
        plan.roles = (const char *const *)role_list;
        plan.n_roles = n_roles;
        plan.verified = password != NULL;
        plan.act_kind = "user_created";
        plan.inviter = "the administrators";
        plan.role_label = role_list[0];
        st = users_account_create(&call, &plan, &user, err);
        if (st == EJ_OK)
                snprintf(id_out, 37, "%s", user->id);
out:
        ej_arena_destroy(a);
        return st;
}

enum ej_status users_cli_seed_bench(struct users_ctx *ctx, struct ej_db *db, long count,
                                    struct ej_err *err)
{
        char hash[crypto_pwhash_STRBYTES];
        enum ej_status st = users_password_hash(ctx, "bench-password", hash, err);

        if (st == EJ_OK)
                st = store_bench_seed(db, count, hash, err);
        return st;
}
