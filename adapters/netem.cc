// Namespaces, veth pairs, a bridge and tc (htb + netem + u32) for emulated links.
#include "adapters/netem.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "adapters/subprocess.h"

namespace enoki::adapters {
namespace {

using core::Status;

constexpr const char* kNamespacePrefix = "enoki-";  // enoki-<pid>-<host index>
constexpr const char* kDevicePrefix = "enk-";       // enk-<pid in base 36>-b / -<index>

std::string Base36(unsigned long n) {
  std::string s;
  do {
    s.insert(s.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[n % 36]);
    n /= 36;
  } while (n > 0);
  return s;
}

bool ProcessGone(long pid) {
  return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

// Writes `lines` to `file` and runs them with `tool` (ip or tc) -batch, in `netns` if not empty;
// `force` goes on past failing lines.
Status RunBatch(const std::string& tool, const std::string& netns, const std::string& file,
                const std::vector<std::string>& lines, bool force) {
  {
    std::ofstream out(file);
    for (const auto& l : lines) out << l << "\n";
    if (!out) return Status::IOError("cannot write " + file);
  }
  std::vector<std::string> argv = {tool};
  if (!netns.empty()) argv.insert(argv.end(), {"-n", netns});
  if (force) argv.push_back("-force");
  argv.insert(argv.end(), {"-batch", file});
  auto r = adapters::RunCommand(argv);
  return r.ok() ? Status::Ok() : Status::Internal("netem: " + r.status().message());
}

// The second octet of a 10.X.0.0/16 that no address of this host is in.
int FreeSubnet() {
  ifaddrs* list = nullptr;
  std::vector<bool> used(256, false);
  if (::getifaddrs(&list) == 0) {
    for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
      if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
      uint32_t ip = ntohl(reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr);
      if ((ip >> 24) == 10) used[(ip >> 16) & 0xff] = true;
    }
    ::freeifaddrs(list);
  }
  for (int i = 0; i < 100; ++i) {
    int x = 100 + (::getpid() + i) % 100;
    if (!used[static_cast<size_t>(x)]) return x;
  }
  return 100;
}

// What runs whose process has died left behind: namespaces and devices with its id in the name.
void RemoveStale() {
  std::vector<std::string> lines;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    std::string name = e.path().filename();
    if (name.rfind(kNamespacePrefix, 0) != 0) continue;
    if (ProcessGone(std::strtol(name.c_str() + std::strlen(kNamespacePrefix), nullptr, 10))) {
      lines.push_back("netns delete " + name);
    }
  }
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/net", ec)) {
    std::string name = e.path().filename();
    if (name.rfind(kDevicePrefix, 0) != 0) continue;
    if (ProcessGone(std::strtol(name.c_str() + std::strlen(kDevicePrefix), nullptr, 36))) {
      lines.push_back("link delete " + name);
    }
  }
  if (lines.empty()) return;
  std::string file = "/tmp/enoki-netem-stale-" + std::to_string(::getpid()) + ".batch";
  (void)RunBatch("ip", "", file, lines, true);
  std::filesystem::remove(file, ec);
}

std::string NetemArgs(const net::LinkSpec& spec) {
  char buf[256];
  std::string s =
      "netem limit 100000 delay " +
      std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(spec.delay).count()) +
      "us";
  if (spec.jitter.count() > 0) {
    s +=
        " " +
        std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(spec.jitter).count()) +
        "us";
    if (spec.distribution == net::LinkSpec::Jitter::kNormal) s += " distribution normal";
  }
  double loss = spec.cut ? 1.0 : spec.loss;
  if (loss > 0) {
    std::snprintf(buf, sizeof buf, " loss %.6g%%", loss * 100);
    s += buf;
  }
  return s;
}

std::string HtbRate(const net::LinkSpec& spec) {
  if (spec.rate_bps <= 0) return "rate 10gbit quantum 60000";
  char buf[64];
  std::snprintf(buf, sizeof buf, "rate %.0fbit burst 1600b cburst 1600b quantum 60000",
                spec.rate_bps);
  return buf;
}

std::string Hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%x", v);
  return buf;
}

}  // namespace

std::string NetemNetwork::NamespacePrefix(long pid) {
  return kNamespacePrefix + std::to_string(pid) + "-";
}
std::string NetemNetwork::DevicePrefix(long pid) {
  return kDevicePrefix + Base36(static_cast<unsigned long>(pid)) + "-";
}

Status NetemNetwork::Available() {
  if (::geteuid() != 0) return Status::FailedPrecondition("not root (netem needs root)");
  std::string probe = NamespacePrefix(::getpid()) + "probe";
  auto added = adapters::RunCommand({"ip", "netns", "add", probe});
  if (!added.ok())
    return Status::FailedPrecondition("cannot create a network namespace: " +
                                      added.status().message());
  auto netem = adapters::RunCommand(
      {"tc", "-n", probe, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"});
  (void)adapters::RunCommand({"ip", "netns", "delete", probe});
  if (!netem.ok())
    return Status::FailedPrecondition("the kernel has no netem qdisc (sch_netem): " +
                                      netem.status().message());
  return Status::Ok();
}

core::Result<std::unique_ptr<NetemNetwork>> NetemNetwork::Create(
    const std::vector<Host>& hosts, const std::map<Pair, net::LinkSpec>& links,
    const std::string& work_dir) {
  if (hosts.size() > 65000) return Status::InvalidArgument("netem: more than 65,000 hosts");
  RemoveStale();
  std::unique_ptr<NetemNetwork> net(new NetemNetwork());
  net->work_dir_ = work_dir;
  std::error_code ec;
  std::filesystem::create_directories(work_dir, ec);
  if (ec) return Status::IOError("cannot create " + work_dir + ": " + ec.message());
  Status st = net->Build(hosts, links);
  if (!st.ok()) return st;  // the destructor removes what was made
  net->worker_ = std::thread([p = net.get()] { p->Work(); });
  return net;
}

Status NetemNetwork::Build(const std::vector<Host>& hosts,
                           const std::map<Pair, net::LinkSpec>& links) {
  tag_ = DevicePrefix(::getpid());
  int x = FreeSubnet();
  auto address = [x](int h) {
    return "10." + std::to_string(x) + "." + std::to_string(h >> 8) + "." + std::to_string(h & 255);
  };
  std::string net = "/16";
  bridge_ = tag_ + "b";
  std::vector<std::string> root = {"link add " + bridge_ + " type bridge",
                                   "link set " + bridge_ + " txqueuelen 1000",
                                   "addr add " + address(1) + net + " dev " + bridge_};
  for (size_t i = 0; i < hosts.size(); ++i) {
    HostState& h = hosts_[hosts[i].name];
    h.index = static_cast<int>(i);
    h.address = address(static_cast<int>(i) + 2);
    if (hosts[i].client) {
      h.device = bridge_;
      root.push_back("addr add " + h.address + net + " dev " + bridge_);
    } else {
      h.netns = NamespacePrefix(::getpid()) + std::to_string(i);
      h.device = "eth0";
      namespaces_.push_back(h.netns);
    }
  }
  root.push_back("link set " + bridge_ + " up");
  // Bridge first: what exists is removed when a later step fails.
  ENOKI_RETURN_IF_ERROR(Batch("ip", "", {root[0]}));
  ENOKI_RETURN_IF_ERROR(Batch("ip", "", std::vector<std::string>(root.begin() + 1, root.end())));
  std::vector<std::string> plumbing;
  for (const auto& ns : namespaces_) plumbing.push_back("netns add " + ns);
  for (const auto& [name, h] : hosts_) {
    if (h.netns.empty()) continue;
    std::string veth = tag_ + "v" + Base36(static_cast<unsigned long>(h.index));
    veths_.push_back(veth);
    plumbing.push_back("link add " + veth + " type veth peer name eth0 netns " + h.netns);
    plumbing.push_back("link set " + veth + " master " + bridge_ + " up");
  }
  ENOKI_RETURN_IF_ERROR(Batch("ip", "", plumbing));

  // The classes: per namespace, one per destination; on the bridge, one per client and node.
  std::map<std::string, std::vector<std::string>> tc;  // by namespace ("": the bridge's)
  std::map<std::string, unsigned> next_id;
  auto head = [&](const std::string& ns, const std::string& dev) {
    if (tc.contains(ns)) return;
    tc[ns] = {"qdisc add dev " + dev + " root handle 1: htb default 1",
              "class add dev " + dev + " parent 1: classid 1:1 htb rate 10gbit quantum 60000"};
    next_id[ns] = 2;
  };
  for (const auto& [pair, spec] : links) {
    auto a = hosts_.find(pair.first), b = hosts_.find(pair.second);
    if (a == hosts_.end() || b == hosts_.end()) continue;
    const HostState& from = a->second;
    const HostState& to = b->second;
    if (from.netns.empty() && to.netns.empty()) continue;  // two clients never talk
    head(from.netns, from.device);
    ClassRef c{from.netns, from.device, next_id[from.netns]++, spec.distribution};
    if (c.id > 0xffff) return Status::InvalidArgument("netem: too many links from one host");
    auto& lines = tc[from.netns];
    for (auto& l : ClassLines(c, spec, true)) lines.push_back(std::move(l));
    std::string match = "match ip dst " + to.address + "/32";
    if (from.netns.empty()) match = "match ip src " + from.address + "/32 " + match;
    lines.push_back("filter add dev " + c.device + " parent 1: protocol ip prio 1 u32 " + match +
                    " flowid 1:" + Hex(c.id));
    classes_[pair] = c;
  }
  for (const auto& [name, h] : hosts_) {
    if (h.netns.empty()) continue;
    ENOKI_RETURN_IF_ERROR(
        Batch("ip", h.netns,
              {"link set lo up", "addr add " + h.address + net + " dev eth0", "link set eth0 up"}));
  }
  for (const auto& [ns, lines] : tc) ENOKI_RETURN_IF_ERROR(Batch("tc", ns, lines));
  return Status::Ok();
}

std::string NetemNetwork::NamespacePath(const std::string& node) const {
  return "/run/netns/" + hosts_.at(node).netns;
}

Status NetemNetwork::Batch(const std::string& tool, const std::string& netns,
                           const std::vector<std::string>& lines, bool force) {
  char seq[16];
  std::snprintf(seq, sizeof seq, "%03d", batches_++);
  std::string file =
      work_dir_ + "/" + seq + "-" + tool + (netns.empty() ? "" : "-" + netns) + ".batch";
  return RunBatch(tool, netns, file, lines, force);
}

std::vector<std::string> NetemNetwork::ClassLines(ClassRef& c, const net::LinkSpec& spec,
                                                  bool create) {
  std::string dev = " dev " + c.device + " ";
  std::string id = Hex(c.id);
  std::string qdisc = dev + "parent 1:" + id + " handle " + id + ": " + NetemArgs(spec);
  std::vector<std::string> lines = {std::string(create ? "class add" : "class change") + dev +
                                    "parent 1: classid 1:" + id + " htb " + HtbRate(spec)};
  if (create) {
    lines.push_back("qdisc add" + qdisc);
  } else if (spec.distribution != c.distribution) {
    // A netem change that names no distribution keeps the one it had: replace the qdisc (what it
    // holds at that moment is dropped).
    lines.push_back("qdisc del" + dev + "parent 1:" + id + " handle " + id + ":");
    lines.push_back("qdisc add" + qdisc);
  } else {
    lines.push_back("qdisc change" + qdisc);
  }
  c.distribution = spec.distribution;
  return lines;
}

void NetemNetwork::SetLinks(std::vector<std::pair<Pair, net::LinkSpec>> changes) {
  std::lock_guard lock(mu_);
  for (auto& c : changes) queue_.push_back(std::move(c));
  cv_.notify_all();
}

std::vector<std::string> NetemNetwork::Finish() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
  return errors_;
}

void NetemNetwork::Work() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to do
    auto changes = std::exchange(queue_, {});
    busy_ = true;
    lock.unlock();
    std::map<std::string, std::vector<std::string>> lines;  // by namespace, in order
    std::vector<std::string> failed;
    for (const auto& [pair, spec] : changes) {
      auto c = classes_.find(pair);
      if (c == classes_.end()) {
        failed.push_back("netem: no link " + pair.first + " -> " + pair.second);
        continue;
      }
      for (auto& l : ClassLines(c->second, spec, false)) {
        lines[c->second.netns].push_back(std::move(l));
      }
    }
    for (const auto& [ns, l] : lines) {
      Status st = Batch("tc", ns, l);
      if (!st.ok()) failed.push_back(st.message());
    }
    lock.lock();
    for (auto& f : failed) errors_.push_back(std::move(f));
    busy_ = false;
    cv_.notify_all();
  }
}

void NetemNetwork::Remove() {
  std::vector<std::string> lines;
  for (const auto& v : veths_) lines.push_back("link delete " + v);
  for (const auto& ns : namespaces_) lines.push_back("netns delete " + ns);
  if (!bridge_.empty()) lines.push_back("link delete " + bridge_);
  if (!lines.empty()) (void)Batch("ip", "", lines, true);
}

NetemNetwork::~NetemNetwork() {
  if (worker_.joinable()) {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      cv_.notify_all();
    }
    worker_.join();
  }
  Remove();
}

}  // namespace enoki::adapters
