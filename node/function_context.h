// What a native function sees: its request body and its keygroup, reached through awaitables that
// run each operation at the node (locally where the node holds a ready replica, at the nearest
// replica otherwise) and resume the function with the result:
//
//   Task<core::Result<std::string>> Count(FunctionContext& ctx) {
//     auto old = co_await ctx.kv().Get("count");
//     ...
//     co_return std::to_string(n);
//   }
//
// A write resumes the function once it is durable (and, for synchronous keygroups, replicated).
// The context must outlive every Task that uses it.
#pragma once

#include <coroutine>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "node/node.h"
#include "node/task.h"
#include "node/version.h"

namespace enoki::node {

// Awaitable: runs one request at the node (or, given a target, at that node) and resumes with
// its response.
class NodeCall {
 public:
  NodeCall(Node& node, proto::Request request) : node_(node), request_(std::move(request)) {}
  NodeCall(Node& node, proto::Request request, std::string target, core::Duration timeout)
      : node_(node), request_(std::move(request)), target_(std::move(target)), timeout_(timeout) {}
  bool await_ready() const noexcept { return false; }
  // The answer may come at once (a function that completes without suspending): then the caller
  // does not suspend at all, which is the only safe way, as resuming it from in here could end
  // its frame, this awaiter included, before this returns.
  bool await_suspend(std::coroutine_handle<> h) {
    auto resume = [this, h](proto::Response&& r) {
      response_ = std::move(r);
      if (suspended_) {
        h.resume();
      } else {
        answered_ = true;
      }
    };
    if (target_.empty()) {
      node_.Execute(std::move(request_), std::move(resume));
    } else {
      node_.ExecuteAt(target_, std::move(request_), timeout_, std::move(resume));
    }
    suspended_ = !answered_;
    return suspended_;
  }
  proto::Response await_resume() { return std::move(response_); }

 private:
  Node& node_;
  proto::Request request_;
  std::string target_;
  core::Duration timeout_{};
  proto::Response response_;
  bool answered_ = false;
  bool suspended_ = false;
};

// The log of one deployed function: the last kMaxLines lines, each "<wall us> #<invocation> text".
class FunctionLog {
 public:
  static constexpr size_t kMaxLines = 1000;
  void Add(int64_t wall_us, uint64_t invocation, const std::string& text) {
    if (lines_.size() == kMaxLines) lines_.pop_front();
    lines_.push_back(std::to_string(wall_us) + " #" + std::to_string(invocation) + " " + text);
  }
  const std::deque<std::string>& lines() const { return lines_; }

 private:
  std::deque<std::string> lines_;
};

// The items of one keygroup, as a function reaches them. Every operation goes to the node's trace
// (Node::SetTrace), with the function and invocation that made it.
class Kv {
 public:
  Kv(Node& node, std::string keygroup, std::string function = "", uint64_t invocation = 0)
      : node_(node),
        keygroup_(std::move(keygroup)),
        function_(std::move(function)),
        invocation_(invocation) {}

  // The value of `key`; NOT_FOUND when absent.
  Task<core::Result<std::string>> Get(std::string key);
  // The value of `key` and its version, for a conditional Put; an absent key is not an error: it
  // gives found = false and an empty version.
  struct Versioned {
    bool found = false;
    std::string value;
    Version version;
  };
  Task<core::Result<Versioned>> GetVersioned(std::string key);
  // Writes `key`. With `expected`, only if the key is still at that version (an empty Version:
  // still absent); FAILED_PRECONDITION otherwise, so that a read-modify-write can retry.
  Task<core::Status> Put(std::string key, std::string value,
                         std::optional<Version> expected = std::nullopt);
  Task<core::Status> Delete(std::string key);
  // Items with start <= key < end (empty end: no bound), in key order, at most `limit` (0: the
  // node's default).
  Task<core::Result<std::vector<std::pair<std::string, std::string>>>> Scan(std::string start,
                                                                            std::string end,
                                                                            uint32_t limit);
  const std::string& keygroup() const { return keygroup_; }

 private:
  void Trace(const char* kind, const std::string& key, core::TimePoint start,
             const proto::Response& res);

  Node& node_;
  std::string keygroup_;
  std::string function_;
  uint64_t invocation_;
};

class FunctionContext {
 public:
  using Params = std::map<std::string, std::string>;

  FunctionContext(Node& node, std::string function, std::string keygroup, std::string body,
                  Params params = {}, uint64_t invocation = 0,
                  std::shared_ptr<FunctionLog> log = nullptr)
      : node_(node),
        kv_(node, std::move(keygroup), std::move(function), invocation),
        body_(std::move(body)),
        params_(std::move(params)),
        invocation_(invocation),
        log_(std::move(log)) {}
  Kv& kv() { return kv_; }

  // Calls `function` with `body` at node `at` (empty: this node) and returns its response body,
  // or its error (UNAVAILABLE when `at` did not answer within `timeout`). With `async`, returns an
  // empty body at once for another node (fire and forget: its errors are not seen), or once the
  // function was accepted here.
  Task<core::Result<std::string>> Call(std::string function, std::string body, std::string at = "",
                                       bool async = false,
                                       core::Duration timeout = std::chrono::seconds(15));
  const std::string& body() const { return body_; }
  // The deployment's parameters; `fallback` for one that is not set.
  std::string Param(const std::string& name, const std::string& fallback) const {
    auto it = params_.find(name);
    return it == params_.end() ? fallback : it->second;
  }
  // Unique among this node's invocations.
  uint64_t invocation() const { return invocation_; }
  // Appends a line to the function's log (`enoki functions logs`).
  void Log(const std::string& text) {
    if (log_) log_->Add(node_.env().WallMicros(), invocation_, text);
  }
  // Wall-clock time, in microseconds since the Unix epoch (virtual in simulation).
  int64_t WallMicros() const { return node_.env().WallMicros(); }
  // Resumes after `d` (in virtual time in simulation): a stand-in for work that takes time.
  auto Sleep(core::Duration d) {
    struct Awaiter {
      core::Env& env;
      core::Duration d;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) {
        env.Schedule(d, [h] { h.resume(); });
      }
      void await_resume() const noexcept {}
    };
    return Awaiter{node_.env(), d};
  }

 private:
  Node& node_;
  Kv kv_;
  std::string body_;
  Params params_;
  uint64_t invocation_;
  std::shared_ptr<FunctionLog> log_;
};

}  // namespace enoki::node
