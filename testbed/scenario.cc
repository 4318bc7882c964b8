// Reading and validating scenario files (YAML), with file:line:column errors.
#include "testbed/scenario.h"
#include "testbed/topology.h"
#include "testbed/yaml_errors.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <queue>
#include <set>
#include <string_view>

#include "functions/specs.h"
#include "net/codec.h"
#include "node/node.h"
#include "node/validation.h"

namespace enoki::testbed {
namespace {

using core::Duration;
using core::Status;

// Reads one scenario file; every error carries "file:line:column: field: ".
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  Status Error(const YAML::Node& at, const std::string& field, const std::string& message) const {
    return YamlError(file_, at, field, message);
  }

  // `n` must be a map whose keys are all in `allowed`; `required` must be there.
  Status Map(const YAML::Node& n, const std::string& field, const std::set<std::string>& allowed,
             const std::set<std::string>& required = {}) const {
    ENOKI_RETURN_IF_ERROR(YamlOnlyKeys(file_, n, field, allowed));
    for (const auto& key : required) {
      if (!n[key]) return Error(n, YamlJoin(field, key), "missing (required)");
    }
    return Status::Ok();
  }

  core::Result<std::string> Str(const YAML::Node& n, const std::string& field) const {
    if (!n.IsScalar()) return Error(n, field, "expected a single value");
    return n.Scalar();
  }
  core::Result<std::string> Name(const YAML::Node& n, const std::string& field) const {
    auto s = Str(n, field);
    if (!s.ok()) return s;
    if (auto st = node::ValidateName("the name", *s); !st.ok())
      return Error(n, field, st.message());
    return s;
  }
  core::Result<int64_t> Int(const YAML::Node& n, const std::string& field, int64_t min,
                            int64_t max) const {
    return YamlInt(file_, n, field, min, max);
  }
  // "250ms", "2s", "500us", "1.5m", "1h"; a bare 0 is allowed.
  core::Result<Duration> Time(const YAML::Node& n, const std::string& field) const {
    auto s = Str(n, field);
    if (!s.ok()) return s.status();
    static const std::pair<const char*, double> kUnits[] = {
        {"us", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600}};
    size_t end = 0;
    while (end < s->size() &&
           (std::isdigit(static_cast<unsigned char>((*s)[end])) || (*s)[end] == '.')) {
      ++end;
    }
    double v = 0;
    auto [p, ec] = std::from_chars(s->data(), s->data() + end, v);
    std::string unit = s->substr(end);
    bool ok = end > 0 && ec == std::errc() && p == s->data() + end;
    double seconds = -1;
    if (ok && unit.empty() && v == 0) seconds = 0;
    for (const auto& [name, factor] : kUnits) {
      if (ok && unit == name) seconds = v * factor;
    }
    if (seconds < 0 || !std::isfinite(seconds) || seconds > 365 * 24 * 3600.0) {
      return Error(n, field, "'" + *s + "' is not a duration such as 250ms or 2s (up to a year)");
    }
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
  }
  // The `name` field of item `n` (at `field`), which no earlier item of its list has.
  core::Result<std::string> UniqueName(const YAML::Node& n, const std::string& field,
                                       const std::string& kind, std::set<std::string>& seen) const {
    auto name = Name(n["name"], field + ".name");
    if (!name.ok()) return name;
    if (!seen.insert(*name).second) {
      return Error(n["name"], field + ".name", kind + " '" + *name + "' is declared twice");
    }
    return name;
  }
  // A list of names, or one name.
  core::Result<std::vector<std::string>> Names(const YAML::Node& n,
                                               const std::string& field) const {
    std::vector<std::string> out;
    if (n.IsScalar()) {
      auto s = Name(n, field);
      if (!s.ok()) return s.status();
      out.push_back(*s);
      return out;
    }
    if (!n.IsSequence() || n.size() == 0) return Error(n, field, "expected a name or a list");
    for (size_t i = 0; i < n.size(); ++i) {
      auto s = Name(n[i], YamlItem(field, i));
      if (!s.ok()) return s.status();
      out.push_back(*s);
    }
    return out;
  }
  // A link's fields (delay, jitter, distribution, loss, drop, rate) in map `n`.
  core::Result<net::LinkSpec> Link(const YAML::Node& n, const std::string& field) const {
    std::string text;
    for (const char* key : {"delay", "jitter", "distribution", "loss", "drop", "rate"}) {
      if (!n[key]) continue;
      auto v = Str(n[key], YamlJoin(field, key));
      if (!v.ok()) return v.status();
      if (v->find_first_of(", =") != std::string::npos) {
        return Error(n[key], YamlJoin(field, key), "'" + *v + "' is not one value");
      }
      std::string k = std::string(key) == "distribution" ? "dist" : key;
      auto one = net::LinkSpec::Parse(k + "=" + *v);
      if (!one.ok()) {
        std::string why = one.status().message();
        return Error(n[key], YamlJoin(field, key), why.substr(why.find(": ") + 2));
      }
      text += (text.empty() ? "" : ",") + k + "=" + *v;
    }
    return net::LinkSpec::Parse(text);
  }

  // A cost model: a time ("150us"), or {mean: 5ms, jitter: 1ms, distribution: normal}.
  core::Result<sim::CostModel> Cost(const YAML::Node& n, const std::string& field) const {
    if (!n.IsMap()) {
      auto t = Time(n, field);
      if (!t.ok()) return t.status();
      return sim::CostModel::Fixed(*t);
    }
    sim::CostModel cost;
    ENOKI_RETURN_IF_ERROR(Map(n, field, {"mean", "jitter", "distribution"}, {"mean"}));
    auto mean = Time(n["mean"], YamlJoin(field, "mean"));
    if (!mean.ok()) return mean.status();
    cost.mean = *mean;
    if (n["jitter"]) {
      auto jitter = Time(n["jitter"], YamlJoin(field, "jitter"));
      if (!jitter.ok()) return jitter.status();
      cost.jitter = *jitter;
    }
    if (n["distribution"]) {
      auto d = Str(n["distribution"], YamlJoin(field, "distribution"));
      if (!d.ok()) return d.status();
      if (*d != "uniform" && *d != "normal") {
        return Error(n["distribution"], YamlJoin(field, "distribution"),
                     "'" + *d + "' is not one of uniform, normal");
      }
      cost.distribution =
          *d == "normal" ? net::LinkSpec::Jitter::kNormal : net::LinkSpec::Jitter::kUniform;
    }
    return cost;
  }

 private:
  std::string file_;
};

std::optional<Tier> TierFromName(const std::string& name) {
  for (Tier t : {Tier::kCloud, Tier::kEdge, Tier::kClient}) {
    if (name == TierName(t)) return t;
  }
  return std::nullopt;
}

core::Result<Tier> ParseTier(const Reader& r, const YAML::Node& n, const std::string& field) {
  auto s = r.Str(n, field);
  if (!s.ok()) return s.status();
  if (auto tier = TierFromName(*s)) return *tier;
  return r.Error(n, field, "'" + *s + "' is not one of cloud, edge, client");
}

// "0", "0,2", "1-3": CPU numbers, each at most once, in increasing order.
core::Result<std::vector<int>> ParseCpuList(const Reader& r, const YAML::Node& n,
                                            const std::string& field) {
  auto text = r.Str(n, field);
  if (!text.ok()) return text.status();
  std::vector<int> cpus;
  auto bad = r.Error(n, field, "'" + *text + "' is not a CPU list such as 0, 0,2 or 1-3");
  for (size_t pos = 0; pos <= text->size();) {
    size_t end = std::min(text->find(',', pos), text->size());
    std::string item = text->substr(pos, end - pos);
    int lo = 0, hi = 0;
    auto dash = item.find('-');
    std::string a = item.substr(0, dash), b = dash == std::string::npos ? a : item.substr(dash + 1);
    auto [pa, ea] = std::from_chars(a.data(), a.data() + a.size(), lo);
    auto [pb, eb] = std::from_chars(b.data(), b.data() + b.size(), hi);
    if (a.empty() || b.empty() || ea != std::errc() || eb != std::errc() ||
        pa != a.data() + a.size() || pb != b.data() + b.size() || lo < 0 || hi < lo || hi > 4095) {
      return bad;
    }
    for (int c = lo; c <= hi; ++c) {
      if (!cpus.empty() && c <= cpus.back()) return bad;
      cpus.push_back(c);
    }
    pos = end + 1;
  }
  return cpus;
}

Status LoadNodes(const Reader& r, const YAML::Node& list, Scenario& s) {
  if (!list || !list.IsSequence() || list.size() == 0) {
    return r.Error(list, "nodes", "expected a list of at least one node");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& n = list[i];
    std::string f = YamlItem("nodes", i);
    ENOKI_RETURN_IF_ERROR(
        r.Map(n, f, {"name", "tier", "cpus", "forward_timeout"}, {"name", "tier"}));
    NodeDecl d;
    auto name = r.UniqueName(n, f, "node", names);
    if (!name.ok()) return name.status();
    d.name = *name;
    auto tier = ParseTier(r, n["tier"], f + ".tier");
    if (!tier.ok()) return tier.status();
    d.tier = *tier;
    if (n["cpus"]) {
      if (d.tier == Tier::kClient) {
        return r.Error(n["cpus"], f + ".cpus",
                       "a client node's callers run in the enoki process: cpus applies to cloud "
                       "and edge nodes");
      }
      auto cpus = ParseCpuList(r, n["cpus"], f + ".cpus");
      if (!cpus.ok()) return cpus.status();
      d.cpus = *cpus;
    }
    if (n["forward_timeout"]) {
      std::string field = f + ".forward_timeout";
      if (d.tier == Tier::kClient) {
        return r.Error(n["forward_timeout"], field,
                       "a client node forwards nothing: forward_timeout applies to cloud and "
                       "edge nodes");
      }
      auto t = r.Time(n["forward_timeout"], field);
      if (!t.ok()) return t.status();
      if (*t < std::chrono::milliseconds(1) || *t > std::chrono::hours(1) ||
          *t != std::chrono::duration_cast<std::chrono::milliseconds>(*t)) {
        return r.Error(n["forward_timeout"], field, "must be whole milliseconds, from 1ms to 1h");
      }
      d.forward_timeout = *t;
    }
    s.node_index[d.name] = s.nodes.size();
    s.nodes.push_back(d);
  }
  return Status::Ok();
}

// "edge-cloud": a pair of tiers.
core::Result<std::pair<Tier, Tier>> ParseTierPair(const Reader& r, const YAML::Node& key,
                                                  const std::string& field) {
  std::string text = key.Scalar();
  auto dash = text.find('-');
  auto bad = r.Error(key, field, "'" + text + "' is not a pair of tiers such as edge-cloud");
  if (dash == std::string::npos) return bad;
  auto a = TierFromName(text.substr(0, dash)), b = TierFromName(text.substr(dash + 1));
  if (!a || !b) return bad;
  return TierPair(*a, *b);
}

core::Result<LinkDecl> LoadLink(const Reader& r, const YAML::Node& n, const std::string& f,
                                const Scenario& s, const std::set<std::string>& extra) {
  std::set<std::string> allowed = {"between", "delay", "jitter", "distribution",
                                   "loss",    "drop",  "rate"};
  allowed.insert(extra.begin(), extra.end());
  ENOKI_RETURN_IF_ERROR(r.Map(n, f, allowed, {"between"}));
  auto between = r.Names(n["between"], f + ".between");
  if (!between.ok()) return between.status();
  if (between->size() != 2 || (*between)[0] == (*between)[1]) {
    return r.Error(n["between"], f + ".between", "expected two different nodes");
  }
  for (const auto& name : *between) {
    if (s.FindNode(name) == nullptr) {
      return r.Error(n["between"], f + ".between", "no node '" + name + "'");
    }
  }
  auto spec = r.Link(n, f);
  if (!spec.ok()) return spec.status();
  return LinkDecl{(*between)[0], (*between)[1], *spec};
}

Status LoadTopology(const Reader& r, const YAML::Node& root, Scenario& s) {
  if (const auto& d = root["tier_links"]) {
    if (!d.IsMap()) return r.Error(d, "tier_links", "expected a map such as edge-cloud: {...}");
    for (auto it = d.begin(); it != d.end(); ++it) {
      std::string f = "tier_links." + it->first.Scalar();
      auto pair = ParseTierPair(r, it->first, f);
      if (!pair.ok()) return pair.status();
      ENOKI_RETURN_IF_ERROR(
          r.Map(it->second, f, {"delay", "jitter", "distribution", "loss", "drop", "rate"}));
      auto spec = r.Link(it->second, f);
      if (!spec.ok()) return spec.status();
      s.tier_links[*pair] = *spec;
    }
  }
  if (const auto& list = root["links"]) {
    if (!list.IsSequence()) return r.Error(list, "links", "expected a list");
    std::set<std::pair<std::string, std::string>> seen;
    for (size_t i = 0; i < list.size(); ++i) {
      std::string f = YamlItem("links", i);
      auto link = LoadLink(r, list[i], f, s, {});
      if (!link.ok()) return link.status();
      auto key = std::minmax(link->a, link->b);
      if (!seen.insert(key).second) {
        return r.Error(list[i], f,
                       "a link between " + link->a + " and " + link->b + " is declared twice");
      }
      s.links.push_back(*link);
    }
  }
  return Status::Ok();
}

Status LoadKeygroups(const Reader& r, const YAML::Node& list, Scenario& s) {
  if (!list) return Status::Ok();
  if (!list.IsSequence()) return r.Error(list, "keygroups", "expected a list");
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& n = list[i];
    std::string f = YamlItem("keygroups", i);
    ENOKI_RETURN_IF_ERROR(
        r.Map(n, f, {"name", "replicas", "mode", "mutability"}, {"name", "replicas"}));
    KeygroupDecl k;
    auto name = r.UniqueName(n, f, "keygroup", names);
    if (!name.ok()) return name.status();
    k.name = *name;
    auto replicas = r.Names(n["replicas"], f + ".replicas");
    if (!replicas.ok()) return replicas.status();
    for (const auto& rep : *replicas) {
      const NodeDecl* node = s.FindNode(rep);
      if (node == nullptr) return r.Error(n["replicas"], f + ".replicas", "no node '" + rep + "'");
      if (node->tier == Tier::kClient) {
        return r.Error(n["replicas"], f + ".replicas",
                       "'" + rep + "' is a client node, which holds no replicas");
      }
    }
    k.replicas = *replicas;
    if (n["mode"]) {
      auto mode = r.Str(n["mode"], f + ".mode");
      if (!mode.ok()) return mode.status();
      if (*mode != "async" && *mode != "sync") {
        return r.Error(n["mode"], f + ".mode", "'" + *mode + "' is not one of async, sync");
      }
      k.mode = *mode == "sync" ? proto::SYNC : proto::ASYNC;
    }
    if (n["mutability"]) {
      auto m = r.Str(n["mutability"], f + ".mutability");
      if (!m.ok()) return m.status();
      if (*m != "mutable" && *m != "append-only") {
        return r.Error(n["mutability"], f + ".mutability",
                       "'" + *m + "' is not one of mutable, append-only");
      }
      k.mutability = *m == "append-only" ? proto::APPEND_ONLY : proto::MUTABLE;
    }
    s.keygroups.push_back(k);
  }
  return Status::Ok();
}

Status LoadFunctions(const Reader& r, const YAML::Node& list, const std::string& base_dir,
                     Scenario& s) {
  if (!list) return Status::Ok();
  if (!list.IsSequence()) return r.Error(list, "functions", "expected a list");
  std::set<std::string> deployed;  // "name@node"
  std::set<std::string_view> keygroup_names;
  for (const auto& k : s.keygroups) keygroup_names.insert(k.name);
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& n = list[i];
    std::string f = YamlItem("functions", i);
    ENOKI_RETURN_IF_ERROR(r.Map(n, f,
                                {"name", "nodes", "runtime", "handler", "keygroup", "params",
                                 "timeout", "concurrency", "cost"},
                                {"name", "nodes", "handler", "keygroup"}));
    FunctionDecl d;
    // A name may have several entries (e.g. one per placement) but one deployment per node.
    auto name = r.Name(n["name"], f + ".name");
    if (!name.ok()) return name.status();
    d.spec.set_name(*name);
    auto nodes = r.Names(n["nodes"], f + ".nodes");
    if (!nodes.ok()) return nodes.status();
    for (const auto& at : *nodes) {
      const NodeDecl* node = s.FindNode(at);
      if (node == nullptr) return r.Error(n["nodes"], f + ".nodes", "no node '" + at + "'");
      if (node->tier == Tier::kClient) {
        return r.Error(n["nodes"], f + ".nodes",
                       "'" + at + "' is a client node, which runs no functions");
      }
      if (!deployed.insert(*name + "@" + at).second) {
        return r.Error(n["nodes"], f + ".nodes",
                       "function '" + *name + "' is deployed at '" + at + "' twice");
      }
    }
    d.nodes = *nodes;
    std::string runtime = "native";
    if (n["runtime"]) {
      auto rt = r.Str(n["runtime"], f + ".runtime");
      if (!rt.ok()) return rt.status();
      runtime = *rt;
    }
    auto handler = r.Str(n["handler"], f + ".handler");
    if (!handler.ok()) return handler.status();
    if (runtime == "native") {
      proto::FunctionSpec named;
      named.set_handler(*handler);
      Status st = functions::CheckBuiltinSpec(named);
      if (!st.ok()) return r.Error(n["handler"], f + ".handler", st.message());
    } else if (runtime == "process") {
      std::filesystem::path path(*handler);
      if (path.is_relative()) path = std::filesystem::path(base_dir) / path;
      path = path.lexically_normal();
      if (!std::filesystem::is_regular_file(path)) {
        return r.Error(n["handler"], f + ".handler", "no program at " + path.string());
      }
      *handler = path.string();
    } else {
      return r.Error(n["runtime"], f + ".runtime",
                     "'" + runtime + "' is not one of native, process");
    }
    d.spec.set_runtime(runtime);
    d.spec.set_handler(*handler);
    auto kg = r.Name(n["keygroup"], f + ".keygroup");
    if (!kg.ok()) return kg.status();
    if (!keygroup_names.contains(*kg)) {
      return r.Error(n["keygroup"], f + ".keygroup", "no keygroup '" + *kg + "'");
    }
    d.spec.set_keygroup(*kg);
    if (const auto& params = n["params"]) {
      if (!params.IsMap()) return r.Error(params, f + ".params", "expected a map of NAME: VALUE");
      for (auto it = params.begin(); it != params.end(); ++it) {
        auto v = r.Str(it->second, f + ".params." + it->first.Scalar());
        if (!v.ok()) return v.status();
        (*d.spec.mutable_params())[it->first.Scalar()] = *v;
      }
      if (runtime == "native") {
        Status st = functions::CheckBuiltinSpec(d.spec);
        if (!st.ok()) return r.Error(params, f + ".params", st.message());
      }
    }
    if (n["timeout"]) {
      auto t = r.Time(n["timeout"], f + ".timeout");
      if (!t.ok()) return t.status();
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*t).count();
      if (ms < 1 || ms > std::numeric_limits<uint32_t>::max()) {
        return r.Error(n["timeout"], f + ".timeout", "must be from 1ms to 49 days");
      }
      d.spec.set_timeout_ms(static_cast<uint32_t>(ms));
    }
    if (n["cost"]) {
      auto cost = r.Cost(n["cost"], f + ".cost");
      if (!cost.ok()) return cost.status();
      d.cost = *cost;
    }
    if (n["concurrency"]) {
      auto c = r.Int(n["concurrency"], f + ".concurrency", 1, 100000);
      if (!c.ok()) return c.status();
      d.spec.set_concurrency(static_cast<uint32_t>(*c));
    }
    for (const auto& at : d.nodes) s.function_index[{d.spec.name(), at}] = s.functions.size();
    s.functions.push_back(d);
  }
  return Status::Ok();
}

// ZeroMQ's limit on a node's frames (node::MaxMessageBytes) applies to them as sent, which CURVE
// makes this much longer: the MESSAGE command's name and nonce, a flags byte and the MAC.
constexpr size_t kCurveFrameBytes = 33;

// The requests of workload `w` (body parsed) fit in a frame its node takes: a node drops a larger
// one unanswered, and the run would wait out the request's timeout. The longest request is the
// longest body in a request as NodeCalls sends it (testbed/node_calls.cc), with the widest id and
// arrival stamp. A run's nodes have the default value limit.
Status CheckBodyFits(const Reader& r, const YAML::Node& at, const std::string& field,
                     const WorkloadDecl& w, const Scenario& s) {
  constexpr size_t kValueLimit = node::kDefaultMaxValueBytes;
  const size_t limit = node::MaxMessageBytes(kValueLimit) - (s.curve ? kCurveFrameBytes : 0);
  uint64_t body = MaxBodyBytes(w.body_parts, w.callers,
                               w.requests ? *w.requests - 1 : std::numeric_limits<int64_t>::max());
  if (body <= limit) {
    proto::Request request;
    request.set_id(std::numeric_limits<uint64_t>::max());
    request.set_to(w.node);
    request.mutable_invoke()->set_function(w.function);
    request.mutable_invoke()->set_body(std::string(body, 'x'));
    std::string frame;
    net::EncodeEnvelope(request, &frame);
    net::AppendEnvelopeTime(proto::Envelope::kDeliverAtNsFieldNumber, core::TimePoint::max(),
                            &frame);
    if (frame.size() <= limit) return Status::Ok();
  }
  return r.Error(at, field,
                 "workload '" + w.name + "' sends bodies of up to " + std::to_string(body) +
                     " bytes, in requests larger than the " + std::to_string(limit) +
                     " bytes node '" + w.node + "' takes (with the default value limit of " +
                     std::to_string(kValueLimit) + " bytes" +
                     (s.curve ? ", less " + std::to_string(kCurveFrameBytes) + " for CURVE" : "") +
                     "), which it would drop unanswered");
}

Status LoadWorkloads(const Reader& r, const YAML::Node& list, Scenario& s) {
  if (!list) return Status::Ok();
  if (!list.IsSequence()) return r.Error(list, "workloads", "expected a list");
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& n = list[i];
    std::string f = YamlItem("workloads", i);
    ENOKI_RETURN_IF_ERROR(
        r.Map(n, f,
              {"name", "client", "function", "node", "callers", "rate", "arrivals", "think",
               "requests", "duration", "start", "body", "stale_against"},
              {"name", "client", "function", "node"}));
    WorkloadDecl w;
    auto name = r.UniqueName(n, f, "workload", names);
    if (!name.ok()) return name.status();
    w.name = *name;
    auto client = r.Name(n["client"], f + ".client");
    if (!client.ok()) return client.status();
    const NodeDecl* c = s.FindNode(*client);
    if (c == nullptr || c->tier != Tier::kClient) {
      return r.Error(n["client"], f + ".client", "'" + *client + "' is not a client node");
    }
    w.client = *client;
    auto fn = r.Name(n["function"], f + ".function");
    if (!fn.ok()) return fn.status();
    auto named = s.function_index.lower_bound({*fn, ""});
    if (named == s.function_index.end() || named->first.first != *fn) {
      return r.Error(n["function"], f + ".function", "no function '" + *fn + "'");
    }
    w.function = *fn;
    auto at = r.Name(n["node"], f + ".node");
    if (!at.ok()) return at.status();
    if (FindFunction(s, *fn, *at) == nullptr) {
      return r.Error(n["node"], f + ".node",
                     "function '" + *fn + "' is not deployed at '" + *at + "'");
    }
    w.node = *at;
    if (n["callers"]) {
      auto callers = r.Int(n["callers"], f + ".callers", 1, 100000);
      if (!callers.ok()) return callers.status();
      w.callers = static_cast<int>(*callers);
    }
    if (n["rate"]) {
      auto rate = r.Str(n["rate"], f + ".rate");
      if (!rate.ok()) return rate.status();
      double v = 0;
      char unit[8] = {0};
      if (std::sscanf(rate->c_str(), "%lf/%7s", &v, unit) != 2 || std::string(unit) != "s" ||
          !std::isfinite(v) || v <= 0 || v > 1e6) {
        return r.Error(n["rate"], f + ".rate",
                       "'" + *rate + "' is not a rate per caller such as 10/s (at most 1000000/s)");
      }
      w.rate = v;
    }
    if (n["arrivals"]) {
      auto arrivals = r.Str(n["arrivals"], f + ".arrivals");
      if (!arrivals.ok()) return arrivals.status();
      if (!w.rate) {
        return r.Error(n["arrivals"], f + ".arrivals", "only for an open loop (give a rate)");
      }
      if (*arrivals != "periodic" && *arrivals != "poisson") {
        return r.Error(n["arrivals"], f + ".arrivals",
                       "'" + *arrivals + "' is not one of periodic, poisson");
      }
      w.poisson = *arrivals == "poisson";
    }
    if (n["think"]) {
      if (w.rate) {
        return r.Error(n["think"], f + ".think",
                       "only for a closed loop (no rate): an open loop sends at its rate");
      }
      auto think = r.Time(n["think"], f + ".think");
      if (!think.ok()) return think.status();
      w.think = *think;
    }
    if (n["requests"]) {
      auto req = r.Int(n["requests"], f + ".requests", 1, 1000000000);
      if (!req.ok()) return req.status();
      w.requests = *req;
    }
    if (n["duration"]) {
      auto d = r.Time(n["duration"], f + ".duration");
      if (!d.ok()) return d.status();
      if (*d <= Duration(0)) return r.Error(n["duration"], f + ".duration", "must be positive");
      w.duration = *d;
    }
    if (!w.requests && !w.duration) {
      return r.Error(n, f, "give requests (per caller) or a duration, or both");
    }
    if (n["start"]) {
      auto start = r.Time(n["start"], f + ".start");
      if (!start.ok()) return start.status();
      w.start = *start;
    }
    if (n["body"]) {
      auto body = r.Str(n["body"], f + ".body");
      if (!body.ok()) return body.status();
      auto parts = ParseBody(*body);
      if (!parts.ok()) return r.Error(n["body"], f + ".body", parts.status().message());
      w.body = *body;
      w.body_parts = std::move(parts.value());
      ENOKI_RETURN_IF_ERROR(CheckBodyFits(r, n["body"], f + ".body", w, s));
    }
    if (n["stale_against"]) {
      auto against = r.Name(n["stale_against"], f + ".stale_against");
      if (!against.ok()) return against.status();
      w.stale_against = *against;
    }
    s.workloads.push_back(w);
  }
  // A workload's reads are judged against the writes of another of the same function.
  for (size_t i = 0; i < list.size(); ++i) {
    const WorkloadDecl& w = s.workloads[i];
    if (w.stale_against.empty()) continue;
    const YAML::Node& at = list[i]["stale_against"];
    std::string f = YamlItem("workloads", i) + ".stale_against";
    auto writes = std::find_if(s.workloads.begin(), s.workloads.end(),
                               [&](const WorkloadDecl& o) { return o.name == w.stale_against; });
    if (writes == s.workloads.end()) {
      return r.Error(at, f, "no workload '" + w.stale_against + "'");
    }
    if (writes->name == w.name) return r.Error(at, f, "a workload's reads need another's writes");
    if (writes->function != w.function) {
      return r.Error(at, f,
                     "workload '" + w.stale_against + "' calls function '" + writes->function +
                         "', not '" + w.function + "': the writes must be of the same function");
    }
  }
  return Status::Ok();
}

Status LoadTimeline(const Reader& r, const YAML::Node& list, Scenario& s) {
  if (!list) return Status::Ok();
  if (!list.IsSequence()) return r.Error(list, "timeline", "expected a list");
  std::set<std::string> down;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& n = list[i];
    std::string f = YamlItem("timeline", i);
    ENOKI_RETURN_IF_ERROR(
        r.Map(n, f, {"at", "link", "partition", "heal", "crash", "restart", "phase"}, {"at"}));
    TimelineEvent e;
    auto at = r.Time(n["at"], f + ".at");
    if (!at.ok()) return at.status();
    e.at = *at;
    if (!s.timeline.empty() && e.at < s.timeline.back().at) {
      return r.Error(n["at"], f + ".at", "events must be in time order");
    }
    int kinds = 0;
    for (const char* k : {"link", "partition", "heal", "crash", "restart", "phase"}) {
      kinds += n[k] ? 1 : 0;
    }
    if (kinds != 1) {
      return r.Error(n, f, "give exactly one of link, partition, heal, crash, restart, phase");
    }
    if (n["link"]) {
      e.kind = TimelineEvent::Kind::kLink;
      auto link = LoadLink(r, n["link"], f + ".link", s, {});
      if (!link.ok()) return link.status();
      e.link = *link;
    } else if (n["partition"]) {
      e.kind = TimelineEvent::Kind::kPartition;
      const auto& groups = n["partition"];
      if (!groups.IsSequence() || groups.size() < 2) {
        return r.Error(groups, f + ".partition", "expected two or more groups of nodes");
      }
      std::set<std::string> seen;
      for (size_t g = 0; g < groups.size(); ++g) {
        auto names = r.Names(groups[g], YamlItem(f + ".partition", g));
        if (!names.ok()) return names.status();
        for (const auto& name : *names) {
          if (s.FindNode(name) == nullptr) {
            return r.Error(groups[g], YamlItem(f + ".partition", g), "no node '" + name + "'");
          }
          if (!seen.insert(name).second) {
            return r.Error(groups[g], YamlItem(f + ".partition", g),
                           "node '" + name + "' is in two groups");
          }
        }
        e.groups.push_back(*names);
      }
    } else if (n["heal"]) {
      e.kind = TimelineEvent::Kind::kHeal;
      if (n["heal"].Scalar() != "true") {
        return r.Error(n["heal"], f + ".heal", "write heal: true (it heals every partition)");
      }
    } else if (n["crash"] || n["restart"]) {
      bool crash = static_cast<bool>(n["crash"]);
      const auto& v = crash ? n["crash"] : n["restart"];
      std::string field = f + (crash ? ".crash" : ".restart");
      e.kind = crash ? TimelineEvent::Kind::kCrash : TimelineEvent::Kind::kRestart;
      auto name = r.Name(v, field);
      if (!name.ok()) return name.status();
      const NodeDecl* node = s.FindNode(*name);
      if (node == nullptr || node->tier == Tier::kClient) {
        return r.Error(v, field, "'" + *name + "' is not a cloud or edge node");
      }
      if (crash && !down.insert(*name).second) {
        return r.Error(v, field, "'" + *name + "' is down already");
      }
      if (!crash && down.erase(*name) == 0) {
        return r.Error(v, field, "'" + *name + "' is not down (crash it first)");
      }
      e.node = *name;
    } else {
      e.kind = TimelineEvent::Kind::kPhase;
      auto phase = r.Str(n["phase"], f + ".phase");
      if (!phase.ok()) return phase.status();
      e.phase = *phase;
    }
    s.timeline.push_back(e);
  }
  return Status::Ok();
}

}  // namespace

const char* TierName(Tier tier) {
  switch (tier) {
    case Tier::kCloud:
      return "cloud";
    case Tier::kEdge:
      return "edge";
    case Tier::kClient:
      return "client";
  }
  return "?";
}

const FunctionDecl* FindFunction(const Scenario& s, const std::string& name,
                                 const std::string& node) {
  auto it = s.function_index.find({name, node});
  return it == s.function_index.end() ? nullptr : &s.functions[it->second];
}

const NodeDecl* Scenario::FindNode(const std::string& name) const {
  auto it = node_index.find(name);
  return it == node_index.end() ? nullptr : &nodes[it->second];
}

core::Result<Scenario> ParseScenario(const std::string& text, const std::string& file) {
  Reader r(file);
  auto parsed = ParseYaml(text, file);
  if (!parsed.ok()) return parsed.status();
  YAML::Node root = *parsed;
  Scenario s;
  s.file = file;
  s.text = text;
  ENOKI_RETURN_IF_ERROR(r.Map(root, "",
                              {"name", "description", "seed", "warmup", "results", "traces",
                               "commit_cost", "security", "security_cost", "nodes", "tier_links",
                               "links", "keygroups", "functions", "workloads", "timeline"},
                              {"name", "nodes"}));
  auto name = r.Name(root["name"], "name");
  if (!name.ok()) return name.status();
  s.name = *name;
  if (root["description"]) {
    auto d = r.Str(root["description"], "description");
    if (!d.ok()) return d.status();
    s.description = *d;
  }
  if (root["seed"]) {
    auto seed = r.Int(root["seed"], "seed", 0, std::numeric_limits<int64_t>::max());
    if (!seed.ok()) return seed.status();
    s.seed = static_cast<uint64_t>(*seed);
  }
  if (root["warmup"]) {
    auto w = r.Time(root["warmup"], "warmup");
    if (!w.ok()) return w.status();
    s.warmup = *w;
  }
  if (root["results"]) {
    auto res = r.Str(root["results"], "results");
    if (!res.ok()) return res.status();
    s.results = *res;
  }
  if (root["traces"]) {
    const std::string& v = root["traces"].Scalar();
    if (v != "true" && v != "false") {
      return r.Error(root["traces"], "traces", "'" + v + "' is not true or false");
    }
    s.traces = v == "true";
  }
  if (root["commit_cost"]) {
    auto cost = r.Cost(root["commit_cost"], "commit_cost");
    if (!cost.ok()) return cost.status();
    s.commit_cost = *cost;
  }
  if (root["security"]) {
    auto mode = r.Str(root["security"], "security");
    if (!mode.ok()) return mode.status();
    if (*mode != "none" && *mode != "curve") {
      return r.Error(root["security"], "security", "'" + *mode + "' is not none or curve");
    }
    s.curve = *mode == "curve";
  }
  if (root["security_cost"]) {
    if (!s.curve) {
      return r.Error(root["security_cost"], "security_cost",
                     "is the cost of CURVE, and needs security: curve");
    }
    auto cost = r.Cost(root["security_cost"], "security_cost");
    if (!cost.ok()) return cost.status();
    s.security_cost = *cost;
  }
  std::string base_dir = std::filesystem::path(file).parent_path().string();
  ENOKI_RETURN_IF_ERROR(LoadNodes(r, root["nodes"], s));
  ENOKI_RETURN_IF_ERROR(LoadTopology(r, root, s));
  ENOKI_RETURN_IF_ERROR(LoadKeygroups(r, root["keygroups"], s));
  ENOKI_RETURN_IF_ERROR(LoadFunctions(r, root["functions"], base_dir, s));
  ENOKI_RETURN_IF_ERROR(LoadWorkloads(r, root["workloads"], s));
  ENOKI_RETURN_IF_ERROR(LoadTimeline(r, root["timeline"], s));
  if (!CountTalkingPairs(s, kMaxTalkingPairs)) {
    // Named at the keygroup with the most replicas, the usual cause.
    size_t largest = 0;
    for (size_t i = 1; i < s.keygroups.size(); ++i) {
      if (s.keygroups[i].replicas.size() > s.keygroups[largest].replicas.size()) largest = i;
    }
    std::string why = "the nodes would talk in more than " + std::to_string(kMaxTalkingPairs) +
                      " pairs, which no run holds (a keygroup replicated on R nodes makes R(R-1)";
    if (s.keygroups.empty()) return Status::InvalidArgument(file + ": " + why + ")");
    const auto& k = s.keygroups[largest];
    std::string field = YamlItem("keygroups", largest) + ".replicas";
    return r.Error(root["keygroups"][largest]["replicas"], field,
                   why + "; '" + k.name + "' has " + std::to_string(k.replicas.size()) + ")");
  }
  auto table = LinkTable(s);
  if (!table.ok()) return Status::InvalidArgument(file + ": " + table.status().message());
  return s;
}

core::Result<Scenario> LoadScenario(const std::string& path) {
  auto text = ReadYamlFile(path, "scenario file");
  if (!text.ok()) return text.status();
  return ParseScenario(*text, path);
}

}  // namespace enoki::testbed
