// Membership with real nodes: a node joins a running cluster through one member (with keys: the
// member's access file gives it the `join` role), gets a replica and serves it, and leaves; in
// network namespaces of their own, the same with a node behind NAT (its namespace drops incoming
// connections), which still replicates both ways and answers forwarded requests.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "adapters/client.h"
#include "adapters/node_process.h"
#include "adapters/subprocess.h"
#include "tests/integration/commands.h"
#include "tests/integration/key_folder.h"
#include "tests/integration/namespaces.h"
#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::HostNode;
using testing::KeyFolder;
using testing::Namespaces;
using testing::NodeCluster;

proto::CreateKeygroupRequest Keygroup(const std::string& name,
                                      const std::vector<std::string>& replicas) {
  proto::CreateKeygroupRequest r;
  r.set_name(name);
  for (const auto& n : replicas) r.add_replicas(n);
  return r;
}

// The peers node `client` reaches sees, as "id:up" or "id:down", in id order.
std::string Peers(adapters::Client& client) {
  auto s = client.NodeStatus();
  if (!s.ok()) return s.status().ToString();
  std::string out;
  for (const auto& p : s->peers()) {
    out += (out.empty() ? "" : " ") + p.node() + (p.up() ? ":up" : ":down");
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(MembershipTest, ANodeJoinsThroughOneMemberGetsAReplicaAndLeaves) {
  KeyFolder keys({"a", "b", "c", "d", "alice", "mallory"});
  // One access file for all: alice may do everything; d may join, as d only; mallory, with the
  // join role under her own name, may not join as d.
  std::string access = keys.AccessLines({"alice alice.pub admin read:* write:* deploy invoke:*",
                                         "d d.pub join", "mallory mallory.pub join"});
  // a, b and c: one list of peers (and their keys); d, later, none.
  std::map<std::string, std::vector<std::string>> own;
  for (const auto& n : {"a", "b", "c"}) {
    own[n] = {"--key", keys.key(n)};
    for (const auto& p : {"a", "b", "c"}) {
      own[n].push_back("--peer-key");
      own[n].push_back(std::string(p) + "=" + keys.pub(p));
    }
  }
  NodeCluster cluster({"a", "b", "c"}, {"--access", access}, false, own);
  auto as = [&](const std::string& client, const std::string& node) {
    return adapters::Client(cluster.context(), cluster.endpoint(node), milliseconds(3000), node,
                            keys.ClientOf(client, node));
  };
  auto alice_a = as("alice", "a");
  ASSERT_TRUE(alice_a.CreateKeygroup(Keygroup("kg", {"a", "b"})).ok());
  constexpr int kItems = 100;
  for (int i = 0; i < kItems; ++i) {
    ASSERT_TRUE(alice_a.Put("kg", "k" + std::to_string(i), "v" + std::to_string(i)).ok());
  }
  pid_t pids[] = {cluster.pid("a"), cluster.pid("b"), cluster.pid("c")};

  // mallory's key may join, but not as d: the member refuses, naming why.
  {
    zmq::context_t context;
    adapters::Client mallory(context, cluster.endpoint("a"), milliseconds(3000), "",
                             keys.ClientOf("mallory", "a"));
    proto::Request join;
    join.mutable_join()->mutable_member()->set_id("d");
    auto r = mallory.Call(join);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("may join only as node 'mallory'"), std::string::npos)
        << r.status().ToString();
  }

  cluster.StartNewcomer("d", {"--key", keys.key("d"), "--join", cluster.endpoint("a"), "--join-key",
                              cluster.endpoint("a") + "=" + keys.pub("a")});
  auto alice_b = as("alice", "b");
  auto alice_c = as("alice", "c");
  auto alice_d = as("alice", "d");
  // b and c learn d from a's gossip (and admit its key); d learns them from a's answer.
  EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(alice_b) == "a:up c:up d:up"; }))
      << Peers(alice_b);
  EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(alice_c) == "a:up b:up d:up"; }))
      << Peers(alice_c);
  EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(alice_d) == "a:up b:up c:up"; }))
      << Peers(alice_d);
  // d knows the catalog, and gets a replica through another member than the one it joined by.
  EXPECT_TRUE(NodeCluster::Eventually([&] { return alice_d.KeygroupInfo("kg").ok(); }));
  ASSERT_TRUE(alice_b.AddReplica("kg", "d").ok());
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto s = alice_d.NodeStatus();
    return s.ok() && s->held_size() == 1 && s->held(0) == "kg";
  }));
  for (int i = 0; i < kItems; ++i) {
    proto::Request get;
    get.mutable_get()->set_keygroup("kg");
    get.mutable_get()->set_key("k" + std::to_string(i));
    auto r = alice_d.Call(get);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ(r->get().value(), "v" + std::to_string(i));
    EXPECT_EQ(r->served_by(), "d");
  }
  // A write at d reaches the other replicas.
  ASSERT_TRUE(alice_d.Put("kg", "from-d", "x").ok());
  for (auto* c : {&alice_a, &alice_b}) {
    EXPECT_TRUE(NodeCluster::Eventually([&] {
      auto v = c->Get("kg", "from-d");
      return v.ok() && v->value() == "x";
    }));
  }
  // d leaves only once it owes nothing (node status: outbox 0).
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto s = alice_d.NodeStatus();
    return s.ok() && s->outbox() == 0;
  }));
  // Nobody restarted.
  EXPECT_EQ(cluster.pid("a"), pids[0]);
  EXPECT_EQ(cluster.pid("b"), pids[1]);
  EXPECT_EQ(cluster.pid("c"), pids[2]);
  for (const auto& n : {"a", "b", "c"}) {
    EXPECT_EQ(::kill(cluster.pid(n), 0), 0) << n;
  }

  // d leaves: it is no longer a replica of kg, and nobody sends to it any more.
  proto::Request leave;
  leave.mutable_leave();
  auto left = alice_d.Call(leave);
  ASSERT_TRUE(left.ok()) << left.status().ToString();
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto info = alice_a.KeygroupInfo("kg");
    return info.ok() && info->replicas_size() == 2;
  }));
  EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(alice_a) == "b:up c:up"; }))
      << Peers(alice_a);
  EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(alice_b) == "a:up c:up"; }))
      << Peers(alice_b);
  EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(alice_c) == "a:up b:up"; }))
      << Peers(alice_c);
  EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(alice_d).empty(); })) << Peers(alice_d);
  // Once the others forgot d (net::kLeftGrace), nothing more reaches it: d, which knows no member
  // any more, would log each message from one.
  std::this_thread::sleep_for(seconds(3));
  size_t before = Count(ReadFile(cluster.log("d")), "from unknown node");
  std::this_thread::sleep_for(seconds(2));  // 4 ping intervals
  EXPECT_EQ(Count(ReadFile(cluster.log("d")), "from unknown node"), before) << cluster.log("d");
  // A write at a still reaches b.
  ASSERT_TRUE(alice_a.Put("kg", "after", "y").ok());
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto v = alice_b.Get("kg", "after");
    return v.ok() && v->value() == "y";
  }));

  // d, stopped, does not start again on its data directory without --join; with it, it joins
  // anew and the others talk to it again.
  EXPECT_EQ(cluster.Stop("d"), 0);
  std::string data_dir = cluster.log("d").substr(0, cluster.log("d").size() - 4);  // minus .log
  auto again = testing::RunShell(
      "timeout 20 " + std::string(ENOKI_BINARY) + " node --id d --listen " + cluster.endpoint("d") +
      " --data-dir " + data_dir + " --key " + keys.key("d") + " --access " + access + " 2>&1");
  EXPECT_NE(again.status, 0);
  EXPECT_NE(again.text.find("node d left the cluster: to take part again, start it with --join"),
            std::string::npos)
      << again.text;
  cluster.StartNewcomer("d", {"--key", keys.key("d"), "--join", cluster.endpoint("a"), "--join-key",
                              cluster.endpoint("a") + "=" + keys.pub("a")});
  auto alice_d2 = as("alice", "d");
  EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(alice_b) == "a:up c:up d:up"; }))
      << Peers(alice_b);
  EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(alice_d2) == "a:up b:up c:up"; }))
      << Peers(alice_d2);
}

TEST(MembershipNamespaceTest, AHostJoinsFromBehindNatReplicatesBothWaysAndAnswersForwards) {
  if (std::string why = Namespaces::Unavailable(); !why.empty()) GTEST_SKIP() << why;
  if (testing::RunShell("nft --version >/dev/null 2>&1").status != 0) {
    GTEST_SKIP() << "needs nftables (scripts/setup.sh --tests installs it)";
  }
  Namespaces hosts({"a", "b", "c", "d"});
  std::string dir =
      (std::filesystem::temp_directory_path() / ("enoki-membership-" + std::to_string(::getpid())))
          .string();
  std::filesystem::create_directories(dir);
  // d's host drops every incoming connection but its own (a SYN without ACK, not on loopback): it
  // can connect out only.
  auto fw = hosts.Run("d",
                      "nft add table inet nat_test && nft add chain inet nat_test input "
                      "\"{ type filter hook input priority 0; policy accept; }\" && nft add rule "
                      "inet nat_test input iifname != lo \"tcp flags & (syn | ack) == syn drop\"");
  ASSERT_EQ(fw.status, 0) << fw.text;
  {
    std::vector<std::string> peers;
    for (const auto& h : {"a", "b", "c"}) {
      peers.push_back("--peer");
      peers.push_back(std::string(h) + "=tcp://" + hosts.Address(h) + ":7000");
    }
    std::map<std::string, HostNode> nodes;
    for (const auto& h : {"a", "b", "c"}) nodes.emplace(h, hosts.StartNode(h, dir, peers));
    ASSERT_FALSE(HasFailure());
    zmq::context_t context;
    auto client = [&](const std::string& h) {
      return adapters::Client(context, "tcp://" + hosts.Address(h) + ":7000", milliseconds(3000),
                              h);
    };
    auto ca = client("a");
    ASSERT_TRUE(ca.CreateKeygroup(Keygroup("kg", {"a", "b"})).ok());
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(ca.Put("kg", "k" + std::to_string(i), "v").ok());
    // Nobody can connect to d: it joins through a and says so (--advertise none).
    nodes.emplace("d", hosts.StartNode("d", dir,
                                       {"--join", "tcp://" + hosts.Address("a") + ":7000",
                                        "--advertise", "none"}));
    // Nor can a client from outside; one inside d's host can (over its loopback).
    auto at_d = [&](const std::string& args) {
      auto out = hosts.Run("d", std::string(ENOKI_BINARY) + " " + args + " --node tcp://" +
                                    hosts.Address("d") + ":7000");
      return out.status == 0 ? out.text : "failed: " + out.text;
    };
    {
      adapters::Client outside(context, "tcp://" + hosts.Address("d") + ":7000", milliseconds(500),
                               "d");
      auto r = outside.NodeStatus();
      ASSERT_EQ(r.status().code(), core::Code::kDeadlineExceeded) << r.status().ToString();
    }
    auto cb = client("b");
    auto cc = client("c");
    EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(cb) == "a:up c:up d:up"; }))
        << Peers(cb);
    auto status = cb.NodeStatus();
    ASSERT_TRUE(status.ok());
    for (const auto& p : status->peers()) {
      EXPECT_EQ(p.endpoint().empty(), p.node() == "d") << p.node() << " " << p.endpoint();
    }
    EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(cc) == "a:up b:up d:up"; }))
        << Peers(cc);
    // d gets a replica of kg: it pulls over its own connections, and a and b push to it over
    // them.
    ASSERT_TRUE(cb.AddReplica("kg", "d").ok());
    EXPECT_TRUE(NodeCluster::Eventually([&] {
      return at_d("node status").find("held: kg") != std::string::npos;
    })) << at_d("node status");
    // It serves reads of all the items, from its own replica.
    std::string scanned = at_d("kv scan kg");
    EXPECT_EQ(std::count(scanned.begin(), scanned.end(), '\n'), 50) << scanned;
    EXPECT_EQ(at_d("kv get kg k49"), "v\n");
    // Both ways: a write at a reaches d, a write at d reaches a and b.
    ASSERT_TRUE(ca.Put("kg", "to-d", "from-a").ok());
    EXPECT_TRUE(NodeCluster::Eventually([&] { return at_d("kv get kg to-d") == "from-a\n"; }))
        << at_d("kv get kg to-d");
    ASSERT_EQ(at_d("kv put kg from-d x").rfind("failed", 0), std::string::npos)
        << at_d("kv put kg from-d x");
    for (auto* c : {&ca, &cb}) {
      EXPECT_TRUE(NodeCluster::Eventually([&] {
        auto v = c->Get("kg", "from-d");
        return v.ok() && v->value() == "x";
      }));
    }
    // A keygroup only d holds: the others forward to it, over the connections d opened.
    ASSERT_TRUE(cc.CreateKeygroup(Keygroup("only-d", {"d"})).ok());
    EXPECT_TRUE(NodeCluster::Eventually([&] { return ca.Put("only-d", "x", "1").ok(); }));
    for (auto* c : {&ca, &cb, &cc}) {
      proto::Request get;
      get.mutable_get()->set_keygroup("only-d");
      get.mutable_get()->set_key("x");
      auto r = c->Call(get);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->served_by(), "d");
      EXPECT_EQ(r->get().value(), "1");
    }
    // c leaves, asked through a (an admin's command): the others stop sending to it.
    proto::Request leave;
    leave.mutable_leave()->set_node("c");
    auto left = ca.Call(leave);
    ASSERT_TRUE(left.ok()) << left.status().ToString();
    EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(cb) == "a:up d:up"; })) << Peers(cb);
    EXPECT_TRUE(NodeCluster::Eventually([&] {
      return at_d("node status").find("\nc\t") == std::string::npos;
    })) << at_d("node status");
    EXPECT_TRUE(NodeCluster::Eventually([&] { return Peers(cc).empty(); })) << Peers(cc);
    // d cannot leave while it holds the only replica of a keygroup.
    EXPECT_NE(at_d("node leave").find("holds the only replica of 'only-d'"), std::string::npos)
        << at_d("node leave");
    // Nobody restarted: a, b and c are the processes started first.
    for (const auto& h : {"a", "b", "c"}) EXPECT_EQ(::kill(nodes.at(h).process->pid(), 0), 0) << h;
    for (auto& [h, n] : nodes) n.process->Stop();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace enoki
