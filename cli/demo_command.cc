// `enoki demo`: the three-node demo on loopback. Starts three `enoki node` processes, creates a
// keygroup replicated on all three, writes at one node and reads at the other two, prints what it
// saw (with latencies), and stops the nodes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include <zmq.hpp>

#include "adapters/client.h"
#include "adapters/node_process.h"
#include "adapters/subprocess.h"
#include "cli/commands.h"

namespace enoki::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct DemoArgs {
  std::string dir;
  int items = 100;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

int RunDemo(const DemoArgs& args) {
  fs::path dir = args.dir.empty()
                     ? fs::temp_directory_path() / ("enoki-demo-" + std::to_string(::getpid()))
                     : fs::path(args.dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return ReportError("cannot create " + dir.string() + ": " + ec.message());

  const std::vector<std::string> ids = {"a", "b", "c"};
  // Each node listens on a Unix socket of its own name, and says when it does (its ready file).
  auto sockets = adapters::MakeSocketFolder((dir / "sockets").string(), 1);
  if (!sockets.ok()) return ReportError(sockets.status().message());
  // A folder made in the temporary directory goes, however the demo ends.
  struct RemoveTemporary {
    const adapters::SocketFolder& folder;
    ~RemoveTemporary() {
      std::error_code ignored;
      if (folder.temporary) fs::remove_all(folder.path, ignored);
    }
  } remove_temporary{*sockets};
  std::map<std::string, std::string> endpoints;
  for (const auto& id : ids) endpoints[id] = "ipc://" + sockets->path + "/" + id;
  std::printf("Starting nodes a, b, c on Unix sockets (data and logs in %s%s)\n", dir.c_str(),
              args.dir.empty() ? ", removed at the end: --dir DIR keeps them" : "");
  std::vector<adapters::Subprocess> nodes;
  for (const auto& id : ids) {
    std::string ready = (dir / (id + ".ready")).string();
    fs::remove(ready, ec);
    adapters::NodeProcessOptions o;
    o.binary = adapters::Subprocess::SelfPath();
    o.id = id;
    o.listen = endpoints[id];
    o.data_dir = (dir / id).string();
    o.ready_file = ready;
    for (const auto& other : ids) {
      if (other != id) o.peers.emplace_back(other, endpoints[other]);
    }
    auto p =
        adapters::Subprocess::Start(adapters::NodeCommandLine(o), (dir / (id + ".log")).string());
    if (!p.ok()) return ReportError(p.status().message());
    nodes.push_back(std::move(p.value()));
    std::printf("  node %s  %s  pid %d\n", id.c_str(), endpoints[id].c_str(), nodes.back().pid());
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    auto ready = adapters::WaitForReadyFile((dir / (ids[i] + ".ready")).string(), ids[i], nodes[i],
                                            std::chrono::seconds(10));
    if (!ready.ok()) {
      return ReportError(ready.status().message() + "; see " + (dir / (ids[i] + ".log")).string());
    }
  }

  zmq::context_t context(1);
  std::map<std::string, std::unique_ptr<adapters::Client>> clients;
  for (const auto& id : ids) {
    clients[id] = std::make_unique<adapters::Client>(context, endpoints[id],
                                                     std::chrono::milliseconds(2000), id);
  }

  proto::CreateKeygroupRequest create;
  create.set_name("demo");
  for (const auto& id : ids) create.add_replicas(id);
  if (auto st = clients["a"]->CreateKeygroup(create); !st.ok()) {
    return ReportError("create keygroup: " + st.ToString());
  }
  std::printf("Created keygroup 'demo' replicated on a, b, c (asked node a)\n");

  std::vector<double> put_ms;
  Clock::time_point last_put_end;
  for (int i = 0; i < args.items; ++i) {
    auto start = Clock::now();
    auto r = clients["a"]->Put("demo", "key" + std::to_string(i), "value " + std::to_string(i));
    last_put_end = Clock::now();
    if (!r.ok()) return ReportError("put at a: " + r.status().ToString());
    put_ms.push_back(Ms(last_put_end - start));
  }
  std::printf("Wrote %d items at node a: put latency p50 %.3f ms, p99 %.3f ms\n", args.items,
              Percentile(put_ms, 0.5), Percentile(put_ms, 0.99));

  std::string last_key = "key" + std::to_string(args.items - 1);
  std::string last_value = "value " + std::to_string(args.items - 1);
  // Poll b and c in turn until each shows the last write, so each lag is measured on its own.
  std::map<std::string, double> lag_ms;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (lag_ms.size() < 2 && Clock::now() < deadline) {
    for (const std::string id : {"b", "c"}) {
      if (lag_ms.contains(id)) continue;
      auto r = clients[id]->Get("demo", last_key);
      if (r.ok() && r->value() == last_value) lag_ms[id] = Ms(Clock::now() - last_put_end);
    }
  }
  int failures = 0;
  for (const std::string id : {"b", "c"}) {
    if (!lag_ms.contains(id)) {
      std::printf("Node %s: %s was NOT replicated within 10 s\n", id.c_str(), last_key.c_str());
      ++failures;
      continue;
    }
    int present = 0;
    std::vector<double> get_ms;
    for (int i = 0; i < args.items; ++i) {
      auto start = Clock::now();
      auto g = clients[id]->Get("demo", "key" + std::to_string(i));
      get_ms.push_back(Ms(Clock::now() - start));
      if (g.ok() && g->value() == "value " + std::to_string(i)) ++present;
    }
    std::printf(
        "Read at node %s: %d of %d items present (the last one visible there %.2f ms after its "
        "put returned); get latency p50 %.3f ms, p99 %.3f ms\n",
        id.c_str(), present, args.items, lag_ms[id], Percentile(get_ms, 0.5),
        Percentile(get_ms, 0.99));
    if (present != args.items) ++failures;
  }

  for (auto& n : nodes) n.Stop();
  std::printf("Stopped the nodes. %s\n", failures == 0 ? "Demo passed." : "Demo FAILED.");
  if (args.dir.empty()) fs::remove_all(dir, ec);
  return failures == 0 ? 0 : 1;
}

}  // namespace

void AddDemoCommand(CLI::App& app, Runner& run) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Start three nodes on loopback, replicate a keygroup across them, write at one node and "
      "read at the others, then stop them");
  cmd->add_option("--dir", args->dir,
                  "Keep the nodes' data and logs in this directory (default: a temporary one, "
                  "removed afterwards)");
  cmd->add_option("--items", args->items, "How many items to write")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->callback([&run, args] { run = [args] { return RunDemo(*args); }; });
}

}  // namespace enoki::cli
