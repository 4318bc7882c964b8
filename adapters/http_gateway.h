// HttpGateway: the node's tinyFaaS-compatible HTTP front. `POST /<function>` with the request
// body (or `GET /<function>`, without one) calls the function at the node and answers with its
// response body; any other method or path is refused before its body is read; the header
// `X-tinyFaaS-Async: true` makes the call asynchronous (202 Accepted at once). Errors map to HTTP
// status codes with the message as body: 404 no such function, 400 bad request, 401 no or an
// unknown bearer token, 403 not permitted, 413 too large, 503 unavailable (e.g. concurrency limit,
// too many connections), 504 timeout, 500 the function failed.
//
// Security (docs/security.md): with certificate and key files it speaks TLS only. With
// authentication on (a node with keys), a call needs `Authorization: Bearer TOKEN` for a token
// of the access file whose permissions include `invoke:FN`, unless the access file's line for
// callers without a credential (`-`) gives that permission (a public function).
//
// Slow clients: each connection has a thread of its own (so 1,000 connections that send a byte
// now and then leave legitimate calls answered), up to a total cap and a cap per client address
// (503 and closed beyond them); the TLS handshake and the request head must arrive within the
// header timeout, and a connection that sends nothing for the read timeout is closed. A body over
// the limit is refused (413) before it is read when its length says so, else as soon as it
// inflates past the limit.
//
// With `manage`, it serves tinyFaaS's management API instead (docs/functions.md): `POST /upload`
// (JSON name, env, threads, zip as base64: the zip's files, with a program that runs them as
// tinyFaaS's python3 or binary runtime, deployed as a process function with uploaded code),
// `POST /delete`, `GET /list`, `GET /logs[?name=F]`; with authentication, each route needs a
// token whose permissions allow what it asks of the node (deploy-process to upload, deploy for
// the others).
//
// It reaches the node like any client, over the node's ZeroMQ endpoint with a pool of client
// sockets (one per call in flight), so the node's loop thread stays the only one that touches the
// node.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "adapters/access.h"
#include "adapters/client.h"
#include "core/status.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace enoki::adapters {

struct HttpGatewayOptions {
  std::string address;        // HOST:PORT to listen on (port 0: any free port)
  size_t max_body_bytes = 0;  // the largest request body, after any decompression (413 beyond it)
  std::string cert_file;      // TLS certificate chain (PEM); with key_file, TLS only; empty: none
  std::string key_file;       // TLS private key (PEM)
  bool authenticate = false;  // calls need a bearer token or a public function (SetAccess)
  std::chrono::milliseconds header_timeout{5000};  // TLS handshake and request head, in all
  std::chrono::milliseconds read_timeout{10000};   // nothing received for this long: closed
  size_t max_connections = 1024;                   // open at once, in all
  size_t max_per_address = 32;                     // open at once from one client address
  // Serve tinyFaaS's management API (upload, delete, list, logs) instead of functions.
  bool manage = false;
  uint64_t max_upload_bytes = 0;  // manage: the most an upload's files may unpack to
};

class HttpGateway {
 public:
  // `node_endpoint`: the node's ZeroMQ endpoint (its local endpoint with keys).
  HttpGateway(zmq::context_t& context, std::string node_endpoint, HttpGatewayOptions options);
  // Stops the server, closes its connections and joins its threads.
  ~HttpGateway();

  // Loads the TLS files (an error names the file that is unreadable or invalid, or a key that
  // is not the certificate's), binds the address (an error if it is taken or malformed) and
  // starts serving.
  [[nodiscard]] core::Status Start();
  // The port actually bound (resolves port 0).
  int port() const { return port_; }
  // With authentication: who may call what from now on, from the access file's token lines and
  // its line for callers without a credential (the other lines are ignored). Thread-safe; calls
  // under way keep the table they started with.
  void SetAccess(const std::map<std::string, AccessEntry>& clients);

 private:
  // The callers of the access file, as the gateway's threads read them.
  struct Callers {
    std::map<std::string, std::pair<std::string, Permissions>> by_token;  // digest -> name, perms
    std::optional<std::pair<std::string, Permissions>> anonymous;         // the '-' line
  };
  class Server;  // cpp-httplib's server, owning each connection (http_gateway.cc)

  using Refuse = std::function<void(httplib::Response&, int, const std::string&)>;
  using Call = std::function<void(const httplib::Request&, const std::string&, httplib::Response&)>;

  // OK when the Authorization header `authorization` may call `function`; else the HTTP status
  // (401, 403) and why.
  std::optional<std::pair<int, std::string>> Refusal(const std::string& authorization,
                                                     const std::string& function) const;
  // OK when `authorization` may send `request` (as the access file's rules for ZeroMQ clients
  // say); else 401 (`without_token` when there is none) or 403, and why.
  std::optional<std::pair<int, std::string>> Refusal(const std::string& authorization,
                                                     const proto::Request& request,
                                                     const std::string& without_token) const;
  // `POST /<function>` and `GET /<function>`: calls.
  void AddFunctionRoutes(const Refuse& refuse, const Call& call);
  // tinyFaaS's management API: `POST /upload`, `POST /delete`, `GET /list`, `GET /logs`.
  void AddManagementRoutes(const Refuse& refuse);
  // A node client for one call, from the pool (made when the pool is empty), and back.
  std::unique_ptr<Client> TakeClient();
  void ReturnClient(std::unique_ptr<Client> client);

  zmq::context_t& context_;
  std::string node_endpoint_;
  HttpGatewayOptions options_;
  int port_ = 0;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  mutable std::mutex mu_;  // guards callers_ and clients_
  std::shared_ptr<const Callers> callers_;
  std::vector<std::unique_ptr<Client>> clients_;
};

}  // namespace enoki::adapters
