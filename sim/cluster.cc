// Nodes on the simulator, crash and restart. Each node flushes at the end of its own rounds (an
// event is a round).
#include "sim/cluster.h"

#include "core/random.h"
#include "functions/builtins.h"

#include <cassert>

namespace enoki::sim {

// The node's storage, committing as a real node's commit thread does (adapters/commit_thread.h):
// a commit begins once the node's CPU has got to it (it handles what it received when its CPU is
// free), takes its cost on a thread of its own, which keeps the CPU free meanwhile, and completes
// in an event of its own; one that costs nothing and finds the CPU free completes at once. A
// stalled one (a frozen file system) is held until released, and then begins. A commit under way
// when its node crashes is lost with it, as one a killed process did not finish.
class SimCluster::MemberStorage : public node::StorageEngine {
 public:
  MemberStorage(SimCluster& cluster, Member& member) : cluster_(cluster), member_(member) {}
  core::Status Load(const node::LoadVisitor& visitor) override { return kept_.Load(visitor); }
  core::Status Commit(const node::WriteBatch& batch) override {
    return keeps_ ? kept_.Commit(batch) : core::Status::Ok();
  }
  void StartCommit(std::shared_ptr<const node::WriteBatch> batch,
                   std::function<void(const core::Status&)> done) override {
    if (stalled_) {
      held_.emplace(std::move(batch), std::move(done));
      return;
    }
    Begin(std::move(batch), std::move(done));
  }
  void FailCommits(core::Status fault) { kept_.FailCommits(std::move(fault)); }
  void Stall(bool stalled) {
    stalled_ = stalled;
    if (stalled_ || !held_) return;
    auto held = std::move(*held_);
    held_.reset();
    Begin(std::move(held.first), std::move(held.second));
  }
  // The node crashed: a held commit dies with it.
  void Crashed() { held_.reset(); }
  node::MemoryStorage& kept() {
    assert(keeps_);
    return kept_;
  }
  void Lose() { kept() = node::MemoryStorage(); }
  // From now on commits keep nothing (SimCluster::KeepNothing).
  void KeepNothing() {
    keeps_ = false;
    kept_ = node::MemoryStorage();
  }
  bool keeps() const { return keeps_; }
  // Asked only after a commit failed, which one that keeps nothing never does.
  core::Result<std::optional<node::StoredItem>> LoadItem(const std::string& keygroup,
                                                         const std::string& key) override {
    return kept().LoadItem(keygroup, key);
  }

 private:
  // Begins the commit of `batch` (see above).
  void Begin(std::shared_ptr<const node::WriteBatch> batch,
             std::function<void(const core::Status&)> done);

  SimCluster& cluster_;
  Member& member_;
  node::MemoryStorage kept_;  // outlives the node object: what survives a crash
  bool keeps_ = true;         // false: commits succeed and keep nothing
  bool stalled_ = false;
  std::optional<
      std::pair<std::shared_ptr<const node::WriteBatch>, std::function<void(const core::Status&)>>>
      held_;
};

struct SimCluster::Member {
  explicit Member(SimCluster& cluster) : storage(cluster, *this) {}
  node::NodeOptions options;
  MemberStorage storage;
  core::TimePoint busy_until{};
  core::TimePoint last_message{};  // when it last sent or received one
  uint64_t starts = 0;             // incarnations so far: each has a random stream of its own
  Costs::Invocation invocation;    // what its invocations cost (empty: nothing)
  std::unique_ptr<node::Node> node;
  std::unique_ptr<node::FunctionHost> host;
  net::TraceSink* trace = nullptr;
};

void SimCluster::MemberStorage::Begin(std::shared_ptr<const node::WriteBatch> batch,
                                      std::function<void(const core::Status&)> done) {
  core::TimePoint now = cluster_.sim_.Now();
  core::TimePoint end =
      std::max(now, member_.busy_until) + cluster_.costs_.commit.Draw(cluster_.cost_rng_);
  if (end == now) return done(Commit(*batch));
  cluster_.sim_.Schedule(
      end - now, [this, starts = member_.starts, batch = std::move(batch), done = std::move(done)] {
        if (member_.starts != starts || !member_.node) return;  // crashed meanwhile
        done(Commit(*batch));
      });
}

std::map<std::string, std::set<std::string>> AllPeers(const std::vector<std::string>& ids) {
  std::map<std::string, std::set<std::string>> peers;
  for (const auto& id : ids) {
    for (const auto& other : ids) {
      if (other != id) peers[id].insert(other);
    }
    peers[id];
  }
  return peers;
}

SimCluster::SimCluster(const std::map<std::string, std::set<std::string>>& peers, uint64_t seed,
                       core::Duration delay, std::function<void(node::NodeOptions&)> tune)
    : sim_(seed),
      network_(sim_, delay),
      cost_rng_(core::Stream(seed, "costs")),
      wakeup_rng_(core::Stream(seed, "wakeups")) {
  for (const auto& [id, its_peers] : peers) {
    Member& m = members_.try_emplace(id, *this).first->second;
    m.options.id = id;
    for (const auto& peer : its_peers) m.options.peers.emplace_back().set_id(peer);
    if (tune) tune(m.options);
  }
  for (const auto& [id, its_peers] : peers) {
    core::Status st = Restart(id);
    assert(st.ok());
    st.IgnoreError();
  }
}

SimCluster::~SimCluster() {
  for (auto& [id, m] : members_) {
    if (m.node) Crash(id);
  }
}

void SimCluster::SetCosts(Costs costs) {
  costs_ = std::move(costs);
  bool charged = costs_.message != CostModel{} || costs_.wakeup != CostModel{};
  for (auto& [id, m] : members_) {
    m.invocation = costs_.invocation ? costs_.invocation(id) : nullptr;
    std::function<void(bool)> charge;
    if (charged) {
      // By pointer: clang 14 cannot capture a structured binding.
      charge = [this, member = &m](bool received) {
        if (member->node) OnMessage(*member, received);
      };
    }
    network_.SetMessageCost(id, std::move(charge));
  }
}

void SimCluster::OnMessage(Member& m, bool received) {
  core::TimePoint now = sim_.Now();
  bool idle = now - std::max(m.busy_until, m.last_message) >= kIdleAfter;
  m.last_message = now;
  if (received && idle && costs_.wakeup != CostModel{}) {
    ++wakeups_;
    Charge(m, costs_.wakeup.Draw(wakeup_rng_));
  }
  if (costs_.message != CostModel{}) Charge(m, costs_.message.Draw(cost_rng_));
}

void SimCluster::Charge(Member& m, core::Duration cost) {
  if (cost <= core::Duration(0)) return;
  m.busy_until = std::max(m.busy_until, sim_.Now()) + cost;
}

node::Node& SimCluster::node(const std::string& id) {
  Member& m = members_.at(id);
  assert(m.node != nullptr);
  return *m.node;
}

bool SimCluster::up(const std::string& id) const { return members_.at(id).node != nullptr; }

void SimCluster::SetTrace(const std::string& id, net::TraceSink* trace) {
  Member& m = members_.at(id);
  m.trace = trace;
  if (m.node) m.node->SetTrace(trace);
}

void SimCluster::Crash(const std::string& id) {
  Member& m = members_.at(id);
  network_.SetUp(id, false);
  network_.TransportOf(id).SetHandler(nullptr);
  m.busy_until = {};  // what its CPU had queued dies with it
  m.storage.Crashed();
  m.last_message = {};
  m.host.reset();
  m.node.reset();
}

void SimCluster::FailCommits(const std::string& id, core::Status fault) {
  assert(members_.at(id).storage.keeps());  // it would go back to what it kept (Core::HoldBatch)
  members_.at(id).storage.FailCommits(std::move(fault));
}

void SimCluster::StallCommits(const std::string& id, bool stalled) {
  members_.at(id).storage.Stall(stalled);
}

node::MemoryStorage& SimCluster::Storage(const std::string& id) {
  assert(members_.at(id).node == nullptr);
  return members_.at(id).storage.kept();
}

void SimCluster::LoseStorage(const std::string& id) {
  assert(members_.at(id).node == nullptr);
  members_.at(id).storage.Lose();
}

void SimCluster::KeepNothing(const std::string& id) { members_.at(id).storage.KeepNothing(); }

core::Status SimCluster::Restart(const std::string& id) {
  Member& m = members_.at(id);
  assert(m.node == nullptr);
  if (m.starts > 0 && !m.storage.keeps()) {
    return core::Status::FailedPrecondition("node " + id +
                                            " keeps nothing of its commits: it cannot restart");
  }
  net::Transport& transport = network_.TransportOf(id);
  m.options.seed = core::StreamSeed(sim_.seed(), "node/" + id + "/" + std::to_string(m.starts++));
  m.node = std::make_unique<node::Node>(m.options, sim_, transport, m.storage);
  m.node->SetTrace(m.trace);
  ENOKI_RETURN_IF_ERROR(m.node->Start());
  m.host = std::make_unique<node::FunctionHost>(*m.node, sim_, functions::Builtins());
  m.host->SetInvokeHook([this, &m](const proto::FunctionSpec& spec) {
    if (m.invocation) Charge(m, m.invocation(spec));
  });
  network_.SetBusyUntil(id, &m.busy_until);
  transport.SetHandler(m.node.get());
  network_.SetUp(id, true);
  return core::Status::Ok();
}

std::optional<proto::Response> SimCluster::Call(const std::string& id, proto::Request request,
                                                core::Duration limit) {
  auto result = std::make_shared<std::optional<proto::Response>>();
  network_.Request("", id, std::move(request),
                   [result](proto::Response&& r) { *result = std::move(r); });
  sim_.RunUntilTrue([&] { return result->has_value(); }, limit);
  return std::move(*result);
}

}  // namespace enoki::sim
