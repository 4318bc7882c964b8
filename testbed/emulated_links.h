// How the emulation's links are emulated, the one thing its two backends differ in: the
// user-space shaper (every node shapes its own links in its transport) and kernel netem (every
// node in a network namespace of its own, its links shaped by tc). The emulation (emulation.cc)
// holds one LinksBackend and never asks which it is.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "adapters/node_process.h"
#include "core/status.h"
#include "net/link_model.h"
#include "testbed/scenario.h"

namespace enoki::testbed {

// How the links are emulated: the one thing the two backends differ in. The callers' side of a
// client's links is the emulation's (it shapes them itself when ShapedByCallers).
class LinksBackend {
 public:
  virtual ~LinksBackend() = default;
  // The endpoint node `id` listens on: an address of its own that no other process can take.
  virtual std::string Endpoint(const std::string& id) const = 0;
  // The endpoint the callers of client `client` reach node `node` at.
  virtual std::string CallerEndpoint(const std::string& client, const std::string& node) const = 0;
  // Adds what node `id`'s process needs: its links to its peers as `to_peers` says they are now
  // (the shaper's are in the node's transport) or its namespace (netem's are in the kernel).
  virtual void Configure(const std::string& id,
                         const std::map<std::string, net::LinkSpec>& to_peers,
                         adapters::NodeProcessOptions& o, adapters::Placement& where) const = 0;
  // Whether the callers shape their client's links in this process (where a message on its way
  // over a link that was cut meanwhile is lost), or the kernel does.
  virtual bool ShapedByCallers() const = 0;
  // The link a -> b is now `spec`, shaped where the backend shapes it, without waiting.
  virtual void SetLink(const std::pair<std::string, std::string>& p, const net::LinkSpec& spec) = 0;
  // Waits for the link changes still under way; their failures.
  virtual std::vector<std::string> Finish() = 0;
};

// `ask(a -> b, spec)` asks node a to shape its link to b as `spec` (over its control socket).
using AskLink =
    std::function<void(const std::pair<std::string, std::string>& p, const net::LinkSpec& spec)>;
// The shaper: every node listens on a Unix socket in a folder under `run_dir`.
core::Result<std::unique_ptr<LinksBackend>> MakeShaperLinks(const Scenario& s,
                                                            const std::string& run_dir,
                                                            AskLink ask);
// Netem: a namespace per node and client, the links as `links` says at the start.
core::Result<std::unique_ptr<LinksBackend>> MakeNetemLinks(
    const Scenario& s, const std::map<std::pair<std::string, std::string>, net::LinkSpec>& links,
    const std::string& run_dir);

}  // namespace enoki::testbed
