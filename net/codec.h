// The wire codec: Envelopes encoded without copying their payload (an Envelope holding message M
// is the field tag of M's slot, a varint length, and M's bytes, so M is serialized straight into
// the output buffer), and status codes to and from their wire form.
#pragma once

#include "core/env.h"
#include "core/status.h"

#include <string>
#include <string_view>

#include "net/proto/enoki.pb.h"

namespace enoki::net {

// Writes Envelope{request|response|peer = msg} into *out (replacing its contents).
void EncodeEnvelope(const proto::Request& msg, std::string* out);
// A response also says which node answers it: Response.node = `node`.
void EncodeEnvelope(const proto::Response& msg, std::string_view node, std::string* out);
void EncodeEnvelope(const proto::PeerMessage& msg, std::string* out);
// Appends a time field of the Envelope (proto::Envelope::kDeliverAtNsFieldNumber or
// kSentAtNsFieldNumber) to an encoded Envelope in *out.
void AppendEnvelopeTime(int field, core::TimePoint t, std::string* out);

// Converts a wire error code and message to a Status (OK gives an ok Status).
core::Status StatusFromWire(proto::Code code, const std::string& message);
// Converts a Status code to its wire code.
proto::Code CodeToWire(core::Code code);

}  // namespace enoki::net
