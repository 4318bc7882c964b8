// What a peer sends is checked as a client's request is, before any protocol sees it: names and
// keys as ValidateName and ValidateKey have them, values within the node's value limit, a catalog
// entry that is whole (a replica at least, none twice), and no version further ahead of this
// node's clock than NodeOptions::max_clock_ahead (a version from the far future would win every
// later write of its key and drag the clock of every node that sees it along). A peer message
// that fails is dropped whole; the sender retries what was legitimate in it.
#pragma once

#include <cstdint>

#include "core/status.h"
#include "net/proto/enoki.pb.h"

namespace enoki::node {

struct PeerCheckLimits {
  size_t max_value_bytes;
  int64_t latest_wall_us;  // no version may be later than this (now + the allowed lead)
};

// OK, or what is wrong, naming the message and the field.
core::Status CheckPeerMessage(const proto::PeerMessage& msg, const PeerCheckLimits& limits);

}  // namespace enoki::node
