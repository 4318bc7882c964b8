// Envelope encoding by hand-written field header (protobuf wire format: tag, varint length).
#include "net/codec.h"

#include <google/protobuf/message_lite.h>

namespace enoki::net {
namespace {

void Encode(int field, const google::protobuf::MessageLite& msg, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>((field << 3) | 2));  // wire type 2: length-delimited
  uint64_t size = msg.ByteSizeLong();
  while (size >= 0x80) {
    out->push_back(static_cast<char>((size & 0x7f) | 0x80));
    size >>= 7;
  }
  out->push_back(static_cast<char>(size));
  msg.AppendToString(out);
}

}  // namespace

void EncodeEnvelope(const proto::Request& msg, std::string* out) {
  Encode(proto::Envelope::kRequestFieldNumber, msg, out);
}
void EncodeEnvelope(const proto::Response& msg, std::string* out) {
  Encode(proto::Envelope::kResponseFieldNumber, msg, out);
}
void EncodeEnvelope(const proto::PeerMessage& msg, std::string* out) {
  Encode(proto::Envelope::kPeerFieldNumber, msg, out);
}

}  // namespace enoki::net
