// A real node fed malformed frames (invalid UTF-8 among them) and oversized values: each gets an
// error reply, the log does not get a line for each, and the node keeps serving.
#include <chrono>
#include <fstream>
#include <string>

#include "net/codec.h"
#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

using testing::NodeCluster;

class MalformedTest : public ::testing::Test {
 protected:
  MalformedTest() : cluster_({"a"}), raw_(cluster_.context(), zmq::socket_type::dealer) {
    raw_.set(zmq::sockopt::linger, 0);
    raw_.set(zmq::sockopt::rcvtimeo, 5000);
    raw_.connect(cluster_.endpoint("a"));
  }
  // Sends the frames and returns the node's reply.
  proto::Response Exchange(const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      raw_.send(zmq::buffer(frames[i]),
                i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    zmq::message_t reply;
    EXPECT_TRUE(raw_.recv(reply).has_value()) << "no reply";
    proto::Envelope envelope;
    EXPECT_TRUE(envelope.ParseFromArray(reply.data(), static_cast<int>(reply.size())));
    return envelope.response();
  }
  void ExpectStillServing() {
    auto c = cluster_.Client("a");
    ASSERT_TRUE(c->Put("kg", "k", "still here").ok());
    auto r = c->Get("kg", "k");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->value(), "still here");
  }

  NodeCluster cluster_;
  zmq::socket_t raw_;
};

TEST_F(MalformedTest, EachBadFrameGetsAnErrorAndTheNodeKeepsServing) {
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  ASSERT_TRUE(cluster_.Client("a")->CreateKeygroup(create).ok());

  auto garbage = Exchange({std::string("\xff\xfe\x01garbage-not-protobuf", 22)});
  EXPECT_EQ(garbage.code(), proto::INVALID_ARGUMENT);
  EXPECT_NE(garbage.error().find("malformed"), std::string::npos) << garbage.error();
  ExpectStillServing();

  auto multi = Exchange({"one", "two", "three"});
  EXPECT_EQ(multi.code(), proto::INVALID_ARGUMENT);
  EXPECT_NE(multi.error().find("expected 1 frame"), std::string::npos) << multi.error();

  auto empty = Exchange({""});  // parses as an Envelope with nothing in it
  EXPECT_EQ(empty.code(), proto::INVALID_ARGUMENT);

  proto::Response stray;
  stray.set_id(5);
  std::string frame;
  net::EncodeEnvelope(stray, "a-client", &frame);
  EXPECT_EQ(Exchange({frame}).code(), proto::INVALID_ARGUMENT);

  proto::Request no_op;
  no_op.set_id(9);
  net::EncodeEnvelope(no_op, &frame);
  auto none = Exchange({frame});
  EXPECT_EQ(none.code(), proto::INVALID_ARGUMENT);
  EXPECT_EQ(none.id(), 9u);
  ExpectStillServing();
}

// A `string` field holding invalid UTF-8 fails to parse; libprotobuf would write an ERROR line to
// stderr for each such message, and the node its own warning: a hostile client's flood becomes
// the log's. Both are rate-limited (adapters/protobuf_log.h): one line each, and another only
// every 10 s.
TEST_F(MalformedTest, InvalidUtf8IsRefusedWithoutALogLinePerMessage) {
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  ASSERT_TRUE(cluster_.Client("a")->CreateKeygroup(create).ok());
  proto::Request get;
  get.mutable_get()->set_keygroup("@@@@@@");
  get.mutable_get()->set_key("k");
  std::string frame;
  net::EncodeEnvelope(get, &frame);
  frame.replace(frame.find("@@@@@@"), 6, "\xff\xfe\xfd\xc0\xaf\x80");
  auto start = std::chrono::steady_clock::now();
  constexpr int kMessages = 300;
  for (int i = 0; i < kMessages; ++i) {
    auto refused = Exchange({frame});
    ASSERT_EQ(refused.code(), proto::INVALID_ARGUMENT) << refused.error();
  }
  ExpectStillServing();
  auto periods =
      1 + std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start)
                  .count() /
              10;
  std::ifstream log(cluster_.log("a"));
  int utf8 = 0, malformed = 0;
  for (std::string line; std::getline(log, line);) {
    utf8 += line.find("UTF-8") != std::string::npos;
    malformed += line.find("malformed message") != std::string::npos;
  }
  EXPECT_GE(utf8, 1);
  EXPECT_LE(utf8, periods);
  EXPECT_GE(malformed, 1);
  EXPECT_LE(malformed, periods);
}

TEST_F(MalformedTest, OversizedValuesAreRefusedWithAnError) {
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  auto c = cluster_.Client("a");
  ASSERT_TRUE(c->CreateKeygroup(create).ok());
  auto big = c->Put("kg", "big", std::string((1 << 20) + 1, 'x'));
  EXPECT_EQ(big.status().code(), core::Code::kTooLarge);
  auto exactly = c->Put("kg", "max", std::string(1 << 20, 'x'));
  EXPECT_TRUE(exactly.ok()) << exactly.status().ToString();
  auto long_key = c->Put("kg", std::string(5000, 'k'), "v");
  EXPECT_EQ(long_key.status().code(), core::Code::kInvalidArgument);
  ExpectStillServing();
}

TEST(MalformedLimitTest, RaisedLimitAcceptsOneMegabyteValues) {
  NodeCluster cluster({"a", "b"}, {"--max-value-size", "4MiB"});
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  create.add_replicas("a");
  create.add_replicas("b");
  auto a = cluster.Client("a");
  ASSERT_TRUE(a->CreateKeygroup(create).ok());
  std::string value(3'000'000, 'v');
  ASSERT_TRUE(a->Put("kg", "big", value).ok());
  auto b = cluster.Client("b");
  std::string got;
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto r = b->Get("kg", "big");
    if (r.ok()) got = r->value();
    return r.ok();
  }));
  EXPECT_EQ(got.size(), value.size());
}

}  // namespace
}  // namespace enoki
