// Commands as a user types them, for integration tests: `enoki ARGS` and curl against a node's
// HTTP gateway, each run to its end with its output captured; and what /proc says of a process.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace enoki::testing {

struct Output {
  int status;        // the exit status (-1: killed by a signal)
  std::string text;  // stdout and stderr
};

// Runs `command` in a shell and returns what it wrote and its exit status.
inline Output RunShell(const std::string& command) {
  FILE* p = ::popen(command.c_str(), "r");
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

// `enoki ARGS` (the binary under test), stderr with stdout.
inline Output Enoki(const std::string& args) {
  return RunShell(std::string(ENOKI_BINARY) + " " + args + " 2>&1");
}

struct Http {
  int status;
  std::string body;
};

// POSTs `body` to `url` with curl and `options` (more curl options, as a shell reads them); status
// 0 when no HTTP answer came.
inline Http CurlUrl(const std::string& url, const std::string& body,
                    const std::string& options = "") {
  Output out = RunShell("curl -s -o - -w '\\n%{http_code}' -X POST --data-binary '" + body + "' " +
                        options + " " + url);
  auto nl = out.text.rfind('\n');
  if (nl == std::string::npos) return {0, out.text};
  return {std::atoi(out.text.c_str() + nl + 1), out.text.substr(0, nl)};
}

// POSTs `body` to the node's gateway on 127.0.0.1:`port`; `async` adds the tinyFaaS async header.
inline Http Curl(int port, const std::string& function, const std::string& body,
                 bool async = false) {
  return CurlUrl("http://127.0.0.1:" + std::to_string(port) + "/" + function, body,
                 async ? "-H 'X-tinyFaaS-Async: true'" : "");
}

// A field of /proc/PID/status in kB (VmRSS: resident memory now, VmHWM: its peak); -1 if absent.
inline long ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  }
  return -1;
}

}  // namespace enoki::testing
