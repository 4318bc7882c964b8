// A real `enoki node` that many clients connected to and left gives their memory back: its
// resident memory returns near where it was before they came (adapters/zmq_transport.cc,
// ZmqTransport::OnConnectionClosed). bench/connections_memory.sh measures it with 3,000.
#include <sys/resource.h>

#include <fstream>
#include <string>
#include <vector>

#include "net/codec.h"
#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

using testing::NodeCluster;

// The resident memory of process `pid` in MB (VmRSS), 0 when it cannot be read.
double ResidentMb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string field; status >> field;) {
    if (field == "VmRSS:") {
      double kb = 0;
      status >> kb;
      return kb / 1024;
    }
  }
  return 0;
}

TEST(ConnectionsTest, MemoryOfAThousandClosedConnectionsIsGivenBack) {
  constexpr int kConnections = 1000;
  // Each client socket holds a descriptor and its mailbox's.
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_max < 2 * kConnections + 256) GTEST_SKIP() << "file descriptor limit too low";
  limit.rlim_cur = limit.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);

  NodeCluster cluster({"a"});
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  ASSERT_TRUE(cluster.Client("a")->CreateKeygroup(create).ok());
  const double before = ResidentMb(cluster.pid("a"));
  ASSERT_GT(before, 0);
  {
    zmq::context_t context(1);
    context.set(zmq::ctxopt::max_sockets, kConnections + 16);
    std::vector<zmq::socket_t> sockets;
    proto::Request get;
    get.mutable_get()->set_keygroup("kg");
    get.mutable_get()->set_key("k");
    std::string frame;
    net::EncodeEnvelope(get, &frame);
    for (int i = 0; i < kConnections; ++i) {
      sockets.emplace_back(context, zmq::socket_type::dealer);
      sockets.back().set(zmq::sockopt::linger, 0);
      sockets.back().set(zmq::sockopt::rcvtimeo, 10000);
      sockets.back().connect(cluster.endpoint("a"));
      sockets.back().send(zmq::buffer(frame), zmq::send_flags::none);
    }
    for (auto& socket : sockets) {
      zmq::message_t reply;
      ASSERT_TRUE(socket.recv(reply).has_value()) << "no answer";
    }
    // Before they close: they took memory (some tens of kB each).
    EXPECT_GT(ResidentMb(cluster.pid("a")), before + 10);
  }
  // Kept, they would be some 37 kB each (bench/connections_memory.sh: 111 MB for 3,000 over TCP).
  // A generous bound, and a generous wait: not a timing.
  EXPECT_TRUE(NodeCluster::Eventually([&] { return ResidentMb(cluster.pid("a")) < before + 12; },
                                      std::chrono::seconds(30)))
      << "before " << before << " MB, now " << ResidentMb(cluster.pid("a")) << " MB";
}

}  // namespace
}  // namespace enoki
