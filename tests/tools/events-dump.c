/*
 * events-dump: prints every message of a JetStream stream, one line each:
 *
 *   <sequence> <Nats-Msg-Id> <subject> <event type>
 *
 * where the event type comes from the message's ej.common.Event envelope ("-" when the data is
 * not one). Used by the fault tests to prove that each event reached the stream exactly once.
 *
 *   events-dump [nats-url [stream]]    (defaults: $EJ_NATS_URL or nats://127.0.0.1:4222,
 *                                          EJ_EVENTS)
 *
 * Reads the stream's first and last sequence, then fetches each message directly by sequence
 * (no consumer is created, so the stream is left as it was). Exits 0 after printing, 1 when
 * the server or the stream cannot be reached.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <nats/nats.h>

#include "common.pb-c.h"

static void print_msg(uint64_t seq, natsMsg *msg)
{
        const char *id = NULL;
        const char *type = "-";
        Ej__Common__Event *ev = NULL;
        const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
        int len = natsMsg_GetDataLength(msg);

        if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK || id == NULL || id[0] == '\0')
                id = "-";
        if (len > 0)
                ev = ej__common__event__unpack(NULL, (size_t)len, data);
        if (ev != NULL && ev->type != NULL && ev->type[0] != '\0')
                type = ev->type;
        printf("%" PRIu64 " %s %s %s\n", seq, id, natsMsg_GetSubject(msg), type);
        if (ev != NULL)
                ej__common__event__free_unpacked(ev, NULL);
}

int main(int argc, char **argv)
{
        const char *url = argc > 1 ? argv[1] : getenv("EJ_NATS_URL");
        const char *stream = argc > 2 ? argv[2] : "EJ_EVENTS";
        natsConnection *nc = NULL;
        jsCtx *js = NULL;
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s;
        int rc = 1;

        if (url == NULL || url[0] == '\0')
                url = "nats://127.0.0.1:4222";
        s = natsConnection_ConnectTo(&nc, url);
        if (s != NATS_OK) {
                fprintf(stderr, "events-dump: cannot connect to %s: %s\n", url,
                        natsStatus_GetText(s));
                goto out;
        }
        s = natsConnection_JetStream(&js, nc, NULL);
        if (s != NATS_OK) {
                fprintf(stderr, "events-dump: JetStream: %s\n", natsStatus_GetText(s));
                goto out;
        }
        s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
        if (s != NATS_OK) {
                fprintf(stderr, "events-dump: stream %s: %s (JetStream error %d)\n", stream,
                        natsStatus_GetText(s), (int)jerr);
                goto out;
        }
        if (si->State.Msgs > 0) {
                for (uint64_t seq = si->State.FirstSeq; seq <= si->State.LastSeq; seq++) {
                        natsMsg *msg = NULL;

                        s = js_GetMsg(&msg, js, stream, seq, NULL, &jerr);
                        if (s == NATS_NOT_FOUND)
                                continue; /* deleted from the middle of the stream */
                        if (s != NATS_OK) {
                                fprintf(stderr, "events-dump: message %" PRIu64 ": %s\n", seq,
                                        natsStatus_GetText(s));
                                goto out;
                        }
                        print_msg(seq, msg);
                        natsMsg_Destroy(msg);
                }
        }
        rc = 0;
out:
        jsStreamInfo_Destroy(si);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        nats_Close();
        return rc;
}
