// What the client subcommands share: the node to ask (--node, ENOKI_NODE), how long to wait, one
// request through a adapters::Client with errors reported as one line, and a value or body given as
// an argument, a file or stdin.
#pragma once

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <zmq.hpp>

#include "adapters/client.h"
#include "adapters/endpoint_probe.h"
#include "cli/commands.h"
#include "net/endpoint.h"

namespace enoki::cli {

struct Target {
  std::string node = "tcp://127.0.0.1:7000";
  bool node_from_env = false;  // ENOKI_NODE gave it
  int timeout_ms = 5000;       // --wait-ms
  std::string identity;        // this client's key pair file (CURVE)
  std::string server_key;      // the node's public key
};

// --node, how long to wait for the answer (--wait-ms) and the CURVE keys (--identity,
// --server-key) on a client subcommand; ENOKI_NODE overrides the default endpoint.
inline void AddTargetOptions(CLI::App* cmd, Target& target) {
  if (const char* env = std::getenv("ENOKI_NODE")) {
    target.node = env;
    target.node_from_env = true;
  }
  cmd->add_option("-n,--node", target.node,
                  "Endpoint of the node to ask: tcp://HOST:PORT (HOST:PORT means the same) or "
                  "ipc://PATH (env: ENOKI_NODE)")
      ->each([&target](const std::string&) { target.node_from_env = false; })
      ->capture_default_str();
  cmd->add_option("--wait-ms", target.timeout_ms, "How long to wait for the node's answer, in ms")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  cmd->add_option("--identity", target.identity,
                  "This client's key pair file, for a node with keys (env: ENOKI_IDENTITY)");
  cmd->add_option("--server-key", target.server_key,
                  "The node's public key: its .pub file or the key (env: ENOKI_SERVER_KEY)");
}

// How long a client waits for a connection to the node when it looks why no answer came.
constexpr std::chrono::milliseconds kProbeTimeout{1000};

// Runs `fn` with a client of the target node; prints its error, if any, and returns the exit code.
// When no answer came, says whether anything listens at the endpoint.
template <typename Fn>
int WithClient(const Target& target, Fn fn) {
  auto endpoint = net::ParseEndpoint(target.node, target.node_from_env ? "ENOKI_NODE" : "--node");
  if (!endpoint.ok()) return ReportError(endpoint.status().message());
  auto keys = adapters::LoadClientKeys(target.identity, target.server_key);
  if (!keys.ok()) return ReportError(keys.status().message());
  zmq::context_t context(1);
  adapters::Client client(context, *endpoint, std::chrono::milliseconds(target.timeout_ms), "",
                          *keys);
  core::Status st = fn(client);
  if (st.ok()) return 0;
  if (st.code() == core::Code::kDeadlineExceeded) {
    adapters::ProbeResult probe = adapters::ProbeEndpoint(*endpoint, kProbeTimeout);
    if (!probe.listening && !probe.text.empty()) {
      bool nothing = probe.text.starts_with("nothing listens");
      return ReportError(
          "no answer from " + *endpoint + " within " + std::to_string(target.timeout_ms) +
          " ms: " + probe.text +
          (nothing ? ": is the node running, and is this its --listen endpoint?" : ""));
    }
  }
  bool names_node = st.message().find(*endpoint) != std::string::npos;
  return ReportError(st.ToString() + (names_node ? "" : " (node " + *endpoint + ")"));
}

// Bytes given as a positional argument or with --file FILE ('-': stdin), not both.
struct ValueInput {
  std::string value;
  std::string file;
  CLI::Option* value_opt = nullptr;
  CLI::Option* file_opt = nullptr;

  void AddTo(CLI::App* cmd, const std::string& name = "value",
             const std::string& description = "Value") {
    value_opt = cmd->add_option(name, value, description);
    file_opt = cmd->add_option("-f,--file", file, "Read it from this file ('-': stdin)");
    value_opt->excludes(file_opt);
  }
  // The bytes; when neither was given, an error if `required`, else empty.
  core::Result<std::string> Read(bool required = true) const {
    if (value_opt->count() == 0 && file_opt->count() == 0) {
      if (!required) return std::string();
      return core::Status::InvalidArgument("give a VALUE or --file");
    }
    if (file_opt->count() == 0) return value;
    std::ostringstream out;
    if (file == "-") {
      out << std::cin.rdbuf();
    } else {
      std::ifstream in(file, std::ios::binary);
      if (!in) return core::Status::IOError("cannot read file " + file);
      out << in.rdbuf();
    }
    return out.str();
  }
};

}  // namespace enoki::cli
