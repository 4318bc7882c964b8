// Envelope encoding by hand-written field header (protobuf wire format: tag, varint length).
#include "net/codec.h"

#include <google/protobuf/message_lite.h>

namespace enoki::net {
namespace {

void Varint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void Encode(int field, const google::protobuf::MessageLite& msg, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>((field << 3) | 2));  // wire type 2: length-delimited
  Varint(msg.ByteSizeLong(), out);
  msg.AppendToString(out);
}

}  // namespace

void EncodeEnvelope(const proto::Request& msg, std::string* out) {
  Encode(proto::Envelope::kRequestFieldNumber, msg, out);
}
void EncodeEnvelope(const proto::Response& msg, std::string_view node, std::string* out) {
  // Response.node goes after the message's own fields (the last occurrence of a field wins).
  constexpr uint64_t kNodeTag = (proto::Response::kNodeFieldNumber << 3) | 2;
  std::string node_field;
  Varint(kNodeTag, &node_field);
  Varint(node.size(), &node_field);
  node_field.append(node);
  out->clear();
  out->push_back(static_cast<char>((proto::Envelope::kResponseFieldNumber << 3) | 2));
  Varint(msg.ByteSizeLong() + node_field.size(), out);
  msg.AppendToString(out);
  out->append(node_field);
}
void EncodeEnvelope(const proto::PeerMessage& msg, std::string* out) {
  Encode(proto::Envelope::kPeerFieldNumber, msg, out);
}

core::Status StatusFromWire(proto::Code code, const std::string& message) {
  return core::Status(static_cast<core::Code>(code), message);
}

proto::Code CodeToWire(core::Code code) { return static_cast<proto::Code>(code); }

void AppendEnvelopeTime(int field, core::TimePoint t, std::string* out) {
  Varint(static_cast<uint64_t>(field) << 3, out);  // wire type 0: varint
  Varint(static_cast<uint64_t>(t.time_since_epoch().count()), out);
}

}  // namespace enoki::net
