/* handlers_invitations.c: invitations to a role. An editor or admin asks someone to take a
 * role; nothing is granted until that person accepts. An existing account gets a pending
 * invitation it answers after signing in; a new address gets an account without a password or
 * role, and choosing a password through the mailed link accepts (store_token_apply). The
 * inviter learns only the person's name and whether they hold the role already. */
#include "handlers_internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mail.h"

/* The mail fields of an invitation to `user` (name, e-mail) for `role`, by `inviter`, through
 * `link`, lasting `ttl_s`; `vars` has room for 13 entries. */
static void invitation_vars(struct ej_call *call, const Ej__Users__User *user, const char *role,
                            const char *inviter, const char *link, long ttl_s, const char **vars)
{
        vars[0] = "name";
        vars[1] = user->name;
        vars[2] = "link";
        vars[3] = link;
        vars[4] = "email";
        vars[5] = user->email;
        vars[6] = "inviter";
        vars[7] = inviter;
        vars[8] = "role";
        vars[9] = role;
        vars[10] = "expires";
        vars[11] = users_expires_in(call->arena, ttl_s);
        vars[12] = NULL;
}

/* Mails `user` (an account without a password) a fresh link that sets the password and accepts
 * the invitation `invitation_id`. */
static enum ej_status mail_link(struct ej_call *call, const Ej__Users__User *user, const char *role,
                                const char *invitation_id, struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        struct users_fresh_token tok;
        struct users_token t;
        struct users_mail mail;
        struct users_act act =
            users_act_of(call, "invited", user->id, users_details1(call->arena, "role", role));
        const char *vars[13];
        enum ej_status st;

        users_token_new(&tok);
        t.hash = tok.hash;
        t.purpose = "invitation";
        t.ttl_s = ctx->invite_ttl_s;
        t.data = invitation_id;
        invitation_vars(call, user, role, users_caller_name(call),
                        users_link_to(call, "/accept-invitation", tok.token), t.ttl_s, vars);
        mail.tpl = EJ_MAIL_TPL_INVITATION;
        mail.to = user->email;
        mail.vars = vars;
        st = store_token_issue(call->db, user->id, &t, &act, &mail, err);
        sodium_memzero(&tok, sizeof(tok));
        return st;
}

/* Asks the existing account `user` to take `role`: a pending invitation, and a mail (a notice
 * to sign in and answer; for an account without a password, the link that sets one). A
 * deactivated account gets the invitation but no mail. */
static enum ej_status invite_existing(struct ej_call *call, const Ej__Users__User *user,
                                      const char *role, bool *already_member, struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        struct users_invitation_new in = {user->id, role, call->user_id, ctx->invite_ttl_s};
        struct users_act act =
            users_act_of(call, "invited", user->id, users_details1(call->arena, "role", role));
        struct users_mail mail;
        const char *vars[13];
        bool notice = user->has_password && !user->deactivated;
        bool link = !user->has_password && !user->deactivated;
        char *id = NULL;
        enum ej_status st;

        invitation_vars(call, user, role, users_caller_name(call),
                        ej_arena_printf(call->arena, "%s/invitations", ctx->public_url), in.ttl_s,
                        vars);
        mail.tpl = EJ_MAIL_TPL_ROLE_INVITATION;
        mail.to = user->email;
        mail.vars = vars;
        /* When a link goes out, its mail carries the activity row (mail_link). */
        st = store_invitation_open(call->db, call->arena, &in, link ? NULL : &act,
                                   notice ? &mail : NULL, &id, already_member, err);
        if (st == EJ_OK && id != NULL && link)
                st = mail_link(call, user, role, id, err);
        return st;
}

enum ej_status users_invite_user(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__InviteUserRequest *in = (const Ej__Users__InviteUserRequest *)req;
        Ej__Users__InviteUserResponse *out = (Ej__Users__InviteUserResponse *)resp;
        struct users_ctx *ctx = call->svc;
        const char *role = in->role[0] ? in->role : "reviewer";
        struct users_profile_in p;
        struct users_account_plan plan;
        struct users_invitation_new inv;
        Ej__Users__User *user = NULL;
        char *email = NULL;
        char *id = NULL;
        bool already = false;
        enum ej_status st = users_need_user(call, err);

        if (st != EJ_OK)
                return st;
        if (!ej_call_has_role(call, "editor") && !ej_call_has_role(call, "admin"))
                return ej_err_set(err, EJ_ERR_FORBIDDEN, NULL, "this needs the editor role");
        if (!users_in_list(users_valid_roles, role))
                return ej_err_set(err, EJ_ERR_INVALID, "role",
                                  "the role is one of author, reviewer, editor, admin");
        if ((strcmp(role, "editor") == 0 || strcmp(role, "admin") == 0) &&
            !ej_call_has_role(call, "admin"))
                return ej_err_set(err, EJ_ERR_FORBIDDEN, "role",
                                  "only an admin may invite someone to the %s role", role);
        st = users_check_email(call, in->email, "email", &email, err);
        if (st == EJ_OK)
                st = users_check_profile(call, in->name, "", "", "", &p, err);
        if (st != EJ_OK)
                return st;
        out->email = email;
        st = store_user_by_email(call->db, call->arena, email, &user, NULL, err);
        if (st == EJ_OK) {
                st = invite_existing(call, user, role, &already, err);
                out->name = user->name;
                out->already_member = already;
                return st;
        }
        if (st != EJ_ERR_NOT_FOUND)
                return st;
        /* A new address: an account with no password and no role; the mailed link sets the
         * password and accepts the invitation opened next (store_invitations_accept_link). */
        memset(&plan, 0, sizeof(plan));
        plan.p = &p;
        plan.email = email;
        plan.roles = NULL;
        plan.n_roles = 0;
        plan.act_kind = "invited";
        plan.inviter = users_caller_name(call);
        plan.role_label = role;
        st = users_account_create(call, &plan, &user, err);
        if (st != EJ_OK)
                return st;
        inv.user_id = user->id;
        inv.role = role;
        inv.invited_by = call->user_id;
        inv.ttl_s = ctx->invite_ttl_s;
        st = store_invitation_open(call->db, call->arena, &inv, NULL, NULL, &id, &already, err);
        out->name = user->name;
        return st;
}

enum ej_status users_list_my_invitations(struct ej_call *call, const ProtobufCMessage *req,
                                         ProtobufCMessage *resp, struct ej_err *err)
{
        Ej__Users__ListMyInvitationsResponse *out = (Ej__Users__ListMyInvitationsResponse *)resp;
        enum ej_status st = users_need_user(call, err);

        (void)req;
        if (st != EJ_OK)
                return st;
        return store_invitations_mine(call->db, call->arena, call->user_id, &out->invitations,
                                      &out->n_invitations, err);
}

/* Accepts or declines the caller's invitation named in `req`. */
static enum ej_status answer(struct ej_call *call, const ProtobufCMessage *req,
                             ProtobufCMessage *resp, bool accept, struct ej_err *err)
{
        const Ej__Users__InvitationIdRequest *in = (const Ej__Users__InvitationIdRequest *)req;
        Ej__Users__Invitation *out = (Ej__Users__Invitation *)resp;
        Ej__Users__Invitation *got = NULL;
        struct users_act act;
        enum ej_status st = users_need_user(call, err);

        if (st != EJ_OK)
                return st;
        if (!ej_uuid_valid(in->invitation_id))
                return ej_err_set(err, EJ_ERR_INVALID, "invitation_id", "not an invitation id");
        act = users_act_of(call, accept ? "invitation_accepted" : "invitation_declined",
                           call->user_id, NULL);
        st = store_invitation_answer(call->db, call->arena, in->invitation_id, call->user_id,
                                     accept, &act, &got, err);
        if (st != EJ_OK)
                return st;
        /* The caller's roles changed: every gateway drops its cached sessions of them. */
        if (accept)
                users_announce_user(call, call->user_id);
        *out = *got;
        return EJ_OK;
}

enum ej_status users_accept_role_invitation(struct ej_call *call, const ProtobufCMessage *req,
                                            ProtobufCMessage *resp, struct ej_err *err)
{
        return answer(call, req, resp, true, err);
}

enum ej_status users_decline_role_invitation(struct ej_call *call, const ProtobufCMessage *req,
                                             ProtobufCMessage *resp, struct ej_err *err)
{
        return answer(call, req, resp, false, err);
}
