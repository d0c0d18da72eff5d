/*
 * Unit tests of services/common/mail.c: template rendering, message building (included .c, so
 * the statics are reachable), the transactional mail outbox against a real PostgreSQL, and the
 * sender delivering to tools/smtp-catcher (a child process, found next to this binary at
 * <dir>/../bin/smtp-catcher) read back over NATS: delivery, a mail server that is down at first,
 * permanent rejections, and two senders sharing one outbox without sending anything twice.
 *
 * EJ_TEST_DB_URL: libpq connection string of a scratch database. EJ_TEST_NATS_URL: a
 * nats-server. tests/run-all.sh sets both. Each run uses its own schema (pid).
 */
#include <arpa/inet.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../services/common/mail.c"
#include "bus.h"
#include "check.h"
#include "common.pb-c.h"
#include "devmail.pb-c.h"

static const char *db_url;
static const char *nats_url;
static char schema[64];
static char catcher_bin[1024];
static struct ej_bus *bus;
static char subj_prefix[64]; /* our catcher's subjects: a shared NATS may have another one */

static void sleep_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
}

/* ---- rendering and building (no database) ---- */

static void test_render(void)
{
        struct ej_buf b = EJ_BUF_INIT;
        struct ej_err err;
        const char *vars[] = {"name", "Ada", "link", "https://x.test/v?t=1&u=2", NULL};
        const char *bad[] = {"name", "Ada\r\nBcc: eve@evil.test", NULL};

        setenv("EJ_SITE_NAME", "Test Journal", 1);
        CHECK(ej_mail_render("Hi {{name}}, see {{ link }} at {{site_name}}.", vars, false, &b,
                             &err) == EJ_OK);
        CHECK(b.p != NULL &&
              strcmp(b.p, "Hi Ada, see https://x.test/v?t=1&u=2 at Test Journal.") == 0);
        ej_buf_reset(&b);
        /* The caller's site_name wins over the setting. */
        {
                const char *own[] = {"site_name", "Other", NULL};

                CHECK(ej_mail_render("{{site_name}}", own, false, &b, &err) == EJ_OK);
                CHECK(strcmp(b.p, "Other") == 0);
                ej_buf_reset(&b);
        }
        CHECK(ej_mail_render("no placeholders", NULL, false, &b, &err) == EJ_OK);
        CHECK(strcmp(b.p, "no placeholders") == 0);
        ej_buf_reset(&b);
        CHECK(ej_mail_render("Hi {{nobody}}", vars, false, &b, &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "{{nobody}}") != NULL);
        ej_buf_reset(&b);
        CHECK(ej_mail_render("Hi {{name", vars, false, &b, &err) == EJ_ERR_INVALID);
        ej_buf_reset(&b);
        CHECK(ej_mail_render("Hi {{Na-me}}", vars, false, &b, &err) == EJ_ERR_INVALID);
        ej_buf_reset(&b);
        /* Line breaks in a value: fine in a body, refused in a header. */
        CHECK(ej_mail_render("Hi {{name}}", bad, false, &b, &err) == EJ_OK);
        ej_buf_reset(&b);
        CHECK(ej_mail_render("Hi {{name}}", bad, true, &b, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "name") == 0);
        ej_buf_free(&b);

        CHECK(mail_check_template("ok {{a_1}} {{ b }}", "subject", NULL, &err) == EJ_OK);
        CHECK(mail_check_template("bad {{a b}}", "subject", NULL, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "subject") == 0);
        /* A default template takes only the placeholders its senders fill in. */
        CHECK(mail_check_template("{{inviter}} {{role}} {{site_name}}", "body_text",
                                  mail_default_of("invitation"), &err) == EJ_OK);
        CHECK(mail_check_template("{{inviter}}", "body_text", mail_default_of("password_reset"),
                                  &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "{{inviter}}") != NULL);

        CHECK(mail_addr_ok("ada@example.org"));
        CHECK(!mail_addr_ok("ada@"));
        CHECK(!mail_addr_ok("@example.org"));
        CHECK(!mail_addr_ok("a b@example.org"));
        CHECK(!mail_addr_ok("a@b@example.org"));
        CHECK(!mail_addr_ok("Ada <ada@example.org>"));
}

static void test_build(void)
{
        struct ej_buf m = EJ_BUF_INIT;
        struct ej_buf q = EJ_BUF_INIT;
        char long_line[200];

        mail_build(&m, "EasyJournal <no-reply@journal.test>", "0000-id", "ada@example.org", "Hello",
                   "line one\nline two\n");
        CHECK(strstr(m.p, "From: EasyJournal <no-reply@journal.test>\r\n") == m.p);
        CHECK(strstr(m.p, "\r\nTo: ada@example.org\r\n") != NULL);
        CHECK(strstr(m.p, "\r\nSubject: Hello\r\n") != NULL);
        CHECK(strstr(m.p, "\r\nDate: ") != NULL && strstr(m.p, " +0000\r\n") != NULL);
        CHECK(strstr(m.p, "\r\nMessage-ID: <0000-id@journal.test>\r\n") != NULL);
        CHECK(strstr(m.p, "\r\nMIME-Version: 1.0\r\n") != NULL);
        CHECK(strstr(m.p, "Content-Type: text/plain; charset=utf-8\r\n") != NULL);
        CHECK(strstr(m.p, "Content-Transfer-Encoding: 7bit\r\n\r\nline one\r\nline two\r\n") !=
              NULL);
        /* No bare LF anywhere. */
        for (size_t i = 0; i < m.n; i++)
                if (m.p[i] == '\n' && (i == 0 || m.p[i - 1] != '\r')) {
                        CHECK(!"bare LF in message");
                        break;
                }
        ej_buf_reset(&m);

        /* Non-ASCII subject and body: RFC 2047 words and quoted-printable. */
        mail_build(&m, "Revue Élan <no-reply@journal.test>", "id2", "zoe@example.org",
                   "Bienvenue, Zoë", "Bonjour Zoë,\nx=y \n");
        CHECK(strstr(m.p, "Subject: =?UTF-8?B?QmllbnZlbnVlLCBab8Orw==?=\r\n") != NULL ||
              strstr(m.p, "Subject: =?UTF-8?B?") != NULL);
        CHECK(strstr(m.p, "From: =?UTF-8?B?") != NULL &&
              strstr(m.p, " <no-reply@journal.test>\r\n") != NULL);
        CHECK(strstr(m.p, "Content-Transfer-Encoding: quoted-printable\r\n") != NULL);
        CHECK(strstr(m.p, "\r\n\r\nBonjour Zo=C3=AB,\r\nx=3Dy=20\r\n") != NULL);
        ej_buf_reset(&m);

        /* Long lines get soft breaks of at most 76 characters. */
        memset(long_line, 'a', sizeof(long_line) - 1);
        long_line[sizeof(long_line) - 1] = '\0';
        long_line[10] = (char)0xC3;
        long_line[11] = (char)0xA9;
        mail_body_qp(&q, long_line);
        {
                size_t col = 0;
                bool ok = true;

                for (size_t i = 0; i < q.n; i++) {
                        if (q.p[i] == '\n') {
                                col = 0;
                                continue;
                        }
                        if (q.p[i] != '\r' && ++col > 76)
                                ok = false;
                }
                CHECK(ok);
                CHECK(strstr(q.p, "=\r\n") != NULL);
        }
        ej_buf_free(&q);

        /* Encoded words stay within 75 characters and split between characters. */
        {
                char subj[1000] = "";

                for (int i = 0; i < 60; i++)
                        strcat(subj, "é");
                mail_header_text(&m, subj);
                CHECK(strstr(m.p, "=?UTF-8?B?") == m.p);
                CHECK(strstr(m.p, "\r\n =?UTF-8?B?") != NULL);
                for (const char *w = m.p; w != NULL;) {
                        const char *e = strstr(w, "?=");

                        CHECK(e != NULL && e - w + 2 <= 75);
                        w = strstr(e, "=?UTF-8?B?");
                }
                ej_buf_reset(&m);
                /* A long ASCII value is folded the same way. */
                memset(subj, 'x', 950);
                subj[950] = '\0';
                mail_header_text(&m, subj);
                CHECK(strstr(m.p, "=?UTF-8?B?") == m.p && strstr(m.p, "\r\n ") != NULL);
        }
        ej_buf_free(&m);
}

/* ---- the outbox (database) ---- */

static long long count_rows(struct ej_db *db, const char *where_sql)
{
        PGresult *res = NULL;
        long long n = -1;

        if (ej_db_exec(db, where_sql, 0, NULL, &res, NULL) == EJ_OK)
                n = ej_db_int64(res, 0, 0);
        PQclear(res);
        return n;
}

static const char sql_count_all[] = "SELECT count(*) FROM mail_outbox";
static const char sql_count_sent[] = "SELECT count(*) FROM mail_outbox WHERE sent_at IS NOT NULL";
static const char sql_last[] =
    "SELECT to_addr, subject, body FROM mail_outbox ORDER BY created_at DESC LIMIT 1";

static void test_templates(struct ej_db *db)
{
        struct ej_err err;
        struct ej_arena *a = ej_arena_create(0);
        struct ej_mail_template t, *list = NULL;
        size_t n = 0;

        CHECK(ej_mail_seed_defaults(db, &err) == EJ_OK);
        CHECK(ej_mail_seed_defaults(db, &err) == EJ_OK); /* idempotent */
        CHECK(ej_mail_template_list(db, a, &list, &n, &err) == EJ_OK);
        CHECK(n == 8);
        CHECK(n == 8 && strcmp(list[0].key, "account_exists") == 0 &&
              strcmp(list[1].key, "email_change") == 0 &&
              strcmp(list[5].key, "role_invitation") == 0 && strcmp(list[7].key, "welcome") == 0);
        /* Every default renders with the documented variables. */
        for (size_t i = 0; i < n; i++) {
                const char *vars[] = {
                    "name",     "Ada",        "link",       "https://x.test/l", "expires",
                    "in 1 day", "role",       "reviewer",   "inviter",          "Grace",
                    "email",    "ada@x.test", "reset_link", "https://x.test/r", NULL};
                struct ej_buf b = EJ_BUF_INIT;

                CHECK(ej_mail_render(list[i].subject, vars, true, &b, &err) == EJ_OK);
                CHECK(ej_mail_render(list[i].body_text, vars, false, &b, &err) == EJ_OK);
                ej_buf_free(&b);
        }

        CHECK(ej_mail_template_get(db, a, "welcome", &t, &err) == EJ_OK);
        CHECK(strcmp(t.key, "welcome") == 0 && strstr(t.body_text, "{{name}}") != NULL);
        CHECK(strcmp(t.updated_by, "") == 0 && strlen(t.updated_at) == 20);
        CHECK(ej_mail_template_get(db, a, "nope", &t, &err) == EJ_ERR_NOT_FOUND);

        CHECK(ej_mail_template_update(db, "welcome", "Hi {{name}}", "Welcome {{name}}!\n",
                                      "admin-1", &err) == EJ_OK);
        CHECK(ej_mail_seed_defaults(db, &err) == EJ_OK); /* does not undo the edit */
        CHECK(ej_mail_template_get(db, a, "welcome", &t, &err) == EJ_OK);
        CHECK(strcmp(t.subject, "Hi {{name}}") == 0 && strcmp(t.updated_by, "admin-1") == 0);
        CHECK(ej_mail_template_update(db, "nope", "s", "b", "admin-1", &err) == EJ_ERR_NOT_FOUND);
        CHECK(ej_mail_template_update(db, "welcome", "", "b", "a", &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "subject") == 0);
        CHECK(ej_mail_template_update(db, "welcome", "a\r\nBcc: x@y", "b", "a", &err) ==
              EJ_ERR_INVALID);
        CHECK(ej_mail_template_update(db, "welcome", "ok", "bad {{x y}}", "a", &err) ==
              EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "body_text") == 0);
        CHECK(ej_mail_template_update(db, "welcome", "ok", "", "a", &err) == EJ_ERR_INVALID);
        CHECK(ej_mail_template_update(db, "welcome", "ok", "Hi {{expires}}", "a", &err) ==
              EJ_ERR_INVALID);
        ej_arena_destroy(a);
}

static void test_enqueue(struct ej_db *db)
{
        struct ej_err err;
        PGresult *res = NULL;
        const char *vars[] = {"name", "Ada", NULL};
        const char *inject[] = {"name", "Ada\nBcc: eve@evil.test", NULL};
        long long before = count_rows(db, sql_count_all);

        /* Rolled back: the mail never existed. */
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_mail_enqueue(db, "welcome", "ada@example.org", vars, &err) == EJ_OK);
        ej_db_rollback(db);
        CHECK(count_rows(db, sql_count_all) == before);

        /* Committed: one row, rendered. */
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_mail_enqueue(db, "welcome", "ada@example.org", vars, &err) == EJ_OK);
        CHECK(ej_db_commit(db, &err) == EJ_OK);
        CHECK(count_rows(db, sql_count_all) == before + 1);
        CHECK(ej_db_exec(db, sql_last, 0, NULL, &res, &err) == EJ_OK);
        CHECK(strcmp(ej_db_val(res, 0, 0), "ada@example.org") == 0);
        CHECK(strcmp(ej_db_val(res, 0, 1), "Hi Ada") == 0);
        CHECK(strcmp(ej_db_val(res, 0, 2), "Welcome Ada!\n") == 0);
        PQclear(res);

        /* Refusals write nothing. */
        CHECK(ej_mail_enqueue(db, "welcome", "ada@example.org\r\nBcc: eve@evil.test", vars, &err) ==
              EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "email") == 0);
        CHECK(ej_mail_enqueue(db, "welcome", "not-an-address", vars, &err) == EJ_ERR_INVALID);
        CHECK(ej_mail_enqueue(db, "welcome", "ada@example.org", inject, &err) == EJ_ERR_INVALID);
        CHECK(strcmp(err.field, "name") == 0);
        CHECK(ej_mail_enqueue(db, "welcome", "ada@example.org", NULL, &err) == EJ_ERR_INVALID);
        CHECK(strstr(err.msg, "{{name}}") != NULL);
        CHECK(ej_mail_enqueue(db, "no_such_template", "ada@example.org", vars, &err) ==
              EJ_ERR_NOT_FOUND);
        CHECK(count_rows(db, sql_count_all) == before + 1);
        /* The queued mail is not for the sender tests: mark it sent. */
        CHECK(ej_db_exec_simple(db, "UPDATE mail_outbox SET sent_at = now()", &err) == EJ_OK);
}

/* ---- the sender against the catcher ---- */

static pid_t catcher_start(int port)
{
        char addr[64];
        pid_t pid;
        int out[2];
        FILE *f;
        char line[256] = "";

        (void)snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        if (pipe(out) != 0)
                return -1;
        pid = fork();
        if (pid == 0) {
                dup2(out[1], 1);
                close(out[0]);
                close(out[1]);
                setenv("EJ_CATCHER_SMTP_ADDR", addr, 1);
                setenv("EJ_NATS_URL", nats_url, 1);
                setenv("EJ_CATCHER_SUBJECTS", subj_prefix, 1);
                setenv("EJ_LOG_LEVEL", "warn", 1);
                unsetenv("EJ_CATCHER_DIR");
                execl(catcher_bin, catcher_bin, (char *)NULL);
                _exit(127);
        }
        close(out[1]);
        f = fdopen(out[0], "r");
        if (f == NULL || fgets(line, sizeof(line), f) == NULL ||
            strstr(line, "listening") == NULL) {
                fprintf(stderr, "test_mail: %s did not start\n", catcher_bin);
                if (f != NULL)
                        fclose(f);
                kill(pid, SIGTERM);
                waitpid(pid, NULL, 0);
                return -1;
        }
        fclose(f);
        return pid;
}

static void catcher_stop(pid_t pid)
{
        if (pid > 0) {
                kill(pid, SIGTERM);
                waitpid(pid, NULL, 0);
        }
}

static int free_port(void)
{
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int port = -1;

        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
                port = ntohs(sa.sin_port);
        if (fd >= 0)
                close(fd);
        return port;
}

/* Lists caught mails (to = "" for all) into `a`. */
static Ej__Devmail__DevmailListResponse *caught(struct ej_arena *a, const char *to, unsigned limit)
{
        Ej__Devmail__DevmailListRequest req = EJ__DEVMAIL__DEVMAIL_LIST_REQUEST__INIT;
        ProtobufCMessage *resp = NULL;
        struct ej_err err;
        char subject[96];

        (void)snprintf(subject, sizeof(subject), "%s.list", subj_prefix);
        req.to = (char *)(uintptr_t)to;
        req.limit = limit;
        if (ej_bus_request(bus, subject, &req.base, NULL,
                           &ej__devmail__devmail_list_response__descriptor, a, 3000, &resp,
                           &err) != EJ_OK) {
                fprintf(stderr, "test_mail: ej.devmail.list: %s\n", err.msg);
                return NULL;
        }
        return (Ej__Devmail__DevmailListResponse *)resp;
}

static bool wait_count(struct ej_db *db, const char *sql, long long want, long ms)
{
        for (long waited = 0; waited <= ms; waited += 100) {
                if (count_rows(db, sql) == want)
                        return true;
                sleep_ms(100);
        }
        return false;
}

static const char sql_count_tried[] =
    "SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL AND attempts > 0 AND last_error <> ''";
static const char sql_count_failed[] =
    "SELECT count(*) FROM mail_outbox WHERE failed_at IS NOT NULL AND attempts = 2";

static void test_sender(struct ej_db *db)
{
        struct ej_mailer_config cfg;
        struct ej_mailer *m1 = NULL, *m2 = NULL;
        struct ej_err err;
        struct ej_arena *a = ej_arena_create(0);
        Ej__Devmail__DevmailListResponse *got;
        char url[64];
        pid_t catcher = -1;
        int port = free_port();
        long long sent0 = count_rows(db, sql_count_sent);
        const char *vars[] = {"name",    "Zoë",         "link", "https://journal.test/verify?t=a=b",
                              "expires", "in 24 hours", NULL};

        (void)snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", port);
        memset(&cfg, 0, sizeof(cfg));
        cfg.conninfo = db_url;
        cfg.schema = schema;
        cfg.smtp.url = url;
        cfg.smtp.timeout_ms = 3000;
        cfg.from = "EasyJournal <no-reply@journal.test>";
        cfg.poll_ms = 300;
        cfg.backoff_min_s = 1;
        cfg.backoff_max_s = 1;
        cfg.max_permanent = 2;
        CHECK(ej_mailer_start(&m1, &cfg, &err) == EJ_OK);

        /* The mail server is down: the request side does not care, the mail waits. */
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_mail_enqueue(db, "verify_email", "zoe@example.org", vars, &err) == EJ_OK);
        CHECK(ej_db_commit(db, &err) == EJ_OK);
        CHECK(wait_count(db, sql_count_tried, 1, 5000));
        CHECK(count_rows(db, sql_count_sent) == sent0);

        /* It comes up: the mail is delivered on a later attempt. */
        catcher = catcher_start(port);
        CHECK(catcher > 0);
        CHECK(wait_count(db, sql_count_sent, sent0 + 1, 10000));
        got = caught(a, "zoe@example.org", 10);
        CHECK(got != NULL && got->n_messages == 1);
        if (got != NULL && got->n_messages == 1) {
                Ej__Devmail__DevMessage *dm = got->messages[0];

                CHECK(strcmp(dm->from, "no-reply@journal.test") == 0);
                CHECK(strcmp(dm->to, "zoe@example.org") == 0);
                CHECK(strcmp(dm->subject, "Confirm your e-mail address for Test Journal") == 0);
                CHECK(strstr(dm->body, "Hello Zoë,") != NULL);
                CHECK(strstr(dm->body, "\nhttps://journal.test/verify?t=a=b\n") != NULL);
                CHECK(strstr(dm->body, "expires in 24 hours") != NULL);
                CHECK(strstr(dm->raw, "Content-Transfer-Encoding: quoted-printable") != NULL);
                CHECK(dm->received_at_ms > 0);
        }

        /* A permanent rejection stops after max_permanent attempts; nothing is caught. */
        CHECK(ej_db_begin(db, &err) == EJ_OK);
        CHECK(ej_mail_enqueue(db, "verify_email", "reject-me@example.org", vars, &err) == EJ_OK);
        CHECK(ej_db_commit(db, &err) == EJ_OK);
        CHECK(wait_count(db, sql_count_failed, 1, 10000));
        got = caught(a, "reject-me@example.org", 10);
        CHECK(got != NULL && got->n_messages == 0);

        /* Two senders on one outbox: each mail is sent exactly once. */
        CHECK(ej_mailer_start(&m2, &cfg, &err) == EJ_OK);
        {
                Ej__Common__Empty empty = EJ__COMMON__EMPTY__INIT;
                ProtobufCMessage *r = NULL;
                char to[64];
                long long sent1 = count_rows(db, sql_count_sent);
                bool once = true;
                char subject[96];

                (void)snprintf(subject, sizeof(subject), "%s.clear", subj_prefix);
                CHECK(ej_bus_request(bus, subject, &empty.base, NULL,
                                     &ej__common__empty__descriptor, a, 3000, &r, &err) == EJ_OK);
                CHECK(ej_db_begin(db, &err) == EJ_OK);
                for (int i = 0; i < 30; i++) {
                        (void)snprintf(to, sizeof(to), "dup%d@example.org", i);
                        CHECK(ej_mail_enqueue(db, "welcome", to, vars, &err) == EJ_OK);
                }
                CHECK(ej_db_commit(db, &err) == EJ_OK);
                CHECK(wait_count(db, sql_count_sent, sent1 + 30, 15000));
                sleep_ms(300);
                got = caught(a, "", 500);
                CHECK(got != NULL && got->n_messages == 30);
                for (int i = 0; got != NULL && i < 30; i++) {
                        size_t k = 0;

                        (void)snprintf(to, sizeof(to), "dup%d@example.org", i);
                        for (size_t j = 0; j < got->n_messages; j++)
                                if (strcmp(got->messages[j]->to, to) == 0)
                                        k++;
                        if (k != 1)
                                once = false;
                }
                CHECK(once);
        }

        ej_mailer_stop(m1);
        ej_mailer_stop(m2);
        ej_mailer_stop(NULL);
        catcher_stop(catcher);
        ej_arena_destroy(a);
}

static void test_config(void)
{
        struct ej_mailer_config cfg;
        struct ej_err err;

        memset(&cfg, 0, sizeof(cfg));
        unsetenv("EJ_SMTP_URL");
        unsetenv("EJ_MAIL_FROM");
        CHECK(ej_mailer_config_from_env(&cfg, &err) == EJ_OK);
        CHECK(cfg.smtp.url == NULL && strcmp(cfg.from, EJ_MAIL_DEFAULT_FROM) == 0);
        CHECK(cfg.backoff_min_s == 30 && cfg.backoff_max_s == 3600);
        setenv("EJ_SMTP_URL", "http://x", 1);
        CHECK(ej_mailer_config_from_env(&cfg, &err) == EJ_ERR_INVALID);
        setenv("EJ_SMTP_URL", "smtp://127.0.0.1:2525", 1);
        setenv("EJ_SMTP_STARTTLS", "yes", 1);
        CHECK(ej_mailer_config_from_env(&cfg, &err) == EJ_OK);
        CHECK(cfg.smtp.starttls && strcmp(cfg.smtp.url, "smtp://127.0.0.1:2525") == 0);
        setenv("EJ_SMTP_STARTTLS", "maybe", 1);
        CHECK(ej_mailer_config_from_env(&cfg, &err) == EJ_ERR_INVALID);
        unsetenv("EJ_SMTP_STARTTLS");
        setenv("EJ_MAIL_FROM", "x", 1);
        CHECK(ej_mailer_config_from_env(&cfg, &err) == EJ_ERR_INVALID);
        unsetenv("EJ_MAIL_FROM");
        unsetenv("EJ_SMTP_URL");

        {
                struct ej_mailer mm = {0};

                mm.backoff_min_s = 30;
                mm.backoff_max_s = 3600;
                CHECK(mailer_backoff_s(&mm, 1) == 30);
                CHECK(mailer_backoff_s(&mm, 2) == 60);
                CHECK(mailer_backoff_s(&mm, 5) == 480);
                CHECK(mailer_backoff_s(&mm, 40) == 3600);
        }
}

int main(int argc, char **argv)
{
        struct ej_db *db = NULL;
        struct ej_err err;
        char dir[1024], ddl[128];

        (void)argc;
        signal(SIGPIPE, SIG_IGN);
        ej_log_init("test_mail", getenv("EJ_TEST_LOG") ? getenv("EJ_TEST_LOG") : "error");
        CHECK(ej_ids_init(&err) == EJ_OK);
        CHECK(ej_http_global_init(&err) == EJ_OK);
        (void)snprintf(dir, sizeof(dir), "%s", argv[0]);
        (void)snprintf(catcher_bin, sizeof(catcher_bin), "%s/../bin/smtp-catcher", dirname(dir));

        test_render();
        test_build();
        test_config();

        db_url = getenv("EJ_TEST_DB_URL");
        nats_url = getenv("EJ_TEST_NATS_URL");
        if (db_url == NULL || db_url[0] == '\0' || nats_url == NULL || nats_url[0] == '\0') {
                fprintf(stderr, "test_mail: EJ_TEST_DB_URL (libpq connection string of a scratch "
                                "database) and EJ_TEST_NATS_URL must be set; tests/run-all.sh "
                                "unit does that\n");
                CHECK(!"EJ_TEST_DB_URL and EJ_TEST_NATS_URL set");
                return check_report();
        }
        (void)snprintf(schema, sizeof(schema), "tmail%d", (int)getpid());
        (void)snprintf(subj_prefix, sizeof(subj_prefix), "ej.devmail.t%d", (int)getpid());
        CHECK(ej_db_connect(&db, db_url, schema, 5000, &err) == EJ_OK);
        if (db == NULL)
                return check_report();
        CHECK(ej_db_migrate(db, &ej_mail_migration, 1, &err) == EJ_OK);
        {
                struct ej_bus_options opt = {
                    .url = nats_url, .name = "test_mail", .connect_wait_ms = 3000};

                CHECK(ej_bus_connect(&bus, &opt, &err) == EJ_OK);
        }
        test_templates(db);
        test_enqueue(db);
        if (bus != NULL)
                test_sender(db);

        (void)snprintf(ddl, sizeof(ddl), "DROP SCHEMA %s CASCADE", schema);
        CHECK(ej_db_exec_simple(db, ddl, &err) == EJ_OK);
        ej_db_destroy(db);
        ej_bus_destroy(bus, 1000);
        return check_report();
}
