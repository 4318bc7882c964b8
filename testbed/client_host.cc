// A cluster run's client hosts: the host's process, and the driver's side of them.
#include "testbed/client_host.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include <zmq.hpp>

#include "adapters/client.h"
#include "adapters/event_loop.h"
#include "adapters/shifted_clock.h"
#include "adapters/zmq_transport.h"
#include "core/hash.h"
#include "testbed/driver.h"
#include "testbed/node_calls.h"
#include "testbed/topology.h"

namespace enoki::testbed {
namespace {

using core::Status;
using Pair = Driver::Pair;

// The most bytes of records one CallsRequest returns, and what the driver asks for: about 1,500
// records a page, each page a quick answer (100,000 requests: 70 round trips).
constexpr uint32_t kMaxPageBytes = 1 << 20;
constexpr uint32_t kPageBytes = 64 << 10;
// How long the driver waits for a host's clock answers, and for a page of its requests.
constexpr auto kClockTimeout = std::chrono::seconds(3);
constexpr auto kPageTimeout = std::chrono::seconds(10);

// Client host `name`'s process: the Driver's mode for its callers, and the services the driver
// calls.
class ClientHostRun : private Driver::Mode {
 public:
  ClientHostRun(const Scenario& s, const ClusterFile& cluster, const std::string& name,
                const ClientHostOptions& o, std::map<Pair, net::LinkSpec> links)
      : s_(s),
        cluster_(cluster),
        name_(name),
        host_(cluster.client_hosts.at(name)),
        o_(o),
        loop_(s.seed),
        clock_(loop_, o.clock_offset),
        driver_(s, clock_, *this, std::move(links)),
        calls_(s, loop_, driver_, NodeCalls::ClientLinks::kOverNetwork),
        transport_(context_, loop_, TransportOptions(cluster, name)) {
    for (const auto& [id, n] : cluster.nodes)
      calls_.ConnectNode(id, n.endpoint, cluster.KeysFor(id));
    calls_.ConnectCallers([this](const std::string& client, const std::string& node) {
      return host_.clients.contains(client) ? cluster_.nodes.at(node).endpoint : std::string();
    });
    transport_.Serve(proto::Request::kClock, [this](const proto::Request&, proto::Response& out) {
      out.mutable_clock()->set_trace_clock_ns(clock_.Now().time_since_epoch().count());
      return Status::Ok();
    });
    transport_.Serve(proto::Request::kMeasureRtt,
                     [this](const proto::Request& r, proto::Response& out) {
                       return MeasureRtt(r.measure_rtt(), *out.mutable_rtts());
                     });
    transport_.Serve(proto::Request::kStartCallers,
                     [this](const proto::Request& r, proto::Response& out) {
                       return StartCallers(r.start_callers(), *out.mutable_calls());
                     });
    transport_.Serve(proto::Request::kCalls, [this](const proto::Request& r, proto::Response& out) {
      return Calls(r.calls(), *out.mutable_calls());
    });
  }

  core::Result<ClientHostResult> Run(const std::function<bool()>& stop_requested) {
    if (Status st = transport_.Start(); !st.ok()) {
      return Status(st.code(), "client host " + name_ + ": " + st.message());
    }
    std::printf(
        "client host %s: listening at %s for the driver; the callers of %zu client node%s\n",
        name_.c_str(), transport_.bound_endpoint().c_str(), host_.clients.size(),
        host_.clients.size() == 1 ? "" : "s");
    std::fflush(stdout);
    deadline_ = loop_.Now() + o_.wait;
    Tick(stop_requested);
    loop_.Run();
    if (!failure_.ok()) return failure_;
    ClientHostResult result;
    result.interrupted = interrupted_;
    result.stopped = stopped_;
    for (const auto& r : driver_.requests()) {
      ++result.requests;
      if (r.status != "OK") ++result.errors;
    }
    return result;
  }

 private:
  static adapters::ZmqTransportOptions TransportOptions(const ClusterFile& cluster,
                                                        const std::string& name) {
    adapters::ZmqTransportOptions o;
    o.self = name;
    o.listen = cluster.client_hosts.at(name).endpoint;
    if (!cluster.identity.public_key.empty()) {
      // The run's identity is this host's key pair, and the only client it admits.
      adapters::TransportSecurity security;
      security.own = cluster.identity;
      adapters::AccessEntry run;
      run.public_key = cluster.identity.public_key;
      run.permissions.control = true;
      security.clients["run"] = run;
      o.security = security;
    }
    return o;
  }

  // Every 50 ms: a stop asked for, released by the driver, or the driver too late (to start the
  // callers, or to release the host once they ended).
  void Tick(const std::function<bool()>& stop_requested) {
    loop_.Schedule(std::chrono::milliseconds(50), [this, stop_requested] {
      core::TimePoint now = loop_.Now();
      if (stop_requested()) {
        interrupted_ = true;
        return loop_.Stop();
      }
      if (released_) return loop_.Stop();
      if (started_ && !finished_ && driver_.phase() == Driver::Phase::kFinished) {
        finished_ = true;
        deadline_ = now + o_.wait;
        std::printf(
            "client host %s: the callers ended (%zu requests); waiting for the driver to "
            "fetch them\n",
            name_.c_str(), driver_.requests().size());
        std::fflush(stdout);
      }
      if (now > deadline_) {
        failure_ = Status::DeadlineExceeded(
            "client host " + name_ + ": the driver did not " +
            (started_ ? "fetch the callers' requests" : "start the run") + " within " +
            std::to_string(o_.wait.count()) + " s (--wait; is `enoki run --cluster " +
            cluster_.file + "` running, with this host in its cluster file's clients?)");
        return loop_.Stop();
      }
      if (o_.progress && started_ && now - last_progress_ >= std::chrono::seconds(1)) {
        last_progress_ = now;
        std::fprintf(stderr, "\rclient host %s: %zu requests ended", name_.c_str(),
                     driver_.requests().size());
      }
      Tick(stop_requested);
    });
  }

  // MeasureRttRequest: timed status requests to each node (blocking: before the run).
  Status MeasureRtt(const proto::MeasureRttRequest& r, proto::RttList& out) {
    if (r.probes() < 1 || r.probes() > 100) {
      return Status::InvalidArgument("probes must be 1 to 100");
    }
    zmq::context_t context(1);
    for (const auto& node : r.peers()) {
      if (!cluster_.nodes.contains(node)) {
        return Status::InvalidArgument("client host " + name_ + ": " + cluster_.file +
                                       " has no node " + node);
      }
      auto rtt = MeasureFromHere(context, cluster_, node, static_cast<int>(r.probes()));
      if (!rtt.ok()) return rtt.status();
      *out.add_peers() = ToPeerRtt(node, *rtt);
    }
    return Status::Ok();
  }

  Status StartCallers(const proto::StartCallersRequest& r, proto::CallRecords& out) {
    if (started_ || stopped_) {
      return Status::FailedPrecondition("client host " + name_ + " was " +
                                        (started_ ? "started" : "stopped") + " already");
    }
    if (r.scenario_digest() != ScenarioDigest(s_)) {
      return Status::FailedPrecondition("client host " + name_ +
                                        " runs another scenario file than the driver's (" +
                                        s_.file + " differs): give both the same file");
    }
    if (r.time_scale() != o_.time_scale) {
      return Status::FailedPrecondition("client host " + name_ +
                                        " runs the scenario shortened otherwise than the driver: "
                                        "give both the same --duration");
    }
    for (const auto& p : r.network()) rtts_[p.node()] = FromPeerRtt(p);
    for (const Pair& p : driver_.Pairs()) {
      const std::string& node = host_.clients.contains(p.first) ? p.second : p.first;
      if (!rtts_.contains(node)) {
        return Status::InvalidArgument("client host " + name_ + ": no round trip to node " + node +
                                       " given");
      }
    }
    started_ = true;
    deadline_ = core::TimePoint::max();  // the callers run as long as the scenario says
    for (const Pair& p : driver_.Pairs()) calls_.SetLink(p, OnTop(p));
    core::TimePoint t0{core::Duration(r.start_ns())};
    core::Duration late = std::max(core::Duration(0), clock_.Now() - t0);
    Describe(out);
    out.set_late_ns(late.count());
    std::printf("client host %s: the run starts", name_.c_str());
    if (late > core::Duration(0))
      std::printf(" (told %.3f ms after its start)", core::ToMillis(late));
    std::printf("\n");
    std::fflush(stdout);
    driver_.RunCallers(t0);
    return Status::Ok();
  }

  // What this host runs: its scenario, time scale and client nodes.
  void Describe(proto::CallRecords& out) const {
    out.set_scenario_digest(ScenarioDigest(s_));
    out.set_time_scale(o_.time_scale);
    for (const auto& c : host_.clients) out.add_clients(c);
  }

  Status Calls(const proto::CallsRequest& r, proto::CallRecords& out) {
    if (r.stop() && !std::exchange(stopped_, true)) {
      std::printf("client host %s: stopped by the driver\n", name_.c_str());
      std::fflush(stdout);
      if (started_) driver_.StopCallers();
    }
    // The driver is there: its next step may take another --wait (the callers are done or
    // stopped; while they run, there is no deadline).
    if (stopped_ || finished_) deadline_ = loop_.Now() + o_.wait;
    if (r.release()) released_ = true;
    Describe(out);
    const auto& records = driver_.requests();
    bool done = started_ && driver_.phase() == Driver::Phase::kFinished;
    uint64_t i = std::min<uint64_t>(r.from(), records.size());
    size_t bytes = 0;
    uint32_t max = std::min(r.max_bytes(), kMaxPageBytes);
    for (; max > 0 && i < records.size(); ++i) {
      const RequestRecord& rec = records[i];
      proto::CallRecord c;
      c.set_workload(rec.workload);
      c.set_caller(rec.caller);
      c.set_seq(rec.seq);
      c.set_start_ns(rec.start_ns);
      c.set_end_ns(rec.end_ns);
      c.set_status(rec.status);
      c.set_error(rec.error);
      c.set_request_bytes(rec.request_bytes);
      c.set_response_bytes(rec.response_bytes);
      c.set_response_digest(rec.response_digest);
      c.set_due_ns(rec.due_ns);
      bytes += c.ByteSizeLong();
      if (bytes > max && out.records_size() > 0) break;
      *out.add_records() = std::move(c);
    }
    out.set_next(i);
    out.set_count(records.size());
    out.set_done(done);
    out.set_started(started_);
    return Status::Ok();
  }

  // Link p as the run has it now, on top of the network to its node.
  net::LinkSpec OnTop(const Pair& p) const {
    const std::string& node = host_.clients.contains(p.first) ? p.second : p.first;
    return OnTopOf(driver_.Current(p), rtts_.at(node));
  }

  // Driver::Mode: the callers' requests, over their links.
  void Call(const std::string& from, const std::string& node, proto::Request request,
            OnReply on_reply) override {
    calls_.Call(from, node, std::move(request), std::move(on_reply));
  }
  void SetLink(const Pair& p, const net::LinkSpec&) override { calls_.SetLink(p, OnTop(p)); }
  // The driver runs the crash and restart commands; here, a crashed node refuses the callers'
  // requests at once until the restart's time.
  void Crash(const std::string& node) override { calls_.MarkDown(node); }
  Status Restart(const std::string& node) override {
    calls_.MarkUp(node);
    return Status::Ok();
  }
  bool Elsewhere(const std::string& client) const override {
    return !host_.clients.contains(client);
  }

  const Scenario& s_;
  const ClusterFile& cluster_;
  const std::string name_;
  const ClientHost& host_;
  const ClientHostOptions& o_;
  zmq::context_t context_{1};
  adapters::EventLoop loop_;
  adapters::ShiftedClock clock_;
  Driver driver_;
  NodeCalls calls_;
  adapters::ZmqTransport transport_;
  std::map<std::string, RoundTrip> rtts_;  // to each node the callers call
  bool started_ = false;
  bool finished_ = false;  // the callers ended
  bool stopped_ = false;   // by the driver
  bool released_ = false;  // by the driver: it has what it wants
  bool interrupted_ = false;
  Status failure_;
  core::TimePoint deadline_{};  // for the driver's next step (none while the callers run)
  core::TimePoint last_progress_{};
};

}  // namespace

uint64_t ScenarioDigest(const Scenario& s) { return core::Fnv1a(s.text); }

core::Result<ClientHostResult> RunClientHost(const Scenario& s, const ClusterFile& cluster,
                                             const std::string& name,
                                             const ClientHostOptions& options,
                                             const std::function<bool()>& stop_requested) {
  auto host = cluster.client_hosts.find(name);
  if (host == cluster.client_hosts.end()) {
    std::string known;
    for (const auto& [n, h] : cluster.client_hosts) known += (known.empty() ? "" : ", ") + n;
    return Status::InvalidArgument(cluster.file + " has no client host " + name +
                                   " (clients: " + (known.empty() ? "none" : known) + ")");
  }
  auto links = LinkTable(s);
  if (!links.ok()) return links.status();
  // The links of this host's callers only: the timeline changes them here.
  std::map<Pair, net::LinkSpec> own;
  for (const auto& [p, spec] : *links) {
    if (host->second.clients.contains(p.first) || host->second.clients.contains(p.second)) {
      own[p] = spec;
    }
  }
  ClientHostRun run(s, cluster, name, options, std::move(own));
  return run.Run(stop_requested);
}

core::Result<ClientHosts> ClientHosts::Begin(const ClusterFile& cluster, const Scenario& s,
                                             double time_scale) {
  zmq::context_t context(1);
  ClientHosts hosts(cluster, s, time_scale);
  std::string problems;
  for (const auto& [name, h] : cluster.client_hosts) {
    std::string where = cluster.file + ": client host " + name + " at " + h.endpoint + ": ";
    adapters::Client client = cluster.Connect(context, name, kClockTimeout);
    auto estimate = EstimateClock(client);
    if (!estimate.ok()) {
      problems += "\n  " + where + estimate.status().message();
      continue;
    }
    proto::Request r;
    r.mutable_calls()->set_max_bytes(0);
    auto what = client.Call(std::move(r));
    if (!what.ok()) {
      problems += "\n  " + where + what.status().message();
      continue;
    }
    const proto::CallRecords& runs = what->calls();
    if (runs.scenario_digest() != ScenarioDigest(s)) {
      problems += "\n  " + where + "runs another scenario file than " + s.file;
    } else if (runs.time_scale() != time_scale) {
      problems += "\n  " + where + "runs the scenario with another --duration";
    } else if (std::set<std::string>(runs.clients().begin(), runs.clients().end()) != h.clients) {
      problems += "\n  " + where + "runs other client nodes (another cluster file?)";
    } else if (runs.started()) {
      problems += "\n  " + where + "runs an earlier run's callers: start it again";
    } else {
      hosts.hosts_[name].before = *estimate;
    }
  }
  if (problems.empty()) return hosts;
  return Status::FailedPrecondition(
      "the client hosts must be running before the run, with the same scenario, cluster file "
      "and --duration (`enoki run SCENARIO --cluster FILE --client NAME` on each):" +
      problems);
}

core::Duration ClientHosts::Lead() const {
  int64_t rtt = 0;
  for (const auto& [name, h] : hosts_) rtt = std::max(rtt, h.before.rtt_ns);
  return std::chrono::milliseconds(250) + 2 * core::Duration(rtt);
}

proto::Request ClientHosts::StartRequest(const std::string& name, int64_t t0_ns,
                                         const std::map<LinkPair, RoundTrip>& rtts) {
  Host& h = hosts_.at(name);
  h.start_ns = t0_ns + h.before.offset_ns;
  proto::Request r;
  proto::StartCallersRequest& start = *r.mutable_start_callers();
  start.set_start_ns(h.start_ns);
  start.set_scenario_digest(ScenarioDigest(*s_));
  start.set_time_scale(time_scale_);
  const std::set<std::string>& clients = cluster_->client_hosts.at(name).clients;
  std::set<std::string> nodes;
  for (const auto& [p, rtt] : rtts) {
    if (clients.contains(p.first) && nodes.insert(p.second).second) {
      *start.add_network() = ToPeerRtt(p.second, rtt);
    }
  }
  return r;
}

namespace {

// Asks `client` (a client host) for `calls`.
core::Result<proto::CallRecords> AskCalls(adapters::Client& client, proto::CallsRequest calls) {
  proto::Request r;
  *r.mutable_calls() = std::move(calls);
  auto answer = client.Call(std::move(r));
  if (!answer.ok()) return answer.status();
  return answer->calls();
}

proto::CallsRequest Page(uint64_t from) {
  proto::CallsRequest c;
  c.set_from(from);
  c.set_max_bytes(kPageBytes);
  return c;
}

}  // namespace

Status ClientHosts::Finish(int64_t t0_ns, bool interrupted, std::vector<RequestRecord>& requests,
                           std::vector<ClockRecord>& clocks) {
  zmq::context_t context(1);
  std::string problems;
  std::map<std::string, const WorkloadDecl*> workloads;
  for (const auto& w : s_->workloads) workloads[w.name] = &w;
  for (auto& [name, h] : hosts_) {
    clocks.push_back({name, "before", h.before, "client host"});
    if (h.gone) {  // the run gave it up (an error event): asking again would only wait
      h.released = true;
      continue;
    }
    adapters::Client client = cluster_->Connect(context, name, kPageTimeout);
    if (!h.started || interrupted) {
      proto::CallsRequest stop;
      stop.set_stop(true);
      stop.set_release(!h.started);
      h.released = !h.started;
      static_cast<void>(AskCalls(client, stop));  // one that does not hear it ends by itself
      if (!h.started) continue;
    }
    std::string where = "client host " + name + " at " + cluster_->EndpointOf(name) + ": ";
    auto after = EstimateClock(client);
    if (!after.ok() && after.status().code() == core::Code::kDeadlineExceeded) {
      problems += (problems.empty() ? "" : "\n") + where +
                  "no longer answers: its requests are missing from the results";
      h.released = true;
      continue;
    }
    NodeClock clock{h.before, after.ok() ? *after : h.before};
    if (after.ok()) {
      clocks.push_back({name, "after", *after, "client host"});
    } else {
      problems += (problems.empty() ? "" : "\n") + where +
                  "its clock after the run could not be read (" + after.status().message() +
                  "): its requests' times use the estimate before the run";
    }
    auto time = [&, start_ns = h.start_ns](int64_t since_start) {
      return clock.ToDriver(start_ns + since_start) - t0_ns;
    };
    const std::set<std::string>& clients = cluster_->client_hosts.at(name).clients;
    Status st;
    uint64_t from = 0, end = UINT64_MAX;  // end: the count the first page gave (it may grow)
    for (;;) {
      auto page = AskCalls(client, Page(from));
      if (!page.ok() && page.status().code() != core::Code::kDeadlineExceeded) {
        page = AskCalls(client, Page(from));  // once more: a busy network
      }
      if (!page.ok()) {
        st = page.status();
        break;
      }
      if (!page->started()) {
        st = Status::FailedPrecondition(
            "it no longer runs the callers it was started with (was "
            "it restarted?)");
        break;
      }
      end = std::min<uint64_t>(end, page->count());
      for (const auto& c : page->records()) {
        auto w = workloads.find(c.workload());
        if (w == workloads.end() || !clients.contains(w->second->client)) {
          st = Status::Internal("a request of workload '" + c.workload() +
                                "', none of whose callers it runs");
          break;
        }
        const WorkloadDecl& d = *w->second;
        requests.push_back({d.name, d.client, d.function, d.node, c.caller(), c.seq(),
                            time(c.start_ns()), time(c.end_ns()), c.status(), c.error(),
                            c.request_bytes(), c.response_bytes(), c.response_digest(),
                            time(c.due_ns())});
        ++from;
      }
      if (!st.ok()) break;
      if (page->next() != from) {
        st = Status::Internal("a page that does not follow the one before");
        break;
      }
      if (from >= end) {
        if (!page->done() && !interrupted) st = Status::Unavailable("its callers had not ended");
        break;
      }
      if (page->records_size() == 0) {
        st = Status::Internal("an empty page before the end");
        break;
      }
    }
    if (st.code() != core::Code::kDeadlineExceeded) {  // else it no longer answers
      proto::CallsRequest release;
      release.set_release(true);
      static_cast<void>(AskCalls(client, release));
    }
    h.released = true;
    if (!st.ok()) {
      problems += (problems.empty() ? "" : "\n") + where + st.message() + " (" +
                  std::to_string(from) + " of its requests taken)";
    }
  }
  if (problems.empty()) return Status::Ok();
  return Status::Unavailable(problems);
}

void ClientHosts::Release() {
  zmq::context_t context(1);
  for (auto& [name, h] : hosts_) {
    if (h.released) continue;
    adapters::Client client = cluster_->Connect(context, name, kClockTimeout);
    proto::CallsRequest last;
    last.set_stop(true);
    last.set_release(true);
    static_cast<void>(AskCalls(client, last));
    h.released = true;
  }
}

}  // namespace enoki::testbed
