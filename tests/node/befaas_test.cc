// The BeFaaS application on a simulated edge and cloud: the call graph across nodes, its state at
// the right places, and the stand-in's fixed cost in virtual time.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "functions/builtins.h"
#include "node/function_host.h"
#include "sim/cluster.h"

namespace enoki {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class BefaasTest : public ::testing::Test {
 protected:
  BefaasTest() : cluster_(sim::AllPeers({"edge", "cloud"}), 11, milliseconds(5)) {
    cluster_.network().SetDelay("edge", "cloud", milliseconds(25));
    for (auto [kg, at] : {std::pair{"edge-state", "edge"}, std::pair{"cloud-state", "cloud"}}) {
      proto::Request r;
      r.mutable_create_keygroup()->set_name(kg);
      r.mutable_create_keygroup()->add_replicas(at);
      EXPECT_EQ(cluster_.Call("edge", r)->code(), proto::OK);
    }
    cluster_.sim().RunFor(milliseconds(200));
    // The paper's placement: E at the edge, C in the cloud.
    for (const char* f : {"trafficsensorfilter", "movementplan", "weathersensorfilter",
                          "objectrecognition", "emergencydetection"}) {
      Deploy("edge", f, "edge-state");
    }
    for (const char* f : {"lightphasecalculation", "roadcondition", "trafficstatistics"}) {
      Deploy("cloud", f, "cloud-state");
    }
  }
  void Deploy(const std::string& node, const std::string& fn, const std::string& kg) {
    proto::Request r;
    auto* spec = r.mutable_deploy_function()->mutable_spec();
    spec->set_name(fn);
    spec->set_handler(fn);
    spec->set_keygroup(kg);
    const std::map<std::string, std::string> all = {
        {"at.lightphasecalculation", "cloud"}, {"at.roadcondition", "cloud"},
        {"at.trafficstatistics", "cloud"},     {"at.movementplan", "edge"},
        {"at.emergencydetection", "edge"},     {"cost_ms", "50"}};
    for (const auto& name : functions::Builtins().at(fn).params) {  // those it takes
      (*spec->mutable_params())[name] = all.at(name);
    }
    ASSERT_EQ(cluster_.Call(node, r)->code(), proto::OK) << fn;
  }
  std::string Invoke(const std::string& fn, const std::string& body) {
    proto::Request r;
    r.mutable_invoke()->set_function(fn);
    r.mutable_invoke()->set_body(body);
    auto res = cluster_.Call("edge", r);
    return res->code() == proto::OK ? res->invoke().body() : "<" + res->error() + ">";
  }
  std::string Value(const std::string& node, const std::string& kg, const std::string& key) {
    proto::Request r;
    r.mutable_get()->set_keygroup(kg);
    r.mutable_get()->set_key(key);
    auto res = cluster_.Call(node, r);
    return res->code() == proto::OK ? res->get().value() : "<absent>";
  }

  sim::SimCluster cluster_;
};

TEST_F(BefaasTest, ObjectRecognitionDrivesTheWholeGraph) {
  auto start = cluster_.sim().Now();
  EXPECT_EQ(Invoke("objectrecognition", "car1 ambulance car2 tree"), "car1 emergency car2");
  // 50 ms of stand-in work, then sync calls at the edge only (the cloud is called async, fire
  // and forget), and the client's round trip.
  auto took = cluster_.sim().Now() - start;
  EXPECT_GE(took, milliseconds(60));
  EXPECT_LT(took, milliseconds(100));
  cluster_.sim().RunFor(seconds(1));  // the async calls to the cloud land
  EXPECT_EQ(Value("edge", "edge-state", "cars"), "car1 car2");
  proto::Request scan;
  scan.mutable_scan()->set_keygroup("cloud-state");
  scan.mutable_scan()->set_start("count/");
  scan.mutable_scan()->set_end("count0");
  auto counts = cluster_.Call("cloud", scan);
  ASSERT_EQ(counts->scan().items_size(), 1);
  EXPECT_EQ(counts->scan().items(0).value(), "4");  // four objects in that second
  EXPECT_NE(Value("cloud", "cloud-state", "light"), "<absent>");
}

TEST_F(BefaasTest, SensorsFilterAndReachTheCloud) {
  EXPECT_EQ(Invoke("trafficsensorfilter", "car9 500"), "filtered");
  EXPECT_EQ(Invoke("trafficsensorfilter", "car9 50"), "plan for 1 cars");
  EXPECT_EQ(Invoke("weathersensorfilter", "20 50 0"), "dry");
  EXPECT_EQ(Invoke("weathersensorfilter", "-3 80 1"), "rain reported");
  cluster_.sim().RunFor(seconds(1));
  std::string light = Value("cloud", "cloud-state", "light");
  EXPECT_NE(light.find("(icy)"), std::string::npos) << light;
  EXPECT_EQ(Invoke("trafficsensorfilter", "oops"), "<trafficsensorfilter: 'CAR SPEED'>");
}

}  // namespace
}  // namespace enoki
