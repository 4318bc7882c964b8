// Key-value awaitables of native functions: each builds a Request and awaits Node::Execute.
#include "node/function_context.h"

#include "net/codec.h"

namespace enoki::node {

void Kv::Trace(const char* kind, const std::string& key, core::TimePoint start,
               const proto::Response& res) {
  net::TraceSink* sink = node_.trace();
  if (sink == nullptr) return;
  proto::TraceRecord record;
  proto::KvOpTrace* op = record.mutable_kv_op();
  op->set_function(function_);
  op->set_invocation(invocation_);
  op->set_kind(kind);
  op->set_keygroup(keygroup_);
  op->set_key(key);
  op->set_local(res.served_by() == node_.id());
  op->set_start_ns(start.time_since_epoch().count());
  op->set_end_ns(node_.env().Now().time_since_epoch().count());
  op->set_code(res.code());
  if (res.has_get() && res.get().has_version()) *op->mutable_version() = res.get().version();
  if (res.has_write()) *op->mutable_version() = res.write().version();
  sink->Record(std::move(record));
}

Task<core::Result<std::string>> Kv::Get(std::string key) {
  proto::Request r;
  r.mutable_get()->set_keygroup(keygroup_);
  r.mutable_get()->set_key(key);
  core::TimePoint start = node_.env().Now();
  proto::Response res = co_await NodeCall(node_, std::move(r));
  Trace("get", key, start, res);
  if (res.code() != proto::OK) co_return net::StatusFromWire(res.code(), res.error());
  co_return std::move(*res.mutable_get()->mutable_value());
}

Task<core::Result<Kv::Versioned>> Kv::GetVersioned(std::string key) {
  proto::Request r;
  r.mutable_get()->set_keygroup(keygroup_);
  r.mutable_get()->set_key(key);
  core::TimePoint start = node_.env().Now();
  proto::Response res = co_await NodeCall(node_, std::move(r));
  Trace("get", key, start, res);
  Versioned out;
  if (res.code() == proto::NOT_FOUND) co_return out;
  if (res.code() != proto::OK) co_return net::StatusFromWire(res.code(), res.error());
  out.found = true;
  out.value = std::move(*res.mutable_get()->mutable_value());
  out.version = Version::FromProto(res.get().version());
  co_return out;
}

Task<core::Status> Kv::Put(std::string key, std::string value, std::optional<Version> expected) {
  proto::Request r;
  r.mutable_put()->set_keygroup(keygroup_);
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(std::move(value));
  if (expected) expected->ToProto(r.mutable_put()->mutable_expected());
  core::TimePoint start = node_.env().Now();
  proto::Response res = co_await NodeCall(node_, std::move(r));
  Trace("put", key, start, res);
  co_return net::StatusFromWire(res.code(), res.error());
}

Task<core::Status> Kv::Delete(std::string key) {
  proto::Request r;
  r.mutable_delete_()->set_keygroup(keygroup_);
  r.mutable_delete_()->set_key(key);
  core::TimePoint start = node_.env().Now();
  proto::Response res = co_await NodeCall(node_, std::move(r));
  Trace("delete", key, start, res);
  co_return net::StatusFromWire(res.code(), res.error());
}

Task<core::Result<std::vector<std::pair<std::string, std::string>>>> Kv::Scan(std::string start,
                                                                              std::string end,
                                                                              uint32_t limit) {
  proto::Request r;
  auto* s = r.mutable_scan();
  s->set_keygroup(keygroup_);
  s->set_start(start);
  s->set_end(std::move(end));
  s->set_limit(limit);
  core::TimePoint began = node_.env().Now();
  proto::Response res = co_await NodeCall(node_, std::move(r));
  Trace("scan", start, began, res);
  if (res.code() != proto::OK) co_return net::StatusFromWire(res.code(), res.error());
  std::vector<std::pair<std::string, std::string>> items;
  for (auto& kv : *res.mutable_scan()->mutable_items()) {
    items.emplace_back(std::move(*kv.mutable_key()), std::move(*kv.mutable_value()));
  }
  co_return items;
}

Task<core::Result<std::string>> FunctionContext::Call(std::string function, std::string body,
                                                      std::string at, bool async,
                                                      core::Duration timeout) {
  proto::Request r;
  r.mutable_invoke()->set_function(std::move(function));
  r.mutable_invoke()->set_body(std::move(body));
  r.mutable_invoke()->set_async(async);
  if (async && !at.empty()) {
    // Fire and forget: the caller does not wait a round trip for the acceptance.
    node_.ExecuteAt(at, std::move(r), timeout, [](proto::Response&&) {});
    co_return std::string();
  }
  // Two statements, not one conditional expression: GCC 12 mishandles the temporaries of a
  // co_await inside ?: (it destroys a Response twice).
  proto::Response res;
  if (at.empty()) {
    res = co_await NodeCall(node_, std::move(r));
  } else {
    res = co_await NodeCall(node_, std::move(r), std::move(at), timeout);
  }
  if (res.code() != proto::OK) co_return net::StatusFromWire(res.code(), res.error());
  co_return std::move(*res.mutable_invoke()->mutable_body());
}

}  // namespace enoki::node
