// The workloads' callers and the timeline, on any Env.
#include "testbed/driver.h"

#include "core/random.h"

#include <algorithm>
#include <random>

namespace enoki::testbed {
namespace {

// How long a call may take at most, beyond its function's timeout, before the caller gives up.
constexpr core::Duration kCallerGrace = std::chrono::seconds(5);

}  // namespace

Driver::Driver(const Scenario& s, core::Env& env, Mode& mode, std::map<Pair, net::LinkSpec> links)
    : s_(s), env_(env), mode_(mode), links_(std::move(links)), runs_(s.workloads.size()) {
  for (size_t w = 0; w < runs_.size(); ++w) {
    runs_[w].rng = core::Stream(s.seed, "workload/" + s.workloads[w].name);
  }
}

void Driver::Start() {
  t0_ = env_.Now();
  for (size_t w = 0; w < s_.workloads.size(); ++w) StartWorkload(w);
  for (const auto& e : s_.timeline) {
    ++pending_events_;
    env_.Schedule(e.at, [this, &e] {
      Apply(e);
      --pending_events_;
    });
  }
}

bool Driver::Done() const {
  return active_callers_ == 0 && in_flight_.empty() && pending_events_ == 0;
}

net::LinkSpec Driver::Current(const Pair& p) const {
  net::LinkSpec spec = links_.at(p);
  spec.cut = partitioned_.contains(p);
  return spec;
}

std::vector<Driver::Pair> Driver::Pairs() const {
  std::vector<Pair> pairs;
  for (const auto& [p, spec] : links_) pairs.push_back(p);
  return pairs;
}

void Driver::Record(const std::string& kind, const std::string& detail) {
  events_.push_back({Ns(env_.Now()), kind, detail});
}

void Driver::StartWorkload(size_t w) {
  const WorkloadDecl& d = s_.workloads[w];
  WorkloadRun& run = runs_[w];
  run.callers.resize(static_cast<size_t>(d.callers));
  if (d.duration) run.end = t0_ + d.start + *d.duration;
  const FunctionDecl* fn = FindFunction(s_, d.function, d.node);
  uint32_t timeout_ms = fn->spec.timeout_ms() == 0 ? 10000 : fn->spec.timeout_ms();
  run.timeout = std::chrono::milliseconds(timeout_ms) + kCallerGrace;
  for (int c = 0; c < d.callers; ++c) {
    active_callers_++;
    core::Duration first = d.start;
    // Open loop: periodic callers start at random phases within one period, so they do not all
    // send in the same instant; Poisson callers after an exponential gap.
    if (d.rate) first += OpenLoopGap(w, true);
    run.callers[static_cast<size_t>(c)].next_send = t0_ + first;
    env_.Schedule(first, [this, w, c] { Send(w, c); });
  }
}

// An open loop's gap before its next request: the period (the first: a random phase within it),
// or with Poisson arrivals an exponential gap of that mean.
core::Duration Driver::OpenLoopGap(size_t w, bool first) {
  const WorkloadDecl& d = s_.workloads[w];
  core::StreamRng& rng = runs_[w].rng;
  double period_ns = 1e9 / *d.rate;
  double ns = d.poisson ? std::exponential_distribution<double>(1 / period_ns)(rng)
              : first   ? std::uniform_real_distribution<double>(0, period_ns)(rng)
                        : period_ns;
  return core::Duration(static_cast<core::Duration::rep>(ns));
}

// Caller `c` of workload `w` sends its next request, if it has one left.
void Driver::Send(size_t w, int c) {
  const WorkloadDecl& d = s_.workloads[w];
  WorkloadRun& run = runs_[w];
  Caller& caller = run.callers[static_cast<size_t>(c)];
  core::TimePoint now = env_.Now();
  if (caller.done) return;
  if ((d.requests && caller.sent >= *d.requests) || now >= run.end) {
    caller.done = true;
    --active_callers_;
    return;
  }
  int64_t seq = caller.sent++;
  proto::Request request;
  request.set_id(next_request_++);
  request.mutable_invoke()->set_function(d.function);
  request.mutable_invoke()->set_body(ExpandBody(d.body_parts, c, seq, run.rng));
  uint64_t id = request.id();
  run.deadlines.push_back({now + run.timeout, id});
  if (run.deadlines.size() == 1) env_.Schedule(run.timeout, [this, w] { ExpireRequests(w); });
  in_flight_[id] = {w, c, seq, now, static_cast<int64_t>(request.invoke().body().size())};
  mode_.Send(w, request);
  if (d.rate) {  // the next one a gap after this one was due, so that lateness never adds up
    caller.next_send += OpenLoopGap(w, false);
    env_.Schedule(std::max(core::Duration(0), caller.next_send - env_.Now()),
                  [this, w, c] { Send(w, c); });
  }
}

void Driver::Answer(const proto::Response& response) {
  auto it = in_flight_.find(response.id());
  if (it == in_flight_.end()) return;  // it timed out meanwhile
  InFlightRequest f = it->second;
  in_flight_.erase(it);
  Finish(f, proto::Code_Name(response.code()), response.error(),
         static_cast<int64_t>(response.invoke().body().size()));
}

void Driver::Refused(uint64_t id, const std::string& why) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;
  InFlightRequest f = it->second;
  in_flight_.erase(it);
  Finish(f, "UNAVAILABLE", why, 0);
}

void Driver::ExpireRequests(size_t w) {
  auto& deadlines = runs_[w].deadlines;
  core::TimePoint now = env_.Now();
  while (!deadlines.empty()) {
    auto it = in_flight_.find(deadlines.front().second);
    if (it != in_flight_.end() && deadlines.front().first > now) break;  // not due yet
    deadlines.pop_front();
    if (it == in_flight_.end()) continue;  // answered
    InFlightRequest f = it->second;
    in_flight_.erase(it);
    Finish(f, "TIMEOUT", "no answer within the caller's limit", 0);
  }
  if (!deadlines.empty()) {
    env_.Schedule(deadlines.front().first - now, [this, w] { ExpireRequests(w); });
  }
}

void Driver::Finish(const InFlightRequest& f, const std::string& status, const std::string& error,
                    int64_t response_bytes) {
  const WorkloadDecl& d = s_.workloads[f.workload];
  core::TimePoint end = env_.Now();
  records_.push_back({d.name, d.client, d.function, d.node, f.caller, f.seq, Ns(f.start), Ns(end),
                      status, error, f.request_bytes, response_bytes});
  if (status == "OK") {
    if (keep_recent_) recent_ms_.push_back(core::ToMillis(end - f.start));
  } else {
    ++errors_;
  }
  if (!d.rate) {  // closed loop: the next request after the think time
    env_.Schedule(d.think, [this, w = f.workload, c = f.caller] { Send(w, c); });
  }
}

void Driver::Apply(const TimelineEvent& e) {
  switch (e.kind) {
    case TimelineEvent::Kind::kPhase:
      Record("phase", e.phase);
      break;
    case TimelineEvent::Kind::kLink:
      for (const Pair& p : {Pair{e.link.a, e.link.b}, Pair{e.link.b, e.link.a}}) {
        auto link = links_.find(p);
        if (link == links_.end()) continue;  // the two do not talk
        link->second = e.link.spec;
        ApplyLink(p);
      }
      Record("link", e.link.a + " - " + e.link.b + ": " + e.link.spec.ToString());
      break;
    case TimelineEvent::Kind::kPartition: {
      std::string detail;
      for (size_t i = 0; i < e.groups.size(); ++i) {
        detail += (i == 0 ? "" : " | ");
        for (const auto& n : e.groups[i]) detail += n + " ";
        for (size_t j = 0; j < e.groups.size(); ++j) {
          if (i == j) continue;
          for (const auto& a : e.groups[i]) {
            for (const auto& b : e.groups[j]) {
              if (!links_.contains({a, b})) continue;  // the two do not talk
              partitioned_.insert({a, b});
              ApplyLink({a, b});
            }
          }
        }
      }
      Record("partition", detail);
      break;
    }
    case TimelineEvent::Kind::kHeal: {
      auto cut = std::exchange(partitioned_, {});
      for (const auto& p : cut) ApplyLink(p);
      Record("heal", std::to_string(cut.size()) + " one-way links restored");
      break;
    }
    case TimelineEvent::Kind::kCrash:
      mode_.Crash(e.node);
      Record("crash", e.node);
      break;
    case TimelineEvent::Kind::kRestart: {
      core::Status st = mode_.Restart(e.node);
      if (st.ok()) {
        Record("restart", e.node);
      } else {
        Record("error", "cannot restart " + e.node + ": " + st.message());
      }
      break;
    }
  }
}

ReplicaReader::ReplicaReader(std::string node)
    : state_{std::move(node), 0, 14695981039346656037ull, ""} {}

bool ReplicaReader::Add(const proto::ScanResult& page) {
  auto mix = [this](const std::string& bytes) {
    for (unsigned char c : bytes) state_.digest = (state_.digest ^ c) * 1099511628211ull;
    state_.digest = (state_.digest ^ 0xff) * 1099511628211ull;  // a separator
  };
  for (const auto& item : page.items()) {
    mix(item.key());
    mix(item.value());
    ++state_.items;
  }
  if (!page.more() || page.items().empty()) return false;
  start_ = page.items().rbegin()->key() + std::string(1, '\0');
  return true;
}

ReplicaState ReadReplica(
    const std::string& node,
    const std::function<core::Result<proto::ScanResult>(const std::string& start)>& page) {
  ReplicaReader reader(node);
  while (true) {
    auto items = page(reader.start());
    if (!items.ok()) {
      reader.Fail(items.status().ToString());
      break;
    }
    if (!reader.Add(*items)) break;
  }
  return reader.state();
}

std::vector<KeygroupCheck> CheckReplicas(
    const Scenario& s,
    const std::function<std::vector<ReplicaState>(const std::vector<ReplicaId>& replicas)>& read,
    const std::function<bool()>& wait_more) {
  std::vector<KeygroupCheck> out(s.keygroups.size());
  std::vector<size_t> left;  // keygroups whose replicas did not agree yet
  for (size_t k = 0; k < s.keygroups.size(); ++k) left.push_back(k);
  while (true) {
    std::vector<ReplicaId> ids;
    for (size_t k : left) {
      for (const auto& node : s.keygroups[k].replicas) ids.push_back({s.keygroups[k].name, node});
    }
    std::vector<ReplicaState> states = read(ids);
    auto state = states.begin();
    std::vector<size_t> still;
    for (size_t k : left) {
      KeygroupCheck& check = out[k];
      check = {s.keygroups[k].name, true, {}};
      for (size_t i = 0; i < s.keygroups[k].replicas.size(); ++i) {
        check.replicas.push_back(*state++);
        const ReplicaState& r = check.replicas.back();
        const ReplicaState& first = check.replicas.front();
        if (!r.error.empty() || r.items != first.items || r.digest != first.digest) {
          check.converged = false;
        }
      }
      if (!check.converged) still.push_back(k);
    }
    left = std::move(still);
    if (left.empty() || !wait_more()) break;
  }
  return out;
}

core::Status WriteResults(ResultsDb& db, const Scenario& s, const RunInfo& info, bool interrupted,
                          const std::map<Driver::Pair, net::LinkSpec>& links,
                          const std::vector<RequestRecord>& requests,
                          const std::vector<EventRecord>& events,
                          const std::vector<KeygroupCheck>& checks) {
  std::vector<WorkloadRecord> workloads;
  for (const auto& w : s.workloads) {
    workloads.push_back({w.name, w.client, w.function, w.node, w.start.count(), s.warmup.count()});
  }
  ENOKI_RETURN_IF_ERROR(db.WriteWorkloads(workloads));
  ENOKI_RETURN_IF_ERROR(db.WriteRun(info, interrupted));
  ENOKI_RETURN_IF_ERROR(db.WriteLinks(links));
  ENOKI_RETURN_IF_ERROR(db.WriteRequests(requests));
  ENOKI_RETURN_IF_ERROR(db.WriteEvents(events));
  return db.WriteReplicas(checks);
}

}  // namespace enoki::testbed
