// enoki-kvload: a closed-loop load generator for one node's client API, the project's own
// counterpart of redis-benchmark. C clients (one DEALER each, driven from one thread like
// redis-benchmark, by the node's own event loop) each keep one request outstanding; it reports
// throughput and latency percentiles of the measured requests. Like redis-benchmark, a get of a key
// never written is a valid request (a miss, counted apart), so a get run follows a set run over the
// same keyspace.
//
// To a node without keys on a tcp:// endpoint, each client speaks ZeroMQ's wire protocol itself
// (ZMTP 3.0, NULL mechanism) over a TCP socket of its own, as redis-benchmark speaks Redis's: with
// libzmq every message also crosses its I/O thread, which on a 2-core machine took 1.5x the CPU of
// redis-benchmark per request from the node under test (bench/README.md). To a node with keys
// (CURVE) or on another transport, the clients are libzmq DEALER sockets.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include "adapters/client.h"
#include "adapters/endpoint_probe.h"
#include "adapters/event_loop.h"
#include "net/codec.h"
#include "net/endpoint.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string node = "tcp://127.0.0.1:7000";
  std::string keygroup = "bench";
  std::string op = "set";
  std::string function;  // for --op invoke
  std::string runtime = "native";
  int clients = 50;
  int requests = 100000;
  int value_size = 3;
  int keyspace = 100000;
  bool csv = false;
  std::string identity;    // CURVE: this client's key pair
  std::string server_key;  // and the node's public key
};

// A DEALER that speaks ZMTP 3.0 (rfc.zeromq.org/spec/23) with the NULL mechanism over a TCP
// connection of its own, one frame per message: what a libzmq DEALER sends a ROUTER, without the
// library's I/O thread.
class ZmtpDealer {
 public:
  ZmtpDealer() = default;
  ZmtpDealer(const ZmtpDealer&) = delete;
  ZmtpDealer& operator=(const ZmtpDealer&) = delete;
  ~ZmtpDealer() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Connects to `endpoint` (tcp://HOST:PORT) and makes the handshake (greetings, then READY
  // commands), waiting at most 10 s for each answer; "" when done, else what failed.
  std::string Connect(const std::string& endpoint) {
    std::string why;
    fd_ = enoki::adapters::ConnectTcp(endpoint, std::chrono::seconds(10), &why);
    if (fd_ < 0) return why;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval wait{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    // The greeting: signature, version 3.0, mechanism NULL, as a client; then READY, naming the
    // socket type.
    std::string greeting(64, '\0');
    greeting[0] = '\xff';
    greeting[8] = 1;
    greeting[9] = '\x7f';
    greeting[10] = 3;
    std::memcpy(&greeting[12], "NULL", 4);
    if (!SendAll(greeting)) return endpoint + ": cannot send the greeting";
    std::string theirs;
    if (!ReceiveExactly(64, &theirs) || static_cast<unsigned char>(theirs[0]) != 0xff ||
        theirs[9] != '\x7f' || theirs[10] < 3 ||
        theirs.compare(12, 5, std::string("NULL\0", 5)) != 0) {
      return endpoint + ": no ZMTP 3 greeting with the NULL mechanism";
    }
    std::string ready =
        std::string("\x05READY") + "\x0bSocket-Type" + std::string("\0\0\0\x06", 4) + "DEALER";
    if (!SendAll(std::string("\x04") + static_cast<char>(ready.size()) + ready)) {
      return endpoint + ": cannot send READY";
    }
    std::string header;
    std::string command;
    if (!ReceiveExactly(2, &header) || (header[0] & 0x04) == 0 || (header[0] & 0x02) != 0 ||
        !ReceiveExactly(static_cast<unsigned char>(header[1]), &command) ||
        command.compare(0, 6, "\x05READY") != 0) {
      return endpoint + ": no READY after the greeting";
    }
    return "";
  }
  int fd() const { return fd_; }

  // Sends a message of one frame; false when the connection failed.
  bool Send(std::string_view payload) {
    out_.clear();
    if (payload.size() < 256) {
      out_ += '\0';
      out_ += static_cast<char>(payload.size());
    } else {
      out_ += '\x02';
      for (int shift = 56; shift >= 0; shift -= 8) {
        out_ += static_cast<char>((payload.size() >> shift) & 0xff);
      }
    }
    out_.append(payload);
    return SendAll(out_);
  }

  // Reads what has arrived and hands over each whole message's last frame (commands are
  // skipped); false when the connection ended or failed.
  bool Read(const std::function<void(std::string_view)>& on_message) {
    char buffer[64 * 1024];
    for (;;) {
      ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n > 0) {
        in_.append(buffer, static_cast<size_t>(n));
        if (static_cast<size_t>(n) < sizeof buffer) break;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        return false;
      }
    }
    size_t at = 0;
    while (in_.size() - at >= 2) {
      auto flags = static_cast<unsigned char>(in_[at]);
      size_t header = (flags & 0x02) != 0 ? 9 : 2;
      if (in_.size() - at < header) break;
      uint64_t size = static_cast<unsigned char>(in_[at + 1]);
      if (header == 9) {
        size = 0;
        for (size_t i = 1; i < 9; ++i) size = (size << 8) | static_cast<unsigned char>(in_[at + i]);
      }
      if (in_.size() - at - header < size) break;
      std::string_view frame(in_.data() + at + header, size);
      at += header + size;
      if ((flags & 0x04) == 0 && (flags & 0x01) == 0) on_message(frame);
    }
    in_.erase(0, at);
    return true;
  }

 private:
  bool SendAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool ReceiveExactly(size_t n, std::string* out) {
    out->assign(n, '\0');
    for (size_t got = 0; got < n;) {
      ssize_t r = ::recv(fd_, out->data() + got, n - got, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    return true;
  }

  int fd_ = -1;
  std::string in_;   // received bytes not yet taken apart into frames
  std::string out_;  // the frame being sent
};

// One client: a libzmq DEALER socket, or its own ZMTP connection.
struct Conn {
  zmq::socket_t socket;
  std::optional<ZmtpDealer> zmtp;
  Clock::time_point sent;
  uint64_t id = 0;
};

// The deployment under test: kvload-<handler> (for a program, its file name, dots made '-').
std::string FunctionName(const Args& a) {
  std::string name = "kvload-" + std::filesystem::path(a.function).filename().string();
  std::replace(name.begin(), name.end(), '.', '-');
  return name;
}

int Run(const Args& a) {
  auto keys = enoki::adapters::LoadClientKeys(a.identity, a.server_key);
  if (!keys.ok()) {
    std::fprintf(stderr, "enoki-kvload: %s\n", keys.status().message().c_str());
    return 1;
  }
  // Nothing listening is said at once, not after the set-up's 10 s without an answer.
  enoki::adapters::ProbeResult probe =
      enoki::adapters::ProbeEndpoint(a.node, std::chrono::seconds(1));
  if (!probe.listening) {
    std::fprintf(stderr, "enoki-kvload: cannot reach the node: %s\n", probe.text.c_str());
    return 1;
  }
  zmq::context_t context(1);
  // ZeroMQ's default cap is 1,023 sockets per context: room for every client and the set-up's.
  context.set(zmq::ctxopt::max_sockets, a.clients + 16);
  {
    // Set-up: the keygroup (one replica, the node itself).
    enoki::adapters::Client setup(context, a.node, std::chrono::seconds(10), "", *keys);
    enoki::proto::CreateKeygroupRequest create;
    create.set_name(a.keygroup);
    auto st = setup.CreateKeygroup(create);
    if (!st.ok() && st.code() != enoki::core::Code::kAlreadyExists) {
      std::fprintf(stderr, "enoki-kvload: cannot create keygroup: %s\n", st.ToString().c_str());
      return 1;
    }
    if (a.op == "invoke") {
      // The function under test, deployed on the benchmark keygroup.
      enoki::proto::FunctionSpec spec;
      spec.set_name(FunctionName(a));
      spec.set_runtime(a.runtime);
      spec.set_handler(a.runtime == "process" ? std::filesystem::absolute(a.function).string()
                                              : a.function);
      spec.set_keygroup(a.keygroup);
      spec.set_concurrency(static_cast<uint32_t>(a.clients));
      if (auto d = setup.DeployFunction(spec); !d.ok()) {
        std::fprintf(stderr, "enoki-kvload: cannot deploy: %s\n", d.ToString().c_str());
        return 1;
      }
    }
  }

  // The clients' sockets, served by the node's own event loop (adapters/event_loop.h): one
  // epoll_wait a round, and ZeroMQ asked only about the sockets that signalled. (zmq::poll over
  // every socket asked each of them twice a round, a poll and a getpid per socket: with 50
  // clients the tool then cost twice the CPU per request of redis-benchmark.)
  enoki::adapters::EventLoop loop(1);
  std::vector<Conn> conns(static_cast<size_t>(a.clients));
  const bool zmtp = !keys->enabled() && a.node.rfind("tcp://", 0) == 0;
  for (auto& c : conns) {
    if (zmtp) {
      std::string error = c.zmtp.emplace().Connect(a.node);
      if (!error.empty()) {
        std::fprintf(stderr, "enoki-kvload: %s\n", error.c_str());
        return 1;
      }
      continue;
    }
    c.socket = zmq::socket_t(context, zmq::socket_type::dealer);
    c.socket.set(zmq::sockopt::linger, 0);
    enoki::adapters::UseClientKeys(c.socket, *keys);
    c.socket.connect(a.node);
  }

  std::string value(static_cast<size_t>(a.value_size), 'x');
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int> key_dist(0, a.keyspace - 1);
  enoki::proto::Request request;
  enoki::proto::Envelope reply;
  std::string frame;
  uint64_t next_id = 1;
  int issued = 0;
  int done = 0;
  int errors = 0;
  int misses = 0;
  bool failed = false;  // a request could not be sent, or no answer came
  std::vector<double> latencies_us;
  latencies_us.reserve(static_cast<size_t>(a.requests));

  auto send = [&](Conn& c) {
    std::string key = "key:" + std::to_string(key_dist(rng));
    request.Clear();
    c.id = next_id++;
    request.set_id(c.id);
    if (a.op == "set") {
      auto* p = request.mutable_put();
      p->set_keygroup(a.keygroup);
      p->set_key(key);
      p->set_value(value);
    } else if (a.op == "invoke") {
      auto* inv = request.mutable_invoke();
      inv->set_function(FunctionName(a));
      inv->set_body(key);
    } else {
      auto* g = request.mutable_get();
      g->set_keygroup(a.keygroup);
      g->set_key(key);
    }
    enoki::net::EncodeEnvelope(request, &frame);
    c.sent = Clock::now();
    ++issued;
    // A DEALER queues up to its high-water mark (1,000 messages) while it connects: one each.
    if (c.zmtp ? !c.zmtp->Send(frame) : !loop.Send(c.socket, zmq::buffer(frame))) {
      std::fprintf(stderr, "enoki-kvload: a client's request could not be queued\n");
      failed = true;
      loop.Stop();
    }
  };
  // An answer to `c`'s outstanding request ends it and sends the next.
  auto on_answer = [&](Conn& c, std::string_view answer) {
    if (!reply.ParseFromArray(answer.data(), static_cast<int>(answer.size())) ||
        reply.response().id() != c.id) {
      return;
    }
    auto now = Clock::now();
    latencies_us.push_back(std::chrono::duration<double, std::micro>(now - c.sent).count());
    if (reply.response().code() == enoki::proto::NOT_FOUND && a.op == "get") {
      ++misses;
    } else if (reply.response().code() != enoki::proto::OK) {
      if (errors++ == 0) {
        std::fprintf(stderr, "enoki-kvload: first error: %s\n", reply.response().error().c_str());
      }
    }
    ++done;
    if (issued < a.requests) {
      send(c);
    } else if (done == issued) {
      loop.Stop();
    }
  };
  // Reads one message of a libzmq socket, not until it has no more: the loop asks the socket
  // again in the next round anyway, and a read that finds nothing costs ZeroMQ a poll and a getpid.
  zmq::message_t msg;
  for (auto& c : conns) {
    if (c.zmtp) {
      loop.WatchFd(c.zmtp->fd(), ZMQ_POLLIN, [&, &c = c](short) {
        if (!c.zmtp->Read([&](std::string_view answer) { on_answer(c, answer); })) {
          std::fprintf(stderr, "enoki-kvload: the node closed a client's connection\n");
          failed = true;
          loop.Stop();
        }
      });
    } else {
      loop.AddSocket(c.socket, [&, &c = c] {
        if (c.socket.recv(msg, zmq::recv_flags::dontwait)) {
          on_answer(c, std::string_view(static_cast<const char*>(msg.data()), msg.size()));
        }
      });
    }
  }

  // Gives up when no answer came for 10 s (looked at every second).
  int done_before = 0;
  int quiet_seconds = 0;
  std::function<void()> watchdog = [&] {
    quiet_seconds = done == done_before ? quiet_seconds + 1 : 0;
    done_before = done;
    if (quiet_seconds >= 10) {
      std::fprintf(stderr, "enoki-kvload: no answer for 10 s, %d of %d done\n", done, issued);
      failed = true;
      loop.Stop();
      return;
    }
    loop.Schedule(std::chrono::seconds(1), watchdog);
  };
  loop.Schedule(std::chrono::seconds(1), watchdog);

  auto start = Clock::now();
  for (auto& c : conns) {
    if (issued < a.requests) send(c);
  }
  loop.Run();
  if (failed) return 1;
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) {
    return latencies_us[static_cast<size_t>(p * static_cast<double>(latencies_us.size() - 1))] /
           1000.0;
  };
  double rps = done / secs;
  if (a.csv) {
    std::string label = a.op == "set" ? "SET" : a.op == "get" ? "GET" : "INVOKE " + FunctionName(a);
    std::printf("\"%s\",\"%.2f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%d\"\n", label.c_str(), rps, pct(0.5),
                pct(0.95), pct(0.99), errors);
  } else {
    std::printf(
        "%s: %d requests, %d clients, %d-byte values: %.0f requests/s; latency p50 %.3f ms, "
        "p95 %.3f ms, p99 %.3f ms, max %.3f ms; %d misses, %d errors\n",
        a.op.c_str(), done, a.clients, a.value_size, rps, pct(0.5), pct(0.95), pct(0.99),
        latencies_us.back() / 1000.0, misses, errors);
  }
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"enoki-kvload: closed-loop get/put load on one Enoki node, like redis-benchmark"};
  app.add_option("-n,--node", a.node, "Endpoint of the node")->capture_default_str();
  app.add_option("-k,--keygroup", a.keygroup, "Keygroup (created on the node if missing)")
      ->capture_default_str();
  app.add_option("-t,--op", a.op, "set (put), get, or invoke (a function)")
      ->check(CLI::IsMember({"set", "get", "invoke"}))
      ->capture_default_str();
  app.add_option(
      "--function", a.function,
      "For --op invoke: the function to deploy and call, with the key as its body: a "
      "built-in native function (e.g. increment: one get and one conditional put) or, with "
      "--runtime process, a program's path");
  app.add_option("--runtime", a.runtime, "For --op invoke: native or process")
      ->check(CLI::IsMember({"native", "process"}))
      ->capture_default_str();
  app.add_option("-c,--clients", a.clients, "Concurrent clients")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("-r,--requests", a.requests, "Requests in total")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("-d,--value-size", a.value_size, "Value size in bytes (redis-benchmark: 3)")
      ->check(CLI::Range(0, 64 << 20))
      ->capture_default_str();
  app.add_option("--keyspace", a.keyspace, "Number of distinct keys")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("--identity", a.identity,
                 "This client's key pair file, for a node with keys (env: ENOKI_IDENTITY)");
  app.add_option("--server-key", a.server_key,
                 "The node's public key: its .pub file or the key (env: ENOKI_SERVER_KEY)");
  app.add_flag("--csv", a.csv, "One CSV line: op, requests/s, p50, p95, p99 (ms), errors");
  CLI11_PARSE(app, argc, argv);
  auto node = enoki::net::ParseEndpoint(a.node, "--node");
  if (!node.ok()) {
    std::fprintf(stderr, "enoki-kvload: %s\n", node.status().message().c_str());
    return 1;
  }
  a.node = *node;
  if (a.op == "invoke" && a.function.empty()) {
    std::fprintf(stderr, "enoki-kvload: --op invoke needs --function\n");
    return 1;
  }
  return Run(a);
}
