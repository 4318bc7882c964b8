// The node's core: what every protocol of a node shares. It holds the keygroups and their items,
// the write batch of the current round, the completions and peer messages that wait for writes to
// be durable, the node's timers, clock and operation ids. Flush() hands the batch to the storage
// and delivers a completion or sends a message only once the writes it depends on are durable, so
// nothing is acknowledged or replicated before it is durable locally.
//
// Commits may complete later (StorageEngine::StartCommit: a real node's SQLite commits on a
// thread of their own), and the node goes on meanwhile: one batch is being committed while the
// next one fills. What waits is tagged with the sequence number of the last batch it depends on
// (a Seq): by default every write made so far (whatever wrote, or cannot tell what it read); a
// read, only the batches that hold what it read (ReadSeq), so that a read of durable items is
// answered at once even while a commit is stalled (a frozen file system); a message that carries
// no state, none. Completions and messages go out in the order they came, each once its batch is
// durable.
//
// A commit that fails (a full disk, a read-only or failing one) does not stop the node: the
// items the batch (and the one filling behind it) wrote go back to their durable state, the batch
// is held and the commit is tried again with backoff, and meanwhile the node refuses whatever
// would write (StorageFault()) while it serves reads, forwards and replicates what is durable:
// what comes meanwhile goes out at once. Once a retried commit succeeds, the held items are back
// in memory, what waited for them goes out, and writes are taken again.
//
// The protocols (catalog, replication, joining, forwarding, item operations; docs/architecture.md
// draws them) each hold their own state in their own class above the core, and reach time,
// timers, the network and storage only through it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "core/env.h"
#include "core/status.h"
#include "net/trace.h"
#include "net/transport.h"
#include "node/indexed_map.h"
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
// The keygroups a node knows (deleted ones too, as tombstones), by name.
using KeygroupMap = IndexedMap<Keygroup>;

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
  KeygroupMap& keygroups() { return keygroups_; }
  const KeygroupMap& keygroups() const { return keygroups_; }
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
  // A batch's sequence number: batches are committed one at a time in this order, and what waits
  // names the last one it depends on.
  using Seq = uint64_t;
  // Every write made so far (resolved when the completion or message is queued).
  static constexpr Seq kAllWrites = ~Seq{0};
  // How long a batch that is not urgent (WriteBatch::urgent: outbox erasures only) waits for a
  // commit to ride with before it is committed alone.
  static constexpr core::Duration kDeferredCommitDelay = std::chrono::seconds(1);
  // Nothing that is not durable yet: what is tagged with it goes out at once.
  Seq durable_seq() const { return durable_seq_; }
  // What a read of (keygroup, key) depends on: the batch that holds the item's (or the
  // keygroup's) newest change, if that is not durable yet.
  Seq ReadSeq(const std::string& keygroup, const std::string& key) const;
  // The same for a read of the keygroup's keys in [start, end) (end "": to the last).
  Seq ReadRangeSeq(const std::string& keygroup, const std::string& start,
                   const std::string& end) const;

  // Sends `msg` once batch `after` is durable.
  void Send(const std::string& peer, proto::PeerMessage msg, Seq after = kAllWrites);
  // Sends `msg`, which carries only the answer being delivered (a forwarded request's), as soon
  // as that answer could go: with the completion that Flush is delivering (outside one: after
  // every write).
  void SendAnswer(const std::string& peer, proto::PeerMessage msg) {
    Send(peer, std::move(msg), delivering_);
  }
  // Calls `done(response)` once batch `after` is durable.
  void Complete(Done& done, proto::Response&& response, Seq after = kAllWrites);
  void Fail(Done& done, proto::Response&& response, const core::Status& status,
            Seq after = kAllWrites);
  // Has Flush call `send` once no write is left that is not being committed (replication's
  // pushes of fresh writes, set when Replication is made; they go out with that commit);
  // Fresh() says there is something for it to send.
  void SetFreshSender(std::function<void()> send) { send_fresh_ = std::move(send); }
  void Fresh() { fresh_ = true; }
  // Delivers the completions and sends the messages whose batches are durable, and starts the
  // commit of the pending batch when none is under way; repeats while that produced more work.
  void Flush();
  // Has Flush run at the end of the current round (once, however often it is asked).
  void RequestFlush();
  // Ok while commits succeed. After one failed, and until a retried commit succeeds: the error
  // that whatever would write is refused with (RESOURCE_EXHAUSTED for a full disk, else
  // UNAVAILABLE), naming the node and the storage's error. Nothing refused with it was applied.
  const core::Status& StorageFault() const { return fault_; }
  // How long the commit under way has run (0: none is).
  core::Duration CommitRunningFor() const {
    return commit_running_ ? env_.Now() - commit_started_ : core::Duration(0);
  }

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
  // The latest batch: the pending one if it holds anything, else the one being committed (none
  // while a commit is held: what comes then does not depend on it).
  Seq LatestSeq() const;
  // Hands the pending batch to the storage (or the held one again, when its retry is due).
  void StartCommit();
  // The storage's outcome of the commit under way.
  void OnCommitted(const core::Status& status);
  // The batch being committed could not be made durable (`error`, the storage's): the pending
  // batch joins it, their items go back to what is stored, and the commit is retried.
  void HoldBatch(const core::Status& error);
  // The batch being committed is durable: stamps its traced writes; after a fault, puts its
  // held items back in memory.
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
  KeygroupMap keygroups_;
  uint64_t next_op_id_;
  std::set<core::TimerId> timers_;
  std::set<std::string> warned_;

  NodeMetrics metrics_;
  net::TraceSink* trace_ = nullptr;

  bool flush_requested_ = false;
  bool flushing_ = false;
  std::shared_ptr<Core*> self_ = std::make_shared<Core*>(this);  // expires with the core
  // The pending batch (seq durable_seq_ + 1, or + 2 behind a commit), and the one being
  // committed or held (durable_seq_ + 1) with its traced writes.
  WriteBatch batch_;
  std::vector<proto::TraceRecord> traced_writes_;  // of batch_: stamped when it is durable
  std::shared_ptr<WriteBatch> committing_;         // null: none
  std::vector<proto::TraceRecord> committing_traced_;
  bool commit_running_ = false;  // the storage has committing_ and has not answered
  // A batch that is not urgent waits for kDeferredCommitDelay (a timer: kWaiting), then commits
  // with whatever comes first or alone (kDue).
  enum class Deferred { kNone, kWaiting, kDue } deferred_ = Deferred::kNone;
  core::TimePoint commit_started_{};
  std::optional<core::Status> committed_;  // its answer, not yet taken by Flush
  Seq durable_seq_ = 0;
  Seq delivering_ = kAllWrites;  // the tag of the completion Flush is delivering
  // An answer held until batch `after` is durable: the callback and the response themselves,
  // not wrapped in one more std::function (which allocated once per answer).
  struct Completion {
    Seq after;
    Done done;
    proto::Response response;
  };
  std::vector<Completion> completions_;
  // The completions Flush is going through (those it keeps wait in completions_ again): two
  // vectors that trade places, so that neither is allocated anew each round.
  std::vector<Completion> taken_;
  std::vector<std::tuple<Seq, std::string, proto::PeerMessage>> outgoing_;
  bool fresh_ = false;
  std::function<void()> send_fresh_;

  // While a commit fails: the fault and the retry.
  core::Status fault_;
  bool retry_commit_ = false;
  core::Duration commit_backoff_{};
};

}  // namespace enoki::node
