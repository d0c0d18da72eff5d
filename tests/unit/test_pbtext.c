/*
 * The text check of unpacked protobuf messages (services/common/pbtext.c) and the UTF-8
 * validator it uses (ej_utf8_valid, str.c): singular, repeated, oneof and nested string fields,
 * what protobuf-c lets through unchecked.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "files.pb-c.h"
#include "pbtext.h"
#include "str.h"
#include "users.pb-c.h"

static bool utf8(const char *s)
{
        return ej_utf8_valid(s, strlen(s));
}

static void test_utf8(void)
{
        CHECK(utf8(""));
        CHECK(utf8("plain ascii"));
        CHECK(utf8("na\xc3\xafve \xe6\xbc\xa2 \xf0\x9f\x98\x80"));
        CHECK(!utf8("\xff"));
        CHECK(!utf8("\xc3\x28"));         /* a lead byte without its continuation */
        CHECK(!utf8("\xc0\xaf"));         /* an overlong '/' */
        CHECK(!utf8("\xed\xa0\x80"));     /* a surrogate */
        CHECK(!utf8("\xf4\x90\x80\x80")); /* beyond U+10FFFF */
        CHECK(!utf8("\xe6\xbc"));         /* cut short */
        CHECK(!ej_utf8_valid("a\0b", 3));
}

/* The same bytes unpacked by protobuf-c, as a service receives them. */
static bool valid_after_unpack(const ProtobufCMessage *m, struct ej_err *err)
{
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t buf[512];
        ProtobufCMessage *back;
        bool ok;

        CHECK(n <= sizeof(buf));
        protobuf_c_message_pack(m, buf);
        back = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
        CHECK(back != NULL);
        if (back == NULL)
                return false;
        ok = ej_pb_text_valid(back, err);
        protobuf_c_message_free_unpacked(back, NULL);
        return ok;
}

static void test_messages(void)
{
        Ej__Users__LoginRequest login = EJ__USERS__LOGIN_REQUEST__INIT;
        Ej__Files__UploadFrame frame = EJ__FILES__UPLOAD_FRAME__INIT;
        Ej__Files__UploadAbort abort_ = EJ__FILES__UPLOAD_ABORT__INIT;
        struct ej_err err;

        login.email = (char *)(uintptr_t) "ada@example.org";
        login.password = (char *)(uintptr_t) "p\xc3\xa4ssword";
        CHECK(valid_after_unpack(&login.base, &err));
        login.password = (char *)(uintptr_t) "p\xe4ssword"; /* Latin-1 */
        memset(&err, 0, sizeof(err));
        CHECK(!valid_after_unpack(&login.base, &err));
        CHECK(err.status == EJ_ERR_INVALID && strcmp(err.field, "password") == 0);
        CHECK(strstr(err.msg, "UTF-8") != NULL);

        /* A oneof member in use, inside a sub-message. */
        abort_.reason = (char *)(uintptr_t) "gone \xff";
        frame.frame_case = EJ__FILES__UPLOAD_FRAME__FRAME_ABORT;
        frame.abort = &abort_;
        CHECK(!valid_after_unpack(&frame.base, &err));
        CHECK(strcmp(err.field, "reason") == 0);
        abort_.reason = (char *)(uintptr_t) "gone";
        CHECK(valid_after_unpack(&frame.base, &err));
}

static void test_repeated(void)
{
        Ej__Users__CreateUserRequest req = EJ__USERS__CREATE_USER_REQUEST__INIT;
        char *roles[2] = {(char *)(uintptr_t) "author", (char *)(uintptr_t) "edit\xc3"};
        struct ej_err err;

        req.name = (char *)(uintptr_t) "Ada";
        req.email = (char *)(uintptr_t) "ada@example.org";
        req.n_roles = 2;
        req.roles = roles;
        CHECK(!valid_after_unpack(&req.base, &err));
        CHECK(strcmp(err.field, "roles") == 0);
        roles[1] = (char *)(uintptr_t) "editor";
        CHECK(valid_after_unpack(&req.base, &err));
}

int main(void)
{
        test_utf8();
        test_messages();
        test_repeated();
        return check_report();
}
