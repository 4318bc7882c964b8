// What listens at an endpoint that did not answer: a connection attempt (TCP, or to the Unix
// socket of ipc://), so that a client's "no answer" can say "nothing listens at ..." when that is
// the reason, rather than leaving the user to guess.
#pragma once

#include <chrono>
#include <string>

namespace enoki::adapters {

struct ProbeResult {
  bool listening = false;  // a connection was accepted there
  std::string text;        // what was found, as a clause: "nothing listens at 127.0.0.1:7 (...)"
};

// Tries to connect to `endpoint` (tcp://HOST:PORT or ipc://PATH, as net::ParseEndpoint returns
// it), for at most `timeout`, and closes the connection at once.
ProbeResult ProbeEndpoint(const std::string& endpoint, std::chrono::milliseconds timeout);

// A TCP connection to `endpoint` (tcp://HOST:PORT, as net::ParseEndpoint returns it) made within
// `timeout`: the connected socket (blocking, close-on-exec; the caller closes it), or -1 with
// `*why` saying what went wrong, in ProbeEndpoint's words.
int ConnectTcp(const std::string& endpoint, std::chrono::milliseconds timeout, std::string* why);

}  // namespace enoki::adapters
