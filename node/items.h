// Item operations on a ready replica: get, scan, put (conditional on a version, once only in an
// append-only keygroup), delete and append. A write is made here, owed to the other replicas by
// replication, and answered after the commit (in a synchronous keygroup, once the other replicas
// acknowledged it).
#pragma once

#include "node/core.h"
#include "node/replication.h"

namespace enoki::node {

class ItemOps {
 public:
  ItemOps(Core& core, Replication& replication);

  // Runs the item operation `request` on `kg`, a ready replica here, answering with `response`
  // (id and server set) once its outcome is in it.
  void Run(Keygroup& kg, proto::Request&& request, proto::Response&& response, Done done);

 private:
  Core& core_;
  Replication& replication_;
};

}  // namespace enoki::node
