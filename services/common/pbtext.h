/*
 * pbtext.h: the text of an unpacked protobuf message.
 *
 * protobuf-c unpacks a `string` field without checking its UTF-8, so a request on the bus may
 * carry bytes that are not text; a service would pass them on to PostgreSQL (which refuses them
 * with its own error text) or into JSON. The service runtime checks every request with
 * ej_pb_text_valid before its handler sees it.
 *
 * Pure; reentrant.
 */
#ifndef EJ_PBTEXT_H
#define EJ_PBTEXT_H

#include <stdbool.h>

#include <protobuf-c/protobuf-c.h>

#include "status.h"

/* True when every string field of `msg` that is set (singular, repeated, a oneof member in use,
 * in sub-messages at any depth, map keys and values) is valid UTF-8. Otherwise fills `err` (may
 * be NULL) with EJ_ERR_INVALID, the field's proto name as err->field, and returns false. */
bool ej_pb_text_valid(const ProtobufCMessage *msg, struct ej_err *err);

#endif
