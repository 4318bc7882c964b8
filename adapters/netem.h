// NetemNetwork: the kernel's network emulation, for `enoki emulate --links netem`. Every node gets
// a network namespace of its own, joined to the others by a veth pair and one bridge; the client
// hosts stay in this process's namespace, each with its own address on the bridge (the callers
// bind to it), and this process keeps one more address of its own there for its control traffic,
// which no link shapes. Every one-way link a -> b is an htb class (the rate) with a netem qdisc
// under it (delay, jitter, loss; a cut is 100% loss) on a's egress, and a u32 filter that sends
// the packets for b's address to it (on the bridge: from the client's address to b's): the
// paper's own method. The tc commands it ran are kept in the work folder.
//
// Everything it creates has this process's id in its name and is removed by the destructor (the
// processes inside the namespaces must have ended by then); Create first removes what runs whose
// process has died left behind (judged by process id: runs in other PID namespaces that share
// this network namespace would look dead). Needs root and a kernel with sch_netem, htb, u32, veth
// and bridge.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"
#include "net/link_model.h"

namespace enoki::adapters {

class NetemNetwork {
 public:
  using Pair = std::pair<std::string, std::string>;
  struct Host {
    std::string name;
    bool client = false;  // in this process's namespace, not in one of its own
  };

  // Ok when this process can use netem (it is root, `ip` and `tc` run, and a netem qdisc could be
  // created in a throw-away namespace); otherwise why not.
  static core::Status Available();

  // The prefixes of the names a run by process `pid` gives its namespaces and its devices.
  static std::string NamespacePrefix(long pid);
  static std::string DevicePrefix(long pid);

  // Builds the network for `hosts` with the links `links` (a -> b, for every pair of hosts that
  // is not two clients). `work_dir` receives the tc command files.
  static core::Result<std::unique_ptr<NetemNetwork>> Create(
      const std::vector<Host>& hosts, const std::map<Pair, net::LinkSpec>& links,
      const std::string& work_dir);
  ~NetemNetwork();
  NetemNetwork(const NetemNetwork&) = delete;
  NetemNetwork& operator=(const NetemNetwork&) = delete;

  // The host's IPv4 address on the bridge.
  const std::string& Address(const std::string& host) const { return hosts_.at(host).address; }
  // The namespace file of a (non-client) node, for adapters::SpawnOptions::netns.
  std::string NamespacePath(const std::string& node) const;

  // Changes links (cut included) from now on. The tc commands run in order on a thread of this
  // object's, so the caller is not held up; failures are kept for Finish. A change of the jitter's
  // distribution replaces the link's netem qdisc, dropping the packets it holds at that moment.
  void SetLinks(std::vector<std::pair<Pair, net::LinkSpec>> changes);
  // Waits until every change asked for has been made; the failures, if any.
  std::vector<std::string> Finish();

 private:
  struct HostState {
    std::string address;
    std::string netns;   // empty for a client
    std::string device;  // its egress device: eth0 in its namespace, or the bridge for a client
    int index = 0;
  };
  struct ClassRef {
    std::string netns;  // where the device is; empty: this process's namespace
    std::string device;
    unsigned id = 0;  // the htb class minor and the netem handle's major
    net::LinkSpec::Jitter distribution =
        net::LinkSpec::Jitter::kUniform;  // as its netem qdisc has it
  };

  NetemNetwork() = default;
  core::Status Build(const std::vector<Host>& hosts, const std::map<Pair, net::LinkSpec>& links);
  // Runs `lines` as one `ip -batch` or `tc -batch` (`tool`), in `netns` if not empty; the file
  // stays in the work folder.
  core::Status Batch(const std::string& tool, const std::string& netns,
                     const std::vector<std::string>& lines, bool force = false);
  // The tc lines that create (or change) class c's htb class and netem qdisc for `spec`.
  std::vector<std::string> ClassLines(ClassRef& c, const net::LinkSpec& spec, bool create);
  void Work();
  void Remove();

  std::string tag_;  // this run's part of every name
  std::string work_dir_;
  std::string bridge_;
  std::vector<std::string> namespaces_, veths_;
  std::map<std::string, HostState> hosts_;
  std::map<Pair, ClassRef> classes_;
  int batches_ = 0;

  std::mutex mu_;  // guards the queue, busy_ and errors_
  std::condition_variable cv_;
  std::vector<std::pair<Pair, net::LinkSpec>> queue_;
  bool busy_ = false, stopping_ = false;
  std::vector<std::string> errors_;
  std::thread worker_;
};

}  // namespace enoki::adapters
