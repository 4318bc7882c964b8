// Client: a blocking client of one node's client API, for the CLI, tests and load tools. Not
// thread-safe; use one per thread. Each call sends one Request and waits for the Response with
// the same id, up to a timeout. A node's error comes back as a non-ok Status with the node's code
// and message.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "adapters/curve.h"
#include "core/status.h"
#include "net/proto/enoki.pb.h"

namespace enoki::adapters {

class Client {
 public:
  // With `node`, the id of the node expected at `endpoint`: every request is addressed to it
  // (Request.to, which another node refuses) and an answer from another node is an error. With
  // `keys`, the connection is CURVE (a node with keys accepts no other).
  Client(zmq::context_t& context, std::string endpoint,
         std::chrono::milliseconds timeout = std::chrono::seconds(5), std::string node = {},
         const ClientKeys& keys = {});

  // Sends `request` (its id is set here) and returns the node's Response, or the node's error
  // as a Status, or DEADLINE_EXCEEDED when no answer came in time.
  core::Result<proto::Response> Call(proto::Request request);

  core::Result<proto::GetResult> Get(const std::string& keygroup, const std::string& key);
  core::Result<proto::WriteResult> Put(const std::string& keygroup, const std::string& key,
                                       const std::string& value);
  core::Status Delete(const std::string& keygroup, const std::string& key);
  core::Result<proto::ScanResult> Scan(const std::string& keygroup, const std::string& start,
                                       const std::string& end, uint32_t limit);
  core::Result<proto::WriteResult> Append(const std::string& keygroup, const std::string& value);
  core::Status CreateKeygroup(const proto::CreateKeygroupRequest& request);
  core::Status DeleteKeygroup(const std::string& name);
  core::Result<proto::KeygroupMeta> KeygroupInfo(const std::string& name);
  core::Result<proto::KeygroupList> ListKeygroups();
  core::Result<proto::NodeStatus> NodeStatus();
  core::Status AddReplica(const std::string& keygroup, const std::string& node);
  core::Status RemoveReplica(const std::string& keygroup, const std::string& node);

  // Emulation: the node's link to `peer` becomes `spec` (LinkSpec's text form); `over_network`:
  // SetLinkRequest.over_network.
  core::Status SetLink(const std::string& peer, const std::string& spec, bool over_network = false);
  // A page of the node's trace: the records from cursor `from` that fit in `max_bytes`
  // (proto::TraceRequest).
  core::Result<proto::TracePage> Trace(uint64_t from, uint32_t max_bytes);
  // The node's trace clock, in ns, when it served the request (proto::ClockRequest).
  core::Result<int64_t> Clock();
  // Deploys `spec`; with `files`, runtime process runs them from the node's copy, the handler
  // being a path among them (`enoki deploy --upload`).
  core::Status DeployFunction(const proto::FunctionSpec& spec,
                              std::vector<proto::FunctionFile> files = {});
  core::Status DeleteFunction(const std::string& name);
  core::Result<proto::FunctionList> ListFunctions();
  // The function's response body, or its error.
  // The last `tail` lines of a function's log (0: all kept).
  core::Result<proto::FunctionLogs> FunctionLogs(const std::string& name, uint32_t tail);
  // With `async`, returns an empty body as soon as the node accepted the call.
  core::Result<std::string> Invoke(const std::string& function, const std::string& body,
                                   bool async = false);

  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string endpoint_;
  std::chrono::milliseconds timeout_;
  std::string node_;
  bool curve_;
  zmq::socket_t socket_;
  uint64_t next_id_ = 1;
  std::string buffer_;
};

}  // namespace enoki::adapters
