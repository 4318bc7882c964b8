// A cluster run's client hosts: the host's process, and the driver's side of them.
#include "testbed/client_host.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>

#include <zmq.hpp>

#include "adapters/client.h"
#include "adapters/event_loop.h"
#include "adapters/shifted_clock.h"
#include "adapters/zmq_transport.h"
#include "testbed/driver.h"
#include "testbed/node_calls.h"
#include "testbed/topology.h"

namespace enoki::testbed {
namespace {

using core::Status;
using Pair = Driver::Pair;

// The most bytes of records one CallsRequest returns.
constexpr uint32_t kMaxPageBytes = 1 << 20;
// How long the driver waits for a host's clock answers, and for a page of its requests.
constexpr auto kClockTimeout = std::chrono::seconds(3);
constexpr auto kPageTimeout = std::chrono::seconds(10);

double Ms(core::Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

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
                     [this](const proto::Request& r, proto::Response&) {
                       return StartCallers(r.start_callers());
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

  // Every 50 ms: a stop asked for, the driver too late, or everything handed over.
  void Tick(const std::function<bool()>& stop_requested) {
    loop_.Schedule(std::chrono::milliseconds(50), [this, stop_requested] {
      core::TimePoint now = loop_.Now();
      bool finished = started_ && driver_.phase() == Driver::Phase::kFinished;
      if (stop_requested()) {
        interrupted_ = true;
        return loop_.Stop();
      }
      if (finished && fetched_) return loop_.Stop();
      if (finished && !finished_at_) {
        finished_at_ = now;
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
            (started_ ? "fetch the callers' requests" : "start the callers") + " within " +
            std::to_string(o_.wait.count()) + " s (is `enoki run --cluster " + cluster_.file +
            "` running, with this host in its cluster file's clients?)");
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
      proto::PeerRtt& p = *out.add_peers();
      p.set_node(node);
      p.set_answered(static_cast<uint32_t>(rtt->answered));
      p.set_min_ms(rtt->min_ms);
      p.set_median_ms(rtt->median_ms);
    }
    return Status::Ok();
  }

  Status StartCallers(const proto::StartCallersRequest& r) {
    if (started_) return Status::FailedPrecondition("client host " + name_ + " started already");
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
    for (const auto& p : r.network()) {
      rtts_[p.node()] = {p.min_ms(), p.median_ms(), static_cast<int>(p.answered())};
    }
    for (const Pair& p : driver_.Pairs()) {
      const std::string& node = host_.clients.contains(p.first) ? p.second : p.first;
      if (!rtts_.contains(node)) {
        return Status::InvalidArgument("client host " + name_ + ": no round trip to node " + node +
                                       " given");
      }
    }
    started_ = true;
    for (const Pair& p : driver_.Pairs()) calls_.SetLink(p, OnTop(p));
    core::TimePoint t0{core::Duration(r.start_ns())};
    if (core::TimePoint now = clock_.Now(); now > t0) {
      std::printf("client host %s: told of the run's start %.3f ms after it\n", name_.c_str(),
                  Ms(now - t0));
    }
    std::printf("client host %s: the run starts\n", name_.c_str());
    std::fflush(stdout);
    driver_.RunCallers(t0);
    return Status::Ok();
  }

  Status Calls(const proto::CallsRequest& r, proto::CallRecords& out) {
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
      bytes += c.ByteSizeLong();
      if (bytes > max && out.records_size() > 0) break;
      *out.add_records() = std::move(c);
    }
    out.set_next(i);
    out.set_count(records.size());
    out.set_done(done);
    out.set_started(started_);
    if (done && i == records.size() && r.max_bytes() > 0) fetched_ = true;
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
  bool fetched_ = false;  // the driver read the last request after the callers ended
  bool interrupted_ = false;
  Status failure_;
  core::TimePoint deadline_{};
  std::optional<core::TimePoint> finished_at_;
  core::TimePoint last_progress_{};
};

}  // namespace

uint64_t ScenarioDigest(const Scenario& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s.text) h = (h ^ c) * 1099511628211ull;
  return h;
}

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

core::Result<ClientHosts> ClientHosts::Begin(const ClusterFile& cluster) {
  zmq::context_t context(1);
  ClientHosts hosts(cluster);
  std::string problems;
  for (const auto& [name, h] : cluster.client_hosts) {
    adapters::Client client = cluster.Connect(context, name, kClockTimeout);
    auto estimate = EstimateClock(client);
    if (!estimate.ok()) {
      problems += "\n  " + cluster.file + ": client host " + name + " at " + h.endpoint + ": " +
                  estimate.status().message();
      continue;
    }
    hosts.hosts_[name].before = *estimate;
  }
  if (problems.empty()) return hosts;
  return Status::FailedPrecondition(
      "the client hosts must be running before the run (`enoki run SCENARIO --cluster FILE "
      "--client NAME` on each):" +
      problems);
}

core::Duration ClientHosts::Lead() const {
  int64_t rtt = 0;
  for (const auto& [name, h] : hosts_) rtt = std::max(rtt, h.before.rtt_ns);
  return std::chrono::milliseconds(250) + 2 * core::Duration(rtt);
}

proto::Request ClientHosts::StartRequest(const std::string& name, int64_t t0_ns, const Scenario& s,
                                         double time_scale,
                                         const std::map<LinkPair, RoundTrip>& rtts) {
  Host& h = hosts_.at(name);
  h.start_ns = t0_ns + h.before.offset_ns;
  proto::Request r;
  proto::StartCallersRequest& start = *r.mutable_start_callers();
  start.set_start_ns(h.start_ns);
  start.set_scenario_digest(ScenarioDigest(s));
  start.set_time_scale(time_scale);
  const std::set<std::string>& clients = cluster_->client_hosts.at(name).clients;
  std::set<std::string> nodes;
  for (const auto& [p, rtt] : rtts) {
    if (!clients.contains(p.first) || !nodes.insert(p.second).second) continue;
    proto::PeerRtt& peer = *start.add_network();
    peer.set_node(p.second);
    peer.set_answered(static_cast<uint32_t>(rtt.answered));
    peer.set_min_ms(rtt.min_ms);
    peer.set_median_ms(rtt.median_ms);
  }
  return r;
}

Status ClientHosts::Finish(const Scenario& s, int64_t t0_ns, std::vector<RequestRecord>& requests,
                           std::vector<ClockRecord>& clocks) {
  zmq::context_t context(1);
  std::string problems;
  for (const auto& [name, h] : hosts_) {
    clocks.push_back({name, "before", h.before, "client host"});
    if (h.start_ns == 0) continue;
    adapters::Client client = cluster_->Connect(context, name, kPageTimeout);
    auto after = EstimateClock(client);
    Status st = after.status();
    if (after.ok()) {
      clocks.push_back({name, "after", *after, "client host"});
      NodeClock clock{h.before, *after};
      auto time = [&](int64_t since_start) {
        return clock.ToDriver(h.start_ns + since_start) - t0_ns;
      };
      std::map<std::string, const WorkloadDecl*> workloads;
      for (const auto& w : s.workloads) workloads[w.name] = &w;
      std::vector<RequestRecord> taken;
      for (uint64_t from = 0;;) {
        proto::Request r;
        r.mutable_calls()->set_from(from);
        r.mutable_calls()->set_max_bytes(kMaxPageBytes);
        auto page = client.Call(std::move(r));
        if (!page.ok()) {
          st = page.status();
          break;
        }
        for (const auto& c : page->calls().records()) {
          auto w = workloads.find(c.workload());
          if (w == workloads.end()) {
            st = Status::Internal("a request of a workload the scenario does not have: " +
                                  c.workload());
            break;
          }
          const WorkloadDecl& d = *w->second;
          taken.push_back({d.name, d.client, d.function, d.node, c.caller(), c.seq(),
                           time(c.start_ns()), time(c.end_ns()), c.status(), c.error(),
                           c.request_bytes(), c.response_bytes()});
        }
        if (!st.ok()) break;
        if (page->calls().next() >= page->calls().count()) {
          if (!page->calls().done()) st = Status::Unavailable("its callers had not ended");
          break;
        }
        from = page->calls().next();
      }
      if (st.ok()) requests.insert(requests.end(), taken.begin(), taken.end());
    }
    if (!st.ok()) {
      problems += (problems.empty() ? "" : "\n") + std::string("client host ") + name + " at " +
                  cluster_->EndpointOf(name) +
                  ": its requests are missing from the results: " + st.message();
    }
  }
  if (problems.empty()) return Status::Ok();
  return Status::Unavailable(problems);
}

}  // namespace enoki::testbed
