// NodeCluster: real `enoki node` processes for integration tests, each listening on a Unix socket
// named after its id and with its own data directory under a fresh temporary folder, started,
// killed and restarted by id; a node counts as started once its ready file says so.
#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "adapters/client.h"
#include "adapters/node_process.h"
#include "adapters/subprocess.h"

namespace enoki::testing {

class NodeCluster {
 public:
  // Nodes `ids`, each started with `extra_args` and its own entry of `node_args`; with `http`,
  // each also serves HTTP on a loopback port it picks itself (http_port(id)). A node with an
  // entry in `wrappers` runs under that command (e.g. {"prlimit", "--nofile=256", "--"}).
  explicit NodeCluster(std::vector<std::string> ids, std::vector<std::string> extra_args = {},
                       bool http = false,
                       std::map<std::string, std::vector<std::string>> node_args = {},
                       std::map<std::string, std::vector<std::string>> wrappers = {})
      : ids_(std::move(ids)),
        extra_args_(std::move(extra_args)),
        node_args_(std::move(node_args)),
        wrappers_(std::move(wrappers)) {
    dir_ = std::filesystem::temp_directory_path() /
           ("enoki-it-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    size_t longest = 8;  // room for newcomers' ids
    for (const auto& id : ids_) longest = std::max(longest, id.size());
    auto sockets = adapters::MakeSocketFolder((dir_ / "sockets").string(), longest);
    EXPECT_TRUE(sockets.ok() && !sockets->temporary) << sockets.status().ToString();
    for (const auto& id : ids_) {
      endpoints_[id] = "ipc://" + (dir_ / "sockets" / id).string();
      if (http) http_ports_[id] = 0;
    }
    for (const auto& id : ids_) Start(id);
  }
  ~NodeCluster() {
    procs_.clear();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts node `id` on its data directory and waits (at most 10 s) until it is ready.
  void Start(const std::string& id) {
    std::string ready = (dir_ / (id + ".ready")).string();
    std::filesystem::remove(ready);
    adapters::NodeProcessOptions o;
    o.binary = ENOKI_BINARY;
    o.id = id;
    o.listen = endpoints_[id];
    o.data_dir = (dir_ / id).string();
    o.ready_file = ready;
    o.log_level = "warn";
    o.retry_interval = std::chrono::milliseconds(50);
    if (!newcomers_.contains(id)) {
      for (const auto& other : ids_) {
        if (other != id) o.peers.emplace_back(other, endpoints_[other]);
      }
    }
    if (http_ports_.contains(id)) o.http = "127.0.0.1:0";
    o.more = extra_args_;
    o.more.insert(o.more.end(), node_args_[id].begin(), node_args_[id].end());
    std::vector<std::string> argv = wrappers_[id];
    for (auto& arg : adapters::NodeCommandLine(o)) argv.push_back(std::move(arg));
    auto p = adapters::Subprocess::Start(argv, log(id));
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    procs_.erase(id);
    auto& proc = procs_.emplace(id, std::move(p.value())).first->second;
    auto info = adapters::WaitForReadyFile(ready, id, proc, std::chrono::seconds(10));
    ASSERT_TRUE(info.ok()) << info.status().ToString() << "; log: " << log(id);
    ASSERT_EQ(info->endpoint, endpoints_[id]);
    if (!info->metrics.empty()) {
      metrics_ports_[id] = std::stoi(info->metrics.substr(info->metrics.rfind(':') + 1));
    }
    if (!info->manage.empty()) {
      manage_ports_[id] = std::stoi(info->manage.substr(info->manage.rfind(':') + 1));
    }
    if (!info->redis.empty()) {
      redis_ports_[id] = std::stoi(info->redis.substr(info->redis.rfind(':') + 1));
    }
    if (http_ports_.contains(id)) {
      ASSERT_FALSE(info->http.empty());
      http_ports_[id] = std::stoi(info->http.substr(info->http.rfind(':') + 1));
    }
  }
  // Starts node `id`, which the others do not know and which knows none of them, with `args`
  // (e.g. --join ENDPOINT): a node that joins the running cluster.
  void StartNewcomer(const std::string& id, std::vector<std::string> args) {
    newcomers_.insert(id);
    endpoints_[id] = "ipc://" + (dir_ / "sockets" / id).string();
    node_args_[id] = std::move(args);
    Start(id);
  }
  void Kill(const std::string& id) { procs_.at(id).Kill(); }
  pid_t pid(const std::string& id) { return procs_.at(id).pid(); }
  // SIGTERM; returns the exit status.
  int Stop(const std::string& id) { return procs_.at(id).Stop(); }

  std::unique_ptr<adapters::Client> Client(
      const std::string& id, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return std::make_unique<adapters::Client>(context_, endpoints_.at(id), timeout, id);
  }
  const std::string& endpoint(const std::string& id) { return endpoints_.at(id); }
  // Node `id`'s data directory (its database is store.db in it).
  std::filesystem::path data_dir(const std::string& id) const { return dir_ / id; }
  // Where node `id` writes its log.
  std::string log(const std::string& id) const { return (dir_ / (id + ".log")).string(); }
  int http_port(const std::string& id) { return http_ports_.at(id); }
  // The port of node `id`'s metrics endpoint (a node started with --metrics HOST:PORT).
  int metrics_port(const std::string& id) { return metrics_ports_.at(id); }
  // The port of node `id`'s management API (a node started with --http-manage HOST:PORT).
  int manage_port(const std::string& id) { return manage_ports_.at(id); }
  // The port of node `id`'s Redis front end (a node started with --redis HOST:PORT).
  int redis_port(const std::string& id) { return redis_ports_.at(id); }
  zmq::context_t& context() { return context_; }

  // Polls `fn` (returning true when satisfied) every 20 ms, at most `limit`.
  static bool Eventually(const std::function<bool()>& fn,
                         std::chrono::milliseconds limit = std::chrono::seconds(15)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (fn()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return fn();
  }

 private:
  static inline int counter_ = 0;
  std::vector<std::string> ids_;
  std::vector<std::string> extra_args_;
  std::map<std::string, std::vector<std::string>> node_args_;
  std::map<std::string, std::vector<std::string>> wrappers_;
  std::set<std::string> newcomers_;  // started later, without --peer
  std::filesystem::path dir_;
  std::map<std::string, std::string> endpoints_;
  std::map<std::string, int> http_ports_;
  std::map<std::string, int> metrics_ports_;
  std::map<std::string, int> manage_ports_;
  std::map<std::string, int> redis_ports_;
  std::map<std::string, adapters::Subprocess> procs_;
  zmq::context_t context_{1};
};

}  // namespace enoki::testing
