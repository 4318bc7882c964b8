// The catalog: the keygroup entries (KeygroupMeta) a node holds. A change is applied where it is
// requested and owed to every peer through replication's outbox (a replica announcing it is
// ready, too); entries converge by version: a newer incarnation wins, within one incarnation a
// deletion is final, otherwise the newer version wins, and readiness only ever grows.
//
// What a change means for the other protocols (outbox entries nobody is owed any more, a pull to
// start or stop, items to push to a new replica) is theirs to decide: the catalog hands each
// applied change to its subscribers as a KeygroupChange, in the order they subscribed.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "net/transport.h"
#include "node/core.h"
#include "node/peers.h"
#include "node/replication.h"

namespace enoki::node {

// Whether catalog entry `b` supersedes `a` (of the same keygroup): a newer incarnation (`created`)
// wins; within one incarnation a deletion is final; otherwise the newer `version` wins. Only
// these three fields count.
bool Supersedes(const proto::KeygroupMeta& b, const proto::KeygroupMeta& a);

class Catalog {
 public:
  Catalog(Core& core, const PeerTable& peers, Replication& replication);

  using Subscriber = std::function<void(const KeygroupChange&)>;
  void Subscribe(Subscriber subscriber) { subscribers_.push_back(std::move(subscriber)); }

  // Client requests: each sets the response's keygroup entry or returns what is wrong. A keygroup
  // records the named caller that created it as its owner; a caller that owns as many live
  // keygroups as its quota allows gets RESOURCE_EXHAUSTED.
  core::Status Create(const proto::CreateKeygroupRequest& r, const net::Caller& caller,
                      proto::Response& response);
  core::Status Delete(const std::string& name);
  core::Status ChangeReplicas(const std::string& keygroup, const std::string& node, bool add,
                              proto::Response& response);

  // An entry from a peer, acknowledged to it.
  void OnMetaUpdate(const std::string& from, const proto::MetaUpdate& msg);
  // Entries a peer's catalog exchange sent (node/anti_entropy.h), not acknowledged.
  void OnCatalogEntries(const proto::CatalogEntries& msg);
  // Announces that this node's replica of `kg` holds all the data.
  void MarkReady(Keygroup& kg);

 private:
  // A change made here: a new version of the entry, applied and owed to every peer.
  void Change(proto::KeygroupMeta meta);
  void Apply(const proto::KeygroupMeta& meta);

  Core& core_;
  const PeerTable& peers_;
  Replication& replication_;
  std::vector<Subscriber> subscribers_;
};

}  // namespace enoki::node
