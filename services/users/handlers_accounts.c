/* handlers_accounts.c: accounts and sessions: registration and e-mail verification, sign-in,
 * sign-out and session lookup, the caller's own profile, password and e-mail changes, and
 * accepting an invitation. Also the account and mailed-token flows other areas reuse
 * (handlers_internal.h). */
#include "handlers_internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "log.h"
#include "mail.h"

/* One message for both an unknown e-mail and a wrong password: which one it was is not ours to
 * tell. */
static const char bad_credentials[] = "the e-mail address or the password is wrong";

static const char *const valid_themes[] = {"dark",    "light",         "journal", "modern",
                                           "elegant", "high-contrast", NULL};

/* ---- registration and verification ------------------------------------------------------ */

enum ej_status users_account_create(struct ej_call *call, const struct users_account_plan *plan,
                                    Ej__Users__User **user_out, struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        char hash[crypto_pwhash_STRBYTES];
        char id[EJ_UUID_LEN];
        struct users_fresh_token tok;
        struct users_new nu;
        struct users_token t;
        struct users_act act;
        struct users_mail mail;
        Ej__Users__UserRegistered event = EJ__USERS__USER_REGISTERED__INIT;
        Ej__Users__User *user;
        const char *vars[14];
        int64_t created_at_ms = 0;
        bool need_token = !plan->no_mail && (plan->password == NULL || !plan->verified);
        enum ej_status st;

        if (plan->password) {
                /* Hashing takes tens of milliseconds: never inside a transaction. */
                st = users_password_hash(ctx, plan->password, hash, err);
                if (st != EJ_OK)
                        return st;
        } else {
                snprintf(hash, sizeof(hash), "%s", USERS_NO_PASSWORD);
        }
        ej_uuid(id);
        users_token_new(&tok);
        memset(&nu, 0, sizeof(nu));
        nu.id = id;
        nu.name = plan->p->name;
        nu.email = plan->email;
        nu.password_hash = hash;
        nu.affiliation = plan->p->affiliation;
        nu.orcid = plan->p->orcid;
        nu.bio = plan->p->bio;
        nu.verified = plan->verified;
        nu.roles = plan->roles;
        nu.n_roles = plan->n_roles;
        nu.granted_by = call->user_id[0] ? call->user_id : NULL;
        nu.consent_version = plan->consent_version;
        nu.client_addr = call->client_addr;
        t.hash = tok.hash;
        t.purpose = plan->password ? "verify_email" : "invitation";
        t.ttl_s = plan->password ? ctx->verify_ttl_s : ctx->invite_ttl_s;
        t.data = NULL;
        vars[0] = "name";
        vars[1] = users_mail_name(call->arena, plan->p->name);
        vars[2] = "email";
        vars[3] = plan->email;
        vars[4] = "link";
        vars[5] = users_link_to(call, plan->password ? "/verify" : "/accept-invitation", tok.token);
        vars[6] = "inviter";
        vars[7] = plan->inviter ? plan->inviter : "the editors";
        vars[8] = "role";
        vars[9] = plan->role_label ? plan->role_label : "author";
        vars[10] = "expires";
        vars[11] = users_expires_in(call->arena, t.ttl_s);
        vars[12] = NULL;
        mail.tpl = plan->password ? "verify_email" : "invitation";
        mail.to = plan->email;
        mail.vars = vars;
        act = users_act_of(call, plan->act_kind, id, NULL);
        if (act.actor_id[0] == '\0')
                act.actor_id = id;
        event.user_id = id;
        event.email = (char *)(uintptr_t)plan->email;
        event.name = plan->p->name;
        st = store_user_insert(call->db, &nu, need_token ? &t : NULL, &event, &act,
                               need_token ? &mail : NULL, &created_at_ms, err);
        sodium_memzero(hash, sizeof(hash));
        sodium_memzero(&tok, sizeof(tok));
        if (st != EJ_OK)
                return st;
        st = store_user_get(call->db, call->arena, id, &user, err);
        if (st == EJ_OK)
                *user_out = user;
        return st;
}

/* Registration with an address that already has an account: the owner gets a note (within
 * the mail quotas) instead of a second account, and the caller the same answer as for a new
 * address. */
static enum ej_status register_existing(struct ej_call *call, const Ej__Users__User *owner,
                                        struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        struct users_mail mail;
        const char *vars[9];
        bool allowed = false;
        enum ej_status st;

        ej_info(call->request_id, "registration with the address of user %s", owner->id);
        st = users_mail_allowed(call, owner->email, owner->id, "account_exists", &allowed, err);
        if (st != EJ_OK || !allowed)
                return st;
        vars[0] = "name";
        vars[1] = users_mail_name(call->arena, owner->name);
        vars[2] = "email";
        vars[3] = owner->email;
        vars[4] = "link";
        vars[5] = ej_arena_printf(call->arena, "%s/login", ctx->public_url);
        vars[6] = "reset_link";
        vars[7] = ej_arena_printf(call->arena, "%s/forgot-password", ctx->public_url);
        vars[8] = NULL;
        mail.tpl = EJ_MAIL_TPL_ACCOUNT_EXISTS;
        mail.to = owner->email;
        mail.vars = vars;
        return store_mail_queue(call->db, &mail, err);
}

enum ej_status users_register_account(struct ej_call *call, const ProtobufCMessage *req,
                                      ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__RegisterRequest *in = (const Ej__Users__RegisterRequest *)req;
        Ej__Users__RegisterResponse *out = (Ej__Users__RegisterResponse *)resp;
        Ej__Users__ConsentVersion cur = EJ__USERS__CONSENT_VERSION__INIT;
        static const char *const roles[] = {USERS_DEFAULT_ROLE};
        struct users_profile_in p;
        struct users_account_plan plan;
        Ej__Users__User *user = NULL;
        char *email;
        bool allowed = false;
        enum ej_status st;

        st = users_check_profile(call, in->name, in->affiliation, in->orcid, in->bio, &p, err);
        if (st == EJ_OK)
                st = users_check_email(call, in->email, "email", &email, err);
        if (st == EJ_OK)
                st = users_check_password(in->password, "password", err);
        if (st == EJ_OK)
                st = store_consent_current(call->db, call->arena, &cur, err);
        if (st != EJ_OK)
                return st;
        if (cur.version > 0 && !in->consent)
                return ej_err_set(err, EJ_ERR_INVALID, "consent",
                                  "accept the privacy notice to create an account");
        if (cur.version > 0 && in->consent_version != 0 && in->consent_version != cur.version)
                return ej_err_set(err, EJ_ERR_CONFLICT, "consent",
                                  "the privacy notice has changed; read it again and accept it");
        /* From here on the answer is the same whether or not the address has an account. */
        out->email = email;
        st = store_user_by_email(call->db, call->arena, email, &user, NULL, err);
        if (st == EJ_OK && !user->erased) {
                char hash[crypto_pwhash_STRBYTES];

                /* The work of a new account's hash, so the time taken tells nothing either. */
                st = users_password_hash(call->svc, in->password, hash, err);
                sodium_memzero(hash, sizeof(hash));
                return st == EJ_OK ? register_existing(call, user, err) : st;
        }
        if (st != EJ_OK && st != EJ_ERR_NOT_FOUND)
                return st;
        st = users_mail_allowed(call, email, NULL, "verify_email", &allowed, err);
        if (st != EJ_OK)
                return st;

        memset(&plan, 0, sizeof(plan));
        plan.p = &p;
        plan.email = email;
        plan.password = in->password;
        plan.roles = roles;
        plan.n_roles = 1;
        plan.consent_version = (int)cur.version;
        plan.act_kind = "register";
        plan.no_mail = !allowed;
        st = users_account_create(call, &plan, &user, err);
        if (st == EJ_OK) {
                ej_info(call->request_id, "registered user %s", user->id);
        } else if (st == EJ_ERR_CONFLICT) {
                /* Registered at the same moment by another request. */
                st = store_user_by_email(call->db, call->arena, email, &user, NULL, err);
                if (st == EJ_OK)
                        st = register_existing(call, user, err);
        }
        return st;
}

enum ej_status users_apply_token(struct ej_call *call, const char *token, const char *purpose,
                                 const char *password_hash, Ej__Users__User **user,
                                 struct ej_err *err)
{
        char hash[EJ_SHA256_HEX_LEN];
        char *user_id = NULL;
        enum ej_status st = users_token_hash_of(token, hash, err);

        if (st == EJ_OK)
                st = store_token_apply(call->db, call->arena, hash, purpose, password_hash,
                                       call->client_addr, &user_id, err);
        if (st != EJ_OK)
                return st;
        users_announce_user(call, user_id);
        if (user)
                st = store_user_get(call->db, call->arena, user_id, user, err);
        return st;
}

enum ej_status users_verify_email(struct ej_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__TokenRequest *in = (const Ej__Users__TokenRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        struct users_ctx *ctx = call->svc;
        struct users_mail mail;
        const char *vars[7];
        struct ej_err merr;
        enum ej_status st =
            users_apply_token(call, in->token, "verify_email", NULL, &out->user, err);

        if (st != EJ_OK)
                return st;
        /* The welcome mail is a courtesy: the verification stands without it. */
        vars[0] = "name";
        vars[1] = users_mail_name(call->arena, out->user->name);
        vars[2] = "link";
        vars[3] = ej_arena_printf(call->arena, "%s/login", ctx->public_url);
        vars[4] = "email";
        vars[5] = out->user->email;
        vars[6] = NULL;
        mail.tpl = "welcome";
        mail.to = out->user->email;
        mail.vars = vars;
        if (store_mail_queue(call->db, &mail, &merr) != EJ_OK)
                ej_warn(call->request_id, "welcome mail not queued: %s", merr.msg);
        return EJ_OK;
}

enum ej_status users_issue_mailed_token(struct ej_call *call, const Ej__Users__User *user,
                                        const char *purpose, long ttl_s, const char *path,
                                        const char *tpl, const struct users_act *act,
                                        struct ej_err *err)
{
        struct users_fresh_token tok;
        struct users_token t;
        struct users_mail mail;
        const char *vars[9];
        enum ej_status st;

        users_token_new(&tok);
        t.hash = tok.hash;
        t.purpose = purpose;
        t.ttl_s = ttl_s;
        t.data = NULL;
        vars[0] = "name";
        vars[1] = users_mail_name(call->arena, user->name);
        vars[2] = "link";
        vars[3] = users_link_to(call, path, tok.token);
        vars[4] = "email";
        vars[5] = user->email;
        vars[6] = "expires";
        vars[7] = users_expires_in(call->arena, ttl_s);
        vars[8] = NULL;
        mail.tpl = tpl;
        mail.to = user->email;
        mail.vars = vars;
        st = store_token_issue(call->db, user->id, &t, act, &mail, err);
        sodium_memzero(&tok, sizeof(tok));
        return st;
}

/* Mails a new verification link to `user` (unverified, active), within the mail quotas: over
 * them nothing is sent and the answer is the same. */
static enum ej_status send_verification(struct ej_call *call, const Ej__Users__User *user,
                                        struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        struct users_act act = users_act_of(call, "verification_sent", user->id, NULL);
        bool allowed = false;
        enum ej_status st =
            users_mail_allowed(call, user->email, user->id, "verify_email", &allowed, err);

        if (st != EJ_OK || !allowed)
                return st;
        return users_issue_mailed_token(call, user, "verify_email", ctx->verify_ttl_s, "/verify",
                                        "verify_email", &act, err);
}

enum ej_status users_resend_verification(struct ej_call *call, const ProtobufCMessage *req,
                                         ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__ResendVerificationRequest *in =
            (const Ej__Users__ResendVerificationRequest *)req;
        struct ej_str email = users_trimmed(in->email);
        Ej__Users__User *user = NULL;
        enum ej_status st;

        (void)resp;
        if (email.n == 0) {
                st = users_need_user(call, err);
                if (st == EJ_OK)
                        st = store_user_get(call->db, call->arena, call->user_id, &user, err);
                if (st != EJ_OK)
                        return st;
                if (user->verified)
                        return ej_err_set(err, EJ_ERR_CONFLICT, NULL,
                                          "this e-mail address is already confirmed");
                return send_verification(call, user, err);
        }
        /* By address: the answer is the same whether or not an account exists. */
        if (!users_email_shape_ok(email))
                return ej_err_set(err, EJ_ERR_INVALID, "email",
                                  "that does not look like an e-mail address");
        st = store_user_by_email(call->db, call->arena,
                                 ej_arena_strndup(call->arena, email.p, email.n), &user, NULL, err);
        if (st == EJ_ERR_NOT_FOUND)
                return EJ_OK;
        if (st != EJ_OK)
                return st;
        if (user->verified || user->deactivated || user->erased || !user->has_password)
                return EJ_OK;
        return send_verification(call, user, err);
}

/* ---- sessions --------------------------------------------------------------------------- */

enum ej_status users_login(struct ej_call *call, const ProtobufCMessage *req,
                           ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__LoginRequest *in = (const Ej__Users__LoginRequest *)req;
        Ej__Users__LoginResponse *out = (Ej__Users__LoginResponse *)resp;
        struct users_ctx *ctx = call->svc;
        struct ej_str email = users_trimmed(in->email);
        size_t pw_len = strlen(in->password);
        char token[USERS_TOKEN_BYTES * 2];
        char token_hash[EJ_SHA256_HEX_LEN];
        Ej__Users__User *user = NULL;
        struct users_act act;
        char *hash = NULL;
        char *key;
        int64_t expires_at_ms = 0;
        enum ej_status st;

        if (email.n == 0)
                return ej_err_set(err, EJ_ERR_INVALID, "email", "enter your e-mail address");
        if (pw_len == 0)
                return ej_err_set(err, EJ_ERR_INVALID, "password", "enter your password");
        if (pw_len > USERS_PASSWORD_MAX || email.n > USERS_EMAIL_MAX)
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "%s", bad_credentials);

        key = users_email_key(call->arena, email);
        st = users_login_gate(call, key, true, err);
        if (st != EJ_OK)
                return st;

        st = store_user_by_email(call->db, call->arena, key, &user, &hash, err);
        if (st != EJ_OK && st != EJ_ERR_NOT_FOUND)
                return st;
        if (st == EJ_ERR_NOT_FOUND || user->erased) {
                /* Spend the same work as a real check, so response time does not tell which
                 * e-mail addresses have accounts. */
                (void)users_password_verify(ctx, ctx->dummy_hash, in->password);
                act = users_act_of(call, "login_failed", NULL,
                                   users_details1(call->arena, "email", key));
                act.actor_id = NULL;
                st = users_login_failure(call, key, true, &act, err);
                if (st != EJ_OK)
                        return st;
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "%s", bad_credentials);
        }
        if (!users_password_verify(ctx, hash, in->password)) {
                act = users_act_of(call, "login_failed", user->id,
                                   users_details1(call->arena, "reason", "wrong password"));
                act.actor_id = NULL;
                st = users_login_failure(call, key, true, &act, err);
                if (st != EJ_OK)
                        return st;
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "%s", bad_credentials);
        }
        if (user->deactivated) {
                act = users_act_of(call, "login_failed", user->id,
                                   users_details1(call->arena, "reason", "deactivated"));
                act.actor_id = NULL;
                (void)store_activity_add(call->db, &act, NULL);
                return ej_err_set(err, EJ_ERR_FORBIDDEN, NULL,
                                  "this account is deactivated; ask the journal's administrators "
                                  "to reactivate it");
        }

        ej_random_token(token, sizeof(token), USERS_TOKEN_BYTES);
        ej_sha256_hex(token, strlen(token), token_hash);
        act = users_act_of(
            call, "login", user->id,
            users_details1(call->arena, "remember_me", in->remember_me ? "yes" : "no"));
        act.actor_id = user->id;
        st = store_login_ok(call->db, token_hash, user->id,
                            in->remember_me ? ctx->session_ttl_ms : ctx->short_session_ttl_ms, key,
                            &act, &expires_at_ms, err);
        if (st == EJ_OK) {
                out->user = user;
                out->session_token = ej_arena_strdup(call->arena, token);
                out->expires_at_ms = expires_at_ms;
                out->persistent = in->remember_me;
        }
        sodium_memzero(token, sizeof(token));
        return st;
}

enum ej_status users_logout(struct ej_call *call, const ProtobufCMessage *req,
                            ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__LogoutRequest *in = (const Ej__Users__LogoutRequest *)req;
        size_t n = strlen(in->session_token);
        char token_hash[EJ_SHA256_HEX_LEN];
        struct users_act act = users_act_of(call, "logout", NULL, NULL);
        struct ej_err perr;
        enum ej_status st;

        (void)resp;
        /* Signing out without a (plausible) session is already done. */
        if (n == 0 || n > USERS_TOKEN_MAX)
                return EJ_OK;
        ej_sha256_hex(in->session_token, n, token_hash);
        st = store_session_revoke(call->db, token_hash, &act, err);
        if (st != EJ_OK)
                return st;
        /* The database is the truth; the broadcast only shortens gateways' cache lifetimes. */
        if (ej_bus_publish(call->bus, USERS_BCAST_SESSION_REVOKED, token_hash, strlen(token_hash),
                           &perr) != EJ_OK)
                ej_warn(call->request_id, "session revoked but not announced: %s", perr.msg);
        return EJ_OK;
}

enum ej_status users_authenticate(struct ej_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__AuthenticateRequest *in = (const Ej__Users__AuthenticateRequest *)req;
        Ej__Users__Principal *out = (Ej__Users__Principal *)resp;
        size_t n = strlen(in->session_token);
        char token_hash[EJ_SHA256_HEX_LEN];
        enum ej_status st;

        if (n == 0 || n > USERS_TOKEN_MAX)
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL, "no valid session");
        ej_sha256_hex(in->session_token, n, token_hash);
        st = store_session_principal(call->db, call->arena, token_hash, out, err);
        if (st == EJ_ERR_NOT_FOUND)
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL,
                                  "the session is unknown, expired or signed out");
        return st;
}

/* ---- the caller's own account ----------------------------------------------------------- */

static enum ej_status fill_me(struct ej_call *call, Ej__Users__MeResponse *out, struct ej_err *err)
{
        bool required = false;
        uint32_t current = 0;
        enum ej_status st = store_user_get(call->db, call->arena, call->user_id, &out->user, err);

        if (st == EJ_ERR_NOT_FOUND)
                return ej_err_set(err, EJ_ERR_UNAUTHENTICATED, NULL,
                                  "the signed-in account no longer exists");
        if (st == EJ_OK)
                st = store_user_consent_state(call->db, call->user_id, &required, &current, err);
        out->consent_required = required;
        out->current_consent_version = current;
        return st;
}

enum ej_status users_me(struct ej_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                        struct ej_err *err)
{
        enum ej_status st = users_need_user(call, err);

        (void)req;
        if (st != EJ_OK)
                return st;
        return fill_me(call, (Ej__Users__MeResponse *)resp, err);
}

enum ej_status users_update_profile(struct ej_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__UpdateProfileRequest *in = (const Ej__Users__UpdateProfileRequest *)req;
        struct users_profile_in p;
        struct users_act act = users_act_of(call, "profile_updated", call->user_id, NULL);
        enum ej_status st = users_need_user(call, err);

        if (st == EJ_OK)
                st = users_check_profile(call, in->name, in->affiliation, in->orcid, in->bio, &p,
                                         err);
        if (st == EJ_OK && in->theme[0] && !users_in_list(valid_themes, in->theme))
                st = ej_err_set(err, EJ_ERR_INVALID, "theme",
                                "the theme is one of dark, light, journal, modern, elegant, "
                                "high-contrast");
        if (st == EJ_OK)
                st = store_profile_update(call->db, call->user_id, p.name, p.affiliation, p.orcid,
                                          p.bio, in->theme, &act, err);
        if (st != EJ_OK)
                return st;
        users_announce_user(call, call->user_id);
        return fill_me(call, (Ej__Users__MeResponse *)resp, err);
}

enum ej_status users_change_password(struct ej_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__ChangePasswordRequest *in = (const Ej__Users__ChangePasswordRequest *)req;
        struct users_ctx *ctx = call->svc;
        char hash[crypto_pwhash_STRBYTES];
        char keep[EJ_SHA256_HEX_LEN];
        size_t tn = strlen(in->session_token);
        struct users_act act = users_act_of(call, "password_changed", call->user_id, NULL);
        Ej__Users__User *me = NULL;
        char *current = NULL;
        enum ej_status st = users_need_user(call, err);

        (void)resp;
        if (st != EJ_OK)
                return st;
        if (in->current_password[0] == '\0')
                return ej_err_set(err, EJ_ERR_INVALID, "current_password",
                                  "enter your current password");
        st = users_check_password(in->new_password, "new_password", err);
        if (st == EJ_OK)
                st = store_user_get(call->db, call->arena, call->user_id, &me, err);
        if (st == EJ_OK)
                st = store_user_password_hash(call->db, call->arena, call->user_id, &current, err);
        if (st == EJ_OK)
                st = users_check_own_password(call, me, current, in->current_password,
                                              "current_password", "the current password is wrong",
                                              err);
        if (st != EJ_OK)
                return st;
        st = users_password_hash(ctx, in->new_password, hash, err);
        if (st != EJ_OK)
                return st;
        if (tn > 0 && tn <= USERS_TOKEN_MAX)
                ej_sha256_hex(in->session_token, tn, keep);
        st = store_password_set(call->db, call->user_id, hash,
                                tn > 0 && tn <= USERS_TOKEN_MAX ? keep : NULL, &act, err);
        sodium_memzero(hash, sizeof(hash));
        if (st == EJ_OK)
                users_announce_user(call, call->user_id);
        return st;
}

enum ej_status users_request_password_reset(struct ej_call *call, const ProtobufCMessage *req,
                                            ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__PasswordResetRequest *in = (const Ej__Users__PasswordResetRequest *)req;
        struct users_ctx *ctx = call->svc;
        struct ej_str email = users_trimmed(in->email);
        Ej__Users__User *user = NULL;
        struct users_act act;
        bool allowed = false;
        enum ej_status st;

        (void)resp;
        if (!users_email_shape_ok(email))
                return ej_err_set(err, EJ_ERR_INVALID, "email",
                                  "that does not look like an e-mail address");
        st = store_user_by_email(call->db, call->arena,
                                 ej_arena_strndup(call->arena, email.p, email.n), &user, NULL, err);
        /* The same answer whether or not the account exists: no enumeration. */
        if (st == EJ_ERR_NOT_FOUND)
                return EJ_OK;
        if (st != EJ_OK)
                return st;
        if (user->deactivated || user->erased)
                return EJ_OK;
        st = users_mail_allowed(call, user->email, user->id, "password_reset", &allowed, err);
        if (st != EJ_OK || !allowed)
                return st;
        act = users_act_of(call, "password_reset_requested", user->id, NULL);
        act.actor_id = NULL;
        return users_issue_mailed_token(call, user, "password_reset", ctx->reset_ttl_s,
                                        "/reset-password", "password_reset", &act, err);
}

enum ej_status users_reset_password(struct ej_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__ResetPasswordRequest *in = (const Ej__Users__ResetPasswordRequest *)req;
        char hash[crypto_pwhash_STRBYTES];
        char th[EJ_SHA256_HEX_LEN];
        enum ej_status st;

        (void)resp;
        st = users_token_hash_of(in->token, th, err);
        if (st == EJ_OK)
                st = users_check_password(in->new_password, "new_password", err);
        if (st == EJ_OK)
                st = users_password_hash(call->svc, in->new_password, hash, err);
        if (st != EJ_OK)
                return st;
        st = users_apply_token(call, in->token, "password_reset", hash, NULL, err);
        sodium_memzero(hash, sizeof(hash));
        return st;
}

enum ej_status users_change_email(struct ej_call *call, const ProtobufCMessage *req,
                                  ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__ChangeEmailRequest *in = (const Ej__Users__ChangeEmailRequest *)req;
        struct users_ctx *ctx = call->svc;
        Ej__Users__User *me = NULL, *other = NULL;
        struct users_fresh_token tok;
        struct users_token t;
        struct users_mail mail;
        struct users_act act;
        const char *vars[11];
        char *email = NULL, *hash = NULL;
        bool allowed = false, taken = false;
        enum ej_status st = users_need_user(call, err);

        (void)resp;
        if (st == EJ_OK)
                st = users_check_email(call, in->new_email, "new_email", &email, err);
        if (st == EJ_OK)
                st = store_user_get(call->db, call->arena, call->user_id, &me, err);
        if (st == EJ_OK)
                st = store_user_password_hash(call->db, call->arena, call->user_id, &hash, err);
        if (st == EJ_OK)
                st = users_check_own_password(call, me, hash, in->password, "password",
                                              "the password is wrong", err);
        if (st != EJ_OK)
                return st;
        st = store_user_by_email(call->db, call->arena, email, &other, NULL, err);
        if (st == EJ_OK && strcmp(other->id, me->id) == 0)
                return ej_err_set(err, EJ_ERR_CONFLICT, "new_email",
                                  "this is already your e-mail address");
        if (st != EJ_OK && st != EJ_ERR_NOT_FOUND)
                return st;
        /* An address another account holds is answered, counted and recorded as a free one
         * (the pending address shows in /api/me either way), but nothing is mailed to it: its
         * holder must not get a link that would move it to this account, and the caller must
         * not learn that it is taken. Confirming it could only fail. */
        taken = st == EJ_OK;
        st = users_mail_allowed(call, email, me->id, "email_change", &allowed, err);
        if (st != EJ_OK || !allowed)
                return st;
        users_token_new(&tok);
        t.hash = tok.hash;
        t.purpose = "email_change";
        t.ttl_s = ctx->email_change_ttl_s;
        t.data = email;
        vars[0] = "name";
        vars[1] = users_mail_name(call->arena, me->name);
        vars[2] = "link";
        vars[3] = users_link_to(call, "/confirm-email", tok.token);
        vars[4] = "email";
        vars[5] = email;
        vars[6] = "new_email";
        vars[7] = email;
        vars[8] = "expires";
        vars[9] = users_expires_in(call->arena, t.ttl_s);
        vars[10] = NULL;
        mail.tpl = "email_change";
        mail.to = email;
        mail.vars = vars;
        act = users_act_of(call, "email_change_requested", me->id,
                           users_details1(call->arena, "to", email));
        st = store_token_issue(call->db, me->id, &t, &act, taken ? NULL : &mail, err);
        sodium_memzero(&tok, sizeof(tok));
        return st;
}

enum ej_status users_confirm_email_change(struct ej_call *call, const ProtobufCMessage *req,
                                          ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__TokenRequest *in = (const Ej__Users__TokenRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;

        return users_apply_token(call, in->token, "email_change", NULL, &out->user, err);
}

/* ---- invitations ------------------------------------------------------------------------ */

enum ej_status users_accept_invitation(struct ej_call *call, const ProtobufCMessage *req,
                                       ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__AcceptInvitationRequest *in =
            (const Ej__Users__AcceptInvitationRequest *)req;
        Ej__Users__UserResponse *out = (Ej__Users__UserResponse *)resp;
        char hash[crypto_pwhash_STRBYTES];
        char th[EJ_SHA256_HEX_LEN];
        enum ej_status st;

        st = users_token_hash_of(in->token, th, err);
        if (st == EJ_OK)
                st = users_check_password(in->password, "password", err);
        if (st == EJ_OK)
                st = users_password_hash(call->svc, in->password, hash, err);
        if (st != EJ_OK)
                return st;
        st = users_apply_token(call, in->token, "invitation", hash, &out->user, err);
        sodium_memzero(hash, sizeof(hash));
        return st;
}
