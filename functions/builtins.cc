// The built-in native functions: the paper's microbenchmark functions (docs/functions.md), and
// the registry of all built-ins.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <stdexcept>

#include "functions/befaas.h"
#include "functions/builtins.h"
#include "functions/specs.h"

namespace enoki::functions {

using node::FunctionContext;
using node::Task;
namespace {

using Out = core::Result<std::string>;

// echo: returns the body.
Task<Out> Echo(FunctionContext& ctx) { co_return ctx.body(); }

// Does nothing and answers an empty body: in a simulation, the stand-in for a process function,
// whose cost model gives it its time.
Task<Out> Idle(FunctionContext&) { co_return std::string(); }

// Bytes of a value of the deployment's `size` parameter (default 1).
std::string Payload(const FunctionContext& ctx) {
  size_t size = 1;
  std::string p = ctx.Param("size", "1");
  std::from_chars(p.data(), p.data() + p.size(), size);
  return std::string(size, 'x');
}

// read: returns the value of "data<body>" (the body names the caller, e.g. its thread), writing
// a value of `size` bytes there first if it is missing.
Task<Out> Read(FunctionContext& ctx) {
  std::string key = "data" + ctx.body();
  auto value = co_await ctx.kv().Get(key);
  if (value.ok() || value.status().code() != core::Code::kNotFound) co_return value;
  std::string fresh = Payload(ctx);
  core::Status st = co_await ctx.kv().Put(key, fresh);
  if (!st.ok()) co_return st;
  co_return fresh;
}

// write: writes the body (the item the caller uploads, as the paper's load generator does) under
// a new key and returns the key.
Task<Out> Write(FunctionContext& ctx) {
  std::string key = "item-" + std::to_string(ctx.invocation());
  core::Status st = co_await ctx.kv().Put(key, ctx.body());
  if (!st.ok()) co_return st;
  co_return key;
}

// movingaverage: body "[PREFIX ]NUMBER". Keeps the last `window` (default 10) numbers of PREFIX
// in slots PREFIX/0.. and a pointer PREFIX/ptr; per call it reads the pointer, scans the window,
// writes the number and the pointer (4 KV operations, as in the paper) and returns the average
// of the numbers in the window, the new one included. Unlike the paper's artifact it averages
// the numbers, not their first characters.
Task<Out> MovingAverage(FunctionContext& ctx) {
  std::string prefix = "ma";
  std::string number = ctx.body();
  if (auto space = number.find(' '); space != std::string::npos) {
    prefix = number.substr(0, space);
    number = number.substr(space + 1);
  }
  double x = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), x);
  if (ec != std::errc() || end != number.data() + number.size() || number.empty()) {
    co_return core::Status::InvalidArgument("movingaverage: body must be '[PREFIX ]NUMBER', got '" +
                                            ctx.body() + "'");
  }
  int window = std::max(1, std::atoi(ctx.Param("window", "10").c_str()));
  auto ptr = co_await ctx.kv().Get(prefix + "/ptr");
  if (!ptr.ok() && ptr.status().code() != core::Code::kNotFound) co_return ptr.status();
  int slot = ptr.ok() ? std::atoi(ptr->c_str()) % window : 0;
  // Slots are "PREFIX/s<i>", so the window is one scan of the range [PREFIX/s, PREFIX/t).
  auto items = co_await ctx.kv().Scan(prefix + "/s", prefix + "/t", static_cast<uint32_t>(window));
  if (!items.ok()) co_return items.status();
  std::string slot_key = prefix + "/s" + std::to_string(slot);
  double sum = x;
  int n = 1;
  for (const auto& [key, value] : *items) {
    if (key == slot_key) continue;  // overwritten now
    sum += std::atof(value.c_str());
    ++n;
  }
  core::Status st = co_await ctx.kv().Put(slot_key, number);
  if (st.ok()) st = co_await ctx.kv().Put(prefix + "/ptr", std::to_string((slot + 1) % window));
  if (!st.ok()) co_return st;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", sum / n);
  co_return std::string(buf);
}

// increment: adds 1 to the integer under the key named by the body ("count" if empty; absent
// counts as 0) and returns the new value: one get and one conditional put, retried when another
// writer changed the key in between, so concurrent increments at one replica are never lost.
Task<Out> Increment(FunctionContext& ctx) {
  constexpr int kAttempts = 100;
  std::string key = ctx.body().empty() ? "count" : ctx.body();
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto old = co_await ctx.kv().GetVersioned(key);
    if (!old.ok()) co_return old.status();
    long long n = 0;
    if (old->found) {
      const std::string& v = old->value;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || end != v.data() + v.size()) {
        co_return core::Status::FailedPrecondition("increment: '" + key + "' holds '" + v +
                                                   "', not an integer");
      }
    }
    std::string next = std::to_string(n + 1);
    core::Status st = co_await ctx.kv().Put(key, next, old->version);
    if (st.ok()) co_return next;
    if (st.code() != core::Code::kFailedPrecondition) co_return st;
  }
  co_return core::Status::Unavailable("increment: '" + key + "' kept changing; gave up after " +
                                      std::to_string(kAttempts) + " attempts");
}

// fail: throws, with the body as the message (to see how failures are handled end to end).
Task<Out> Fail(FunctionContext& ctx) {
  throw std::runtime_error(ctx.body().empty() ? "failed on purpose" : ctx.body());
  co_return std::string();  // never reached; makes this a coroutine
}

// replication: an empty body reads "counter" (empty if unset); a body writes it.
Task<Out> Replication(FunctionContext& ctx) {
  if (ctx.body().empty()) {
    auto value = co_await ctx.kv().Get("counter");
    if (!value.ok() && value.status().code() == core::Code::kNotFound) co_return std::string();
    co_return value;
  }
  core::Status st = co_await ctx.kv().Put("counter", ctx.body());
  if (!st.ok()) co_return st;
  co_return ctx.body();
}

}  // namespace

const node::NativeFunctions& Builtins() {
  static const node::NativeFunctions kFunctions = [] {
    node::NativeFunctions functions = {
        {"echo", {Echo, {}}},
        {"fail", {Fail, {}}},
        {"idle", {Idle, {}}},
        {"increment", {Increment, {}}},
        {"read", {Read, {"size"}}},
        {"write", {Write, {}}},
        {"movingaverage", {MovingAverage, {"window"}}},
        {"replication", {Replication, {}}},
    };
    AddBefaasFunctions(functions);
    return functions;
  }();
  return kFunctions;
}

core::Status CheckBuiltinSpec(const proto::FunctionSpec& spec) {
  return node::CheckNativeSpec(Builtins(), spec);
}

}  // namespace enoki::functions
