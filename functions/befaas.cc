// The BeFaaS IoT traffic application of the Enoki paper (../shared/design/paper-reference.md):
// its functions as native functions, with its call graph and state. Where each callee runs is a
// deployment parameter: `at.<callee>` names its node (default: this node). Bodies are plain text:
//
//   trafficsensorfilter  "CAR SPEED"      -> movementplan [sync]
//   movementplan         "CAR SPEED"      keeps the list of cars; -> lightphasecalculation [async]
//   lightphasecalculation "cars=N" | "condition=C" | "emergency"   keeps the light state
//   weathersensorfilter  "TEMP HUMIDITY RAIN(0|1)" -> roadcondition [async, only when it rains]
//   roadcondition        "TEMP HUMIDITY RAIN"      -> lightphasecalculation [sync]
//   objectrecognition    "OBJECT ..."     a fixed-cost stand-in for image recognition (it waits
//                        `cost_ms`, default 5, and recognises the words of the body); ->
//                        trafficstatistics [async]; "ambulance" -> emergencydetection [sync];
//                        -> movementplan [sync] for each car
//   trafficstatistics    "OBJECT ..."     counts objects per second
//   emergencydetection   "OBJECT ..."     -> lightphasecalculation [async]
#include <sstream>
#include <vector>

#include "functions/befaas.h"

namespace enoki::functions {

using node::FunctionContext;
using node::NativeFunction;
using node::Task;
namespace {

using Out = core::Result<std::string>;

std::string At(const FunctionContext& ctx, const std::string& callee) {
  return ctx.Param("at." + callee, "");
}

std::vector<std::string> Words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

Task<Out> TrafficSensorFilter(FunctionContext& ctx) {
  auto w = Words(ctx.body());
  if (w.size() != 2) co_return core::Status::InvalidArgument("trafficsensorfilter: 'CAR SPEED'");
  int speed = std::atoi(w[1].c_str());
  if (speed <= 0 || speed > 300) co_return std::string("filtered");
  std::string at = At(ctx, "movementplan");
  co_return co_await ctx.Call("movementplan", ctx.body(), at);
}

Task<Out> MovementPlan(FunctionContext& ctx) {
  auto w = Words(ctx.body());
  if (w.empty()) co_return core::Status::InvalidArgument("movementplan: 'CAR [SPEED]'");
  auto cars = co_await ctx.kv().Get("cars");
  if (!cars.ok() && cars.status().code() != core::Code::kNotFound) co_return cars.status();
  std::vector<std::string> list = cars.ok() ? Words(*cars) : std::vector<std::string>{};
  list.push_back(w[0]);
  if (list.size() > 100) list.erase(list.begin(), list.end() - 100);  // the last 100 cars
  std::string joined;
  for (const auto& c : list) joined += (joined.empty() ? "" : " ") + c;
  core::Status st = co_await ctx.kv().Put("cars", joined);
  if (!st.ok()) co_return st;
  std::string body = "cars=" + std::to_string(list.size());
  std::string at = At(ctx, "lightphasecalculation");
  auto light = co_await ctx.Call("lightphasecalculation", body, at, /*async=*/true);
  if (!light.ok()) co_return light.status();
  co_return "plan for " + std::to_string(list.size()) + " cars";
}

Task<Out> LightPhaseCalculation(FunctionContext& ctx) {
  auto old = co_await ctx.kv().Get("light");
  if (!old.ok() && old.status().code() != core::Code::kNotFound) co_return old.status();
  // The state is "PHASE" or "PHASE (CONDITION)".
  std::string state = old.ok() ? *old : "red";
  std::string phase = state.substr(0, state.find(' '));
  std::string condition = state.find(' ') == std::string::npos ? "" : state.substr(state.find(' '));
  const std::string& in = ctx.body();
  if (in == "emergency") {
    phase = "red";  // everyone stops
  } else if (in.rfind("cars=", 0) == 0) {
    // Heavy traffic keeps the light green; otherwise the phases alternate.
    if (std::atoi(in.c_str() + 5) > 10) {
      phase = "green";
    } else {
      phase = phase == "green" ? "red" : "green";
    }
  } else if (in.rfind("condition=", 0) == 0) {
    condition = " (" + in.substr(10) + ")";
  } else {
    co_return core::Status::InvalidArgument("lightphasecalculation: unknown input '" + in + "'");
  }
  std::string next = phase + condition;
  core::Status st = co_await ctx.kv().Put("light", next);
  if (!st.ok()) co_return st;
  co_return next;
}

Task<Out> WeatherSensorFilter(FunctionContext& ctx) {
  auto w = Words(ctx.body());
  if (w.size() != 3) {
    co_return core::Status::InvalidArgument("weathersensorfilter: 'TEMP HUMIDITY RAIN'");
  }
  if (w[2] != "1") co_return std::string("dry");
  std::string at = At(ctx, "roadcondition");
  auto r = co_await ctx.Call("roadcondition", ctx.body(), at, /*async=*/true);
  if (!r.ok()) co_return r.status();
  co_return std::string("rain reported");
}

Task<Out> RoadCondition(FunctionContext& ctx) {
  auto w = Words(ctx.body());
  if (w.size() != 3) co_return core::Status::InvalidArgument("roadcondition: 'TEMP HUMIDITY RAIN'");
  std::string condition = std::atoi(w[0].c_str()) <= 0 ? "icy" : "wet";
  std::string at = At(ctx, "lightphasecalculation");
  auto light = co_await ctx.Call("lightphasecalculation", "condition=" + condition, at);
  if (!light.ok()) co_return light.status();
  co_return condition;
}

Task<Out> TrafficStatistics(FunctionContext& ctx) {
  std::string key = "count/" + std::to_string(ctx.WallMicros() / 1'000'000);
  auto old = co_await ctx.kv().Get(key);
  if (!old.ok() && old.status().code() != core::Code::kNotFound) co_return old.status();
  long n = (old.ok() ? std::atol(old->c_str()) : 0) + static_cast<long>(Words(ctx.body()).size());
  std::string value = std::to_string(n);
  core::Status st = co_await ctx.kv().Put(key, value);
  if (!st.ok()) co_return st;
  co_return value;
}

Task<Out> EmergencyDetection(FunctionContext& ctx) {
  std::string at = At(ctx, "lightphasecalculation");
  auto light = co_await ctx.Call("lightphasecalculation", "emergency", at, /*async=*/true);
  if (!light.ok()) co_return light.status();
  co_return std::string("emergency");
}

Task<Out> ObjectRecognition(FunctionContext& ctx) {
  int cost_ms = std::atoi(ctx.Param("cost_ms", "5").c_str());
  co_await ctx.Sleep(std::chrono::milliseconds(cost_ms));  // the stand-in's fixed cost
  auto objects = Words(ctx.body());
  ctx.Log("recognised " + std::to_string(objects.size()) + " objects");
  std::string stats_at = At(ctx, "trafficstatistics");
  auto stats = co_await ctx.Call("trafficstatistics", ctx.body(), stats_at, /*async=*/true);
  if (!stats.ok()) co_return stats.status();
  std::string result;
  for (const auto& o : objects) {
    if (o == "ambulance") {
      std::string at = At(ctx, "emergencydetection");
      auto e = co_await ctx.Call("emergencydetection", o, at);
      if (!e.ok()) co_return e.status();
      result += "emergency ";
    } else if (o.rfind("car", 0) == 0) {
      std::string at = At(ctx, "movementplan");
      auto plan = co_await ctx.Call("movementplan", o, at);
      if (!plan.ok()) co_return plan.status();
      result += o + " ";
    }
  }
  if (result.empty()) co_return std::string("nothing");
  result.pop_back();  // the last space
  co_return result;
}

}  // namespace

void AddBefaasFunctions(node::NativeFunctions& functions) {
  // A function's parameters name the nodes of the functions it calls (at.CALLEE).
  functions.emplace("trafficsensorfilter",
                    NativeFunction{TrafficSensorFilter, {"at.movementplan"}});
  functions.emplace("movementplan", NativeFunction{MovementPlan, {"at.lightphasecalculation"}});
  functions.emplace("lightphasecalculation", NativeFunction{LightPhaseCalculation, {}});
  functions.emplace("weathersensorfilter",
                    NativeFunction{WeatherSensorFilter, {"at.roadcondition"}});
  functions.emplace("roadcondition", NativeFunction{RoadCondition, {"at.lightphasecalculation"}});
  functions.emplace("objectrecognition",
                    NativeFunction{ObjectRecognition,
                                   {"cost_ms", "at.trafficstatistics", "at.emergencydetection",
                                    "at.movementplan"}});
  functions.emplace("trafficstatistics", NativeFunction{TrafficStatistics, {}});
  functions.emplace("emergencydetection",
                    NativeFunction{EmergencyDetection, {"at.lightphasecalculation"}});
}

}  // namespace enoki::functions
