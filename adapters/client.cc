// Blocking request/response over a DEALER socket.
#include "adapters/client.h"

#include "net/codec.h"

namespace enoki::adapters {

Client::Client(zmq::context_t& context, std::string endpoint, std::chrono::milliseconds timeout,
               std::string node, const ClientKeys& keys)
    : endpoint_(std::move(endpoint)),
      timeout_(timeout),
      node_(std::move(node)),
      curve_(keys.enabled()),
      socket_(context, zmq::socket_type::dealer) {
  socket_.set(zmq::sockopt::linger, 0);
  UseClientKeys(socket_, keys);
  socket_.connect(endpoint_);
}

core::Result<proto::Response> Client::Call(proto::Request request) {
  uint64_t id = next_id_++;
  request.set_id(id);
  request.set_to(node_);
  net::EncodeEnvelope(request, &buffer_);
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  auto left = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now());
  };
  // A node with keys drops a connection that has none, or an unknown key, without a word.
  auto no_answer = [&] {
    return core::Status::DeadlineExceeded(
        "no answer from " + endpoint_ + " within " + std::to_string(timeout_.count()) + " ms" +
        (curve_ ? " (if the node does not know this client's key, it refuses the connection "
                  "without an answer: see its log)"
                : " (if the node uses CURVE keys, give --identity and --server-key)"));
  };
  // Sending waits too, up to the deadline: while a refused handshake's connection is being torn
  // down and made again, the socket has nowhere to queue the request.
  while (!socket_.send(zmq::buffer(buffer_), zmq::send_flags::dontwait)) {
    if (left().count() <= 0) return no_answer();
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLOUT, 0};
    zmq::poll(&item, 1, left());
  }
  while (true) {
    if (left().count() <= 0) return no_answer();
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, left());
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t msg;
    (void)socket_.recv(msg, zmq::recv_flags::none);
    proto::Envelope envelope;
    if (!envelope.ParseFromArray(msg.data(), static_cast<int>(msg.size())) ||
        !envelope.has_response()) {
      return core::Status::Internal("malformed reply from " + endpoint_);
    }
    proto::Response& response = *envelope.mutable_response();
    if (response.id() != id && response.id() != 0) continue;  // a late answer to an older call
    if (response.code() != proto::OK) return net::StatusFromWire(response.code(), response.error());
    if (!node_.empty() && response.node() != node_) {
      return core::Status::FailedPrecondition("node '" + response.node() + "' answered at " +
                                              endpoint_ + ", where node '" + node_ +
                                              "' was expected");
    }
    return std::move(response);
  }
}

core::Result<proto::GetResult> Client::Get(const std::string& keygroup, const std::string& key) {
  proto::Request r;
  r.mutable_get()->set_keygroup(keygroup);
  r.mutable_get()->set_key(key);
  auto res = Call(std::move(r));
  if (!res.ok()) return res.status();
  return std::move(*res->mutable_get());
}

core::Result<proto::WriteResult> Client::Put(const std::string& keygroup, const std::string& key,
                                             const std::string& value) {
  proto::Request r;
  r.mutable_put()->set_keygroup(keygroup);
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(value);
  auto res = Call(std::move(r));
  if (!res.ok()) return res.status();
  return std::move(*res->mutable_write());
}

core::Status Client::Delete(const std::string& keygroup, const std::string& key) {
  proto::Request r;
  r.mutable_delete_()->set_keygroup(keygroup);
  r.mutable_delete_()->set_key(key);
  return Call(std::move(r)).status();
}

core::Result<proto::ScanResult> Client::Scan(const std::string& keygroup, const std::string& start,
                                             const std::string& end, uint32_t limit) {
  proto::Request r;
  auto* s = r.mutable_scan();
  s->set_keygroup(keygroup);
  s->set_start(start);
  s->set_end(end);
  s->set_limit(limit);
  auto res = Call(std::move(r));
  if (!res.ok()) return res.status();
  return std::move(*res->mutable_scan());
}

core::Result<proto::WriteResult> Client::Append(const std::string& keygroup,
                                                const std::string& value) {
  proto::Request r;
  r.mutable_append()->set_keygroup(keygroup);
  r.mutable_append()->set_value(value);
  auto res = Call(std::move(r));
  if (!res.ok()) return res.status();
  return std::move(*res->mutable_write());
}

core::Status Client::CreateKeygroup(const proto::CreateKeygroupRequest& request) {
  proto::Request r;
  *r.mutable_create_keygroup() = request;
  return Call(std::move(r)).status();
}

core::Status Client::DeleteKeygroup(const std::string& name) {
  proto::Request r;
  r.mutable_delete_keygroup()->set_name(name);
  return Call(std::move(r)).status();
}

core::Result<proto::KeygroupMeta> Client::KeygroupInfo(const std::string& name) {
  proto::Request r;
  r.mutable_keygroup_info()->set_name(name);
  auto res = Call(std::move(r));
  if (!res.ok()) return res.status();
  return std::move(*res->mutable_keygroup());
}

core::Result<proto::KeygroupList> Client::ListKeygroups() {
  proto::Request r;
  r.mutable_list_keygroups();
  auto res = Call(std::move(r));
  if (!res.ok()) return res.status();
  return std::move(*res->mutable_keygroup_list());
}

core::Result<proto::NodeStatus> Client::NodeStatus() {
  proto::Request r;
  r.mutable_node_status();
  auto res = Call(std::move(r));
  if (!res.ok()) return res.status();
  return std::move(*res->mutable_status());
}

core::Status Client::AddReplica(const std::string& keygroup, const std::string& node) {
  proto::Request r;
  r.mutable_add_replica()->set_keygroup(keygroup);
  r.mutable_add_replica()->set_node(node);
  return Call(std::move(r)).status();
}

core::Status Client::RemoveReplica(const std::string& keygroup, const std::string& node) {
  proto::Request r;
  r.mutable_remove_replica()->set_keygroup(keygroup);
  r.mutable_remove_replica()->set_node(node);
  return Call(std::move(r)).status();
}

core::Status Client::DeployFunction(const proto::FunctionSpec& spec,
                                    std::vector<proto::FunctionFile> files) {
  proto::Request r;
  *r.mutable_deploy_function()->mutable_spec() = spec;
  for (auto& f : files) *r.mutable_deploy_function()->add_files() = std::move(f);
  return Call(std::move(r)).status();
}

core::Status Client::SetLink(const std::string& peer, const std::string& spec, bool over_network) {
  proto::Request r;
  r.mutable_set_link()->set_peer(peer);
  r.mutable_set_link()->set_spec(spec);
  r.mutable_set_link()->set_over_network(over_network);
  return Call(std::move(r)).status();
}

core::Result<proto::TracePage> Client::Trace(uint64_t from, uint32_t max_bytes) {
  proto::Request r;
  r.mutable_trace()->set_from(from);
  r.mutable_trace()->set_max_bytes(max_bytes);
  auto res = Call(std::move(r));
  if (!res.ok()) return res.status();
  return std::move(*res->mutable_trace());
}

core::Result<int64_t> Client::Clock() {
  proto::Request r;
  r.mutable_clock();
  auto res = Call(std::move(r));
  if (!res.ok()) return res.status();
  return res->clock().trace_clock_ns();
}

core::Status Client::DeleteFunction(const std::string& name) {
  proto::Request r;
  r.mutable_delete_function()->set_name(name);
  return Call(std::move(r)).status();
}

core::Result<proto::FunctionList> Client::ListFunctions() {
  proto::Request r;
  r.mutable_list_functions();
  auto res = Call(std::move(r));
  if (!res.ok()) return res.status();
  return std::move(*res->mutable_functions());
}

core::Result<std::string> Client::Invoke(const std::string& function, const std::string& body,
                                         bool async) {
  proto::Request r;
  r.mutable_invoke()->set_function(function);
  r.mutable_invoke()->set_body(body);
  r.mutable_invoke()->set_async(async);
  auto res = Call(std::move(r));
  if (!res.ok()) return res.status();
  return std::move(*res->mutable_invoke()->mutable_body());
}

core::Result<proto::FunctionLogs> Client::FunctionLogs(const std::string& name, uint32_t tail) {
  proto::Request r;
  r.mutable_function_logs()->set_name(name);
  r.mutable_function_logs()->set_tail(tail);
  auto res = Call(std::move(r));
  if (!res.ok()) return res.status();
  return std::move(*res->mutable_logs());
}

}  // namespace enoki::adapters
