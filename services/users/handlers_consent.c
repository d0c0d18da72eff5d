/* handlers_consent.c: consent and GDPR: the consent text (read, accept, withdraw; an admin
 * publishes versions and reads the figures), the privacy policy, the export of everything held
 * about the caller (from every service in EJ_GDPR_SERVICES) and erasure of one's own account. */
#include "handlers_internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmark.h>
#include <jansson.h>

#include "bus.h"
#include "log.h"

/* Shown until an admin sets a privacy policy. */
static const char default_privacy[] =
    "# Privacy policy\n\n"
    "This journal keeps the account details you give it (name, e-mail address, affiliation, "
    "ORCID iD, biography), the record of your submissions and reviews, and a log of sign-ins "
    "and account changes with the network address they came from.\n\n"
    "You can download everything held about you from your profile, withdraw your consent, "
    "and ask for your account to be erased. Published articles keep their author list as "
    "published.\n";

static char *markdown_html(struct ej_arena *a, const char *md)
{
        char *html = cmark_markdown_to_html(md, strlen(md), CMARK_OPT_SAFE);
        char *out = ej_arena_strdup(a, html ? html : "");

        free(html);
        return out;
}

static enum ej_status check_markdown(const char *md, struct ej_err *err)
{
        struct ej_str v = users_trimmed(md);

        if (v.n == 0)
                return ej_err_set(err, EJ_ERR_INVALID, "markdown", "write the text first");
        if (strlen(md) > USERS_MARKDOWN_MAX || users_text_chars_ml(ej_str_c(md), true) < 0)
                return ej_err_set(err, EJ_ERR_INVALID, "markdown",
                                  "the text must be at most %d bytes of UTF-8 text",
                                  USERS_MARKDOWN_MAX);
        return EJ_OK;
}

/* ---- consent and privacy ---------------------------------------------------------------- */

enum ej_status users_get_consent(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        Ej__Users__ConsentVersion *out = (Ej__Users__ConsentVersion *)resp;
        enum ej_status st = store_consent_current(call->db, call->arena, out, err);

        (void)req;
        if (st == EJ_OK)
                out->html = markdown_html(call->arena, out->markdown);
        return st;
}

enum ej_status users_accept_consent(struct ej_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__AcceptConsentRequest *in = (const Ej__Users__AcceptConsentRequest *)req;
        char v[16];
        struct users_act act;
        enum ej_status st = users_need_user(call, err);

        (void)resp;
        if (st != EJ_OK)
                return st;
        if (in->version == 0)
                return ej_err_set(err, EJ_ERR_INVALID, "version",
                                  "say which version of the text you accept");
        snprintf(v, sizeof(v), "%u", in->version);
        act =
            users_act_of(call, "consent", call->user_id, users_details1(call->arena, "version", v));
        st = store_consent_record(call->db, call->user_id, in->version, call->client_addr, &act,
                                  err);
        if (st == EJ_OK)
                users_announce_user(call, call->user_id);
        return st;
}

enum ej_status users_withdraw_consent(struct ej_call *call, const ProtobufCMessage *req,
                                      ProtobufCMessage *resp, struct ej_err *err)
{
        struct users_act act = users_act_of(call, "consent_withdrawn", call->user_id, NULL);
        enum ej_status st = users_need_user(call, err);

        (void)req;
        (void)resp;
        if (st == EJ_OK)
                st = store_consent_record(call->db, call->user_id, 0, call->client_addr, &act, err);
        if (st == EJ_OK)
                users_announce_user(call, call->user_id);
        return st;
}

enum ej_status users_get_privacy(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        Ej__Users__PrivacyPolicy *out = (Ej__Users__PrivacyPolicy *)resp;
        char *md = NULL;
        enum ej_status st;

        (void)req;
        st = store_site_text_get(call->db, call->arena, "privacy_policy", &md, &out->updated_at_ms,
                                 err);
        if (st != EJ_OK)
                return st;
        out->markdown = md[0] ? md : (char *)(uintptr_t)default_privacy;
        out->html = markdown_html(call->arena, out->markdown);
        return EJ_OK;
}

/* ---- export and erasure ----------------------------------------------------------------- */

/* Asks service `svc` for its part of `user_id`'s export and adds it to `parts`. */
static enum ej_status export_part(struct ej_call *call, const char *svc, const char *user_id,
                                  json_t *parts, struct ej_err *err)
{
        struct users_ctx *ctx = call->svc;
        Ej__Common__GdprExportRequest rq = EJ__COMMON__GDPR_EXPORT_REQUEST__INIT;
        Ej__Common__GdprExportPart *part = NULL;
        char subject[96];
        json_error_t jerr;
        json_t *v;
        enum ej_status st;

        rq.user_id = (char *)(uintptr_t)user_id;
        snprintf(subject, sizeof(subject), "ej.%s.gdpr_export", svc);
        st = ej_bus_request(call->bus, subject, &rq.base, call->request_id,
                            &ej__common__gdpr_export_part__descriptor, call->arena,
                            (int)ctx->gdpr_timeout_ms, (ProtobufCMessage **)&part, err);
        if (st != EJ_OK) {
                ej_warn(call->request_id, "export: %s did not answer: %s", svc,
                        err ? err->msg : "");
                return ej_err_set(err, st == EJ_ERR_TIMEOUT ? EJ_ERR_TIMEOUT : EJ_ERR_UNAVAILABLE,
                                  NULL,
                                  "the %s service did not give its part of the export; nothing "
                                  "was exported, try again later",
                                  svc);
        }
        v = json_loads(part->json[0] ? part->json : "null", JSON_DECODE_ANY, &jerr);
        if (v == NULL)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL,
                                  "the %s service gave an export part that is not JSON", svc);
        json_object_set_new(parts, svc, v);
        return EJ_OK;
}

enum ej_status users_export_my_data(struct ej_call *call, const ProtobufCMessage *req,
                                    ProtobufCMessage *resp, struct ej_err *err)
{
        Ej__Users__ExportMyDataResponse *out = (Ej__Users__ExportMyDataResponse *)resp;
        struct users_ctx *ctx = call->svc;
        struct users_act act = users_act_of(call, "export", call->user_id, NULL);
        json_t *doc = NULL, *parts = NULL, *own = NULL;
        json_error_t jerr;
        char *own_json = NULL, *text;
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        enum ej_status st = users_need_user(call, err);

        (void)req;
        if (st != EJ_OK)
                return st;
        st = store_export_json(call->db, call->arena, call->user_id, &own_json, err);
        if (st != EJ_OK)
                return st;
        own = json_loads(own_json, 0, &jerr);
        if (own == NULL)
                return ej_err_set(err, EJ_ERR_INTERNAL, NULL, "the export could not be built");
        doc = json_object();
        parts = json_object();
        json_object_set_new(parts, "users", own);
        /* Every configured service must answer: a partial export is an error, not a file. */
        {
                char *list = ej_arena_strdup(call->arena, ctx->gdpr_services);
                char *save = NULL;

                for (char *s = strtok_r(list, ", ", &save); s && st == EJ_OK;
                     s = strtok_r(NULL, ", ", &save))
                        if (strcmp(s, "users") != 0)
                                st = export_part(call, s, call->user_id, parts, err);
        }
        if (st != EJ_OK)
                goto out;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(doc, "format", json_string("easyjournal-personal-data/1"));
        json_object_set_new(doc, "user_id", json_string(call->user_id));
        json_object_set_new(doc, "generated_at", json_string(stamp));
        json_object_set(doc, "services", parts);
        text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text == NULL) {
                st = ej_err_set(err, EJ_ERR_INTERNAL, NULL, "the export could not be written");
                goto out;
        }
        out->json = ej_arena_strdup(call->arena, text);
        free(text);
        strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
        out->filename =
            ej_arena_printf(call->arena, "easyjournal-export-%s-%s.json", call->user_id, stamp);
        st = store_activity_add(call->db, &act, err);
out:
        json_decref(parts);
        json_decref(doc);
        return st;
}

enum ej_status users_request_erasure(struct ej_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__RequestErasureRequest *in = (const Ej__Users__RequestErasureRequest *)req;
        struct users_ctx *ctx = call->svc;
        Ej__Users__User *me = NULL;
        struct users_act act = users_act_of(call, "erasure_requested", call->user_id, NULL);
        char *hash = NULL;
        bool allowed = false;
        enum ej_status st = users_need_user(call, err);

        (void)resp;
        if (st == EJ_OK)
                st = store_user_get(call->db, call->arena, call->user_id, &me, err);
        if (st == EJ_OK)
                st = store_user_password_hash(call->db, call->arena, call->user_id, &hash, err);
        if (st != EJ_OK)
                return st;
        if (me->has_password)
                st = users_check_own_password(call, me, hash, in->password, "password",
                                              "the password is wrong", err);
        if (st == EJ_OK)
                st = users_mail_allowed(call, me->email, me->id, "erasure_confirm", &allowed, err);
        if (st != EJ_OK || !allowed)
                return st;
        return users_issue_mailed_token(call, me, "erasure", ctx->erasure_ttl_s, "/confirm-erasure",
                                        "erasure_confirm", &act, err);
}

enum ej_status users_confirm_erasure(struct ej_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__TokenRequest *in = (const Ej__Users__TokenRequest *)req;

        (void)resp;
        return users_apply_token(call, in->token, "erasure", NULL, NULL, err);
}

/* ---- consent and privacy (admin) -------------------------------------------------------- */

enum ej_status users_publish_consent(struct ej_call *call, const ProtobufCMessage *req,
                                     ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__PublishConsentRequest *in = (const Ej__Users__PublishConsentRequest *)req;
        Ej__Users__ConsentVersion *out = (Ej__Users__ConsentVersion *)resp;
        struct users_act act =
            users_act_of(call, "consent_published", NULL,
                         users_details1(call->arena, "required", in->required ? "yes" : "no"));
        uint32_t version = 0;
        enum ej_status st = users_need_role(call, "admin", err);

        if (st == EJ_OK)
                st = check_markdown(in->markdown, err);
        if (st == EJ_OK)
                st = store_consent_publish(call->db, in->markdown, in->required, call->user_id,
                                           &act, &version, err);
        if (st == EJ_OK)
                st = store_consent_current(call->db, call->arena, out, err);
        if (st != EJ_OK)
                return st;
        out->html = markdown_html(call->arena, out->markdown);
        /* Everyone's consent state may have changed. */
        if (in->required)
                users_announce_user(call, "*");
        return EJ_OK;
}

enum ej_status users_consent_stats(struct ej_call *call, const ProtobufCMessage *req,
                                   ProtobufCMessage *resp, struct ej_err *err)
{
        enum ej_status st = users_need_role(call, "admin", err);

        (void)req;
        if (st != EJ_OK)
                return st;
        return store_consent_stats(call->db, (Ej__Users__ConsentStats *)resp, err);
}

enum ej_status users_set_privacy(struct ej_call *call, const ProtobufCMessage *req,
                                 ProtobufCMessage *resp, struct ej_err *err)
{
        const Ej__Users__SetPrivacyRequest *in = (const Ej__Users__SetPrivacyRequest *)req;
        struct users_act act = users_act_of(call, "privacy_updated", NULL, NULL);
        enum ej_status st = users_need_role(call, "admin", err);

        if (st == EJ_OK)
                st = check_markdown(in->markdown, err);
        if (st == EJ_OK)
                st = store_site_text_set(call->db, "privacy_policy", in->markdown, call->user_id,
                                         &act, err);
        if (st != EJ_OK)
                return st;
        return users_get_privacy(call, NULL, resp, err);
}
