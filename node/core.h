// The node's core: what every protocol of a node shares. It holds the keygroups and their items,
// the write batch of the current round, the completions and peer messages that wait for that
// batch to be durable, the node's timers, clock and operation ids. Flush() commits the batch and
// only then delivers completions and sends messages, so nothing is acknowledged or replicated
// before it is durable locally.
//
// A commit that fails (a full disk, a read-only or failing one) does not stop the node: the
// items the batch wrote go back to their durable state, the batch and what waited for it are
// held and the commit is tried again with backoff, and meanwhile the node refuses whatever would
// write (StorageFault()) while it serves reads, forwards and replicates what is durable. Once a
// retried commit succeeds, the held items are back in memory, the held answers and messages go
// out, and writes are taken again.
//
// The protocols (catalog, replication, joining, forwarding, item operations; docs/architecture.md
// draws them) each hold their own state in their own class above the core, and reach time,
// timers, the network and storage only through it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "core/env.h"
#include "core/status.h"
#include "net/trace.h"
#include "net/transport.h"
#include "node/item_map.h"
#include "node/metrics.h"
#include "node/storage.h"
#include "node/validation.h"
#include "node/version.h"

namespace enoki::node {

struct NodeOptions {
  std::string id;
  // The configured peers (`enoki node --peer`): members of version 0 (node/membership.h). The
  // simulation sets only their ids; it reaches every node by id.
  std::vector<proto::Member> peers;
  // This node as the others reach it: its endpoint (empty: nobody can connect to it, behind NAT)
  // and its public key (empty without keys).
  std::string endpoint;
  std::string public_key;
  // Whether its own entry is news to gossip (it was given where it is reached, or it joins);
  // else it is a configuration's, as the others' --peer say it (node/membership.h).
  bool announce = false;
  size_t max_value_bytes = kDefaultMaxValueBytes;
  core::Duration retry_interval = std::chrono::milliseconds(200);
  core::Duration max_retry_interval = std::chrono::seconds(2);
  core::Duration sync_write_timeout = std::chrono::seconds(2);
  core::Duration forward_timeout = std::chrono::seconds(2);
  core::Duration ping_interval = std::chrono::milliseconds(500);
  uint32_t default_scan_limit = 1000;
  // How often the node starts anti-entropy exchanges (node/anti_entropy.h); 0: never.
  core::Duration anti_entropy_interval = std::chrono::seconds(10);
  // How far a version a peer sends may be ahead of this node's clock (peer_checks.h).
  core::Duration max_clock_ahead = std::chrono::seconds(60);
  // Of the node's own random stream (its first operation id); 0: one drawn from the Env. A
  // restarted node needs another, so that its operation ids differ from before.
  uint64_t seed = 0;
};

// How a request's answer gets back to whoever asked: called exactly once, on the loop thread.
using Done = std::function<void(proto::Response&&)>;
// An item of a keygroup: (keygroup, key); key "" stands for the keygroup's catalog entry.
using ItemKey = std::pair<std::string, std::string>;

// Replication and pulling send no more items than this in one message.
constexpr size_t kMaxItemsPerMessage = 512;
// Per-item overhead counted against Core::batch_bytes() besides key and value.
constexpr size_t kItemOverhead = 48;

struct Keygroup {
  proto::KeygroupMeta meta;
  bool replica = false;  // this node is in meta.replicas and the keygroup is not deleted
  bool ready = false;    // replica with all the data
  ItemMap items;
};

// The event the catalog gives the protocols above the core when it applied a change of a
// keygroup's entry (already in kg.meta, kg.replica and kg.ready), before it persists the entry.
struct KeygroupChange {
  Keygroup& kg;
  // The same incarnation as before, and not deleted: the items stay.
  bool live;
  // This node became a replica (again) that must pull the data before serving it.
  bool pull;
  // The replicas before the change, with when each joined.
  const std::map<std::string, Version>& old_joined;
};

bool IsReplicaIn(const proto::KeygroupMeta& meta, const std::string& node);
// The keygroup an item operation names ("" for any other request).
const std::string& KeygroupOf(const proto::Request& r);
// A response to `request` from this node, before its outcome is set.
proto::Response ResponseTo(const proto::Request& request, const std::string& node);

class Core {
 public:
  Core(NodeOptions options, core::Env& env, net::Transport& transport, StorageEngine& storage);
  // Cancels the node's timers.
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  const NodeOptions& options() const { return options_; }
  const std::string& id() const { return options_.id; }
  core::Env& env() const { return env_; }
  net::Transport& transport() { return transport_; }
  StorageEngine& storage() { return storage_; }
  HybridClock& clock() { return clock_; }
  // Cap on the payload of one replication or pull message.
  size_t batch_bytes() const { return batch_bytes_; }
  // What the next commit makes durable.
  WriteBatch& batch() { return batch_; }

  // ---- Keygroups and items.
  std::map<std::string, Keygroup>& keygroups() { return keygroups_; }
  const std::map<std::string, Keygroup>& keygroups() const { return keygroups_; }
  // The keygroup unless it is unknown or deleted.
  Keygroup* FindLive(const std::string& name);
  // Writes an item made at this node (a new version from the clock); returns that version. The
  // caller owes it to the other replicas (Replication::OnLocalWrite).
  Version WriteLocal(Keygroup& kg, const std::string& key, std::string value, bool deleted);
  // Applies an item from a peer if it is newer than what this node holds; returns whether it was.
  // `repair`: anti-entropy's (so the trace says).
  bool ApplyRemote(Keygroup& kg, const std::string& key, StoredItem item, bool repair = false);
  void PersistKeygroup(const Keygroup& kg);
  void DropItems(Keygroup& kg);

  // ---- What waits for the commit.
  void Send(const std::string& peer, proto::PeerMessage msg);
  // Calls `done(response)` after the next commit.
  void Complete(Done& done, proto::Response&& response);
  void Fail(Done& done, proto::Response&& response, const core::Status& status);
  // Has Flush call `send` once the batch is durable, before the messages queued meanwhile go out
  // (replication's pushes of fresh writes, set when Replication is made); Fresh() says there is
  // something for it to send.
  void SetFreshSender(std::function<void()> send) { send_fresh_ = std::move(send); }
  void Fresh() { fresh_ = true; }
  // Commits the pending batch, then delivers completions and sends queued peer messages; repeats
  // while that produced more work.
  void Flush();
  // Has Flush run at the end of the current round (once, however often it is asked).
  void RequestFlush();
  // Ok while commits succeed. After one failed, and until a retried commit succeeds: the error
  // that whatever would write is refused with (RESOURCE_EXHAUSTED for a full disk, else
  // UNAVAILABLE), naming the node and the storage's error. Nothing refused with it was applied.
  const core::Status& StorageFault() const { return fault_; }

  // What the node counts about itself (node/metrics.h).
  NodeMetrics& metrics() { return metrics_; }
  const NodeMetrics& metrics() const { return metrics_; }

  // ---- Timers, ids, the trace, logging.
  // A timer of the node: cancelled with it; a flush follows whatever `fn` does.
  core::TimerId After(core::Duration delay, std::function<void()> fn);
  void CancelTimer(core::TimerId id);
  // Ids of the node's own operations (forwards, synchronous writes): a random start, so a late
  // answer meant for an earlier run of the node does not match.
  uint64_t NextOpId() { return next_op_id_++; }
  void SetTrace(net::TraceSink* trace) { trace_ = trace; }
  net::TraceSink* trace() { return trace_; }
  // A log line through the Env (virtual time in simulation), prefixed with this node's id.
  template <typename... Args>
  void Log(core::LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
    env_.Log(level, "[" + options_.id + "] " + fmt::format(format, std::forward<Args>(args)...));
  }
  // Whether `what` is new (for warnings given once per node run).
  bool FirstTime(const std::string& what) { return warned_.insert(what).second; }

 private:
  // The batch could not be made durable (`error`, the storage's): puts its items back as stored,
  // holds what waited for it, and has the commit retried.
  void HoldBatch(const core::Status& error);
  // The batch is durable: stamps its traced writes; after a fault, puts its held items back in
  // memory and releases what waited for it.
  void Committed();
  // Notes a write of the batch for the trace (as its origin, or applied from a peer).
  void TraceWrite(const std::string& keygroup, const std::string& key, const StoredItem& item,
                  bool origin, bool repair = false);

  NodeOptions options_;
  core::Env& env_;
  net::Transport& transport_;
  StorageEngine& storage_;
  HybridClock clock_;
  size_t batch_bytes_;
  std::map<std::string, Keygroup> keygroups_;
  uint64_t next_op_id_;
  std::set<core::TimerId> timers_;
  std::set<std::string> warned_;

  NodeMetrics metrics_;
  net::TraceSink* trace_ = nullptr;
  std::vector<proto::TraceRecord> traced_writes_;  // in the batch: stamped when it is durable

  bool flush_requested_ = false;
  std::shared_ptr<Core*> self_ = std::make_shared<Core*>(this);  // expires with the core
  WriteBatch batch_;
  std::vector<std::function<void()>> completions_;
  std::vector<std::pair<std::string, proto::PeerMessage>> outgoing_;
  bool fresh_ = false;
  std::function<void()> send_fresh_;

  // While a commit fails: the fault, what waits for the held batch, and the retry.
  core::Status fault_;
  std::vector<std::function<void()>> held_completions_;
  std::vector<std::pair<std::string, proto::PeerMessage>> held_outgoing_;
  bool held_fresh_ = false;
  bool retry_commit_ = false;
  core::Duration commit_backoff_{};
};

}  // namespace enoki::node
