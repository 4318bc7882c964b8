// The net layer on real ZeroMQ sockets over loopback: envelope encoding, the event loop's timers,
// node-to-node delivery, client request and reply, bad frames and misaddressed requests.
#include <unistd.h>

#include <filesystem>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "adapters/client.h"
#include "adapters/event_loop.h"
#include "adapters/zmq_transport.h"
#include "net/codec.h"

namespace enoki::adapters {
namespace {

using std::chrono::milliseconds;

TEST(CodecTest, EncodedEnvelopesParseBack) {
  proto::PeerMessage msg;
  msg.set_from("a");
  auto* item = msg.mutable_replicate()->add_items();
  item->set_key("k");
  item->set_value(std::string(300, 'v'));  // a length that needs a two-byte varint
  std::string frame;
  net::EncodeEnvelope(msg, &frame);
  proto::Envelope env;
  ASSERT_TRUE(env.ParseFromString(frame));
  ASSERT_TRUE(env.has_peer());
  EXPECT_EQ(env.peer().replicate().items(0).value().size(), 300u);

  proto::Response response;
  response.set_id(7);
  response.set_served_by(std::string(200, 's'));  // with the node field, a two-byte length
  net::EncodeEnvelope(response, "edge1", &frame);
  ASSERT_TRUE(env.ParseFromString(frame));
  EXPECT_EQ(env.response().id(), 7u);
  EXPECT_EQ(env.response().served_by().size(), 200u);
  EXPECT_EQ(env.response().node(), "edge1");
}

TEST(EventLoopTest, TimersRunInOrderAndStopEndsTheLoop) {
  EventLoop loop(1);
  std::vector<int> order;
  auto start = loop.Now();
  loop.Schedule(milliseconds(20), [&] { order.push_back(2); });
  // What a round leaves for its end runs before the next round, also what that end adds.
  loop.Schedule(milliseconds(5), [&] {
    order.push_back(1);
    loop.AtEndOfRound([&] {
      order.push_back(10);
      loop.AtEndOfRound([&] { order.push_back(11); });
    });
  });
  auto cancelled = loop.Schedule(milliseconds(10), [&] { order.push_back(99); });
  loop.Cancel(cancelled);
  loop.Schedule(milliseconds(30), [&] { loop.Stop(); });
  loop.Run();
  EXPECT_EQ(order, (std::vector<int>{1, 10, 11, 2}));
  EXPECT_GE(loop.Now() - start, milliseconds(30));
}

// A socket is read when its ZMQ_FD signals, one that held messages before it was added too, and
// one sent on outside its reader (from a timer) after a reply arrived unread: ZeroMQ takes in
// the reply's signal while sending (at most once a millisecond), and only EventLoop::Send
// (which marks the socket) makes the loop look. The loop asks every socket at least every
// 100 ms as a backstop; a reply read that late is a missed signal.
TEST(EventLoopTest, SocketsAreReadWhenTheirMessagesArriveAlsoAfterSendsFromTimers) {
  zmq::context_t context;
  zmq::socket_t echo(context, zmq::socket_type::router);
  echo.set(zmq::sockopt::linger, 0);
  echo.bind("tcp://127.0.0.1:*");
  std::string endpoint = echo.get(zmq::sockopt::last_endpoint);
  constexpr int kPairs = 20;
  std::thread server([&] {
    for (int i = 0; i < 2 * kPairs + 1; ++i) {
      zmq::message_t id, body;
      if (!echo.recv(id) || !echo.recv(body)) return;
      echo.send(id, zmq::send_flags::sndmore);
      echo.send(body, zmq::send_flags::none);
    }
  });
  EventLoop loop(1);
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(endpoint);
  // Waiting before the socket is added.
  dealer.send(zmq::str_buffer("first"), zmq::send_flags::none);
  std::this_thread::sleep_for(milliseconds(50));
  int replies = 0;
  core::Duration slowest{};
  core::TimePoint sent_at{};
  // Two pings: the first one's reply arrives while the timer sleeps, unread when the second goes.
  std::function<void()> send_pair = [&] {
    ASSERT_TRUE(loop.Send(dealer, zmq::str_buffer("ping")));
    std::this_thread::sleep_for(milliseconds(3));
    sent_at = loop.Now();
    ASSERT_TRUE(loop.Send(dealer, zmq::str_buffer("ping")));
  };
  loop.AddSocket(dealer, [&] {
    zmq::message_t m;
    while (dealer.recv(m, zmq::recv_flags::dontwait)) {
      ++replies;
      if (replies > 1 && replies % 2 == 1) slowest = std::max(slowest, loop.Now() - sent_at);
      if (replies == 2 * kPairs + 1) return loop.Stop();
      // From a timer, in a later round than this read (which has the socket asked once more).
      if (replies % 2 == 1) loop.Schedule(milliseconds(2), send_pair);
    }
  });
  bool timed_out = false;
  loop.Schedule(std::chrono::seconds(10), [&] {
    timed_out = true;
    loop.Stop();
  });
  loop.Run();
  EXPECT_FALSE(timed_out) << replies << " replies";
  EXPECT_EQ(replies, 2 * kPairs + 1);
  EXPECT_LT(slowest, milliseconds(50)) << "a reply waited for the loop's backstop";
  dealer.close();
  echo.close();
  context.shutdown();
  server.join();
}

// Records what a transport delivers; stops the loop after `stop_after` deliveries.
class Recorder : public net::MessageHandler {
 public:
  Recorder(EventLoop& loop, net::Transport& transport, int stop_after)
      : loop_(loop), transport_(transport), stop_after_(stop_after) {}
  void OnPeerMessage(proto::PeerMessage&& msg) override {
    peer.push_back(std::move(msg));
    Count();
  }
  void OnClientRequest(const net::ClientId& client, const net::Caller&,
                       proto::Request&& request) override {
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
  net::Transport& transport_;
  int stop_after_;
};

// Any free loopback port, chosen by the binding socket itself.
constexpr const char* kAnyLoopbackPort = "tcp://127.0.0.1:*";

TEST(ZmqTransportTest, DeliversPeerMessagesBetweenTwoNodes) {
  zmq::context_t context(1);
  EventLoop loop(1);
  ZmqTransport b(context, loop, {"b", kAnyLoopbackPort, {}, 1 << 20, {}});
  ASSERT_TRUE(b.Start().ok());
  ZmqTransport a(context, loop, {"a", kAnyLoopbackPort, {{"b", b.bound_endpoint()}}, 1 << 20, {}});
  ASSERT_TRUE(a.Start().ok());
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
  EventLoop loop(1);
  ZmqTransport t(context, loop, {"a", kAnyLoopbackPort, {}, 1 << 20, {}});
  ASSERT_TRUE(t.Start().ok());
  std::string e = t.bound_endpoint();
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
  net::EncodeEnvelope(req, &frame);
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
  EventLoop loop(1);
  ZmqTransport first(context, loop, {"a", kAnyLoopbackPort, {}, 1 << 20, {}});
  ASSERT_TRUE(first.Start().ok());
  std::string e = first.bound_endpoint();
  ZmqTransport second(context, loop, {"b", e, {}, 1 << 20, {}});
  core::Status st = second.Start();
  EXPECT_EQ(st.code(), core::Code::kUnavailable);
  EXPECT_NE(st.message().find(e), std::string::npos);
}

TEST(ClientTest, TimesOutWhenNoNodeAnswers) {
  zmq::context_t context(1);
  // A socket path nobody binds (this process made the folder).
  std::string dir = ::testing::TempDir() + "enoki-client-timeout-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  Client client(context, "ipc://" + dir + "/nobody", milliseconds(100));
  auto r = client.Get("kg", "k");
  EXPECT_EQ(r.status().code(), core::Code::kDeadlineExceeded);
  std::filesystem::remove_all(dir);
}

// A request says which node it is meant for: the node refuses one addressed to another, without
// its handler seeing it, and every reply names the node that answers.
TEST(ZmqTransportTest, RefusesRequestsAddressedToAnotherNode) {
  zmq::context_t context(1);
  EventLoop loop(1);
  ZmqTransport t(context, loop, {"edge72", kAnyLoopbackPort, {}, 1 << 20, {}});
  ASSERT_TRUE(t.Start().ok());
  Recorder r(loop, t, 2);  // stops once the two requests meant for edge72 arrived
  t.SetHandler(&r);

  // A raw client: one request for edge8, one for edge72.
  zmq::socket_t raw(context, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(t.bound_endpoint());
  std::string frame;
  for (auto [id, to] : {std::pair<int, const char*>{1, "edge8"}, {2, "edge72"}}) {
    proto::Request req;
    req.set_id(id);
    req.set_to(to);
    req.mutable_get()->set_key("k");
    net::EncodeEnvelope(req, &frame);
    raw.send(zmq::buffer(frame), zmq::send_flags::none);
  }
  // The blocking client addresses its requests itself and checks who answers.
  Client wrong(context, t.bound_endpoint(), milliseconds(5000), "edge8");
  Client right(context, t.bound_endpoint(), milliseconds(5000), "edge72");
  core::Result<proto::GetResult> wrong_get{core::Status::Internal("not run")};
  core::Result<proto::GetResult> right_get{core::Status::Internal("not run")};
  std::thread caller([&] {
    wrong_get = wrong.Get("kg", "wrong");
    right_get = right.Get("kg", "right");
  });
  loop.Schedule(std::chrono::seconds(10), [&] { loop.Stop(); });  // bound
  loop.Run();
  caller.join();

  // The handler saw only the requests meant for edge72.
  ASSERT_EQ(r.requests.size(), 2u);
  for (const auto& req : r.requests) EXPECT_EQ(req.to(), "edge72");
  EXPECT_EQ(wrong_get.status().code(), core::Code::kFailedPrecondition);
  EXPECT_NE(wrong_get.status().message().find("addressed to node 'edge8' but reached node "
                                              "'edge72'"),
            std::string::npos)
      << wrong_get.status().ToString();
  EXPECT_TRUE(right_get.ok()) << right_get.status().ToString();

  raw.set(zmq::sockopt::rcvtimeo, 5000);
  std::map<uint64_t, proto::Response> replies;
  for (int i = 0; i < 2; ++i) {
    zmq::message_t m;
    ASSERT_TRUE(raw.recv(m).has_value());
    proto::Envelope env;
    ASSERT_TRUE(env.ParseFromArray(m.data(), static_cast<int>(m.size())));
    replies[env.response().id()] = env.response();
  }
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[1].code(), proto::FAILED_PRECONDITION);
  EXPECT_EQ(replies[1].node(), "edge72");  // every reply names the node that answers
  EXPECT_EQ(replies[2].code(), proto::OK);
  EXPECT_EQ(replies[2].node(), "edge72");
}

// A client that expects one node and gets an answer from another (a server that does not check
// Request.to, here a bare ROUTER socket) says so instead of taking the answer.
TEST(ClientTest, AnAnswerFromAnotherNodeIsAnError) {
  zmq::context_t context(1);
  zmq::socket_t server(context, zmq::socket_type::router);
  server.set(zmq::sockopt::linger, 0);
  server.bind(kAnyLoopbackPort);
  std::string endpoint = server.get(zmq::sockopt::last_endpoint);
  Client client(context, endpoint, milliseconds(5000), "edge8");
  core::Result<proto::GetResult> got{core::Status::Internal("not run")};
  std::thread caller([&] { got = client.Get("kg", "k"); });

  server.set(zmq::sockopt::rcvtimeo, 5000);
  zmq::message_t routing, payload;
  proto::Envelope env;
  bool received = server.recv(routing).has_value() && server.recv(payload).has_value() &&
                  env.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
  EXPECT_TRUE(received);
  if (received) {  // else the caller times out; it is joined either way
    EXPECT_EQ(env.request().to(), "edge8");
    proto::Response response;
    response.set_id(env.request().id());
    std::string frame;
    net::EncodeEnvelope(response, "edge72", &frame);
    server.send(routing, zmq::send_flags::sndmore);
    server.send(zmq::buffer(frame), zmq::send_flags::none);
  }
  caller.join();
  EXPECT_EQ(got.status().code(), core::Code::kFailedPrecondition);
  EXPECT_NE(got.status().message().find("node 'edge72' answered at " + endpoint +
                                        ", where node 'edge8' was expected"),
            std::string::npos)
      << got.status().ToString();
}

}  // namespace
}  // namespace enoki::adapters
