// RespServer: the node's Redis front end (`enoki node --redis HOST:PORT`, off by default). A plain
// TCP listener served on the node's own event loop, with no hand-off to another thread: each
// command becomes a request to the node (Node::Serve), so what the node guarantees holds
// unchanged (forwarding from a node without a replica, replication, a write answered only after
// it is durable). redis-cli, redis-benchmark and Redis client libraries talk to it in RESP2 or,
// after HELLO 3, RESP3.
//
// Keys live in keygroups: a connection works in one keygroup at a time, `--redis-keygroup` at
// first, another after `SELECT NAME`; keys are passed as they are. Served: GET, SET (NX, XX, and
// IFVERSION V: a version condition), GETVERSION, DEL, EXISTS, MGET, MSET, SCAN (MATCH, COUNT),
// PING, ECHO, HELLO, AUTH, SELECT, INFO, QUIT, and enough of CLIENT, COMMAND and CONFIG for
// tools to start. docs/redis.md has each command's semantics and where they differ from Redis.
//
// On a node with keys, a connection must first AUTH with a token of the access file (`AUTH
// TOKEN` or `AUTH NAME TOKEN`); its permissions then apply to every command, as over ZeroMQ.
// Replies leave in the order of the commands, whatever order the node completes them in
// (pipelining); a client that does not read its replies is not read from until it does. With a
// certificate and key, every connection speaks TLS (redis-cli --tls), driven non-blocking on the
// same loop.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <openssl/ssl.h>

#include "adapters/access.h"
#include "adapters/event_loop.h"
#include "core/status.h"
#include "net/resp.h"
#include "node/node.h"

namespace enoki::adapters {

struct RespServerOptions {
  std::string address;             // HOST:PORT to listen on (port 0: any free port)
  std::string keygroup;            // a new connection's keygroup; empty: none until SELECT
  bool authenticate = false;       // commands need AUTH with a token (SetAccess)
  size_t max_value_bytes = 0;      // the largest value a SET takes (the node's limit)
  size_t max_connections = 10000;  // open at once; the next is told so and closed
  std::string cert_file;           // TLS certificate chain (PEM); with key_file, TLS only
  std::string key_file;            // TLS private key (PEM)
};

class RespServer {
 public:
  RespServer(EventLoop& loop, node::Node& node, RespServerOptions options);
  // Closes the listener and every connection (answers still owed are dropped). On the loop's
  // thread.
  ~RespServer();
  RespServer(const RespServer&) = delete;
  RespServer& operator=(const RespServer&) = delete;

  // Loads the TLS files (an error names the file), binds the address (an error if it is
  // malformed or taken) and serves from the loop's next round.
  [[nodiscard]] core::Status Start();
  // The port bound (resolves port 0).
  int port() const { return port_; }
  // With authentication: the tokens of the access file and their permissions from now on (the
  // other lines are ignored). A connection that authenticated keeps its name: it gets the new
  // permissions, or none when its line is gone.
  void SetAccess(const std::map<std::string, AccessEntry>& clients);

 private:
  struct Connection;
  // A command's reply, in the order of the commands on its connection.
  struct Owed {
    bool done = false;
    std::string bytes;
  };
  using Args = std::vector<std::string_view>;

  void OnAccept();
  // Whether accept(2) failing with `error` is the end of that connection only.
  static bool ConnectionsOwnError(int error);
  void PauseAccepting(int error);  // after accept failed with `error` (out of descriptors)
  void ResumeAccepting();
  void OnReady(uint64_t id, short revents);
  // Reads what the client sent and runs the complete commands in it.
  void ReadFrom(Connection& c);
  // Whether the connection holds as much unrun input as it may (the largest command and a read
  // more): it is not read from until its commands run.
  bool InputFull(const Connection& c) const;
  // Reads what TLS has for the connection: up to the input cap, then whatever OpenSSL already
  // took from the socket (so that nothing waits inside it while the socket is quiet). False:
  // the connection is broken.
  bool ReadTls(Connection& c);
  // Runs one command; its reply goes to slot `seq` of the connection.
  void Run(Connection& c, uint64_t seq, const Args& args);
  // Fills slot `seq` of connection `id` (gone: dropped) and moves the replies that are now in
  // order to its output.
  void Finish(uint64_t id, uint64_t seq, std::string bytes);
  // Writes pending output of every connection that has some (at the end of a round).
  void WriteAll();
  // Writes what it can; closes the connection when it is done or broken.
  void WriteTo(Connection& c);
  void Close(uint64_t id);
  // Sets the events the connection waits for from its state.
  void Watch(Connection& c);

  // The commands (resp_server.cc).
  void Get(Connection& c, uint64_t seq, const Args& args, bool with_version);
  void Set(Connection& c, uint64_t seq, const Args& args);
  // SET ... XX: reads the key's version, then writes conditional on it; again, `left` times in
  // all, while the key changed between the two.
  void SetIfExists(uint64_t id, uint64_t seq, int protocol, proto::PutRequest put, int left);
  void DelOrExists(Connection& c, uint64_t seq, const Args& args, bool del);
  void MGet(Connection& c, uint64_t seq, const Args& args);
  void MSet(Connection& c, uint64_t seq, const Args& args);
  void Scan(Connection& c, uint64_t seq, const Args& args);
  void Hello(Connection& c, uint64_t seq, const Args& args);
  void Auth(Connection& c, uint64_t seq, const std::string& user, const std::string& token,
            std::string& out);
  void Info(Connection& c, uint64_t seq);
  // Sends `request` to the node as the connection's client; `then` gets the answer on the loop.
  void Serve(Connection& c, proto::Request request, node::Done then);
  // Whether the node's answer says that the key is absent (not that its keygroup is).
  bool KeyAbsent(const proto::Response& r, const std::string& keygroup) const;
  // The connection's keygroup, or an error reply when it has none.
  bool HasKeygroup(Connection& c, uint64_t seq);

  EventLoop& loop_;
  node::Node& node_;
  RespServerOptions options_;
  net::resp::ParseLimits limits_;
  SSL_CTX* tls_ = nullptr;  // with cert_file: every connection speaks TLS
  int listen_fd_ = -1;
  EventLoop::WatchId listen_watch_ = 0;
  // Out of descriptors: the listener is not watched until accept_retry_ or a connection's close.
  bool accept_paused_ = false;
  core::TimerId accept_retry_{};
  // Since the first failed accept after the queue was last empty.
  std::optional<core::TimePoint> out_of_descriptors_since_;
  int port_ = 0;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::unique_ptr<char[]> read_buffer_;  // what one recv takes
  std::vector<uint64_t> to_write_;       // connections with new output this round
  bool write_armed_ = false;
  // Token digest -> the client's name and permissions (authenticate).
  std::map<std::string, std::pair<std::string, Permissions>> tokens_;
  uint64_t commands_ = 0;  // served since start (INFO)
  // SCAN cursor -> the key where that scan goes on (a key's successor: the last one returned
  // and a NUL).
  std::map<uint64_t, std::string> cursors_;
  uint64_t next_cursor_ = 1;
};

}  // namespace enoki::adapters
