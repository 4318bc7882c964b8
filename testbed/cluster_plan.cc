// Placing a scenario on machines: the hosts file, the placement and the files of a plan.
#include "testbed/cluster_plan.h"

#include <filesystem>
#include <set>

#include <yaml-cpp/yaml.h>

#include "adapters/curve.h"
#include "node/validation.h"
#include "testbed/topology.h"
#include "testbed/yaml_errors.h"

namespace enoki::testbed {
namespace {

using core::Status;
namespace fs = std::filesystem;

// Host variables the plan writes itself: a hosts file may not set them through `vars`.
const std::set<std::string> kPlanVars = {"ansible_host", "enoki_prefix", "enoki_nodes",
                                         "enoki_endpoints", "enoki_plan"};

// A value that goes into a TOML string and a command line as it is: no quotes, backslashes,
// white space or control characters.
bool PlainText(const std::string& s) {
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '\'' || c == '\\' || c == 0x7f) return false;
  }
  return !s.empty();
}

core::Result<Tier> ParseTier(const std::string& file, const YAML::Node& n,
                             const std::string& field) {
  std::string t = n.IsScalar() ? n.Scalar() : "";
  if (t == TierName(Tier::kCloud)) return Tier::kCloud;
  if (t == TierName(Tier::kEdge)) return Tier::kEdge;
  if (t == TierName(Tier::kClient)) {
    return YamlError(file, n, field,
                     "client nodes are not placed (their callers run in the enoki run process)");
  }
  return YamlError(file, n, field, "'" + t + "' is not a tier to place (cloud or edge)");
}

core::Result<PlanHost> ParseHost(const std::string& file, const std::string& name,
                                 const YAML::Node& n, const std::string& field) {
  PlanHost h;
  h.name = name;
  ENOKI_RETURN_IF_ERROR(
      YamlOnlyKeys(file, n, field, {"address", "tiers", "cpus", "port", "prefix", "vars"}));
  YAML::Node address = n["address"];
  if (!address) return YamlError(file, n, field + ".address", "missing (required)");
  if (!address.IsScalar() || !PlainText(address.Scalar()) ||
      address.Scalar().find_first_of("/:[]") != std::string::npos) {
    return YamlError(file, address, field + ".address",
                     "expected a host name or an IPv4 address (nodes listen on IPv4 only)");
  }
  h.address = address.Scalar();
  if (YAML::Node tiers = n["tiers"]) {
    if (tiers.IsScalar()) {
      auto t = ParseTier(file, tiers, field + ".tiers");
      if (!t.ok()) return t.status();
      h.tiers.push_back(*t);
    } else if (tiers.IsSequence() && tiers.size() > 0) {
      for (size_t i = 0; i < tiers.size(); ++i) {
        auto t = ParseTier(file, tiers[i], field + ".tiers[" + std::to_string(i) + "]");
        if (!t.ok()) return t.status();
        h.tiers.push_back(*t);
      }
    } else {
      return YamlError(file, tiers, field + ".tiers", "expected a tier or a list of tiers");
    }
  }
  if (YAML::Node cpus = n["cpus"]) {
    auto v = YamlInt(file, cpus, field + ".cpus", 1, 4096);
    if (!v.ok()) return v.status();
    h.cpus = static_cast<int>(*v);
  }
  if (YAML::Node port = n["port"]) {
    auto v = YamlInt(file, port, field + ".port", 1, 65535);
    if (!v.ok()) return v.status();
    h.port = static_cast<int>(*v);
  }
  if (YAML::Node prefix = n["prefix"]) {
    std::string p = prefix.IsScalar() ? prefix.Scalar() : "";
    if (!PlainText(p) || p[0] != '/') {
      return YamlError(file, prefix, field + ".prefix",
                       "expected an absolute path without spaces or quotes");
    }
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    h.prefix = p;
  }
  if (YAML::Node vars = n["vars"]) {
    if (!vars.IsMap()) return YamlError(file, vars, field + ".vars", "expected a map");
    for (auto it = vars.begin(); it != vars.end(); ++it) {
      std::string key = it->first.Scalar();
      std::string vfield = field + ".vars." + key;
      if (kPlanVars.contains(key)) {
        return YamlError(file, it->first, vfield,
                         "set by the plan (give the host's address and prefix instead)");
      }
      if (!it->second.IsScalar()) {
        return YamlError(file, it->second, vfield, "expected a single value");
      }
      h.vars[key] = it->second.Scalar();
    }
  }
  return h;
}

const PlanHost* FindHost(const HostsFile& f, const std::string& name) {
  for (const auto& h : f.hosts) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

bool Takes(const PlanHost& h, Tier t) {
  return h.tiers.empty() || std::find(h.tiers.begin(), h.tiers.end(), t) != h.tiers.end();
}

// `path` (absolute) under install prefix `prefix`.
std::string Under(const std::string& prefix, const std::string& path) {
  return prefix == "/" ? path : prefix + path;
}

std::string Endpoint(const PlanHost& h, int port) {
  return "tcp://" + h.address + ":" + std::to_string(port);
}

// "[\"a\", \"b\"]".
std::string TomlList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", \"" : "\"") + items[i] + "\"";
  return out + "]";
}

Status WriteText(const std::string& path, const std::string& text, mode_t mode) {
  return adapters::WriteNewFile(path, text, mode);
}

}  // namespace

core::Result<HostsFile> LoadHostsFile(const std::string& path, const Scenario& s) {
  auto text = ReadYamlFile(path, "hosts file");
  if (!text.ok()) return text.status();
  return ParseHostsFile(*text, path, s);
}

core::Result<HostsFile> ParseHostsFile(const std::string& text, const std::string& file,
                                       const Scenario& s) {
  auto parsed = ParseYaml(text, file);
  if (!parsed.ok()) return parsed.status();
  YAML::Node root = *parsed;
  HostsFile f;
  f.file = file;
  ENOKI_RETURN_IF_ERROR(YamlOnlyKeys(file, root, "", {"hosts", "place"}));
  YAML::Node hosts = root["hosts"];
  if (!hosts) return YamlError(file, root, "hosts", "missing (required)");
  if (!hosts.IsMap() || hosts.size() == 0) {
    return YamlError(file, hosts, "hosts", "expected a map from host name to host");
  }
  for (auto it = hosts.begin(); it != hosts.end(); ++it) {
    std::string name = it->first.Scalar();
    std::string field = "hosts." + name;
    if (auto st = node::ValidateName("the host name", name); !st.ok()) {
      return YamlError(file, it->first, field, st.message());
    }
    auto h = ParseHost(file, name, it->second, field);
    if (!h.ok()) return h.status();
    for (const auto& other : f.hosts) {
      if (other.address == h->address) {
        return YamlError(file, it->second["address"], field + ".address",
                         "host " + other.name + " has this address already");
      }
    }
    f.hosts.push_back(std::move(*h));
  }
  if (YAML::Node place = root["place"]) {
    if (!place.IsMap()) return YamlError(file, place, "place", "expected a map from node to host");
    for (auto it = place.begin(); it != place.end(); ++it) {
      std::string node = it->first.Scalar();
      std::string field = "place." + node;
      const NodeDecl* d = s.FindNode(node);
      if (d == nullptr) {
        return YamlError(file, it->first, field,
                         "the scenario (" + s.file + ") has no node " + node);
      }
      if (d->tier == Tier::kClient) {
        return YamlError(file, it->first, field,
                         "a client node: its callers run in the enoki run process");
      }
      std::string host = it->second.IsScalar() ? it->second.Scalar() : "";
      const PlanHost* h = FindHost(f, host);
      if (h == nullptr) {
        return YamlError(file, it->second, field, "'" + host + "' is no host of this file");
      }
      if (!Takes(*h, d->tier)) {
        return YamlError(
            file, it->second, field,
            "host " + host + " does not take " + TierName(d->tier) + " nodes (its tiers)");
      }
      f.pins[node] = host;
    }
  }
  return f;
}

core::Result<std::vector<PlacedNode>> PlaceNodes(const Scenario& s, const HostsFile& hosts) {
  std::map<std::string, std::string> host_of = hosts.pins;
  std::map<std::string, int> count;
  for (const auto& [node, host] : host_of) ++count[host];
  for (const auto& d : s.nodes) {
    if (d.tier == Tier::kClient || host_of.contains(d.name)) continue;
    const PlanHost* best = nullptr;
    for (const auto& h : hosts.hosts) {
      if (!Takes(h, d.tier)) continue;
      // (count + 1) / cpus, smallest first, compared without division.
      if (best == nullptr || static_cast<int64_t>(count[h.name] + 1) * best->cpus <
                                 static_cast<int64_t>(count[best->name] + 1) * h.cpus) {
        best = &h;
      }
    }
    if (best == nullptr) {
      return Status::InvalidArgument(hosts.file + ": hosts: no host takes " + TierName(d.tier) +
                                     " nodes, so node " + d.name +
                                     " has nowhere to go (a host's tiers)");
    }
    host_of[d.name] = best->name;
    ++count[best->name];
  }
  std::vector<PlacedNode> placed;
  std::map<std::string, int> next;
  for (const auto& d : s.nodes) {
    if (d.tier == Tier::kClient) continue;
    const PlanHost& h = *FindHost(hosts, host_of.at(d.name));
    int port = h.port + next[h.name]++;
    if (port > 65535) {
      return Status::InvalidArgument(hosts.file + ": hosts." + h.name + ".port: its " +
                                     std::to_string(next[h.name]) +
                                     " nodes need ports past 65535: give a lower port");
    }
    placed.push_back({d.name, h.name, port});
  }
  return placed;
}

core::Result<std::vector<PlacedNode>> WritePlan(const Scenario& s, const HostsFile& hosts,
                                                const std::string& dir) {
  auto placed = PlaceNodes(s, hosts);
  if (!placed.ok()) return placed.status();
  std::error_code ec;
  fs::path root = fs::absolute(dir, ec);
  if (!ec) fs::create_directories(root / "nodes", ec);
  if (!ec) fs::create_directories(root / "keys", ec);
  if (!ec) fs::permissions(root / "keys", fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) return Status::IOError("cannot make " + dir + ": " + ec.message());
  for (const char* f : {"inventory.yaml", "cluster.yaml", "access"}) {
    if (fs::exists(root / f)) {
      return Status::AlreadyExists((root / f).string() +
                                   " exists: the folder holds a plan already (remove it, or give "
                                   "another --out)");
    }
  }

  std::map<std::string, const PlacedNode*> where;
  for (const auto& p : *placed) where[p.node] = &p;
  auto host = [&](const std::string& node) -> const PlanHost& {
    return *FindHost(hosts, where.at(node)->host);
  };

  // The keys: one pair per node, and the run's.
  for (const auto& p : *placed) {
    auto pair = adapters::GenerateKeyPair();
    if (!pair.ok()) return pair.status();
    ENOKI_RETURN_IF_ERROR(
        adapters::WriteKeyFiles((root / "keys" / p.node).string(), p.node, *pair));
  }
  auto run = adapters::GenerateKeyPair();
  if (!run.ok()) return run.status();
  ENOKI_RETURN_IF_ERROR(adapters::WriteKeyFiles((root / "keys/run").string(), "run", *run));
  ENOKI_RETURN_IF_ERROR(WriteText((root / "access").string(),
                                  "# Written by enoki cluster plan: every node admits the run "
                                  "(enoki run --cluster) with every\n"
                                  "# permission and no quota.\n" +
                                      RunAccessLine("run", run->public_key) + "\n",
                                  0644));

  // Each node's config, with its peers at their hosts.
  auto peers = Peers(s);
  for (const auto& p : *placed) {
    const PlanHost& h = host(p.node);
    std::vector<std::string> peer, peer_key;
    for (const auto& q : peers[p.node]) {
      peer.push_back(q + "=" + Endpoint(host(q), where.at(q)->port));
      peer_key.push_back(q + "=" + Under(h.prefix, "/etc/enoki/keys/" + q + ".pub"));
    }
    std::string toml =
        "# Written by enoki cluster plan: node " + p.node + " on host " + h.name +
        " (deploy/ansible/ installs it as " + Under(h.prefix, "/etc/enoki/" + p.node + ".toml") +
        ").\n"
        "id = \"" +
        p.node + "\"\n" +
        // On every interface (ZeroMQ binds no host name, and a cloud VM's public address is often
        // not on its interfaces; the keys guard it), telling the others its address.
        "listen = \"tcp://0.0.0.0:" + std::to_string(p.port) + "\"\n" + "advertise = \"" +
        Endpoint(h, p.port) + "\"\n" + "data-dir = \"" +
        Under(h.prefix, "/var/lib/enoki/" + p.node) + "\"\n" +
        // The run fetches the node's measurement trace (writes and store operations).
        "trace = \"" + Under(h.prefix, "/var/lib/enoki/" + p.node + "/" + p.node + ".trace") +
        "\"\n" + "key = \"" + Under(h.prefix, "/etc/enoki/keys/" + p.node + ".key") + "\"\n" +
        "access = \"" + Under(h.prefix, "/etc/enoki/access") + "\"\n";
    if (!peer.empty()) {
      toml += "peer = " + TomlList(peer) + "\n" + "peer-key = " + TomlList(peer_key) + "\n";
    }
    ENOKI_RETURN_IF_ERROR(WriteText((root / "nodes" / (p.node + ".toml")).string(), toml, 0644));
  }

  // The cluster file of `enoki run --cluster`, its paths relative to it.
  std::string cluster =
      "# Written by enoki cluster plan: the nodes as deploy/ansible/ starts them (enoki run "
      "--cluster).\nnodes:\n";
  for (const auto& p : *placed) {
    cluster += "  " + p.node + ": {endpoint: " + Endpoint(host(p.node), p.port) + ", key: keys/" +
               p.node + ".pub}\n";
  }
  cluster += "identity: keys/run.key\n";
  ENOKI_RETURN_IF_ERROR(WriteText((root / "cluster.yaml").string(), cluster, 0644));

  // The Ansible inventory: the hosts that run nodes, each with its nodes.
  YAML::Emitter out;
  out << YAML::Comment("Written by enoki cluster plan for deploy/ansible/ (ansible-playbook -i)")
      << YAML::BeginMap << YAML::Key << "all" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "vars" << YAML::Value << YAML::BeginMap << YAML::Key << "enoki_plan"
      << YAML::Value << root.string() << YAML::EndMap;
  out << YAML::Key << "hosts" << YAML::Value << YAML::BeginMap;
  for (const auto& h : hosts.hosts) {
    std::vector<const PlacedNode*> mine;
    for (const auto& p : *placed) {
      if (p.host == h.name) mine.push_back(&p);
    }
    if (mine.empty()) continue;
    out << YAML::Key << h.name << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "ansible_host" << YAML::Value << h.address;
    out << YAML::Key << "enoki_prefix" << YAML::Value << h.prefix;
    out << YAML::Key << "enoki_nodes" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto* p : mine) out << p->node;
    out << YAML::EndSeq;
    out << YAML::Key << "enoki_endpoints" << YAML::Value << YAML::Flow << YAML::BeginMap;
    for (const auto* p : mine) out << YAML::Key << p->node << YAML::Value << Endpoint(h, p->port);
    out << YAML::EndMap;
    for (const auto& [k, v] : h.vars) out << YAML::Key << k << YAML::Value << v;
    out << YAML::EndMap;
  }
  out << YAML::EndMap << YAML::EndMap << YAML::EndMap;
  ENOKI_RETURN_IF_ERROR(
      WriteText((root / "inventory.yaml").string(), std::string(out.c_str()) + "\n", 0644));
  return placed;
}

std::string RunAccessLine(const std::string& name, const std::string& public_key) {
  return name + " " + public_key +
         " admin read:* write:* deploy-process invoke:* control keygroups=999999999 "
         "functions=999999999 workers=999999999 concurrency=999999999";
}

}  // namespace enoki::testbed
