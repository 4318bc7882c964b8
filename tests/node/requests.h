// Requests of the store's client API, built for the tests of the node on the simulator.
#pragma once

#include <string>
#include <vector>

#include "net/proto/enoki.pb.h"

namespace enoki::testing {

inline proto::Request Get(const std::string& kg, const std::string& key) {
  proto::Request r;
  r.mutable_get()->set_keygroup(kg);
  r.mutable_get()->set_key(key);
  return r;
}
inline proto::Request Put(const std::string& kg, const std::string& key, const std::string& value) {
  proto::Request r;
  r.mutable_put()->set_keygroup(kg);
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(value);
  return r;
}
inline proto::Request Del(const std::string& kg, const std::string& key) {
  proto::Request r;
  r.mutable_delete_()->set_keygroup(kg);
  r.mutable_delete_()->set_key(key);
  return r;
}
inline proto::Request Create(const std::string& kg, std::vector<std::string> replicas,
                             proto::ReplicationMode mode = proto::ASYNC,
                             proto::Mutability mutability = proto::MUTABLE) {
  proto::Request r;
  auto* c = r.mutable_create_keygroup();
  c->set_name(kg);
  c->set_mode(mode);
  c->set_mutability(mutability);
  for (auto& n : replicas) c->add_replicas(n);
  return r;
}

}  // namespace enoki::testing
