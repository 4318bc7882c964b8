// Native functions through real node processes: deploy and invoke over the ZeroMQ API, state
// persisted and visible at another replica, and state reached at a remote replica.
#include "tests/integration/commands.h"
#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

using testing::NodeCluster;

proto::FunctionSpec Spec(const std::string& name, const std::string& handler,
                         const std::string& keygroup) {
  proto::FunctionSpec s;
  s.set_name(name);
  s.set_handler(handler);
  s.set_keygroup(keygroup);
  return s;
}

TEST(FunctionIntegrationTest, StatefulFunctionsAtALocalAndARemoteReplica) {
  NodeCluster cluster({"edge", "cloud"});
  auto edge = cluster.Client("edge");
  auto cloud = cluster.Client("cloud");
  proto::CreateKeygroupRequest kg;
  kg.set_name("avg");
  kg.add_replicas("edge");
  kg.add_replicas("cloud");
  ASSERT_TRUE(edge->CreateKeygroup(kg).ok());
  kg.set_name("only-edge");
  kg.clear_replicas();
  kg.add_replicas("edge");
  ASSERT_TRUE(edge->CreateKeygroup(kg).ok());
  ASSERT_TRUE(NodeCluster::Eventually([&] { return cloud->KeygroupInfo("only-edge").ok(); }));

  // At a local replica: the moving average keeps its window in the keygroup...
  ASSERT_TRUE(edge->DeployFunction(Spec("ma", "movingaverage", "avg")).ok());
  for (int v : {2, 4, 6}) ASSERT_TRUE(edge->Invoke("ma", "c1 " + std::to_string(v)).ok());
  auto avg = edge->Invoke("ma", "c1 8");
  ASSERT_TRUE(avg.ok()) << avg.status().ToString();
  EXPECT_EQ(*avg, "5");
  // ...which replicates to the other replica.
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto v = cloud->Get("avg", "c1/s3");
    return v.ok() && v->value() == "8";
  }));

  // Without a local replica: the function at the cloud node writes through the edge replica.
  ASSERT_TRUE(cloud->DeployFunction(Spec("counter", "replication", "only-edge")).ok());
  auto wrote = cloud->Invoke("counter", "41");
  ASSERT_TRUE(wrote.ok()) << wrote.status().ToString();
  proto::Request get;
  get.mutable_get()->set_keygroup("only-edge");
  get.mutable_get()->set_key("counter");
  auto at_edge = edge->Call(get);
  ASSERT_TRUE(at_edge.ok());
  EXPECT_EQ(at_edge->get().value(), "41");
  EXPECT_EQ(at_edge->served_by(), "edge");
  EXPECT_EQ(*cloud->Invoke("counter", ""), "41");

  // Errors come back as errors, and the node keeps serving.
  EXPECT_EQ(cloud->Invoke("missing", "").status().code(), core::Code::kNotFound);
  EXPECT_EQ(edge->Invoke("ma", "not a number").status().code(), core::Code::kInvalidArgument);
  EXPECT_TRUE(edge->Invoke("ma", "c2 1").ok());
}

}  // namespace
}  // namespace enoki

namespace enoki {
namespace {

using testing::Curl;
using testing::Http;

TEST(FunctionHttpTest, CurlAgainstTheGateway) {
  NodeCluster cluster({"edge"}, {}, /*http=*/true);
  auto edge = cluster.Client("edge");
  proto::CreateKeygroupRequest kg;
  kg.set_name("state");
  ASSERT_TRUE(edge->CreateKeygroup(kg).ok());
  ASSERT_TRUE(edge->DeployFunction(Spec("echo", "echo", "state")).ok());
  ASSERT_TRUE(edge->DeployFunction(Spec("inc", "increment", "state")).ok());
  ASSERT_TRUE(edge->DeployFunction(Spec("boom", "fail", "state")).ok());
  int port = cluster.http_port("edge");

  Http sync = Curl(port, "echo", "hello over http");
  EXPECT_EQ(sync.status, 200);
  EXPECT_EQ(sync.body, "hello over http");

  Http async = Curl(port, "inc", "hits", /*async=*/true);
  EXPECT_EQ(async.status, 202);
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto v = edge->Get("state", "hits");
    return v.ok() && v->value() == "1";
  }));

  Http missing = Curl(port, "nothing", "");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("function 'nothing' is not deployed"), std::string::npos);

  Http thrown = Curl(port, "boom", "kaputt");
  EXPECT_EQ(thrown.status, 500);
  EXPECT_EQ(thrown.body, "function threw: kaputt\n");

  EXPECT_EQ(Curl(port, "echo", "still serving").status, 200);
}

}  // namespace
}  // namespace enoki
