// The emulation's links backends: the user-space shaper and kernel netem.
#include "testbed/emulated_links.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "adapters/netem.h"

namespace enoki::testbed {
namespace {

using Pair = std::pair<std::string, std::string>;

// The port every node listens on in its own namespace (netem).
constexpr int kNetemPort = 7100;

// The user-space shaper: every node listens on a Unix socket in the run's folder and shapes its
// own links in its transport; a change of a link between nodes is asked of its sending node.
class ShaperLinks : public LinksBackend {
 public:
  ShaperLinks(const Scenario& s, adapters::SocketFolder sockets, AskLink ask)
      : sockets_(std::move(sockets)), ask_(std::move(ask)) {
    for (const auto& n : s.nodes) {
      if (n.tier == Tier::kClient) clients_.insert(n.name);
    }
  }
  ~ShaperLinks() override {
    std::error_code ec;
    std::filesystem::remove_all(sockets_.path, ec);
  }

  std::string Endpoint(const std::string& id) const override {
    return "ipc://" + sockets_.path + "/" + id;
  }
  std::string CallerEndpoint(const std::string&, const std::string& node) const override {
    return Endpoint(node);
  }
  void Configure(const std::string&, const std::map<std::string, net::LinkSpec>& to_peers,
                 adapters::NodeProcessOptions& o, adapters::Placement&) const override {
    for (const auto& [peer, spec] : to_peers) o.links[peer] = spec.ToString();
  }
  bool ShapedByCallers() const override { return true; }
  // A client's links are the callers' alone.
  void SetLink(const Pair& p, const net::LinkSpec& spec) override {
    if (!clients_.contains(p.first) && !clients_.contains(p.second)) ask_(p, spec);
  }
  std::vector<std::string> Finish() override { return {}; }

 private:
  adapters::SocketFolder sockets_;  // of the nodes' Unix sockets
  AskLink ask_;
  std::set<std::string> clients_;
};

// Kernel netem (adapters/netem.h): every node in a namespace of its own, listening on its
// address there; the callers bind to their client's address on the bridge, which picks their
// links; every link is shaped by tc, changed on a thread of the network's.
class NetemLinks : public LinksBackend {
 public:
  NetemLinks(std::unique_ptr<adapters::NetemNetwork> netem, bool keys)
      : netem_(std::move(netem)), keys_(keys) {}

  std::string Endpoint(const std::string& id) const override {
    return "tcp://" + netem_->Address(id) + ":" + std::to_string(kNetemPort);
  }
  std::string CallerEndpoint(const std::string& client, const std::string& node) const override {
    return "tcp://" + netem_->Address(client) + ":0;" + netem_->Address(node) + ":" +
           std::to_string(kNetemPort);
  }
  void Configure(const std::string& id, const std::map<std::string, net::LinkSpec>&,
                 adapters::NodeProcessOptions& o, adapters::Placement& where) const override {
    where.netns = netem_->NamespacePath(id);
    // Its address is on the run's own bridge, a private range that only this host routes to; the
    // node would otherwise refuse an address beyond loopback without keys.
    if (!keys_) o.more.push_back("--insecure");
  }
  bool ShapedByCallers() const override { return false; }
  void SetLink(const Pair& p, const net::LinkSpec& spec) override { netem_->SetLinks({{p, spec}}); }
  std::vector<std::string> Finish() override { return netem_->Finish(); }

 private:
  std::unique_ptr<adapters::NetemNetwork> netem_;
  bool keys_;  // the nodes have keys (security: curve)
};

}  // namespace

core::Result<std::unique_ptr<LinksBackend>> MakeShaperLinks(const Scenario& s,
                                                            const std::string& run_dir,
                                                            AskLink ask) {
  size_t longest = 0;
  for (const auto& n : s.nodes) longest = std::max(longest, n.name.size());
  auto folder = adapters::MakeSocketFolder(run_dir + "/sockets", longest);
  if (!folder.ok()) return folder.status();
  return std::unique_ptr<LinksBackend>(new ShaperLinks(s, *folder, std::move(ask)));
}

core::Result<std::unique_ptr<LinksBackend>> MakeNetemLinks(
    const Scenario& s, const std::map<Pair, net::LinkSpec>& links, const std::string& run_dir) {
  std::vector<adapters::NetemNetwork::Host> hosts;
  for (const auto& n : s.nodes) hosts.push_back({n.name, n.tier == Tier::kClient});
  auto netem = adapters::NetemNetwork::Create(hosts, links, run_dir + "/netem");
  if (!netem.ok()) return netem.status();
  return std::unique_ptr<LinksBackend>(new NetemLinks(std::move(netem.value()), s.curve));
}

}  // namespace enoki::testbed
