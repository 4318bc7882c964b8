// RealNode: the one place where a node is assembled as real mode runs it: the ZeroMQ transport
// (with the user-space link shaper), the node on the storage it is given, its function host with
// the built-in functions and, when asked, process functions, and optionally a trace file, the
// HTTP gateway, the Redis front end and the metrics endpoint, all on one event loop. Its transport
// also serves the trace (TraceRequest, from the trace file) and the node's clock (ClockRequest,
// `env`'s). `enoki node` runs one on its main thread; LoopbackNode (the calibration, the
// benchmarks) on a thread of its own.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "adapters/child_processes.h"
#include "adapters/event_loop.h"
#include "adapters/file_code_store.h"
#include "adapters/http_gateway.h"
#include "adapters/metrics_server.h"
#include "adapters/node_process.h"
#include "adapters/resp_server.h"
#include "adapters/trace_file.h"
#include "adapters/zmq_transport.h"
#include "core/env.h"
#include "core/status.h"
#include "net/link_model.h"
#include "node/function_host.h"
#include "node/node.h"
#include "node/storage.h"

namespace enoki::adapters {

struct RealNodeConfig {
  node::NodeOptions node;                    // its id, limits and timeouts (peers: see below)
  std::string listen = "tcp://127.0.0.1:*";  // the endpoint to bind
  std::map<std::string, std::string> peers;  // id -> endpoint
  // Where the others reach this node (its member entry): an endpoint, "none" (behind NAT: it
  // connects out, nobody can connect in), or empty (the bound endpoint; announced only with join).
  std::string advertise;
  // Members to join the cluster through (tried in turn until one answers; docs/membership.md),
  // and with security each one's public key, by endpoint. A node that knows members already
  // (from its data directory) does not join again unless it left.
  std::vector<std::string> join;
  std::map<std::string, std::string> join_keys;
  core::Duration join_timeout = std::chrono::seconds(30);
  std::map<std::string, net::LinkSpec> links;  // peers whose messages the shaper holds back
  // Programs may be deployed as functions only from inside these folders; none: not at all.
  std::vector<std::string> process_dirs;
  std::string worker_user;      // who runs them (MakeProcessSandbox); empty: the default
  node::WorkerOptions workers;  // their limits and idle timeout (env: set here)
  // With process_dirs: where uploaded code is kept (a process directory too); empty: uploads are
  // refused. The most one upload may hold; the transport takes messages that large.
  std::string code_dir;
  uint64_t max_upload_bytes = node::kDefaultMaxUploadBytes;
  std::string trace;        // append a measurement trace to this file; empty: none
  HttpGatewayOptions http;  // also serve functions over HTTP on http.address; empty: no
  // Also serve tinyFaaS's management API on manage.address (its TLS files, timeouts and caps as
  // for `http`); empty: no.
  HttpGatewayOptions manage;
  std::string metrics;  // serve /health and /metrics on this HOST:PORT; empty: no
  // Also serve the Redis protocol (adapters/resp_server.h) on redis.address; empty: no. Its
  // value limit is the node's; with security, commands need AUTH with a token.
  RespServerOptions redis;
  std::string storage_file;  // the SQLite database, whose size the metrics report; empty: none
  // CURVE on the listen endpoint and to the peers (its local endpoint is made here); none: plain.
  std::optional<TransportSecurity> security;
  size_t max_clients = 0;  // ZeroMQ client connections at once (ZmqTransportOptions); 0: no cap
};

class RealNode {
 public:
  // Binds, loads the node's state from `storage` (which must outlive it) and starts it on
  // `loop`, with `env` as the node's environment (the loop, or a view of it). Nothing is served
  // before the loop runs. The error says what could not be started.
  static core::Result<std::unique_ptr<RealNode>> Start(zmq::context_t& context, EventLoop& loop,
                                                       core::Env& env, node::StorageEngine& storage,
                                                       RealNodeConfig config);
  // Stops the metrics endpoint and the gateway and makes what the last round left durable.
  ~RealNode();

  node::Node& node() { return *node_; }
  // With security: the clients and their permissions from now on, over ZeroMQ
  // (ZmqTransport::SetClients) and HTTP (HttpGateway::SetAccess); changes nothing on an error.
  [[nodiscard]] core::Status SetClients(const std::map<std::string, AccessEntry>& clients);
  // The endpoints it holds, as its ready file says them.
  const ReadyInfo& ready() const { return ready_; }

 private:
  RealNode(zmq::context_t& context, EventLoop& loop, RealNodeConfig config, std::string local_dir);
  // Joins through the first of config_.join that answers (each tried again every second until
  // the join timeout), before the loop runs; the error names each endpoint and what it said.
  core::Status Join(zmq::context_t& context);
  // The largest message the transport takes: the node's, and room for an upload when it keeps
  // uploaded code.
  static size_t MaxMessageBytes(const RealNodeConfig& config);

  RealNodeConfig config_;
  std::string local_dir_;  // the folder of the local endpoint (with security), removed at the end
  ZmqTransport transport_;
  std::optional<ChildProcesses> children_;
  std::unique_ptr<FileCodeStore> code_;  // before node_: the node's last flush may remove code
  std::unique_ptr<TraceFile> trace_;
  std::optional<node::Node> node_;
  std::optional<node::FunctionHost> host_;
  std::optional<HttpGateway> gateway_;
  std::optional<HttpGateway> manager_;
  std::optional<MetricsServer> metrics_;
  std::optional<RespServer> redis_;
  ReadyInfo ready_;
};

}  // namespace enoki::adapters
