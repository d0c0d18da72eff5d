/* handlers_mail.c: the mail templates an admin reads and edits (kept by common/mail.c). */
#include "handlers_internal.h"

#include <stdint.h>

#include "mail.h"

/* ---- mail templates (admin) ------------------------------------------------------------- */

static Ej__Users__MailTemplate *mail_template_pb(struct ej_arena *a,
                                                 const struct ej_mail_template *t)
{
        Ej__Users__MailTemplate *m = ej_arena_alloc(a, sizeof(*m));

        ej__users__mail_template__init(m);
        m->key = (char *)(uintptr_t)t->key;
        m->subject = (char *)(uintptr_t)t->subject;
        m->body_text = (char *)(uintptr_t)t->body_text;
        m->updated_at = (char *)(uintptr_t)t->updated_at;
        m->updated_by = (char *)(uintptr_t)t->updated_by;
        return m;
}

enum ej_status users_list_mail_templates(struct ej_call *call, const ProtobufCMessage *req,
                                         ProtobufCMessage *resp, struct ej_err *err)
{
        Ej__Users__ListMailTemplatesResponse *out = (Ej__Users__ListMailTemplatesResponse *)resp;
        struct ej_mail_template *list = NULL;
        size_t n = 0;
        enum ej_status st = users_need_role(call, "admin", err);

        (void)req;
        if (st == EJ_OK)
                st = ej_mail_template_list(call->db, call->arena, &list, &n, err);
        if (st != EJ_OK)
                return st;
        out->n_templates = n;
        out->templates = n ? ej_arena_alloc(call->arena, n * sizeof(*out->templates)) : NULL;
        for (size_t i = 0; i < n; i++)
                out->templates[i] = mail_template_pb(call->arena, &list[i]);
        return EJ_OK;
}

enum ej_status users_update_mail_template(struct ej_call *call, const ProtobufCMessage *req,
                                          ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__UpdateMailTemplateRequest *in =
            (const Ej__Users__UpdateMailTemplateRequest *)req;
        Ej__Users__MailTemplate *out = (Ej__Users__MailTemplate *)resp;
        struct users_act act = users_act_of(call, "mail_template_updated", NULL,
                                            users_details1(call->arena, "key", in->key));
        struct ej_mail_template t;
        enum ej_status st = users_need_role(call, "admin", err);

        /* The edit and its activity row commit together. */
        if (st == EJ_OK)
                st = ej_db_begin(call->db, err);
        if (st == EJ_OK)
                st = ej_mail_template_update(call->db, in->key, in->subject, in->body_text,
                                             call->user_id, err);
        if (st == EJ_OK)
                st = store_activity_add(call->db, &act, err);
        if (st == EJ_OK)
                st = ej_db_commit(call->db, err);
        if (st != EJ_OK) {
                ej_db_rollback(call->db);
                return st;
        }
        st = ej_mail_template_get(call->db, call->arena, in->key, &t, err);
        if (st != EJ_OK)
                return st;
        *out = *mail_template_pb(call->arena, &t);
        return EJ_OK;
}
