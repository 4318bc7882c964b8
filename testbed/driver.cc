// A run's life cycle on any Env: set-up, workloads and timeline, replica check.
#include "testbed/driver.h"

#include <algorithm>
#include <optional>
#include <random>

#include "core/hash.h"
#include "core/random.h"
#include "testbed/staleness.h"

namespace enoki::testbed {
namespace {

// How long a call may take at most, beyond its function's timeout, before the caller gives up.
constexpr core::Duration kCallerGrace = std::chrono::seconds(5);
// How long the set-up waits for the answers to one batch of calls.
constexpr core::Duration kCallLimit = std::chrono::seconds(30);
// How long the keygroups may take to reach the nodes whose functions use them.
constexpr core::Duration kKeygroupsLimit = std::chrono::minutes(1);
// How long the replica check waits for the replicas to agree, and for each page of a replica.
constexpr core::Duration kCheckLimit = std::chrono::seconds(10);
constexpr core::Duration kPageLimit = std::chrono::seconds(5);

}  // namespace

Driver::Driver(const Scenario& s, core::Env& env, Mode& mode, std::map<Pair, net::LinkSpec> links,
               std::vector<proto::FunctionSpec> deploy)
    : s_(s),
      env_(env),
      mode_(mode),
      deploy_(std::move(deploy)),
      links_(std::move(links)),
      runs_(s.workloads.size()),
      digested_(s.workloads.size(), false) {
  for (size_t w = 0; w < s.workloads.size(); ++w) {
    if (s.workloads[w].stale_against.empty()) continue;
    digested_[w] = true;
    for (size_t v = 0; v < s.workloads.size(); ++v) {
      if (s.workloads[v].name == s.workloads[w].stale_against) digested_[v] = true;
    }
  }
}

// Answers to a batch of set-up calls, shared with those that arrive after it ended.
struct Driver::Batch {
  std::vector<SetUpCall> calls;
  std::vector<std::optional<core::Result<proto::Response>>> answers;
  size_t left = 0;
  bool ended = false;
  core::TimerId timer{};
  std::function<void(core::Status)> then;
};

void Driver::Run() {
  phase_ = Phase::kSettingUp;
  CreateKeygroups();
}

// Every keygroup at once, at its first replica.
void Driver::CreateKeygroups() {
  std::vector<SetUpCall> calls;
  for (const auto& k : s_.keygroups) {
    SetUpCall& call = calls.emplace_back(SetUpCall{k.replicas[0], {}, "keygroup " + k.name});
    auto* c = call.request.mutable_create_keygroup();
    c->set_name(k.name);
    c->set_mode(k.mode);
    c->set_mutability(k.mutability);
    for (const auto& rep : k.replicas) c->add_replicas(rep);
  }
  CallAll(std::move(calls), [this](core::Status st) {
    if (!st.ok()) return SetUpFailed(std::move(st));
    // The catalog reaches every node within a second; over links slower than that, the
    // deployments wait for it.
    env_.Schedule(std::chrono::seconds(1),
                  [this] { AwaitKeygroups(env_.Now() + kKeygroupsLimit); });
  });
}

void Driver::AwaitKeygroups(core::TimePoint deadline) {
  std::set<std::pair<std::string, std::string>> needed;  // (node, keygroup)
  for (const auto& f : s_.functions) {
    for (const auto& at : f.nodes) needed.emplace(at, f.spec.keygroup());
  }
  std::vector<SetUpCall> calls;
  for (const auto& [at, keygroup] : needed) {
    SetUpCall& call = calls.emplace_back(SetUpCall{at, {}, "node " + at});
    call.request.mutable_keygroup_info()->set_name(keygroup);
  }
  CallAll(std::move(calls), [this, deadline](core::Status known) {
    if (known.ok()) return DeployFunctions();
    if (env_.Now() > deadline) {
      return SetUpFailed(core::Status::Unavailable(
          "the keygroups did not reach the functions' nodes within a minute: " + known.message()));
    }
    env_.Schedule(std::chrono::milliseconds(100), [this, deadline] { AwaitKeygroups(deadline); });
  });
}

void Driver::DeployFunctions() {
  std::vector<SetUpCall> calls;
  for (size_t i = 0; i < s_.functions.size(); ++i) {
    const FunctionDecl& f = s_.functions[i];
    for (const auto& at : f.nodes) {
      SetUpCall& call =
          calls.emplace_back(SetUpCall{at, {}, "function " + f.spec.name() + " at " + at});
      *call.request.mutable_deploy_function()->mutable_spec() =
          deploy_.empty() ? f.spec : deploy_[i];
    }
  }
  CallAll(std::move(calls), [this](core::Status st) {
    if (!st.ok()) return SetUpFailed(std::move(st));
    // The callers' first requests must not find their connections still being made (over a
    // lossy link a lost SYN alone takes a second): a caller's socket refuses until then.
    mode_.AwaitCallers([this](core::Status up) {
      if (!up.ok()) return SetUpFailed(std::move(up));
      Start();
    });
  });
}

void Driver::SetUpFailed(core::Status why) {
  failure_ = std::move(why);
  phase_ = Phase::kFinished;
}

void Driver::CallAll(std::vector<SetUpCall> calls, std::function<void(core::Status)> then) {
  if (calls.empty()) return then(core::Status::Ok());
  auto batch = std::make_shared<Batch>();
  batch->answers.resize(calls.size());
  batch->left = calls.size();
  batch->then = std::move(then);
  batch->timer = env_.Schedule(kCallLimit, [batch] {
    if (std::exchange(batch->ended, true)) return;
    batch->then(Outcome(*batch));
  });
  batch->calls = std::move(calls);
  for (size_t i = 0; i < batch->calls.size(); ++i) {
    mode_.Call("", batch->calls[i].node, batch->calls[i].request,
               [this, batch, i](core::Result<proto::Response> answer) {
                 if (batch->ended) return;
                 batch->answers[i] = std::move(answer);
                 if (--batch->left > 0) return;
                 batch->ended = true;
                 env_.Cancel(batch->timer);
                 env_.AtEndOfRound([batch] { batch->then(Outcome(*batch)); });
               });
  }
}

core::Status Driver::Outcome(const Batch& batch) {
  for (size_t i = 0; i < batch.calls.size(); ++i) {
    const SetUpCall& call = batch.calls[i];
    const auto& answer = batch.answers[i];
    if (!answer) {
      return core::Status::Unavailable(call.what + ": node " + call.node + " did not answer");
    }
    if (!answer->ok()) {
      return core::Status(answer->status().code(), call.what + ": " + answer->status().message());
    }
    if ((*answer)->code() != proto::OK) {
      return core::Status::InvalidArgument(call.what + ": " + (*answer)->error());
    }
  }
  return core::Status::Ok();
}

void Driver::RunCallers(core::TimePoint t0) {
  phase_ = Phase::kRunning;
  callers_only_ = true;
  t0_ = t0;
  StartRun();
}

void Driver::StopCallers() {
  for (auto& run : runs_) {
    for (auto& caller : run.callers) {
      if (!std::exchange(caller.done, true)) --active_callers_;
    }
  }
  CheckDone();
}

void Driver::Start() {
  phase_ = Phase::kRunning;
  mode_.RunStarts();
  bool elsewhere = std::any_of(s_.workloads.begin(), s_.workloads.end(),
                               [this](const WorkloadDecl& d) { return mode_.Elsewhere(d.client); });
  t0_ = env_.Now() + (elsewhere ? mode_.ElsewhereLead() : core::Duration(0));
  // The run's own callers and timeline first: callers elsewhere that end at once (they could not
  // be started) must not let the run go on to its check before they are under way.
  waiting_elsewhere_ = elsewhere;
  StartRun();
  if (elsewhere) {
    mode_.StartElsewhere(t0_, [this] {
      waiting_elsewhere_ = false;
      CheckDone();
    });
  }
}

core::Duration Driver::Until(core::TimePoint t) const {
  return std::max(core::Duration(0), t - env_.Now());
}

void Driver::StartRun() {
  for (size_t w = 0; w < s_.workloads.size(); ++w) {
    if (!mode_.Elsewhere(s_.workloads[w].client)) StartWorkload(w);
  }
  for (const auto& e : s_.timeline) {
    ++pending_events_;
    env_.Schedule(Until(t0_ + e.at), [this, &e] {
      Apply(e);
      --pending_events_;
      CheckDone();
    });
  }
  CheckDone();
}

bool Driver::Done() const {
  return active_callers_ == 0 && in_flight_.empty() && pending_events_ == 0 && !waiting_elsewhere_;
}

// Once the workloads and the timeline are done, the replica check starts at the end of the round.
void Driver::CheckDone() {
  if (phase_ != Phase::kRunning || !Done()) return;
  if (callers_only_) {
    phase_ = Phase::kFinished;
    return;
  }
  phase_ = Phase::kChecking;
  env_.AtEndOfRound([this] { CheckReplicas(); });
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
    Caller& caller = run.callers[static_cast<size_t>(c)];
    std::string stream = "workload/" + d.name + "/caller/" + std::to_string(c);
    caller.arrivals = core::Stream(s_.seed, stream + "/arrivals");
    caller.bodies = core::Stream(s_.seed, stream + "/bodies");
    core::Duration first = d.start;
    // Open loop: periodic callers start at random phases within one period, so they do not all
    // send in the same instant; Poisson callers after an exponential gap.
    if (d.rate) first += OpenLoopGap(w, caller, true);
    caller.next_send = t0_ + first;
    env_.Schedule(Until(t0_ + first), [this, w, c] { Send(w, c); });
  }
}

// An open loop's gap before its next request: the period (the first: a random phase within it),
// or with Poisson arrivals an exponential gap of that mean.
core::Duration Driver::OpenLoopGap(size_t w, Caller& caller, bool first) {
  const WorkloadDecl& d = s_.workloads[w];
  core::StreamRng& rng = caller.arrivals;
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
    CheckDone();
    return;
  }
  int64_t seq = caller.sent++;
  proto::Request request;
  request.set_id(next_request_++);
  request.mutable_invoke()->set_function(d.function);
  request.mutable_invoke()->set_body(ExpandBody(d.body_parts, c, seq, caller.bodies));
  uint64_t id = request.id();
  run.deadlines.push_back({now + run.timeout, id});
  if (run.deadlines.size() == 1) env_.Schedule(run.timeout, [this, w] { ExpireRequests(w); });
  in_flight_[id] = {
      w, c, seq, now, caller.next_send, static_cast<int64_t>(request.invoke().body().size())};
  mode_.Call(
      d.client, d.node, std::move(request), [this, w, id](core::Result<proto::Response> answer) {
        if (answer.ok()) return Answer(id, *answer);
        if (answer.status().code() == core::Code::kUnavailable) {
          return Refused(id, answer.status().message());
        }
        // Another node answered: never counted as this one's answer.
        if (in_flight_.contains(id)) {
          Record("error", "workload " + s_.workloads[w].name + ": " + answer.status().message());
        }
      });
  if (d.rate) {  // the next one a gap after this one was due, so that lateness never adds up
    caller.next_send += OpenLoopGap(w, caller, false);
    env_.Schedule(std::max(core::Duration(0), caller.next_send - env_.Now()),
                  [this, w, c] { Send(w, c); });
  }
}

void Driver::Answer(uint64_t id, const proto::Response& response) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;  // it timed out meanwhile
  InFlightRequest f = it->second;
  in_flight_.erase(it);
  Finish(f, proto::Code_Name(response.code()), response.error(),
         static_cast<int64_t>(response.invoke().body().size()),
         response.code() == proto::OK ? &response.invoke().body() : nullptr);
}

void Driver::Refused(uint64_t id, const std::string& why) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;
  InFlightRequest f = it->second;
  in_flight_.erase(it);
  Finish(f, "UNAVAILABLE", why, 0, nullptr);
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
    Finish(f, "TIMEOUT", "no answer within the caller's limit", 0, nullptr);
  }
  if (!deadlines.empty()) {
    env_.Schedule(deadlines.front().first - now, [this, w] { ExpireRequests(w); });
  }
}

void Driver::Finish(const InFlightRequest& f, const std::string& status, const std::string& error,
                    int64_t response_bytes, const std::string* body) {
  const WorkloadDecl& d = s_.workloads[f.workload];
  core::TimePoint end = env_.Now();  // before the digest: hashing a large body is not latency
  int64_t response_digest =
      body != nullptr && digested_[f.workload] ? static_cast<int64_t>(core::Fnv1a(*body)) : 0;
  records_.push_back({d.name, d.client, d.function, d.node, f.caller, f.seq, Ns(f.start), Ns(end),
                      status, error, f.request_bytes, response_bytes, response_digest, Ns(f.due)});
  if (status == "OK") {
    if (keep_recent_) recent_ms_.push_back(core::ToMillis(end - f.start));
  } else {
    ++errors_;
  }
  if (!d.rate) {  // closed loop: the next request after the think time
    runs_[f.workload].callers[static_cast<size_t>(f.caller)].next_send = end + d.think;
    env_.Schedule(d.think, [this, w = f.workload, c = f.caller] { Send(w, c); });
  }
  CheckDone();
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
    : state_{std::move(node), 0, core::kFnv1aOffset, ""} {}

bool ReplicaReader::Add(const proto::ScanResult& page) {
  for (const auto& item : page.items()) {
    state_.digest = core::Fnv1aField(item.key(), state_.digest);
    state_.digest = core::Fnv1aField(item.value(), state_.digest);
    ++state_.items;
  }
  if (!page.more() || page.items().empty()) return false;
  start_ = page.items().rbegin()->key() + std::string(1, '\0');
  return true;
}

// The replicas being read in one round, shared with the answers still on their way when it ends.
struct Driver::Reading {
  std::vector<std::pair<std::string, std::string>> replicas;  // (keygroup, node)
  std::vector<ReplicaReader> readers;
  size_t left = 0;
};

void Driver::CheckReplicas() {
  check_deadline_ = env_.Now() + kCheckLimit;
  checks_.assign(s_.keygroups.size(), {});
  unconverged_.clear();
  for (size_t k = 0; k < s_.keygroups.size(); ++k) unconverged_.push_back(k);
  ReadReplicas();
}

void Driver::ReadReplicas() {
  auto reading = std::make_shared<Reading>();
  for (size_t k : unconverged_) {
    for (const auto& node : s_.keygroups[k].replicas) {
      reading->replicas.emplace_back(s_.keygroups[k].name, node);
      reading->readers.emplace_back(node);
    }
  }
  reading->left = reading->replicas.size();
  if (reading->left == 0) return EndReading(*reading);
  for (size_t i = 0; i < reading->replicas.size(); ++i) NextPage(reading, i);
}

void Driver::NextPage(const std::shared_ptr<Reading>& reading, size_t i) {
  proto::Request r;
  r.mutable_scan()->set_keygroup(reading->replicas[i].first);
  r.mutable_scan()->set_start(reading->readers[i].start());
  r.mutable_scan()->set_limit(1000);
  auto answered = std::make_shared<bool>(false);
  core::TimerId timer = env_.Schedule(kPageLimit, [this, reading, i, answered] {
    if (std::exchange(*answered, true)) return;
    reading->readers[i].Fail("UNAVAILABLE: no answer within 5 s");
    ReplicaRead(reading);
  });
  mode_.Call("", reading->replicas[i].second, std::move(r),
             [this, reading, i, answered, timer](core::Result<proto::Response> res) {
               if (std::exchange(*answered, true)) return;
               env_.Cancel(timer);
               ReplicaReader& reader = reading->readers[i];
               if (!res.ok()) {  // refused at once: the node is down
                 reader.Fail(res.status().code() == core::Code::kUnavailable
                                 ? "down"
                                 : res.status().ToString());
               } else if (res->code() != proto::OK) {
                 reader.Fail(proto::Code_Name(res->code()) + ": " + res->error());
               } else if (reader.Add(res->scan())) {
                 return NextPage(reading, i);
               }
               ReplicaRead(reading);
             });
}

// One replica was read (or failed); after the last, the round ends at the end of the round.
void Driver::ReplicaRead(const std::shared_ptr<Reading>& reading) {
  if (--reading->left == 0) env_.AtEndOfRound([this, reading] { EndReading(*reading); });
}

void Driver::EndReading(const Reading& reading) {
  auto state = reading.readers.begin();
  std::vector<size_t> still;
  for (size_t k : unconverged_) {
    KeygroupCheck& check = checks_[k];
    check = {s_.keygroups[k].name, true, {}};
    for (size_t i = 0; i < s_.keygroups[k].replicas.size(); ++i) {
      check.replicas.push_back((state++)->state());
      const ReplicaState& r = check.replicas.back();
      const ReplicaState& first = check.replicas.front();
      if (!r.error.empty() || r.items != first.items || r.digest != first.digest) {
        check.converged = false;
      }
    }
    if (!check.converged) still.push_back(k);
  }
  unconverged_ = std::move(still);
  if (unconverged_.empty() || env_.Now() > check_deadline_) {
    phase_ = Phase::kFinished;
    return;
  }
  env_.Schedule(std::chrono::milliseconds(200), [this] { ReadReplicas(); });
}

core::Status WriteResults(ResultsDb& db, const Scenario& s, const RunInfo& info, bool interrupted,
                          const std::map<Driver::Pair, net::LinkSpec>& links,
                          const std::vector<RequestRecord>& requests,
                          const std::vector<EventRecord>& events,
                          const std::vector<KeygroupCheck>& checks) {
  std::vector<WorkloadRecord> workloads;
  for (const auto& w : s.workloads) {
    workloads.push_back(
        {w.name, w.client, w.function, w.node, w.start.count(), s.warmup.count(), w.stale_against});
  }
  ENOKI_RETURN_IF_ERROR(db.WriteWorkloads(workloads));
  ENOKI_RETURN_IF_ERROR(db.WriteClientStaleness(ClientStaleness(s, requests)));
  ENOKI_RETURN_IF_ERROR(db.WriteRun(info, interrupted));
  ENOKI_RETURN_IF_ERROR(db.WriteLinks(links));
  ENOKI_RETURN_IF_ERROR(db.WriteRequests(requests));
  ENOKI_RETURN_IF_ERROR(db.WriteEvents(events));
  return db.WriteReplicas(checks);
}

}  // namespace enoki::testbed
