// `enoki node`: runs a real node (store replica) on this machine: the event loop, the ZeroMQ
// transport, SQLite storage in the data directory, until SIGINT or SIGTERM.

#include <pthread.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "adapters/access.h"
#include "adapters/commit_thread.h"
#include "adapters/curve.h"
#include "adapters/event_loop.h"
#include "adapters/log_time.h"
#include "adapters/node_process.h"
#include "adapters/real_node.h"
#include "adapters/shifted_clock.h"
#include "adapters/sqlite_storage.h"
#include "cli/commands.h"
#include "cli/config_file.h"
#include "net/endpoint.h"
#include "node/memory_storage.h"
#include "node/validation.h"

namespace enoki::cli {
namespace {

// Whether HOST:PORT (--http, --metrics, --http-manage, --redis) listens on loopback only.
bool IsLoopbackAddress(const std::string& host_port) {
  return adapters::IsLoopbackHost(host_port.substr(0, host_port.rfind(':')));
}

struct NodeArgs {
  std::string id;
  std::string listen = "tcp://127.0.0.1:7000";
  std::string data_dir;
  std::vector<std::string> peers;
  std::vector<std::string> join;
  std::vector<std::string> join_keys;
  std::string advertise;
  std::vector<std::string> links;
  uint64_t max_value_size = node::kDefaultMaxValueBytes;
  std::string durability = "process";
  bool in_memory = false;
  int retry_ms = 200;
  int anti_entropy_ms = 10000;
  int sync_timeout_ms = 2000;
  int forward_timeout_ms = 2000;
  int64_t max_clock_ahead_ms = 60000;
  std::string log_level = "info";
  bool utc = false;
  std::string http;
  std::string http_manage;
  std::string metrics;
  std::string redis;
  std::string redis_keygroup;
  std::string tls_cert;
  std::string tls_key;
  double http_header_timeout_s = 5;
  double http_read_timeout_s = 10;
  size_t http_max_connections = 1024;
  size_t redis_max_connections = 10000;
  size_t http_max_per_address = 32;
  size_t max_clients = 10000;
  std::string trace;
  double test_clock_offset_ms = 0;
  std::string ready_file;
  uint64_t seed = 0;
  std::string key;
  std::vector<std::string> peer_keys;
  std::string access;
  net::Quota quota;  // of each client in the access file, where its line changes none
  bool insecure = false;
  std::vector<std::string> process_dirs;
  std::string worker_user;
  uint64_t worker_memory = 512ull << 20;
  uint64_t worker_cpu_seconds = 0;
  uint64_t worker_files = 1024;
  uint64_t worker_procs = 1024;
  double worker_idle_timeout = 60;
  bool allow_upload = false;
  uint64_t max_upload_bytes = node::kDefaultMaxUploadBytes;
};

constexpr const char* kNodeDescription =
    "Run a real Enoki node (a keygroup store replica) until SIGINT or SIGTERM.\n"
    "A node that listens beyond loopback needs keys (--key, --peer-key, --access; see `enoki "
    "keys generate` and docs/security.md).\n"
    "Every option can also come from a config file: --config FILE, with lines such as\n"
    "  id = \"a\"   listen = \"tcp://10.0.0.1:7000\"   peer = [\"b=tcp://10.0.0.2:7000\"]\n"
    "  key = \"a.key\"   peer-key = [\"b=b.pub\"]   access = \"access\"   process-dir = "
    "[\"/srv/fns\"]\n"
    "A key that is no option is refused, naming the file and line. One list of all nodes (--peer, "
    "--peer-key) may serve every node: a node skips its own entry.\n"
    "A data directory keeps the id of the node that made it; another id is refused on it.\n"
    "A node joins a running cluster through any member with --join (docs/membership.md).\n"
    "`enoki node status --node ENDPOINT` asks a running node whom it sees, `enoki node leave` "
    "makes one leave the cluster (see their --help).";

// The security options as the transport wants them; none without --key.
core::Result<std::optional<adapters::TransportSecurity>> LoadSecurity(
    const NodeArgs& args, const std::map<std::string, std::string>& peers) {
  if (args.key.empty()) {
    if (!args.peer_keys.empty() || !args.access.empty()) {
      return core::Status::InvalidArgument("--peer-key and --access need the node's own --key");
    }
    return std::optional<adapters::TransportSecurity>();
  }
  adapters::TransportSecurity security;
  auto own = adapters::ReadKeyPair(args.key);
  if (!own.ok()) return own.status();
  if (own->secret_key.empty()) {
    return core::Status::InvalidArgument("--key " + args.key +
                                         " holds no secret key (a .pub file? give the .key file)");
  }
  security.own = *own;
  for (const auto& p : args.peer_keys) {
    auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == p.size()) {
      return core::Status::InvalidArgument("--peer-key '" + p +
                                           "' must look like ID=KEY (a .pub file or the key)");
    }
    std::string id = p.substr(0, eq);
    if (id == args.id) continue;  // this node's own entry of a shared list (its --key says it)
    if (!peers.contains(id)) {
      return core::Status::InvalidArgument("--peer-key '" + id + "' is not a --peer");
    }
    if (security.peer_keys.contains(id)) {
      return core::Status::InvalidArgument("--peer-key '" + id + "' is given twice");
    }
    auto key = adapters::ReadPublicKey(p.substr(eq + 1));
    if (!key.ok()) {
      return core::Status(key.status().code(), "--peer-key " + id + ": " + key.status().message());
    }
    security.peer_keys[id] = *key;
  }
  if (!args.access.empty()) {
    auto clients = adapters::ReadAccessFile(args.access, args.quota);
    if (!clients.ok()) return clients.status();
    security.clients = std::move(*clients);
  }
  return std::optional<adapters::TransportSecurity>(std::move(security));
}

// Raises the soft limit of open files to the hard one (as nginx and Redis do); the limit then.
rlim_t RaiseFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlim_t hard = limit.rlim_max;
    limit.rlim_cur = hard;
    if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) return hard;
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

// Fits the connection caps under the file descriptor limit, keeping a reserve for what else the
// node opens (its storage, peers, workers, ZeroMQ's own); says so in the log.
void FitConnectionCaps(const NodeArgs& args, size_t peers, adapters::RealNodeConfig& config) {
  // Each HTTP connection: its socket, and while it calls the node a ZeroMQ client (a socket and
  // its mailbox). A Redis connection is its socket only: it is served on the node's loop.
  constexpr size_t kPerHttpConnection = 3;
  constexpr size_t kPerRedisConnection = 1;
  const size_t limit = RaiseFileLimit();
  const size_t reserve = 64 + 2 * peers;
  size_t budget = limit > reserve ? limit - reserve : 1;
  std::string shares;  // the front ends' part of the budget, for the log
  // A front end gets at most half of what is left, `each` descriptors per connection.
  auto fit = [&](std::string_view option, std::string_view what, size_t wanted, size_t each) {
    size_t cap = std::min(wanted, std::max<size_t>(1, budget / 2 / each));
    if (cap < wanted) {
      spdlog::warn("{} lowered from {} to {} to fit the file descriptor limit of {} ({} each)",
                   option, wanted, cap, limit, each);
    }
    budget -= std::min(budget - 1, cap * each);
    shares += fmt::format(", {} for each of {} {} connections", each, cap, what);
    return cap;
  };
  if (!args.http.empty()) {
    config.http.max_connections =
        fit("--http-max-connections", "HTTP", args.http_max_connections, kPerHttpConnection);
  }
  if (!args.http_manage.empty()) {  // the management API: the gateway's cap, for its own
    config.manage.max_connections =
        fit("--http-max-connections (of --http-manage)", "management API",
            args.http_max_connections, kPerHttpConnection);
  }
  if (!args.redis.empty()) {
    config.redis.max_connections =
        fit("--redis-max-connections", "Redis", args.redis_max_connections, kPerRedisConnection);
  }
  config.max_clients = std::max<size_t>(1, std::min(args.max_clients, budget));
  spdlog::log(config.max_clients < args.max_clients ? spdlog::level::warn : spdlog::level::info,
              "file descriptor limit {}: at most {} ZeroMQ connections ({}; {} descriptors kept "
              "for storage, peers and workers{})",
              limit, config.max_clients,
              config.max_clients < args.max_clients
                  ? "--max-clients " + std::to_string(args.max_clients) + " lowered to fit"
                  : "--max-clients",
              reserve, shares);
}

adapters::EventLoop* g_loop = nullptr;
extern "C" void OnStopSignal(int) {
  if (g_loop != nullptr) g_loop->Stop();
}

int RunNode(const NodeArgs& args) {
  auto level = spdlog::level::from_str(args.log_level);
  spdlog::set_level(level);
  spdlog::set_pattern(adapters::kLogPattern,
                      args.utc ? spdlog::pattern_time_type::utc : spdlog::pattern_time_type::local);

  if (auto st = node::ValidateName("--id", args.id); !st.ok()) return ReportError(st.message());
  adapters::RealNodeConfig config;
  config.node.id = args.id;
  auto listen = net::ParseEndpoint(args.listen, "--listen", net::EndpointUse::kListen);
  if (!listen.ok()) return ReportError(listen.status().message());
  config.listen = *listen;
  std::set<std::string> listed;  // the ids of --peer, this node's own included
  for (const auto& p : args.peers) {
    auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == p.size()) {
      return ReportError("--peer '" + p +
                         "' must look like ID=ENDPOINT, e.g. b=tcp://10.0.0.2:7000");
    }
    std::string id = p.substr(0, eq);
    if (auto st = node::ValidateName("--peer id", id); !st.ok()) return ReportError(st.message());
    if (!listed.insert(id).second) return ReportError("--peer '" + id + "' is given twice");
    // One list of all nodes may serve every node: this node's own entry is skipped.
    if (id == args.id) {
      spdlog::info("--peer {} is this node itself (listening on {}): skipped", p, config.listen);
      continue;
    }
    auto endpoint = net::ParseEndpoint(p.substr(eq + 1), "--peer " + id);
    if (!endpoint.ok()) return ReportError(endpoint.status().message());
    config.peers.emplace(id, *endpoint);
  }
  for (const auto& l : args.links) {
    auto eq = l.find('=');
    std::string peer = l.substr(0, eq == std::string::npos ? 0 : eq);
    if (!config.peers.contains(peer)) {
      return ReportError("--link '" + l + "' must start with the id of a --peer, as ID=SPEC");
    }
    auto spec = net::LinkSpec::Parse(l.substr(eq + 1));
    if (!spec.ok()) return ReportError("--" + spec.status().message());
    config.links[peer] = *spec;
  }
  config.node.max_value_bytes = args.max_value_size;
  config.node.retry_interval = std::chrono::milliseconds(args.retry_ms);
  config.node.anti_entropy_interval = std::chrono::milliseconds(args.anti_entropy_ms);
  config.node.sync_write_timeout = std::chrono::milliseconds(args.sync_timeout_ms);
  config.node.forward_timeout = std::chrono::milliseconds(args.forward_timeout_ms);
  config.node.max_clock_ahead = std::chrono::milliseconds(args.max_clock_ahead_ms);
  config.process_dirs = args.process_dirs;
  config.max_upload_bytes = args.max_upload_bytes;
  config.worker_user = args.worker_user;
  config.workers.limits = {args.worker_memory, args.worker_cpu_seconds, args.worker_files,
                           args.worker_procs};
  config.workers.idle_timeout = std::chrono::duration_cast<core::Duration>(
      std::chrono::duration<double>(args.worker_idle_timeout));
  config.trace = args.trace;
  if (args.tls_cert.empty() != args.tls_key.empty()) {
    return ReportError("--tls-cert and --tls-key go together: give both (TLS) or neither");
  }
  if (!args.tls_cert.empty() && args.http.empty() && args.http_manage.empty() &&
      args.redis.empty()) {
    return ReportError("--tls-cert and --tls-key need --http, --http-manage or --redis");
  }
  config.http.address = args.http;
  config.metrics = args.metrics;
  if (!args.redis_keygroup.empty() && args.redis.empty()) {
    return ReportError("--redis-keygroup needs --redis");
  }
  if (!args.redis.empty()) {  // HOST:PORT, checked as an endpoint is (port 0: any)
    auto endpoint = net::ParseEndpoint(args.redis, "--redis", net::EndpointUse::kListen);
    if (!endpoint.ok() || !endpoint->starts_with("tcp://") || args.redis.starts_with("tcp://")) {
      return ReportError("--redis '" + args.redis + "' must be HOST:PORT, e.g. 127.0.0.1:6379" +
                         (endpoint.ok() ? "" : " (" + endpoint.status().message() + ")"));
    }
  }
  config.redis.address = args.redis;
  config.redis.keygroup = args.redis_keygroup;
  config.redis.cert_file = args.tls_cert;
  config.redis.key_file = args.tls_key;
  config.http.cert_file = args.tls_cert;
  config.http.key_file = args.tls_key;
  config.http.header_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(args.http_header_timeout_s * 1000));
  config.http.read_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(args.http_read_timeout_s * 1000));
  config.http.max_per_address = args.http_max_per_address;
  if (!args.http_manage.empty()) {
    // The same TLS files, timeouts and caps as the gateway's.
    config.manage = config.http;
    config.manage.address = args.http_manage;
    if (!args.allow_upload) {
      return ReportError("--http-manage deploys uploaded code, which needs --allow-upload");
    }
  }
  if (args.allow_upload && (args.process_dirs.empty() || args.in_memory)) {
    return ReportError(
        "--allow-upload runs code that clients send, which needs process functions "
        "(--process-dir) and a data directory to keep it in (not --in-memory)");
  }
  auto security = LoadSecurity(args, config.peers);
  if (!security.ok()) return ReportError(security.status().message());
  config.security = std::move(*security);
  std::map<std::string, std::string> joins;  // each --join as given, and as ZeroMQ takes it
  for (const auto& j : args.join) {
    auto endpoint = net::ParseEndpoint(j, "--join");
    if (!endpoint.ok()) return ReportError(endpoint.status().message());
    config.join.push_back(*endpoint);
    joins[j] = *endpoint;
  }
  config.advertise = args.advertise;
  if (!args.advertise.empty() && args.advertise != "none") {
    auto endpoint = net::ParseEndpoint(args.advertise, "--advertise");
    if (!endpoint.ok() || !endpoint->starts_with("tcp://")) {
      return ReportError("--advertise '" + args.advertise +
                         "' must be tcp://HOST:PORT, or 'none' (behind NAT)");
    }
    config.advertise = *endpoint;
  }
  for (const auto& j : args.join_keys) {
    // ENDPOINT=KEY: the endpoint is one of --join (a key's Z85 may hold '=' too).
    auto endpoint = std::find_if(args.join.begin(), args.join.end(), [&](const std::string& e) {
      return j.size() > e.size() + 1 && j.starts_with(e) && j[e.size()] == '=';
    });
    if (endpoint == args.join.end()) {
      return ReportError("--join-key '" + j +
                         "' must start with the endpoint of a --join, as ENDPOINT=KEY");
    }
    if (!config.security) return ReportError("--join-key needs the node's own --key");
    auto key = adapters::ReadPublicKey(j.substr(endpoint->size() + 1));
    if (!key.ok()) return ReportError("--join-key " + *endpoint + ": " + key.status().message());
    config.join_keys[joins.at(*endpoint)] = *key;
  }
  // Secure by default: what listens beyond this host authenticates and encrypts, or is told not to.
  bool exposed = !adapters::IsLocalEndpoint(config.listen) && !config.security;
  // What a front end beyond loopback lacks, in the errors below.
  const bool tls = !args.tls_cert.empty();
  const bool secured = tls && config.security;  // a front end may listen beyond loopback
  const std::string lacking = secured           ? ""
                              : tls             ? " without tokens (the node has no --key)"
                              : config.security ? " without TLS"
                                                : " without TLS or tokens (the node has no --key)";
  // And what gives it what it lacks.
  const std::string give = std::string(tls ? "" : "--tls-cert and --tls-key") +
                           (!tls && !config.security ? ", " : "") +
                           (config.security ? "" : "--key and --access");
  // The gateway beyond loopback: TLS, and tokens (which a node with keys requires).
  bool http_exposed = !args.http.empty() && !IsLoopbackAddress(args.http) && !secured;
  // The metrics endpoint has neither TLS nor tokens: loopback only, unless told.
  bool metrics_exposed = !args.metrics.empty() && !IsLoopbackAddress(args.metrics);
  if (metrics_exposed && !args.insecure) {
    return ReportError("--metrics " + args.metrics +
                       " is reachable beyond this host, and the metrics endpoint has no TLS or "
                       "tokens: anyone who reaches it could read the node's keygroup names, "
                       "peers and load. Use a loopback address (and a scraper on this host or "
                       "a tunnel), or --insecure");
  }
  if (metrics_exposed) {
    spdlog::warn("INSECURE: node {} serves metrics on {} without authentication (--insecure)",
                 args.id, args.metrics);
  }
  // The management API deploys programs: TLS and tokens beyond loopback, as the gateway.
  bool manage_exposed =
      !args.http_manage.empty() && !IsLoopbackAddress(args.http_manage) && !secured;
  // The Redis front end beyond loopback: TLS, and tokens (which a node with keys requires).
  bool redis_exposed = !args.redis.empty() && !IsLoopbackAddress(args.redis) && !secured;
  if (redis_exposed && !args.insecure) {
    return ReportError("--redis " + args.redis + " is reachable beyond this host" + lacking + ": " +
                       (tls ? "" : "anyone on the way could read its traffic") +
                       (!tls && !config.security ? ", and " : "") +
                       (config.security ? "" : "anyone who reaches it could write everything") +
                       ". Give " + give + ", use a loopback address, or --insecure");
  }
  if (redis_exposed) {
    spdlog::warn("INSECURE: node {} serves the Redis protocol on {}{} (--insecure)", args.id,
                 args.redis, lacking);
  }
  if (manage_exposed && !args.insecure) {
    return ReportError("--http-manage " + args.http_manage + " is reachable beyond this host" +
                       lacking + ": anyone who reaches it could run programs on this host. Give " +
                       give + ", use a loopback address, or --insecure");
  }
  if (manage_exposed) {
    spdlog::warn(
        "INSECURE: node {} serves its management API on {} without authentication or "
        "encryption (--insecure)",
        args.id, args.http_manage);
  }
  if ((exposed || http_exposed) && !args.insecure) {
    return ReportError(
        exposed ? "--listen " + config.listen +
                      " is reachable beyond this host, and the node has no --key: anyone who "
                      "reaches it could read and write everything. Give it keys (docs/security.md) "
                      "or --insecure"
                : "--http " + args.http + " is reachable beyond this host" + lacking + ": give " +
                      give + ", use a loopback address, or --insecure");
  }
  if (args.insecure && (exposed || http_exposed)) {
    spdlog::warn("INSECURE: node {} serves {} without authentication or encryption (--insecure)",
                 args.id, exposed ? config.listen : "HTTP on " + args.http);
  }
  // A node that is not root runs its workers as itself: a worker could then read the node's key
  // and enter its local endpoint's folder, and so do everything (docs/security.md, "The sandbox").
  bool workers_as_node = config.security && !args.process_dirs.empty() && ::geteuid() != 0;
  if (workers_as_node && !args.insecure) {
    return ReportError(
        "--process-dir on a node with keys that does not run as root: its process functions "
        "would run as the node's own user, who may read the node's key and reach its local "
        "endpoint (every right). Run the node as root (workers then run as --worker-user, "
        "nobody by default), or give --insecure");
  }
  if (workers_as_node) {
    spdlog::warn(
        "INSECURE: node {} runs process functions as its own user, who may do what the "
        "node may (--insecure)",
        args.id);
  }

  std::unique_ptr<node::StorageEngine> storage;
  if (args.in_memory) {
    storage = std::make_unique<node::MemoryStorage>();
  } else {
    std::string dir = args.data_dir.empty() ? "enoki-data/" + args.id : args.data_dir;
    auto opened = adapters::SqliteStorage::Open(
        (std::filesystem::path(dir) / "store.db").string(),
        args.durability == "power" ? adapters::SqliteSync::kFull : adapters::SqliteSync::kNormal);
    if (!opened.ok()) return ReportError(opened.status().ToString());
    if (auto st = (*opened)->ClaimFor(args.id); !st.ok()) {
      return ReportError(st.code() == core::Code::kFailedPrecondition
                             ? st.message() +
                                   " (a data directory serves one node: start that node on it, "
                                   "or give --data-dir another folder)"
                             : st.ToString());
    }
    storage = std::move(opened.value());
    config.storage_file = (std::filesystem::path(dir) / "store.db").string();
    if (args.allow_upload) config.code_dir = (std::filesystem::path(dir) / "functions").string();
  }

  // SIGHUP reads the access file again, on the loop's thread: blocked here, before ZeroMQ starts
  // its threads (they inherit the mask), and taken from a signalfd.
  sigset_t hup;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hup, nullptr);
  int hup_fd = ::signalfd(-1, &hup, SFD_NONBLOCK | SFD_CLOEXEC);
  if (hup_fd < 0) return ReportError(std::string("signalfd: ") + std::strerror(errno));
  zmq::context_t context(1);
  adapters::EventLoop loop(args.seed != 0 ? args.seed : std::random_device{}());
  // Before the ready file says the node is there: a SIGTERM from then on stops it cleanly (a
  // signal before the loop runs makes Run return at once, after the last flush).
  g_loop = &loop;
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  size_t peers = config.peers.size();
  FitConnectionCaps(args, peers, config);
  bool secure = config.security.has_value();
  // Tests only: the node's clock (its trace's times, its clock answers) runs this far ahead.
  adapters::ShiftedClock shifted(
      loop, std::chrono::nanoseconds(std::llround(args.test_clock_offset_ms * 1e6)));
  core::Env& env = args.test_clock_offset_ms != 0 ? static_cast<core::Env&>(shifted) : loop;
  // SQLite commits on a thread of its own: a stalled disk holds up only what waits for it. (Made
  // after the loop, so that it ends before the loop does.)
  std::unique_ptr<node::StorageEngine> committer;
  if (!args.in_memory) {
    committer = std::make_unique<adapters::CommitThread>(std::move(storage), loop);
  }
  auto node = adapters::RealNode::Start(context, loop, env, committer ? *committer : *storage,
                                        std::move(config));
  if (!node.ok()) {
    ::close(hup_fd);
    return ReportError(node.status().message());
  }
  auto hup_watch = loop.WatchFd(hup_fd, ZMQ_POLLIN, [&](short) {
    signalfd_siginfo info;
    while (::read(hup_fd, &info, sizeof info) == sizeof info) {
    }
    if (!secure || args.access.empty()) {
      spdlog::info("SIGHUP: no access file to read again (the node has no --access)");
      return;
    }
    auto clients = adapters::ReadAccessFile(args.access, args.quota);
    core::Status st = clients.ok() ? (*node)->SetClients(*clients) : clients.status();
    if (!st.ok()) {
      spdlog::error("SIGHUP: the access file stays as it was: {}", st.message());
      return;
    }
    spdlog::info("SIGHUP: read the access file {} again: {} clients", args.access, clients->size());
  });
  const adapters::ReadyInfo& ready = (*node)->ready();
  if (!ready.metrics.empty()) {
    spdlog::info("node {} serves /health and /metrics on {}", args.id, ready.metrics);
  }
  if (!ready.manage.empty()) {
    spdlog::info("node {} serves the tinyFaaS management API on {}", args.id, ready.manage);
  }
  if (!ready.http.empty()) {
    spdlog::info("node {} serves functions over HTTP on {}", args.id, ready.http);
  }
  if (!ready.redis.empty()) {
    spdlog::info("node {} serves the Redis protocol on {}{}", args.id, ready.redis,
                 args.redis_keygroup.empty() ? "" : " (keygroup " + args.redis_keygroup + ")");
  }
  // Requests that came meanwhile wait in ZeroMQ's queues until the loop runs.
  if (!args.ready_file.empty()) {
    if (auto st = adapters::WriteReadyFile(args.ready_file, ready); !st.ok()) {
      return ReportError(st.message());
    }
  }

  spdlog::info(
      "node {} listening on {} with {} peers, storage {}", args.id, ready.endpoint, peers,
      args.in_memory ? "in memory" : "SQLite (durable against " + args.durability + " loss)");
  loop.Run();
  loop.Unwatch(hup_watch);
  ::close(hup_fd);
  node->reset();  // makes what the last round left durable
  spdlog::info("node {} stopped", args.id);
  g_loop = nullptr;
  return 0;
}

}  // namespace

void AddNodeCommand(CLI::App& app, Runner& run) {
  // CLI11 2.1 reads config files only for a main app, so `enoki node` is parsed by an app of its
  // own (main.cc hands it everything after "node"); this entry lists it in `enoki --help`.
  CLI::App* node = app.add_subcommand("node", kNodeDescription)->allow_extras();
  AddNodeStatusCommand(*node, run);
  AddNodeLeaveCommand(*node, run);
  run = [] { return ReportError("enoki node: internal error: parsed by the wrong app"); };
}

int NodeMain(int argc, const char* const* argv) {
  NodeArgs args;
  CLI::App cmd{kNodeDescription, "enoki node"};
  cmd.set_config("--config", "",
                 "Read options from this TOML/INI file: lines KEY = VALUE, a key being an "
                 "option's long name (data-dir = \"/var/lib/enoki\"); a key that is no option, "
                 "or one given twice, is an error naming its line. The command line wins over "
                 "the file");
  cmd.add_option("--id", args.id, "This node's id: letters, digits, '_', '-', '.'")->required();
  cmd.add_option("--listen", args.listen,
                 "ZeroMQ endpoint to listen on: tcp://HOST:PORT (port 0 picks a free port; "
                 "--ready-file says which) or ipc://PATH (a Unix socket)")
      ->capture_default_str();
  cmd.add_option("--data-dir", args.data_dir,
                 "Directory for the node's SQLite database (default: enoki-data/<id>); it keeps "
                 "this node's id, and a node with another id refuses it");
  cmd.add_option("--peer", args.peers,
                 "Another node, as ID=ENDPOINT (repeat for each peer; every node a keygroup may "
                 "be replicated to or forwarded to must be listed); an entry with this node's own "
                 "--id is skipped, so one list may serve all nodes");
  cmd.add_option("--join", args.join,
                 "Join the running cluster through the member at this endpoint (repeat for "
                 "more; tried in turn for 30 s): the members learn this node and it learns them, "
                 "without a restart of anyone. With keys, the member's access file must give "
                 "this node's key the 'join' role under this node's --id, and --join-key its key. "
                 "A node that knows members from its data directory does not join again");
  cmd.add_option("--join-key", args.join_keys,
                 "The public key of a --join member, as ENDPOINT=KEY (a .pub file, or its 40 "
                 "characters)");
  cmd.add_option("--advertise", args.advertise,
                 "Where the other members reach this node, e.g. tcp://10.0.0.5:7000 (default: "
                 "the --listen endpoint; needed with --join when that is 0.0.0.0), or 'none' "
                 "when nobody can connect to it (behind NAT): the others then send to it over "
                 "the connections it opens to them");
  cmd.add_option("--link", args.links,
                 "Emulate the link to a peer in user space, as ID=SPEC, e.g. "
                 "b=delay=25ms,jitter=1ms,dist=normal,loss=0.1%,rate=100mbit: messages to b "
                 "wait for the delay (one way), are serialized at the rate, later by TCP's "
                 "retransmission of their lost segments (loss), dropped whole at the drop rate, "
                 "and stay in order (repeat for each peer; unlisted peers: no delay)");
  cmd.add_option("--max-value-size", args.max_value_size,
                 "Largest value accepted, in bytes (suffixes: KiB, MiB, KB, MB); use the same "
                 "value on every node")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  cmd.add_option("--durability", args.durability,
                 "What an acknowledged write survives: 'process' (a crash or SIGKILL of the node; "
                 "SQLite synchronous=NORMAL) or 'power' (a crash of the machine; fsync on every "
                 "commit)")
      ->check(CLI::IsMember({"process", "power"}))
      ->capture_default_str();
  cmd.add_flag("--in-memory", args.in_memory,
               "Keep state in memory only (nothing survives a restart; for experiments)");
  cmd.add_option("--retry-ms", args.retry_ms, "Base interval of replication retries, in ms")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
  cmd.add_option("--anti-entropy-ms", args.anti_entropy_ms,
                 "How often the node compares each keygroup it holds with another replica and "
                 "repairs what differs (docs/architecture.md, anti-entropy), in ms; 0: never")
      ->check(CLI::Range(0, 86400000))
      ->capture_default_str();
  cmd.add_option("--sync-timeout-ms", args.sync_timeout_ms,
                 "How long a write to a synchronous keygroup waits for the replicas, in ms")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  cmd.add_option("--forward-timeout-ms", args.forward_timeout_ms,
                 "How long a forwarded request waits for one replica before trying the next, ms")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  cmd.add_option("--max-clock-ahead", args.max_clock_ahead_ms,
                 "Refuse a peer's message whose versions are further ahead of this node's clock "
                 "than this, in ms (such a version would win every later write of its key)")
      ->check(CLI::Range(int64_t{1}, int64_t{86400000}))
      ->capture_default_str();
  cmd.add_option("--http", args.http,
                 "Also serve functions over HTTP on HOST:PORT, tinyFaaS-style: POST /<function> "
                 "(header X-tinyFaaS-Async: true for an asynchronous call); e.g. 127.0.0.1:8000. "
                 "On a node with keys a call needs 'Authorization: Bearer TOKEN' (a token of the "
                 "access file) unless the function is public (docs/security.md)");
  cmd.add_option("--metrics", args.metrics,
                 "Serve GET /health and GET /metrics (Prometheus text format) on HOST:PORT, e.g. "
                 "127.0.0.1:9100 (port 0 picks a free port; --ready-file says which); off by "
                 "default. Plain HTTP without authentication: loopback only unless --insecure "
                 "(docs/operations.md lists the metrics)");
  cmd.add_option("--redis", args.redis,
                 "Also serve the Redis protocol (RESP2/RESP3) on HOST:PORT, e.g. 127.0.0.1:6379 "
                 "(port 0: any; the ready file says which): GET, SET, DEL, MGET, MSET, SCAN... on "
                 "the keys of one keygroup per connection (--redis-keygroup, then SELECT NAME). "
                 "On a node with keys, clients AUTH with a token of the access file; with "
                 "--tls-cert, TLS only. Beyond loopback: TLS and keys, or --insecure "
                 "(docs/redis.md)");
  cmd.add_option("--redis-keygroup", args.redis_keygroup,
                 "The keygroup a new Redis connection works in (it may SELECT another); none: "
                 "every connection SELECTs one first");
  cmd.add_option("--redis-max-connections", args.redis_max_connections,
                 "Redis connections open at once; the next is told so and closed (as Redis's "
                 "maxclients). Lowered to fit the file descriptor limit, with a log line")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  cmd.add_option("--http-manage", args.http_manage,
                 "Also serve tinyFaaS's management API on HOST:PORT (port 0: any; the ready file "
                 "says which): POST /upload (JSON name, env python3 or binary, threads, zip as "
                 "base64), POST /delete, GET /list, GET /logs. It deploys uploaded code, so it "
                 "needs --process-dir; with keys, a bearer token with deploy (deploy-process to "
                 "upload); beyond loopback, TLS (--tls-cert) and keys as --http");
  cmd.add_option("--tls-cert", args.tls_cert,
                 "Serve --http, --http-manage and --redis over TLS only, with this certificate "
                 "chain (PEM file; with --tls-key). Required, with --key and --access, for any "
                 "of them beyond loopback");
  cmd.add_option("--tls-key", args.tls_key, "The private key of --tls-cert (PEM file)");
  cmd.add_option("--http-header-timeout", args.http_header_timeout_s,
                 "Seconds an HTTP client has for the TLS handshake and a request's whole head "
                 "(request line and headers); a connection that takes longer is closed")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd.add_option("--http-read-timeout", args.http_read_timeout_s,
                 "Seconds an HTTP connection may send nothing (between requests, or within a "
                 "body) before it is closed")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd.add_option("--http-max-connections", args.http_max_connections,
                 "HTTP connections open at once (each has a thread); more are answered 503 and "
                 "closed. Lowered to fit the file descriptor limit, with a log line")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  cmd.add_option("--http-max-per-address", args.http_max_per_address,
                 "HTTP connections open at once from one client address; more are answered 503")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  cmd.add_option("--max-clients", args.max_clients,
                 "ZeroMQ connections open at once beyond which clients are refused during the "
                 "handshake (with keys, peers and the node's own processes are always admitted; "
                 "without, nothing tells a peer from a client); every connection counts from the "
                 "moment it is accepted, and one that has not finished its handshake within 5 s "
                 "is closed. Lowered below the file descriptor limit (raised to its hard limit at "
                 "start), with a log line")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24))
      ->capture_default_str();
  cmd.add_option("--trace", args.trace,
                 "Append a measurement trace to this file: every item write when it is durable "
                 "here (made here or applied from a peer) and every store operation of a "
                 "function, with monotonic-clock times (docs/results.md); served a page at a "
                 "time to clients with the control role (docs/protocol.md: trace requests; "
                 "enoki run --cluster fetches it)");
  // Hidden: for tests of clock alignment (tests/integration/run_cluster_test.cc).
  cmd.add_option("--test-clock-offset-ms", args.test_clock_offset_ms,
                 "Tests only: the node's clock reads this many ms ahead of the host's monotonic "
                 "clock (its trace's times and its answers to clock requests), as a node on "
                 "another host would")
      ->check(CLI::Range(0.0, 1e9))
      ->configurable(false)
      ->group("");
  cmd.add_option("--ready-file", args.ready_file,
                 "Once listening, write this node's id and the endpoints it actually bound "
                 "(--listen tcp://127.0.0.1:0 or :* picks a free port) to this file, as lines "
                 "'id ID', 'endpoint ENDPOINT' and 'http HOST:PORT', for whoever started it");
  cmd.add_option("--seed", args.seed,
                 "Seed of the node's random choices (the link shaper's jitter, loss and drops, the "
                 "first id of its operations); 0: a random seed. Give a restarted node a new "
                 "one, so that its operation ids differ from before");
  cmd.add_option("--key", args.key,
                 "This node's key pair (enoki keys generate NAME makes NAME.key): turns on CURVE, "
                 "so every connection is authenticated and encrypted, and only the keys of "
                 "--peer-key and --access may connect");
  cmd.add_option("--peer-key", args.peer_keys,
                 "A peer's public key, as ID=KEY (a .pub file, or its 40 characters); every "
                 "--peer needs one when the node has --key");
  cmd.add_option("--access", args.access,
                 "The access file: the clients that may connect and what each may do, a line "
                 "'NAME KEY PERMISSION...' each (docs/security.md); read at start and again on "
                 "SIGHUP");
  cmd.add_option("--quota-keygroups", args.quota.keygroups,
                 "How many keygroups each client of the access file may own (create and not "
                 "delete); a client's line may say otherwise with keygroups=N")
      ->check(CLI::Range(0, 999999999))
      ->capture_default_str();
  cmd.add_option("--quota-functions", args.quota.functions,
                 "How many functions each client of the access file may have deployed on this "
                 "node (functions=N on its line)")
      ->check(CLI::Range(0, 999999999))
      ->capture_default_str();
  cmd.add_option("--quota-workers", args.quota.workers,
                 "How many process workers the process functions of each client may run at "
                 "once on this node, the sum of their concurrency (workers=N on its line)")
      ->check(CLI::Range(0, 999999999))
      ->capture_default_str();
  cmd.add_option("--quota-concurrency", args.quota.concurrency,
                 "The highest concurrency a client of the access file may give a function "
                 "(concurrency=N on its line); a function deployed without one gets the most the "
                 "client's quota leaves, at most the node's default (100)")
      ->check(CLI::Range(1, 999999999))
      ->capture_default_str();
  cmd.add_flag("--insecure", args.insecure,
               "Listen beyond loopback without keys, or serve --http, --http-manage, --redis or "
               "--metrics beyond loopback without TLS or tokens: anyone who reaches it may read, "
               "write and deploy, or call functions; "
               "or, on a node with keys that is not root, run process functions as the node's "
               "own user; a warning at every start");
  cmd.add_option("--process-dir", args.process_dirs,
                 "Allow process functions whose program lies in this folder (symlinks resolved; "
                 "repeat for more); without it, deploying a program is refused. Workers run "
                 "sandboxed: as --worker-user, with no_new_privs and the limits below "
                 "(docs/security.md, \"The sandbox\")");
  cmd.add_flag("--allow-upload", args.allow_upload,
               "Let clients that may deploy programs (deploy-process, with keys) send a "
               "function's code (`enoki deploy --upload`, --http-manage): the node keeps it in "
               "its data directory's functions/ folder and runs it as a process function. Off by "
               "default: without it, only programs already in a --process-dir run. Needs "
               "--process-dir and a data directory; every connection may then send messages as "
               "large as --max-upload-bytes");
  cmd.add_option("--max-upload-bytes", args.max_upload_bytes,
                 "The most code one upload may send, all files and their paths together "
                 "(suffixes: KiB, MiB...; with --allow-upload)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30))
      ->capture_default_str();
  cmd.add_option("--worker-user", args.worker_user,
                 "The user process functions run as (default: nobody when the node runs as root, "
                 "else the node's own user; a node never runs them as root)");
  cmd.add_option(
         "--worker-memory", args.worker_memory,
         "Resident memory of one worker (suffixes: KiB, MiB, GiB...); over it the worker is "
         "killed and its call fails saying so. A function's default and maximum (enoki "
         "deploy --memory); 0: no limit")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  cmd.add_option("--worker-cpu-seconds", args.worker_cpu_seconds,
                 "CPU time of one worker over its life, then it is killed and replaced (a call's "
                 "time is bounded by its timeout already); default and maximum of enoki deploy "
                 "--cpu-seconds; 0: no limit")
      ->capture_default_str();
  cmd.add_option("--worker-files", args.worker_files,
                 "Open files of one worker (RLIMIT_NOFILE); default and maximum of enoki deploy "
                 "--max-files; 0: no limit")
      ->capture_default_str();
  cmd.add_option("--worker-procs", args.worker_procs,
                 "Processes of the worker user, counted by the kernel over all its processes "
                 "(RLIMIT_NPROC); default and maximum of enoki deploy --max-procs; 0: no limit")
      ->capture_default_str();
  cmd.add_option("--worker-idle-timeout", args.worker_idle_timeout,
                 "Stop a worker idle for this many seconds (the next call starts one again); 0: "
                 "never")
      ->check(CLI::Range(0.0, 86400.0 * 365))
      ->capture_default_str();
  cmd.add_flag("--utc", args.utc,
               "Log times in UTC (default: local time; either way ISO 8601 with milliseconds and "
               "the offset)");
  cmd.add_option("--log-level", args.log_level, "trace, debug, info, warn, error, critical, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  if (auto exit_code = ParseWithStrictConfig(cmd, argc, argv)) return *exit_code;
  return RunNode(args);
}

}  // namespace enoki::cli
