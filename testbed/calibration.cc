// Measuring compute costs on a real node, and the file that keeps them.
#include "testbed/calibration.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

#include <zmq.hpp>

#include "adapters/event_loop.h"
#include "adapters/sqlite_storage.h"
#include "core/hash.h"
#include "net/codec.h"
#include "net/link_model.h"
#include "testbed/loopback_node.h"
#include "testbed/results.h"

namespace enoki::testbed {
namespace {

using Clock = std::chrono::steady_clock;
using core::Duration;
using core::Status;

constexpr int kWarmup = 20;
constexpr int kRuns = 200;
// The wake-up: so many calls, each after the node was left idle this long (the paper scenarios'
// gap between two requests at a node: ten callers at 1/s, or one at 10/s).
constexpr int kWakeRuns = 50;
constexpr auto kIdleGap = std::chrono::milliseconds(100);
// How far apart the repeats' p50s may be, in ms, besides half the smaller: costs of 0.05 to
// 0.15 ms (the small functions, the wake-up) differ by that much between repeats on a quiet
// machine, as an emulation's p50s do between runs.
constexpr double kP50SlackMs = 0.1;

// SQLite storage that adds up its commits' time (read from another thread: atomics).
class TimedSqlite : public node::StorageEngine {
 public:
  explicit TimedSqlite(std::unique_ptr<adapters::SqliteStorage> db) : db_(std::move(db)) {}
  Status Load(const node::LoadVisitor& visitor) override { return db_->Load(visitor); }
  Status Commit(const node::WriteBatch& batch) override {
    auto start = Clock::now();
    Status st = db_->Commit(batch);
    total_ns_ += (Clock::now() - start).count();
    ++count_;
    return st;
  }
  core::Result<std::optional<node::StoredItem>> LoadItem(const std::string& keygroup,
                                                         const std::string& key) override {
    return db_->LoadItem(keygroup, key);
  }
  // The commits' time and number since the last call.
  std::pair<Duration, int64_t> Take() {
    return {Duration(total_ns_.exchange(0)), count_.exchange(0)};
  }

 private:
  std::unique_ptr<adapters::SqliteStorage> db_;
  std::atomic<int64_t> total_ns_{0}, count_{0};
};

// A directory, removed with everything in it when this goes out of scope.
class ScratchDir {
 public:
  ScratchDir()
      : path_((std::filesystem::temp_directory_path() /
               ("enoki-calibration-" + std::to_string(::getpid())))
                  .string()) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The wake-up of `n`: kWakeRuns calls of `invoke(i)` (each to a function of the node), made as
// the emulation's callers make them to a node on their host (testbed/node_calls.h, kSameHost), on
// an event loop of their own that has nothing else to do: each after the node and the loop were
// idle kIdleGap; handed to the node net::kDeliveryLead ahead of its arrival time, stamped with
// it, for the node to hold until then; its answer taken when a link of that delay would bring
// it, from when the node sent it (Envelope.sent_at_ns). Each call's time from the request's
// arrival to the answer's, less that link, less the function's sleeps (LoopbackNode::Waited),
// less `busy`, the median round trip of back-to-back calls (never below zero): what a node woken
// from idle, and its caller, take beyond what the function's and the commit's costs charge.
core::Result<sim::CostModel> MeasureWakeup(LoopbackNode& n,
                                           const std::function<proto::Request(int)>& invoke,
                                           Duration busy) {
  adapters::EventLoop loop(1);
  zmq::socket_t socket(n.context(), zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  socket.connect(n.endpoint());
  std::vector<Duration> wakeups;
  Status failure = Status::Ok();
  core::TimePoint arrival{};
  uint64_t id = 0;
  core::TimerId timeout{};
  std::function<void()> call = [&] {
    proto::Request request = invoke(static_cast<int>(wakeups.size()));
    request.set_id(++id);
    request.set_to(n.id());
    std::string frame;
    net::EncodeEnvelope(request, &frame);
    arrival = loop.Now() + net::kDeliveryLead;
    net::AppendEnvelopeTime(proto::Envelope::kDeliverAtNsFieldNumber, arrival, &frame);
    n.StartWindow();
    if (!loop.Send(socket, zmq::buffer(frame))) {
      failure = Status::Unavailable("the wake-up: cannot send to the node");
      return loop.Stop();
    }
    timeout = loop.Schedule(std::chrono::seconds(10), [&] {
      failure = Status::DeadlineExceeded("the wake-up: no answer from the node in 10 s");
      loop.Stop();
    });
  };
  loop.AddSocket(socket, [&] {
    zmq::message_t msg;
    while (socket.recv(msg, zmq::recv_flags::dontwait)) {
      proto::Envelope env;
      if (!env.ParseFromArray(msg.data(), static_cast<int>(msg.size())) || !env.has_response() ||
          env.response().id() != id) {
        continue;
      }
      loop.Cancel(timeout);
      core::TimePoint answer = core::TimePoint(Duration(env.sent_at_ns())) + net::kDeliveryLead;
      loop.Schedule(answer - loop.Now(), [&] {
        Duration took = loop.Now() - arrival - net::kDeliveryLead - n.Waited();
        wakeups.push_back(std::max(Duration(0), took - busy));
        if (wakeups.size() == static_cast<size_t>(kWakeRuns)) return loop.Stop();
        loop.Schedule(kIdleGap, call);
      });
    }
  });
  loop.Schedule(kIdleGap, call);
  loop.Run();  // bounded: every call ends in its answer or its timeout
  ENOKI_RETURN_IF_ERROR(failure);
  return sim::CostModel::Measured(std::move(wakeups));
}

// Measures the probes (and the commit) on one node in a fresh directory: per invocation, its
// round trip from the client, commits left out; per call that committed, the mean commit. The
// wake-up, when `c` has none, with the first probe.
Status Measure(const std::vector<const Probe*>& probes, Calibration& c) {
  ScratchDir dir;
  Status result = Status::Ok();
  {
    auto db = adapters::SqliteStorage::Open(dir.path() + "/node.db", adapters::SqliteSync::kNormal);
    if (!db.ok()) return db.status();
    TimedSqlite storage(std::move(db.value()));
    auto started = LoopbackNode::Start(storage);
    if (!started.ok()) return started.status();
    LoopbackNode& n = **started;
    std::vector<Duration> commits;
    core::StreamRng rng(1);
    for (size_t k = 0; k < probes.size() && result.ok(); ++k) {
      const Probe* p = probes[k];
      auto failed = [&](const Status& st) {
        result = Status(st.code(), "calibrating " + CalibrationKey(*p) + ": " + st.message());
      };
      proto::FunctionSpec spec = p->spec;
      spec.set_name("probe-" + std::to_string(k));
      spec.set_keygroup("probe-" + std::to_string(k));
      proto::Request create;
      create.mutable_create_keygroup()->set_name(spec.keygroup());
      create.mutable_create_keygroup()->add_replicas(n.id());
      proto::Request deploy;
      *deploy.mutable_deploy_function()->mutable_spec() = spec;
      for (auto* r : {&create, &deploy}) {
        auto answer = n.client().Call(*r);
        if (!answer.ok()) {
          failed(answer.status());
          break;
        }
      }
      auto body = ParseBody(p->body);
      if (result.ok() && !body.ok()) failed(body.status());
      std::vector<Duration> runs, round_trips;
      auto request = [&](int i) {
        proto::Request invoke;
        invoke.mutable_invoke()->set_function(spec.name());
        invoke.mutable_invoke()->set_body(ExpandBody(*body, 0, i, rng));
        return invoke;
      };
      for (int i = 0; i < kWarmup + kRuns && result.ok(); ++i) {
        proto::Request invoke = request(i);
        storage.Take();
        n.StartWindow();
        auto start = Clock::now();
        // An error answer is measured too: it is what the function does on a node of its own;
        // no answer in time is a failed calibration.
        auto answer = n.client().Call(invoke);
        Duration total = Clock::now() - start;
        if (!answer.ok() && answer.status().code() == core::Code::kDeadlineExceeded) {
          failed(answer.status());
          break;
        }
        auto [commit_time, count] = storage.Take();
        if (i < kWarmup) continue;
        // A function's sleeps are not compute: the simulation has it sleep in virtual time.
        runs.push_back(std::max(Duration(0), total - commit_time - n.Waited()));
        round_trips.push_back(std::max(Duration(0), total - n.Waited()));
        if (count > 0) commits.push_back(commit_time / count);  // their mean, per call
      }
      if (!result.ok()) break;
      c.functions[CalibrationKey(*p)] = sim::CostModel::Measured(runs);
      if (c.wakeup.percentiles.empty()) {
        auto wakeup = MeasureWakeup(
            n, [&](int i) { return request(kWarmup + kRuns + i); },
            sim::CostModel::Measured(round_trips).percentiles[50]);
        if (!wakeup.ok()) {
          failed(wakeup.status());
          break;
        }
        c.wakeup = std::move(wakeup.value());
      }
    }
    // The commit is measured once, with the first functions (a later one leaves it as it is).
    if (!commits.empty() && c.commit.percentiles.empty()) {
      c.commit = sim::CostModel::Measured(commits);
    }
  }
  return result;
}

Status Write(const std::string& path, const Calibration& c) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    auto percentiles = [](const sim::CostModel& m) {
      std::string text;
      for (Duration d : m.percentiles)
        text += (text.empty() ? "" : ",") + std::to_string(d.count());
      return text;
    };
    out << "# enoki calibration: compute costs for simulations (testbed/calibration.h): the\n"
        << "# percentiles p0 to p100 of the measured times, in ns\n"
        << "measured\t" << c.measured << "\n"
        << "commit\t" << percentiles(c.commit) << "\n"
        << "wakeup\t" << percentiles(c.wakeup) << "\n";
    for (const auto& [key, cost] : c.functions) {
      out << "function\t" << key << "\t" << percentiles(cost) << "\n";
    }
    if (!out) return Status::IOError("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path, ec);  // whole, or not at all
  if (ec) return Status::IOError("cannot write " + path + ": " + ec.message());
  return Status::Ok();
}

core::Result<Calibration> Read(const std::string& path) {
  Calibration c;
  std::ifstream in(path);
  if (!in) return c;  // none yet
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    std::stringstream ss(line);
    for (std::string f; std::getline(ss, f, '\t');) fields.push_back(f);
    // 101 percentiles, in ns, in order.
    auto model = [&](const std::string& text) -> std::optional<sim::CostModel> {
      sim::CostModel m;
      std::stringstream list(text);
      for (std::string item; std::getline(list, item, ',');) {
        char* end = nullptr;
        long long v = std::strtoll(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || v < 0) return std::nullopt;
        if (!m.percentiles.empty() && Duration(v) < m.percentiles.back()) return std::nullopt;
        m.percentiles.push_back(Duration(v));
      }
      if (m.percentiles.size() != 101) return std::nullopt;
      m.mean = m.percentiles[50];
      return m;
    };
    std::optional<sim::CostModel> value;
    if (fields.size() == 2 && fields[0] == "measured") {
      c.measured = fields[1];
      continue;
    }
    if (fields.size() == 2 && fields[0] == "commit" && (value = model(fields[1]))) {
      c.commit = *value;
      continue;
    }
    if (fields.size() == 2 && fields[0] == "wakeup" && (value = model(fields[1]))) {
      c.wakeup = *value;
      continue;
    }
    if (fields.size() == 3 && fields[0] == "function" && (value = model(fields[2]))) {
      c.functions[fields[1]] = *value;
      continue;
    }
    return Status::InvalidArgument(path + ":" + std::to_string(n) +
                                   ": not a calibration line (remove the file to measure again)");
  }
  return c;
}

}  // namespace

std::string CalibrationKey(const Probe& probe) {
  std::map<std::string, std::string> params(probe.spec.params().begin(), probe.spec.params().end());
  std::string key = probe.spec.handler();
  for (const auto& [k, v] : params) key += " " + k + "=" + v;
  if (!probe.body.empty()) key += " body=" + probe.body;
  std::replace_if(
      key.begin(), key.end(), [](char ch) { return ch == '\t' || ch == '\n'; }, ' ');
  return key;  // one field of a line of the file
}

namespace {

// Measures `probes` into `c`, and the commit and the wake-up when `c` has none (with a function
// that writes, on its own, when no probe committed anything or there was no probe), and says
// where and when.
Status MeasureWithCommit(const std::vector<const Probe*>& probes, Calibration& c) {
  ENOKI_RETURN_IF_ERROR(Measure(probes, c));
  if (c.commit.percentiles.empty() || c.wakeup.percentiles.empty()) {
    Probe put;
    put.spec.set_handler("write");
    put.spec.set_runtime("native");
    Calibration own;
    ENOKI_RETURN_IF_ERROR(Measure({&put}, own));
    if (c.commit.percentiles.empty()) c.commit = own.commit;
    if (c.wakeup.percentiles.empty()) c.wakeup = own.wakeup;
    if (c.commit.percentiles.empty()) {
      return Status::Internal("calibrating the commit: no call committed anything");
    }
  }
  c.measured = HostDescription() + ", " + UtcNow("%Y-%m-%dT%H:%M:%SZ");
  return Status::Ok();
}

// The probes of `probes` of distinct keys.
std::vector<const Probe*> Distinct(const std::vector<Probe>& probes,
                                   const std::map<std::string, sim::CostModel>& known = {}) {
  std::vector<const Probe*> out;
  std::set<std::string> keys;
  for (const auto& p : probes) {
    std::string key = CalibrationKey(p);
    if (!known.contains(key) && keys.insert(key).second) out.push_back(&p);
  }
  return out;
}

// Each cost of `repeats` (the commit, the wake-up, each function of the first repeat), in that
// order: fn(name, models, tail, place), with the cost's model in each repeat, whether a long tail
// of it says the machine was busy (not the wake-up's: its tail is what it measures, a quiet
// machine's stalls), and `place(c)`, where the cost is in a calibration c.
template <typename Fn>
void ForEachCost(const std::vector<Calibration>& repeats, Fn fn) {
  auto visit = [&](const std::string& name, bool tail, auto place) {
    std::vector<const sim::CostModel*> models;
    for (const auto& c : repeats) models.push_back(&place(c));
    fn(name, models, tail, place);
  };
  visit(
      "commit", true, [](auto& c) -> auto& { return c.commit; });
  visit(
      "wake-up", false, [](auto& c) -> auto& { return c.wakeup; });
  for (const auto& entry : repeats.front().functions) {
    visit(
        entry.first, true, [&key = entry.first](auto& c) -> auto& { return c.functions.at(key); });
  }
}

}  // namespace

std::vector<std::optional<Probe>> CalibratedFunctions(const Scenario& s) {
  std::vector<std::optional<Probe>> out(s.functions.size());
  for (size_t i = 0; i < s.functions.size(); ++i) {
    const FunctionDecl& f = s.functions[i];
    bool native = f.spec.runtime().empty() || f.spec.runtime() == "native";
    if (!native || f.cost) continue;
    out[i].emplace(Probe{f.spec, ""});
  }
  // Each measured with the body its first callers send (a workload calls the entry that deploys
  // its function at its node).
  std::vector<bool> has_body(out.size(), false);
  for (const auto& w : s.workloads) {
    auto it = s.function_index.find({w.function, w.node});
    if (it == s.function_index.end() || !out[it->second] || has_body[it->second]) continue;
    out[it->second]->body = w.body;
    has_body[it->second] = true;
  }
  return out;
}

core::Result<Calibration> Calibrate(const std::string& path, const std::vector<Probe>& probes) {
  auto read = Read(path);
  if (!read.ok()) return read.status();
  Calibration c = std::move(read.value());
  std::vector<const Probe*> missing = Distinct(probes, c.functions);
  if (missing.empty() && !c.commit.percentiles.empty() && !c.wakeup.percentiles.empty()) return c;
  ENOKI_RETURN_IF_ERROR(MeasureWithCommit(missing, c));
  ENOKI_RETURN_IF_ERROR(Write(path, c));
  return c;
}

core::Result<CalibrationRepeats> MeasureRepeats(const std::vector<Probe>& probes, int repeats) {
  if (repeats < 2 || repeats > 10) {
    return Status::InvalidArgument("repeats must be 2 to 10, not " + std::to_string(repeats));
  }
  CalibrationRepeats out;
  for (int i = 0; i < repeats; ++i) {
    Calibration c;
    ENOKI_RETURN_IF_ERROR(MeasureWithCommit(Distinct(probes), c));
    out.repeats.push_back(std::move(c));
  }
  ForEachCost(out.repeats, [&](const std::string& what,
                               const std::vector<const sim::CostModel*>& models, bool tail, auto) {
    double low = 1e300, high = 0;
    std::string p50s;
    for (const auto* m : models) {
      double p50 = core::ToMillis(m->percentiles[50]), p99 = core::ToMillis(m->percentiles[99]);
      low = std::min(low, p50);
      high = std::max(high, p50);
      char one[64];
      std::snprintf(one, sizeof one, "%s%.3f/%.3f", p50s.empty() ? "" : ", ", p50, p99);
      p50s += one;
      if (tail && p99 > 20 * p50 && p99 - p50 > 0.5) high = 1e300;  // a quiet machine lacks it
    }
    if (high > 1.5 * low + kP50SlackMs) {
      out.disagreements.push_back(what + ": p50/p99 of the repeats " + p50s + " ms");
    }
  });
  return out;
}

Calibration MedianRepeat(const std::vector<Calibration>& repeats) {
  Calibration kept = repeats.front();
  kept.measured = repeats.back().measured;
  ForEachCost(repeats, [&](const std::string&, std::vector<const sim::CostModel*> models, bool,
                           auto place) {
    auto middle = models.begin() + static_cast<std::ptrdiff_t>((models.size() - 1) / 2);
    std::nth_element(models.begin(), middle, models.end(), [](const auto* a, const auto* b) {
      return a->percentiles[99] < b->percentiles[99];
    });
    place(kept) = **middle;
  });
  return kept;
}

core::Status KeepCalibration(const std::string& path, const Calibration& c) {
  auto read = Read(path);
  if (!read.ok()) return read.status();
  Calibration kept = std::move(read.value());
  kept.measured = c.measured;
  kept.commit = c.commit;
  kept.wakeup = c.wakeup;
  for (const auto& [key, model] : c.functions) kept.functions[key] = model;
  return Write(path, kept);
}

std::string CalibrationDigest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::string text((std::istreambuf_iterator<char>(in)), {});
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(core::Fnv1a(text)));
  return hex;
}

std::string DefaultCalibrationPath() {
  const char* cache = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  std::string dir = cache != nullptr && *cache != '\0' ? cache
                    : home != nullptr                  ? std::string(home) + "/.cache"
                                                       : std::string(".cache");
  return dir + "/enoki/calibration.tsv";
}

}  // namespace enoki::testbed
