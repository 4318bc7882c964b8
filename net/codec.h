// Encoding of Envelopes without copying their payload: an Envelope holding message M is the
// field tag of M's slot, a varint length, and M's bytes, so M is serialized straight into the
// output buffer.
#pragma once

#include <string>

#include "net/proto/enoki.pb.h"

namespace enoki::net {

// Writes Envelope{request|response|peer = msg} into *out (replacing its contents).
void EncodeEnvelope(const proto::Request& msg, std::string* out);
void EncodeEnvelope(const proto::Response& msg, std::string* out);
void EncodeEnvelope(const proto::PeerMessage& msg, std::string* out);

}  // namespace enoki::net
