// NodeCluster: real `enoki node` processes on loopback for integration tests, each with its own
// data directory under a fresh temporary folder, started, killed and restarted by id.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "core/subprocess.h"
#include "net/client.h"
#include "net/free_port.h"

namespace enoki::testing {

class NodeCluster {
 public:
  // Nodes `ids` on free loopback ports, each started with `extra_args` and its own entry of
  // `node_args`; with `http`, each also serves HTTP (http_port(id)).
  explicit NodeCluster(std::vector<std::string> ids, std::vector<std::string> extra_args = {},
                       bool http = false,
                       std::map<std::string, std::vector<std::string>> node_args = {})
      : ids_(std::move(ids)), extra_args_(std::move(extra_args)), node_args_(std::move(node_args)) {
    dir_ = std::filesystem::temp_directory_path() /
           ("enoki-it-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    for (const auto& id : ids_) {
      auto port = net::FreeLoopbackPort();
      EXPECT_TRUE(port.ok());
      endpoints_[id] = "tcp://127.0.0.1:" + std::to_string(port.ok() ? *port : 0);
      if (http) {
        auto http_port = net::FreeLoopbackPort();
        EXPECT_TRUE(http_port.ok());
        http_ports_[id] = http_port.ok() ? *http_port : 0;
      }
    }
    for (const auto& id : ids_) Start(id);
  }
  ~NodeCluster() {
    procs_.clear();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts node `id` on its data directory and waits (at most 10 s) until it answers.
  void Start(const std::string& id) {
    std::vector<std::string> argv = {
        ENOKI_BINARY, "node",         "--id",        id,
        "--listen",   endpoints_[id], "--data-dir",  (dir_ / id).string(),
        "--retry-ms", "50",           "--log-level", "warn"};
    for (const auto& other : ids_) {
      if (other != id) argv.push_back("--peer=" + other + "=" + endpoints_[other]);
    }
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    argv.insert(argv.end(), node_args_[id].begin(), node_args_[id].end());
    if (http_ports_.contains(id)) {
      argv.push_back("--http=127.0.0.1:" + std::to_string(http_ports_[id]));
    }
    auto p = core::Subprocess::Start(argv, (dir_ / (id + ".log")).string());
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    procs_.erase(id);
    procs_.emplace(id, std::move(p.value()));
    auto c = Client(id, std::chrono::milliseconds(200));
    for (int i = 0; i < 50; ++i) {
      auto r = c->KeygroupInfo("no-such-keygroup");
      if (r.status().code() == core::Code::kNotFound) return;
    }
    FAIL() << "node " << id << " did not answer; log: " << (dir_ / (id + ".log"));
  }
  void Kill(const std::string& id) { procs_.at(id).Kill(); }
  pid_t pid(const std::string& id) { return procs_.at(id).pid(); }
  // SIGTERM; returns the exit status.
  int Stop(const std::string& id) { return procs_.at(id).Stop(); }

  std::unique_ptr<net::Client> Client(const std::string& id,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return std::make_unique<net::Client>(context_, endpoints_.at(id), timeout);
  }
  const std::string& endpoint(const std::string& id) { return endpoints_.at(id); }
  int http_port(const std::string& id) { return http_ports_.at(id); }
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
  std::filesystem::path dir_;
  std::map<std::string, std::string> endpoints_;
  std::map<std::string, int> http_ports_;
  std::map<std::string, core::Subprocess> procs_;
  zmq::context_t context_{1};
};

}  // namespace enoki::testing
