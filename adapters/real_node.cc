// A real node, assembled.
#include "adapters/real_node.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "adapters/client.h"
#include "adapters/subprocess.h"
#include "functions/builtins.h"

namespace enoki::adapters {
namespace {

// The folder of the Python module (python/enoki.py): beside the binary in the build tree, else
// where it is installed, ENOKI_PYTHON_DIR relative to the binary's folder (share/enoki/python
// under the same prefix; adapters/CMakeLists.txt).
std::string PythonDir() {
  std::filesystem::path bin_dir = std::filesystem::path(Subprocess::SelfPath()).parent_path();
  std::error_code ec;
  if (std::filesystem::exists(bin_dir / "python" / "enoki.py", ec)) {
    return (bin_dir / "python").string();
  }
  return (bin_dir / ENOKI_PYTHON_DIR).lexically_normal().string();
}

// Process functions' workers find the Python module on their PYTHONPATH. They reach the node
// only through their worker protocol (stdin and stdout), not at an endpoint: the local one is
// the node user's alone, and gives more than a function may do (docs/security.md, "The
// sandbox").
std::map<std::string, std::string> WorkerEnv() {
  const char* old = std::getenv("PYTHONPATH");
  std::string python = PythonDir();
  // Not the node's endpoint or CURVE keys, if its environment has them.
  return {{"ENOKI_NODE", ""},
          {"ENOKI_IDENTITY", ""},
          {"ENOKI_SERVER_KEY", ""},
          {"PYTHONPATH", old != nullptr && *old != '\0' ? python + ":" + old : python}};
}

// Whether a tcp:// endpoint names every address of its host (no one can connect to that).
bool IsWildcardEndpoint(const std::string& endpoint) {
  return endpoint.starts_with("tcp://0.0.0.0:") || endpoint.starts_with("tcp://*:") ||
         endpoint.starts_with("tcp://[::]:");
}

}  // namespace

RealNode::RealNode(zmq::context_t& context, EventLoop& loop, RealNodeConfig config,
                   std::string local_dir)
    : config_(std::move(config)),
      local_dir_(std::move(local_dir)),
      transport_(context, loop,
                 {config_.node.id, config_.listen, config_.peers, MaxMessageBytes(config_),
                  config_.links, config_.security, config_.max_clients}) {
  config_.node.peers.clear();
  for (const auto& [id, endpoint] : config_.peers) {
    proto::Member& m = config_.node.peers.emplace_back();
    m.set_id(id);
    m.set_endpoint(endpoint);
    if (config_.security) {
      // A peer without a key is refused by the transport's Start, naming it.
      auto key = config_.security->peer_keys.find(id);
      if (key != config_.security->peer_keys.end()) m.set_public_key(key->second);
    }
  }
}

size_t RealNode::MaxMessageBytes(const RealNodeConfig& config) {
  size_t bytes = node::MaxMessageBytes(config.node.max_value_bytes);
  if (!config.process_dirs.empty() && !config.code_dir.empty()) bytes += config.max_upload_bytes;
  return bytes;
}

core::Result<std::unique_ptr<RealNode>> RealNode::Start(zmq::context_t& context, EventLoop& loop,
                                                        core::Env& env,
                                                        node::StorageEngine& storage,
                                                        RealNodeConfig config) {
  std::optional<ProcessSandbox> sandbox;
  std::unique_ptr<FileCodeStore> code;
  if (!config.process_dirs.empty()) {
    std::vector<std::string> dirs = config.process_dirs;
    if (!config.code_dir.empty()) {
      // Uploaded code runs from there, so it is a process directory too.
      auto opened = FileCodeStore::Open(config.code_dir);
      if (!opened.ok()) return opened.status();
      code = std::move(opened.value());
      dirs.push_back(code->root());
    }
    auto made = MakeProcessSandbox(dirs, config.worker_user);
    if (!made.ok()) return made.status();
    sandbox = std::move(*made);
  }
  std::string local_dir;
  if (config.security) {
    // The node's own processes (gateway, workers) reach it through a Unix socket in a folder
    // only this user may enter: the file system's permissions are its authentication.
    std::string pattern = (std::filesystem::temp_directory_path() / "enoki-node-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      return core::Status::IOError("cannot make a private folder for the local endpoint: " +
                                   std::string(std::strerror(errno)));
    }
    local_dir = pattern;
    config.security->local_endpoint = "ipc://" + local_dir + "/node";
  }
  auto n = std::unique_ptr<RealNode>(
      new RealNode(context, loop, std::move(config), std::move(local_dir)));
  n->code_ = std::move(code);
  ENOKI_RETURN_IF_ERROR(n->transport_.Start());
  // Its member entry: where the others reach it, and its key.
  node::NodeOptions& o = n->config_.node;
  const std::string& advertise = n->config_.advertise;
  o.endpoint = advertise == "none" ? ""
               : advertise.empty() ? n->transport_.bound_endpoint()
                                   : advertise;
  o.announce = !advertise.empty() || !n->config_.join.empty();
  if (o.announce && advertise.empty() && IsWildcardEndpoint(o.endpoint)) {
    return core::Status::InvalidArgument(
        "node " + o.id + " listens on every address (" + o.endpoint +
        "): say where the others reach it (--advertise tcp://HOST:PORT), or --advertise none "
        "when nobody can connect to it (behind NAT)");
  }
  if (n->config_.security) o.public_key = n->config_.security->own.public_key;
  n->node_.emplace(n->config_.node, env, n->transport_, storage);
  n->transport_.SetHandler(&*n->node_);
  if (!n->config_.trace.empty()) {
    auto opened = TraceFile::Open(n->config_.trace);
    if (!opened.ok()) return opened.status();
    n->trace_ = std::move(opened.value());
    n->node_->SetTrace(n->trace_.get());
  }
  // The trace over the API, from its file, and the clock it is stamped with (the node's).
  RealNode* self = n.get();
  n->transport_.Serve(proto::Request::kTrace, [self](const proto::Request& r,
                                                     proto::Response& out) {
    if (!self->trace_) {
      return core::Status::FailedPrecondition("node " + self->config_.node.id +
                                              " keeps no trace: start it with --trace FILE");
    }
    return self->trace_->ReadPage(r.trace().from(), r.trace().max_bytes(), *out.mutable_trace());
  });
  n->transport_.Serve(proto::Request::kClock, [&env](const proto::Request&, proto::Response& out) {
    out.mutable_clock()->set_trace_clock_ns(env.Now().time_since_epoch().count());
    return core::Status::Ok();
  });
  if (core::Status st = n->node_->Start(); !st.ok()) {
    return core::Status(st.code(), "cannot start: " + st.message());
  }
  if (n->node_->HasLeft() && n->config_.join.empty()) {
    return core::Status::FailedPrecondition(
        "node " + o.id + " left the cluster: to take part again, start it with --join ENDPOINT");
  }
  if (!n->config_.join.empty() && (!n->node_->HasPeers() || n->node_->HasLeft())) {
    ENOKI_RETURN_IF_ERROR(n->Join(context));
  }
  // After Start, which loaded the stored deployments the host deploys again.
  node::ProcessRuntime processes;
  if (sandbox) {
    n->children_.emplace(loop, std::move(*sandbox));
    processes.processes = &*n->children_;
    processes.workers = n->config_.workers;
    processes.workers.env = WorkerEnv();
    processes.code = n->code_.get();
    processes.max_upload_bytes = n->config_.max_upload_bytes;
  } else {
    processes.off =
        "process functions are off at node " + n->config_.node.id +
        ": it runs programs only from the folders it was started with (--process-dir DIR)";
  }
  n->host_.emplace(*n->node_, env, functions::Builtins(), std::move(processes));
  n->ready_ = {n->config_.node.id, n->transport_.bound_endpoint(), "", "", "", ""};
  if (!n->config_.http.address.empty()) {
    // The gateway reaches the node through its local endpoint, like any client; with keys, its
    // callers need the access file's tokens.
    n->config_.http.max_body_bytes = n->config_.node.max_value_bytes;
    n->config_.http.authenticate = n->config_.security.has_value();
    n->gateway_.emplace(context, n->transport_.local_endpoint(), n->config_.http);
    if (n->config_.security) n->gateway_->SetAccess(n->config_.security->clients);
    ENOKI_RETURN_IF_ERROR(n->gateway_->Start());
    const std::string& http = n->config_.http.address;
    n->ready_.http = http.substr(0, http.rfind(':') + 1) + std::to_string(n->gateway_->port());
  }
  if (!n->config_.manage.address.empty()) {
    // Like the gateway; a body holds an upload as base64 (4 bytes for 3) in JSON.
    HttpGatewayOptions& manage = n->config_.manage;
    manage.manage = true;
    manage.max_upload_bytes = n->config_.max_upload_bytes;
    manage.max_body_bytes = n->config_.max_upload_bytes / 3 * 4 + (64 << 10);
    manage.authenticate = n->config_.security.has_value();
    n->manager_.emplace(context, n->transport_.local_endpoint(), manage);
    if (n->config_.security) n->manager_->SetAccess(n->config_.security->clients);
    ENOKI_RETURN_IF_ERROR(n->manager_->Start());
    const std::string& a = manage.address;
    n->ready_.manage = a.substr(0, a.rfind(':') + 1) + std::to_string(n->manager_->port());
  }
  if (!n->config_.redis.address.empty()) {
    RespServerOptions& redis = n->config_.redis;
    redis.max_value_bytes = n->config_.node.max_value_bytes;
    redis.authenticate = n->config_.security.has_value();
    n->redis_.emplace(loop, *n->node_, redis);
    if (n->config_.security) n->redis_->SetAccess(n->config_.security->clients);
    ENOKI_RETURN_IF_ERROR(n->redis_->Start());
    n->ready_.redis =
        redis.address.substr(0, redis.address.rfind(':') + 1) + std::to_string(n->redis_->port());
  }
  if (!n->config_.metrics.empty()) {
    n->metrics_.emplace(loop, n->config_.node.id, [self] {
      node::MetricsWriter w;
      self->node_->WriteMetrics(w);
      self->host_->WriteMetrics(w);
      if (const std::string& db = self->config_.storage_file; !db.empty()) {
        uintmax_t bytes = 0;
        for (const std::string& f : {db, db + "-wal"}) {
          std::error_code ec;
          uintmax_t size = std::filesystem::file_size(f, ec);
          if (!ec) bytes += size;
        }
        w.Family("enoki_storage_file_bytes", "gauge",
                 "Size of the node's SQLite database on disk: its file and its write-ahead log.");
        w.Sample("enoki_storage_file_bytes", {}, static_cast<double>(bytes));
      }
      return w.text();
    });
    ENOKI_RETURN_IF_ERROR(n->metrics_->Start(n->config_.metrics));
    const std::string& m = n->config_.metrics;
    n->ready_.metrics = m.substr(0, m.rfind(':') + 1) + std::to_string(n->metrics_->port());
  }
  return n;
}

core::Status RealNode::Join(zmq::context_t& context) {
  proto::Request request;
  *request.mutable_join()->mutable_member() = node_->OwnEntry();
  std::map<std::string, std::string> failures;  // by endpoint: the last error
  auto deadline = std::chrono::steady_clock::now() + config_.join_timeout;
  while (true) {
    for (const std::string& endpoint : config_.join) {
      ClientKeys keys;
      if (config_.security) {
        auto key = config_.join_keys.find(endpoint);
        if (key == config_.join_keys.end()) {
          return core::Status::InvalidArgument("--join " + endpoint +
                                               " has no --join-key: a node with keys joins only "
                                               "through members it can authenticate");
        }
        keys = {config_.security->own, key->second};
      }
      Client client(context, endpoint, std::chrono::seconds(2), "", keys);
      auto answer = client.Call(request);
      if (answer.ok()) {
        proto::MemberList list = answer->members();
        // The member it joined through may know itself by a wildcard address: it is where this
        // node just reached it.
        for (auto& m : *list.mutable_members()) {
          if (m.id() == answer->served_by() && IsWildcardEndpoint(m.endpoint())) {
            m.set_endpoint(endpoint);
          }
        }
        node_->OnJoined(list);
        node_->Flush();
        if (node_->HasLeft()) {  // the member has not heard yet that this node left before
          failures[endpoint] = "its member list still says that this node left";
          continue;
        }
        spdlog::info("node {} joined the cluster through {} ({}): {} members", config_.node.id,
                     answer->served_by(), endpoint, list.members_size());
        return core::Status::Ok();
      }
      core::Code code = answer.status().code();
      if (code == core::Code::kPermissionDenied || code == core::Code::kInvalidArgument ||
          code == core::Code::kAlreadyExists) {
        return core::Status(code,
                            "cannot join through " + endpoint + ": " + answer.status().message());
      }
      failures[endpoint] = answer.status().message();
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  std::string what;
  for (const auto& [endpoint, why] : failures) {
    what += (what.empty() ? "" : "; ") + endpoint + ": " + why;
  }
  return core::Status::Unavailable("node " + config_.node.id +
                                   " could not join the cluster through any member (" + what + ")");
}

core::Status RealNode::SetClients(const std::map<std::string, AccessEntry>& clients) {
  ENOKI_RETURN_IF_ERROR(transport_.SetClients(clients));
  if (gateway_) gateway_->SetAccess(clients);
  if (manager_) manager_->SetAccess(clients);
  if (redis_) redis_->SetAccess(clients);
  return core::Status::Ok();
}

RealNode::~RealNode() {
  metrics_.reset();
  redis_.reset();
  manager_.reset();
  gateway_.reset();
  if (node_) node_->Flush();
  host_.reset();
  if (node_) transport_.SetHandler(nullptr);
  node_.reset();
  if (!local_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(local_dir_, ec);
  }
}

}  // namespace enoki::adapters
