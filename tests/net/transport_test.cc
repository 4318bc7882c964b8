// The net layer on real ZeroMQ sockets over loopback: envelope encoding, the event loop's timers,
// node-to-node delivery, client request and reply, and bad frames.
#include <gtest/gtest.h>

#include "net/client.h"
#include "net/codec.h"
#include "net/event_loop.h"
#include "net/free_port.h"
#include "net/zmq_transport.h"

namespace enoki::net {
namespace {

using std::chrono::milliseconds;

TEST(CodecTest, EncodedEnvelopesParseBack) {
  proto::PeerMessage msg;
  msg.set_from("a");
  auto* item = msg.mutable_replicate()->add_items();
  item->set_key("k");
  item->set_value(std::string(300, 'v'));  // a length that needs a two-byte varint
  std::string frame;
  EncodeEnvelope(msg, &frame);
  proto::Envelope env;
  ASSERT_TRUE(env.ParseFromString(frame));
  ASSERT_TRUE(env.has_peer());
  EXPECT_EQ(env.peer().replicate().items(0).value().size(), 300u);

  proto::Response response;
  response.set_id(7);
  EncodeEnvelope(response, &frame);
  ASSERT_TRUE(env.ParseFromString(frame));
  EXPECT_EQ(env.response().id(), 7u);
}

TEST(EventLoopTest, TimersRunInOrderAndStopEndsTheLoop) {
  EventLoop loop(1);
  std::vector<int> order;
  auto start = loop.Now();
  loop.Schedule(milliseconds(20), [&] { order.push_back(2); });
  loop.Schedule(milliseconds(5), [&] { order.push_back(1); });
  auto cancelled = loop.Schedule(milliseconds(10), [&] { order.push_back(99); });
  loop.Cancel(cancelled);
  loop.Schedule(milliseconds(30), [&] { loop.Stop(); });
  int idle = 0;
  loop.AddIdleHook([&] { ++idle; });
  loop.Run();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_GE(loop.Now() - start, milliseconds(30));
  EXPECT_GT(idle, 0);
}

// Records what a transport delivers; stops the loop after `stop_after` deliveries.
class Recorder : public MessageHandler {
 public:
  Recorder(EventLoop& loop, Transport& transport, int stop_after)
      : loop_(loop), transport_(transport), stop_after_(stop_after) {}
  void OnPeerMessage(proto::PeerMessage&& msg) override {
    peer.push_back(std::move(msg));
    Count();
  }
  void OnClientRequest(const ClientId& client, proto::Request&& request) override {
    proto::Response r;
    r.set_id(request.id());
    r.set_served_by("echo:" + request.get().key());
    transport_.ReplyToClient(client, r);
    requests.push_back(std::move(request));
    Count();
  }
  std::vector<proto::PeerMessage> peer;
  std::vector<proto::Request> requests;

 private:
  void Count() {
    if (static_cast<int>(peer.size() + requests.size()) >= stop_after_) loop_.Stop();
  }
  EventLoop& loop_;
  Transport& transport_;
  int stop_after_;
};

std::string LoopbackEndpoint() {
  auto port = FreeLoopbackPort();
  EXPECT_TRUE(port.ok());
  return "tcp://127.0.0.1:" + std::to_string(*port);
}

TEST(ZmqTransportTest, DeliversPeerMessagesBetweenTwoNodes) {
  zmq::context_t context(1);
  std::string ea = LoopbackEndpoint(), eb = LoopbackEndpoint();
  EventLoop loop(1);
  ZmqTransport a(context, loop, {"a", ea, {{"b", eb}}, 1 << 20});
  ZmqTransport b(context, loop, {"b", eb, {{"a", ea}}, 1 << 20});
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(b.Start().ok());
  Recorder ra(loop, a, 1000), rb(loop, b, 3);
  a.SetHandler(&ra);
  b.SetHandler(&rb);
  // Keep sending pings from a to b until three arrive (the connection comes up asynchronously).
  std::function<void()> ping = [&] {
    proto::PeerMessage msg;
    msg.set_from("a");
    msg.mutable_ping()->set_nonce(42);
    a.SendToPeer("b", msg);
    loop.Schedule(milliseconds(10), ping);
  };
  ping();
  loop.Schedule(std::chrono::seconds(10), [&] { loop.Stop(); });  // bound
  loop.Run();
  ASSERT_GE(rb.peer.size(), 3u);
  EXPECT_EQ(rb.peer[0].from(), "a");
  EXPECT_EQ(rb.peer[0].ping().nonce(), 42u);
  EXPECT_FALSE(a.SendToPeer("nobody", proto::PeerMessage{}));
}

TEST(ZmqTransportTest, AnswersClientsAndRejectsBadFrames) {
  zmq::context_t context(1);
  std::string e = LoopbackEndpoint();
  EventLoop loop(1);
  ZmqTransport t(context, loop, {"a", e, {}, 1 << 20});
  ASSERT_TRUE(t.Start().ok());
  Recorder r(loop, t, 1);
  t.SetHandler(&r);

  zmq::socket_t raw(context, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(e);
  raw.send(zmq::str_buffer("\xff\xff\xff"), zmq::send_flags::none);
  proto::Request req;
  req.set_id(3);
  req.mutable_get()->set_key("hello");
  std::string frame;
  EncodeEnvelope(req, &frame);
  raw.send(zmq::buffer(frame), zmq::send_flags::none);
  loop.Schedule(std::chrono::seconds(10), [&] { loop.Stop(); });  // bound
  loop.Run();

  ASSERT_EQ(r.requests.size(), 1u);  // the bad frame never reached the handler
  std::vector<proto::Response> replies;
  raw.set(zmq::sockopt::rcvtimeo, 5000);
  for (int i = 0; i < 2; ++i) {
    zmq::message_t m;
    ASSERT_TRUE(raw.recv(m).has_value());
    proto::Envelope env;
    ASSERT_TRUE(env.ParseFromArray(m.data(), static_cast<int>(m.size())));
    replies.push_back(env.response());
  }
  EXPECT_EQ(replies[0].code(), proto::INVALID_ARGUMENT);
  EXPECT_NE(replies[0].error().find("malformed message"), std::string::npos);
  EXPECT_EQ(replies[1].id(), 3u);
  EXPECT_EQ(replies[1].served_by(), "echo:hello");
}

TEST(ZmqTransportTest, ATakenAddressIsAStartError) {
  zmq::context_t context(1);
  std::string e = LoopbackEndpoint();
  EventLoop loop(1);
  ZmqTransport first(context, loop, {"a", e, {}, 1 << 20});
  ZmqTransport second(context, loop, {"b", e, {}, 1 << 20});
  ASSERT_TRUE(first.Start().ok());
  core::Status st = second.Start();
  EXPECT_EQ(st.code(), core::Code::kUnavailable);
  EXPECT_NE(st.message().find(e), std::string::npos);
}

TEST(ClientTest, TimesOutWhenNoNodeAnswers) {
  zmq::context_t context(1);
  Client client(context, LoopbackEndpoint(), milliseconds(100));
  auto r = client.Get("kg", "k");
  EXPECT_EQ(r.status().code(), core::Code::kDeadlineExceeded);
}

}  // namespace
}  // namespace enoki::net
