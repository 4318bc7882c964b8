// Microbenchmarks (Google Benchmark): the wire codec; the store's put, get and scan on each
// storage engine and several value sizes; a look-up in a keygroup's items; SQLite's commits of
// random keys by the commit's size; applying replicated writes; a native function's invocation
// in-process; a get and an invocation round trip over ZeroMQ on loopback; the link shaper's
// per-message cost; the simulator's events per second;
// anti-entropy's cost on replicas in agreement and the time it takes to repair one that lost items.
// In-process nodes run on the simulator's clock (no thread, no network) with a transport that keeps
// what they send.
//   build/bench/enoki-micro                          # full run
//   build/bench/enoki-micro --benchmark_min_time=0.01  # the short mode CI runs
#include <benchmark/benchmark.h>

#include <unistd.h>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "adapters/sqlite_storage.h"
#include "core/timer_queue.h"
#include "functions/builtins.h"
#include "net/codec.h"
#include "net/link_model.h"
#include "node/function_host.h"
#include "node/indexed_map.h"
#include "node/memory_storage.h"
#include "node/node.h"
#include "sim/cluster.h"
#include "sim/simulator.h"
#include "spdlog/spdlog.h"
#include "testbed/loopback_node.h"

namespace enoki {
namespace {

// Storage engines, by benchmark argument.
enum Engine { kMemory = 0, kSqlite = 1 };

// A SQLite store in a fresh directory of this process (all removed at exit).
std::unique_ptr<node::StorageEngine> OpenSqlite() {
  static const std::string root =
      (std::filesystem::temp_directory_path() / ("enoki-micro-" + std::to_string(::getpid())))
          .string();
  static const struct Cleanup {
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(root, ec);
    }
  } cleanup;
  static int count = 0;
  auto db = adapters::SqliteStorage::Open(root + "/" + std::to_string(++count) + "/db",
                                          adapters::SqliteSync::kNormal);
  if (!db.ok()) std::abort();
  return std::move(db.value());
}

proto::Request CreateKeygroup(const std::vector<std::string>& replicas) {
  proto::Request r;
  r.mutable_create_keygroup()->set_name("kg");
  for (const auto& n : replicas) r.mutable_create_keygroup()->add_replicas(n);
  return r;
}

// Deploys the built-in `increment` (a get and a conditional put) as "inc" on keygroup "kg".
proto::Request DeployIncrement() {
  proto::Request r;
  auto* spec = r.mutable_deploy_function()->mutable_spec();
  spec->set_name("inc");
  spec->set_runtime("native");
  spec->set_handler("increment");
  spec->set_keygroup("kg");
  return r;
}

proto::Request Put(const std::string& key, const std::string& value) {
  proto::Request r;
  r.mutable_put()->set_keygroup("kg");
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(value);
  return r;
}

proto::Request Get(const std::string& key) {
  proto::Request r;
  r.mutable_get()->set_keygroup("kg");
  r.mutable_get()->set_key(key);
  return r;
}

// Keeps what the node sends to peers.
class KeepingTransport : public net::Transport {
 public:
  void SetHandler(net::MessageHandler*) override {}
  bool SendToPeer(const std::string&, proto::PeerMessage msg) override {
    sent.push_back(std::move(msg));
    return true;
  }
  void ReplyToClient(const net::ClientId&, proto::Response) override {}
  void SetPeer(const proto::Member&) override {}  // every peer is reached alike: kept
  std::vector<proto::PeerMessage> sent;
};

// One node in this process on the simulator's clock, its storage by `engine`, a function host;
// unless `peers` are given (then it learns of keygroups from them), it creates keygroup "kg" on
// itself.
class LocalNode {
 public:
  LocalNode(Engine engine, const std::string& id, std::vector<std::string> peers = {}) : sim_(1) {
    if (engine == kSqlite) {
      storage_ = OpenSqlite();
    } else {
      storage_ = std::make_unique<node::MemoryStorage>();
    }
    node::NodeOptions options;
    options.id = id;
    for (const auto& peer : peers) options.peers.emplace_back().set_id(peer);
    node_ = std::make_unique<node::Node>(options, sim_, transport_, *storage_);
    if (!node_->Start().ok()) std::abort();
    host_ = std::make_unique<node::FunctionHost>(*node_, sim_, functions::Builtins());
    if (peers.empty()) Run(CreateKeygroup({id}));
  }

  // Runs `request` to its answer (everything is local: it comes with Flush).
  proto::Response Run(const proto::Request& request) {
    proto::Response answer;
    node_->Execute(request, [&](proto::Response&& r) { answer = std::move(r); });
    node_->Flush();
    return answer;
  }
  node::Node& node() { return *node_; }
  KeepingTransport& transport() { return transport_; }

 private:
  sim::Simulator sim_;
  KeepingTransport transport_;
  std::unique_ptr<node::StorageEngine> storage_;
  std::unique_ptr<node::Node> node_;
  std::unique_ptr<node::FunctionHost> host_;
};

const char* EngineName(int64_t e) { return e == kSqlite ? "sqlite" : "memory"; }

// ---- Codec -----------------------------------------------------------------------------------

void BM_CodecEncodeDecode(benchmark::State& state) {
  proto::Request request;
  request.set_id(42);
  request.mutable_invoke()->set_function("ma");
  request.mutable_invoke()->set_body(std::string(static_cast<size_t>(state.range(0)), 'x'));
  std::string frame;
  proto::Envelope envelope;
  for (auto _ : state) {
    net::EncodeEnvelope(request, &frame);
    if (!envelope.ParseFromString(frame)) state.SkipWithError("does not parse");
    benchmark::DoNotOptimize(envelope);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_CodecEncodeDecode)->Arg(16)->Arg(1 << 10)->Arg(64 << 10);

// ---- The store, per engine and value size ----------------------------------------------------

void BM_StorePut(benchmark::State& state) {
  LocalNode n(static_cast<Engine>(state.range(0)), "put");
  std::string value(static_cast<size_t>(state.range(1)), 'v');
  int64_t i = 0;
  for (auto _ : state) {
    auto answer = n.Run(Put("k" + std::to_string(i++ % 1000), value));
    if (answer.code() != proto::OK) state.SkipWithError(answer.error().c_str());
  }
  state.SetLabel(EngineName(state.range(0)));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(1));
}
BENCHMARK(BM_StorePut)->ArgsProduct({{kMemory, kSqlite}, {16, 1 << 10, 64 << 10}});

void BM_StoreGet(benchmark::State& state) {
  LocalNode n(static_cast<Engine>(state.range(0)), "get");
  std::string value(static_cast<size_t>(state.range(1)), 'v');
  for (int i = 0; i < 1000; ++i) n.Run(Put("k" + std::to_string(i), value));
  int64_t i = 0;
  for (auto _ : state) {
    auto answer = n.Run(Get("k" + std::to_string(i++ % 1000)));
    if (answer.code() != proto::OK) state.SkipWithError(answer.error().c_str());
  }
  state.SetLabel(EngineName(state.range(0)));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(1));
}
BENCHMARK(BM_StoreGet)->ArgsProduct({{kMemory, kSqlite}, {16, 1 << 10, 64 << 10}});

// Key `i` as redis-benchmark names it ("key:000000012345": past the 15 bytes a string holds
// inline).
std::string BenchmarkKey(int64_t i) {
  std::string digits = std::to_string(i);
  return "key:" + std::string(12 - digits.size(), '0') + digits;
}

// A point look-up in a keygroup's items (node/indexed_map.h) of `range(0)` keys, in a random order:
// the node's own work in a get, mostly cache misses.
void BM_ItemMapFind(benchmark::State& state) {
  const int64_t n = state.range(0);
  node::ItemMap items;
  for (int64_t i = 0; i < n; ++i) items[BenchmarkKey(i)].value = "xxx";
  std::vector<std::string> order;
  std::mt19937_64 random(7);
  for (int i = 0; i < 1 << 16; ++i)
    order.push_back(BenchmarkKey(static_cast<int64_t>(random() % n)));
  size_t i = 0;
  for (auto _ : state) {
    auto it = items.find(order[i++ & 0xffff]);
    benchmark::DoNotOptimize(it->second.value.data());
  }
}
BENCHMARK(BM_ItemMapFind)->Arg(1000)->Arg(100000);

// Keys put into a keygroup's items that does not hold them yet, `range(0)` of them in a
// scattered order (per key).
void BM_ItemMapInsert(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<std::string> keys;
  for (int64_t i = 0; i < n; ++i) keys.push_back(BenchmarkKey(i * 7919 % n));
  for (auto _ : state) {
    node::ItemMap items;
    for (const auto& k : keys) benchmark::DoNotOptimize(items.try_emplace(k).first);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n);
}
BENCHMARK(BM_ItemMapInsert)->Arg(100000)->Unit(benchmark::kMillisecond);

// A scan of 100 items.
void BM_StoreScan(benchmark::State& state) {
  LocalNode n(static_cast<Engine>(state.range(0)), "scan");
  std::string value(static_cast<size_t>(state.range(1)), 'v');
  for (int i = 0; i < 1000; ++i) n.Run(Put("k" + std::to_string(1000 + i), value));
  proto::Request scan;
  scan.mutable_scan()->set_keygroup("kg");
  scan.mutable_scan()->set_limit(100);
  int64_t i = 0;
  for (auto _ : state) {
    scan.mutable_scan()->set_start("k" + std::to_string(1000 + i++ % 900));
    auto answer = n.Run(scan);
    if (answer.scan().items_size() != 100) state.SkipWithError("short scan");
  }
  state.SetLabel(EngineName(state.range(0)));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 100);
}
BENCHMARK(BM_StoreScan)->ArgsProduct({{kMemory, kSqlite}, {16, 1 << 10}});

// SQLite's commits of `range(0)` random keys among 100,000 (redis-benchmark's `-r 100000`, 3-byte
// values), per item: a node under 50 clients commits about 15 at a time; a larger commit writes
// each B-tree page it touches once for all the items on it (what folding a log of writes into the
// store in large commits would cost per write).
void BM_SqliteCommitOfRandomKeys(benchmark::State& state) {
  constexpr int64_t kKeys = 100000;
  const int64_t batch_size = state.range(0);
  auto store = OpenSqlite();
  auto item = [](int64_t wall_us) {
    return node::StoredItem{"xxx", node::Version{wall_us, 0, "micro"}, false};
  };
  node::WriteBatch fill;
  node::KeygroupRecord keygroup;
  keygroup.meta.set_name("kg");
  fill.PutKeygroup(keygroup);
  for (int64_t i = 0; i < kKeys; ++i) fill.PutItem("kg", BenchmarkKey(i), item(1));
  if (!store->Commit(fill).ok()) std::abort();
  std::mt19937_64 random(1);
  int64_t wall_us = 2;
  int64_t items = 0;  // distinct keys committed (a large batch draws some keys twice)
  for (auto _ : state) {
    node::WriteBatch batch;
    for (int64_t i = 0; i < batch_size; ++i) {
      batch.PutItem("kg", BenchmarkKey(static_cast<int64_t>(random() % kKeys)), item(wall_us));
    }
    ++wall_us;
    items += static_cast<int64_t>(batch.items().size());
    auto st = store->Commit(batch);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
  }
  state.SetItemsProcessed(items);
}
BENCHMARK(BM_SqliteCommitOfRandomKeys)
    ->Arg(16)
    ->Arg(1024)
    ->Arg(16384)
    ->Arg(65536)
    ->Unit(benchmark::kMicrosecond);

// ---- Replication: a replica applying another's writes, one item per message ------------------

void BM_ApplyReplicatedWrite(benchmark::State& state) {
  auto engine = static_cast<Engine>(state.range(0));
  LocalNode origin(kMemory, "a", {"b"});
  LocalNode replica(engine, "b", {"a"});
  origin.Run(CreateKeygroup({"a", "b"}));
  // The replica learns of the keygroup from the origin's catalog entry.
  for (auto& m : std::exchange(origin.transport().sent, {})) {
    replica.node().OnPeerMessage(std::move(m));
  }
  replica.node().Flush();
  std::string value(static_cast<size_t>(state.range(1)), 'v');
  std::vector<proto::PeerMessage> ready;
  int64_t i = 0;
  for (auto _ : state) {
    if (ready.empty()) {  // the origin's next 1,000 writes, each one message
      state.PauseTiming();
      for (int k = 0; k < 1000; ++k) {
        origin.Run(Put("k" + std::to_string(i++ % 1000), value));
        for (auto& m : std::exchange(origin.transport().sent, {})) {
          if (m.has_replicate()) ready.push_back(std::move(m));
        }
      }
      std::reverse(ready.begin(), ready.end());
      state.ResumeTiming();
    }
    replica.node().OnPeerMessage(std::move(ready.back()));
    ready.pop_back();
    replica.node().Flush();
  }
  auto applied = replica.Run(Get("k0"));
  if (applied.code() != proto::OK || applied.get().value() != value) {
    state.SkipWithError(("the replica did not apply the writes: " + applied.error()).c_str());
  }
  state.SetLabel(EngineName(state.range(0)));
}
BENCHMARK(BM_ApplyReplicatedWrite)->ArgsProduct({{kMemory, kSqlite}, {16, 1 << 10}});

// ---- Functions -------------------------------------------------------------------------------

// The built-in `increment` (a get and a conditional put), in-process.
void BM_InvokeNative(benchmark::State& state) {
  LocalNode n(static_cast<Engine>(state.range(0)), "fn");
  if (n.Run(DeployIncrement()).code() != proto::OK) state.SkipWithError("deploy failed");
  proto::Request invoke;
  invoke.mutable_invoke()->set_function("inc");
  int64_t i = 0;
  for (auto _ : state) {
    invoke.mutable_invoke()->set_body("c" + std::to_string(i++ % 100));
    auto answer = n.Run(invoke);
    if (answer.code() != proto::OK) state.SkipWithError(answer.error().c_str());
  }
  state.SetLabel(EngineName(state.range(0)));
}
BENCHMARK(BM_InvokeNative)->Arg(kMemory)->Arg(kSqlite);

// ---- Round trips over ZeroMQ on loopback (a real node on its own thread, SQLite) ---------------

// One request's round trip, again and again, after `setup` (both answered OK).
void BM_LoopbackRoundTrip(benchmark::State& state, const proto::Request& setup,
                          const proto::Request& request) {
  auto storage = OpenSqlite();
  auto started = testbed::LoopbackNode::Start(*storage);
  if (!started.ok()) std::abort();
  testbed::LoopbackNode& n = **started;
  for (const auto& r : {CreateKeygroup({n.id()}), setup}) {
    if (!n.client().Call(r).ok()) state.SkipWithError("set-up failed");
  }
  for (auto _ : state) {
    auto answer = n.client().Call(request);
    if (!answer.ok()) state.SkipWithError(answer.status().ToString().c_str());
  }
}

proto::Request InvokeIncrement() {
  proto::Request r;
  r.mutable_invoke()->set_function("inc");
  r.mutable_invoke()->set_body("c");
  return r;
}
BENCHMARK_CAPTURE(BM_LoopbackRoundTrip, Get, Put("k", "value"), Get("k"))->UseRealTime();
BENCHMARK_CAPTURE(BM_LoopbackRoundTrip, Invoke, DeployIncrement(), InvokeIncrement())
    ->UseRealTime();

// ---- The link shaper's per-message work: the link model's arrival time and the stamp --------

void BM_ShaperPerMessage(benchmark::State& state) {
  auto spec = net::LinkSpec::Parse("delay=25ms,jitter=1ms,dist=normal,loss=0.1%,rate=100mbit");
  net::LinkModel link(*spec, 1);
  proto::Request request;
  request.mutable_invoke()->set_function("ma");
  request.mutable_invoke()->set_body(std::string(100, 'x'));
  std::string frame;
  core::TimePoint now{};
  for (auto _ : state) {
    net::EncodeEnvelope(request, &frame);
    now += std::chrono::microseconds(100);
    auto arrival = link.Arrival(now, frame.size());
    if (arrival)
      net::AppendEnvelopeTime(proto::Envelope::kDeliverAtNsFieldNumber, *arrival, &frame);
    benchmark::DoNotOptimize(frame);
  }
}
BENCHMARK(BM_ShaperPerMessage);

// ---- The simulator: timers scheduled and run, events per second -------------------------------

void BM_SimulatorEvents(benchmark::State& state) {
  const int chains = static_cast<int>(state.range(0));
  constexpr int64_t kEvents = 1'000'000;
  for (auto _ : state) {
    sim::Simulator sim(1);
    int64_t left = kEvents;
    // Chains of events at pseudo-random gaps, as many nodes' timers and messages interleave: the
    // heap holds one timer per chain (100; 100,000 as in a simulation of 10,000 nodes).
    std::function<void(int)> tick = [&](int chain) {
      if (--left > 0)
        sim.Schedule(std::chrono::microseconds(1 + (left * 7919 + chain) % 997),
                     [&tick, chain] { tick(chain); });
    };
    for (int c = 0; c < chains; ++c) tick(c);
    while (sim.Step()) {
    }
    benchmark::DoNotOptimize(sim.events());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kEvents);
}
BENCHMARK(BM_SimulatorEvents)->Arg(100)->Arg(100000)->Unit(benchmark::kMillisecond);

// Timeouts, each cancelled when its answer comes, in the order they were set: the earliest timer
// is cancelled each time, a new one set, and the loop asks when the next is due (as an event loop
// does every round). 100,000 waiting, as a node's callers' timeouts in a large simulation.
void BM_TimerQueueTimeouts(benchmark::State& state) {
  const int waiting = static_cast<int>(state.range(0));
  using std::chrono::microseconds;
  core::TimerQueue q;
  std::deque<core::TimerId> ids;
  int64_t next = 0;
  for (; next < waiting; ++next) {
    ids.push_back(q.Add(core::TimePoint(microseconds(30'000'000 + next)), [] {}));
  }
  for (auto _ : state) {
    q.Cancel(ids.front());
    ids.pop_front();
    ids.push_back(q.Add(core::TimePoint(microseconds(30'000'000 + next++)), [] {}));
    benchmark::DoNotOptimize(q.NextDue());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_TimerQueueTimeouts)->Arg(100)->Arg(100000);

// ---- Anti-entropy: digest exchanges of replicas in agreement, and a repair --------------------

// Two replicas "a" and "b" of keygroup "kg" on the simulator (1 ms links; each starts an exchange
// every `interval`, 0: never), holding `items` items of 100 bytes each, but for the first
// `missing`, which only "a" holds.
std::unique_ptr<sim::SimCluster> Replicas(int items, int missing,
                                          core::Duration interval = std::chrono::seconds(1)) {
  auto cluster = std::make_unique<sim::SimCluster>(
      sim::AllPeers({"a", "b"}), 1, std::chrono::milliseconds(1),
      [interval](node::NodeOptions& o) { o.anti_entropy_interval = interval; });
  proto::Request create;
  create.mutable_create_keygroup()->set_name("kg");
  create.mutable_create_keygroup()->add_replicas("a");
  create.mutable_create_keygroup()->add_replicas("b");
  cluster->Call("a", create);
  cluster->sim().RunFor(std::chrono::milliseconds(100));
  for (std::string id : {"a", "b"}) {
    cluster->Crash(id);
    node::WriteBatch batch;
    for (int i = id == "b" ? missing : 0; i < items; ++i) {
      batch.PutItem(
          "kg", "key" + std::to_string(i),
          node::StoredItem{std::string(100, 'v'), node::Version{1000 + i, 0, "a"}, false});
    }
    if (!cluster->Storage(id).Commit(batch).ok() || !cluster->Restart(id).ok()) return nullptr;
  }
  return cluster;
}

// A simulated second of two replicas in agreement: each starts one exchange (both ends hash every
// item once per exchange), and no item is sent.
void BM_AntiEntropyInAgreement(benchmark::State& state) {
  int items = static_cast<int>(state.range(0));
  auto cluster = Replicas(items, 0);
  if (cluster == nullptr) return state.SkipWithError("cannot set up the replicas");
  cluster->sim().RunFor(std::chrono::seconds(2));  // past the first rounds
  auto exchanges = [&] {
    return cluster->node("a").metrics().digest_exchanges +
           cluster->node("b").metrics().digest_exchanges;
  };
  uint64_t before = exchanges();
  for (auto _ : state) cluster->sim().RunFor(std::chrono::seconds(1));
  uint64_t sent = cluster->node("a").metrics().repair_items_sent +
                  cluster->node("b").metrics().repair_items_sent;
  if (sent != 0) state.SkipWithError("replicas in agreement sent items");
  state.counters["exchanges"] = benchmark::Counter(static_cast<double>(exchanges() - before),
                                                   benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * items);
}
BENCHMARK(BM_AntiEntropyInAgreement)->Arg(100000)->Unit(benchmark::kMillisecond);

// A simulated second of the same replicas while "a" takes `rate` puts per second of random items
// (replicated to "b" as they come), with anti-entropy (third argument 1) and without (0): the
// difference is what anti-entropy costs on a busy keygroup. Items written within the settle time
// are left to replication, so no repair should be sent.
void BM_AntiEntropyBusy(benchmark::State& state) {
  int items = static_cast<int>(state.range(0)), rate = static_cast<int>(state.range(1));
  bool on = state.range(2) != 0;
  auto cluster =
      Replicas(items, 0, on ? core::Duration(std::chrono::seconds(1)) : core::Duration(0));
  if (cluster == nullptr) return state.SkipWithError("cannot set up the replicas");
  std::mt19937_64 rng(7);
  uint64_t writes = 0;
  std::function<void()> write = [&] {
    proto::Request put;
    put.mutable_put()->set_keygroup("kg");
    put.mutable_put()->set_key("key" + std::to_string(rng() % static_cast<uint64_t>(items)));
    put.mutable_put()->set_value(std::string(100, 'w'));
    cluster->node("a").Execute(std::move(put), [&](proto::Response&& r) {
      if (r.code() == proto::OK) ++writes;
    });
    cluster->sim().Schedule(std::chrono::microseconds(1000000 / rate), write);
  };
  write();
  cluster->sim().RunFor(std::chrono::seconds(6));  // past the first rounds and the settle time
  auto m = [&](auto field) {
    return cluster->node("a").metrics().*field + cluster->node("b").metrics().*field;
  };
  uint64_t exchanges = m(&node::NodeMetrics::digest_exchanges);
  uint64_t repaired = m(&node::NodeMetrics::repair_items_sent);
  uint64_t written = writes;
  for (auto _ : state) cluster->sim().RunFor(std::chrono::seconds(1));
  state.counters["exchanges"] =
      benchmark::Counter(static_cast<double>(m(&node::NodeMetrics::digest_exchanges) - exchanges),
                         benchmark::Counter::kAvgIterations);
  state.counters["repaired"] =
      benchmark::Counter(static_cast<double>(m(&node::NodeMetrics::repair_items_sent) - repaired),
                         benchmark::Counter::kAvgIterations);
  state.counters["writes"] =
      benchmark::Counter(static_cast<double>(writes - written), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_AntiEntropyBusy)
    ->Args({100000, 1000, 1})
    ->Args({100000, 1000, 0})
    ->Unit(benchmark::kMillisecond);

// "b" lacks 10,000 of 100,000 items: the CPU time (both nodes, in one process) until it holds
// them all, and the simulated seconds that took (from its restart; the first round starts within
// 0.5 to 1.5 intervals).
void BM_AntiEntropyRepair(benchmark::State& state) {
  int items = static_cast<int>(state.range(0)), missing = static_cast<int>(state.range(1));
  double simulated_s = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto cluster = Replicas(items, missing);
    if (cluster == nullptr) return state.SkipWithError("cannot set up the replicas");
    auto start = cluster->sim().Now();
    state.ResumeTiming();
    bool repaired = cluster->sim().RunUntilTrue(
        [&] {
          return cluster->node("b").metrics().repaired_items >= static_cast<uint64_t>(missing);
        },
        std::chrono::seconds(60));
    state.PauseTiming();
    if (!repaired) return state.SkipWithError("not repaired within 60 simulated seconds");
    simulated_s += std::chrono::duration<double>(cluster->sim().Now() - start).count();
    cluster.reset();
    state.ResumeTiming();
  }
  state.counters["simulated_s"] =
      benchmark::Counter(simulated_s, benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_AntiEntropyRepair)->Args({100000, 10000})->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace enoki

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);  // the nodes' start-up lines are not news here
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
