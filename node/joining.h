// Joining: a replica added later pulls the keygroup's data page by page from another ready replica
// (the nearest first, the next one when it does not answer) and serves reads only once it has all
// of it; then it announces in the catalog that it is ready. It also serves the pages other
// replicas pull from it. (The other replicas also push their items to a new replica: replication.)
#pragma once

#include <map>
#include <string>

#include "node/catalog.h"
#include "node/core.h"
#include "node/peers.h"

namespace enoki::node {

class Joining {
 public:
  Joining(Core& core, const PeerTable& peers, Catalog& catalog);

  // Starts pulling the data of `kg`, a replica without it (again, from the first page).
  void Pull(Keygroup& kg);
  // A keygroup's catalog entry changed (Catalog's event): starts or stops pulling it.
  void OnKeygroupChanged(const KeygroupChange& change);
  void OnSyncRequest(const std::string& from, const proto::SyncRequest& msg);
  void OnSyncResponse(const std::string& from, proto::SyncResponse& msg);

 private:
  struct PullState {
    std::string source;
    std::string after;  // the last key received
    bool first = true;
    size_t attempt = 0;
    core::TimerId timer = 0;
  };
  void SendRequest(Keygroup& kg);

  Core& core_;
  const PeerTable& peers_;
  Catalog& catalog_;
  std::map<std::string, PullState> pulls_;  // by keygroup
};

}  // namespace enoki::node
