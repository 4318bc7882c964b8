// Node: one Enoki node's keygroup store and its replication. An event-driven state machine: it
// reacts to a client request, a peer message or a timer, changes its in-memory state, records the
// change in a WriteBatch, and queues replies and peer messages. Flush() makes the batch durable
// (one storage commit for everything since the last Flush: group commit) and only then sends what
// was queued, so nothing is acknowledged or replicated before it is durable locally.
//
// It reaches time, timers, the network and storage only through the Env, Transport and
// StorageEngine it is given, so the same code runs in real mode, emulation and simulation.
// Not thread-safe: everything runs on the thread of the Env's loop.
//
// Protocols (docs/protocol.md has the messages):
// - Catalog: a node holds the keygroup entries (KeygroupMeta) its peers push: a change is applied
//   where it is requested and pushed to every peer of that node through the outbox (a replica
//   announcing it is ready, to its peers too); entries converge by version.
// - Replication: a write at a replica is pushed to the other replicas right after the commit
//   (the writes of one Flush together, once the completions wrote nothing more, and before any
//   message those completions queued);
//   each (peer, keygroup, key) stays in a durable outbox until the peer acknowledges that version,
//   and is retried with backoff, so a peer that was down or cut off catches up once reachable.
//   Synchronous keygroups answer the writer once every other replica acknowledged, or time out
//   naming the replicas that did not.
// - Forwarding: a node that holds no ready replica runs item operations at the nearest replica
//   (lowest measured round-trip time among live peers), trying the next one when one fails.
// - Joining: a replica added later pulls the keygroup's data page by page from another replica
//   and serves reads only when it has all of it; the other replicas also push their items to it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "core/env.h"
#include "core/status.h"
#include "net/trace.h"
#include "net/transport.h"
#include "node/item_map.h"
#include "node/storage.h"
#include "node/validation.h"
#include "node/version.h"

namespace enoki::node {

struct NodeOptions {
  std::string id;
  std::vector<std::string> peers;  // ids of every other node this node may talk to
  size_t max_value_bytes = kDefaultMaxValueBytes;
  core::Duration retry_interval = std::chrono::milliseconds(200);
  core::Duration max_retry_interval = std::chrono::seconds(2);
  core::Duration sync_write_timeout = std::chrono::seconds(2);
  core::Duration forward_timeout = std::chrono::seconds(2);
  core::Duration ping_interval = std::chrono::milliseconds(500);
  uint32_t default_scan_limit = 1000;
  // Of the node's own random stream (its first operation id); 0: one drawn from the Env. A
  // restarted node needs another, so that its operation ids differ from before.
  uint64_t seed = 0;
};

// Largest frame a node must accept for the given value limit (a value plus keys and headers).
size_t MaxMessageBytes(size_t max_value_bytes);

class Node : public net::MessageHandler {
 public:
  using Done = std::function<void(proto::Response&&)>;

  Node(NodeOptions options, core::Env& env, net::Transport& transport, StorageEngine& storage);
  ~Node() override;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Loads the durable state, resumes unfinished replication and joins, and starts the timers.
  [[nodiscard]] core::Status Start();

  // Runs `request` as if a client had sent it. `done` is called exactly once, on the loop thread,
  // after any write it made is durable here (and, for synchronous keygroups, at the replicas).
  void Execute(proto::Request request, Done done);

  // Runs `request` at node `target` (this node if it is its own id): sends it there and calls
  // `done` with the answer, or UNAVAILABLE when none came within `timeout`.
  void ExecuteAt(const std::string& target, proto::Request request, core::Duration timeout,
                 Done done);

  // Who serves function requests (deploy, delete, list, invoke), from clients, from functions and
  // from other nodes; without one they are refused.
  using FunctionHandler = std::function<void(proto::Request&&, Done)>;
  void SetFunctionHandler(FunctionHandler handler) { function_handler_ = std::move(handler); }
  // Makes a function deployment durable with the node's next commit (nullptr: its removal).
  void SaveFunction(const std::string& name, const proto::FunctionSpec* spec);
  // Calls `done(response)` after the next commit (with what was recorded before it).
  void CompleteAfterCommit(Done done, proto::Response response) {
    Complete(done, std::move(response));
  }
  // The deployments Start() loaded, handed over once (to the function host).
  std::vector<proto::FunctionSpec> TakeSavedFunctions() { return std::move(saved_functions_); }

  // Commits the pending batch, then delivers completions and sends queued peer messages; repeats
  // while that produced more work. The node calls it itself at the end of every round of events
  // in which it had work (Env::AtEndOfRound): no host has to. Public for tests that drive a node
  // outside any round, and for a host that stops one.
  void Flush();

  void OnPeerMessage(proto::PeerMessage&& msg) override;
  void OnClientRequest(const net::ClientId& client, proto::Request&& request) override;

  const std::string& id() const { return options_.id; }
  // The environment the node runs in (for functions: time and timers).
  core::Env& env() { return env_; }
  // Where the node reports writes and functions' store operations (nullptr: nowhere). The sink
  // must outlive the node.
  void SetTrace(net::TraceSink* trace) { trace_ = trace; }
  net::TraceSink* trace() { return trace_; }
  // Entries waiting in the outbox for any peer.
  size_t OutboxSize() const;
  // Whether this node holds a replica of `keygroup` that has all of its data.
  bool IsReadyReplica(const std::string& keygroup) const;

 private:
  using ItemKey = std::pair<std::string, std::string>;  // (keygroup, key); key "" = catalog entry

  struct Keygroup {
    proto::KeygroupMeta meta;
    bool replica = false;  // this node is in meta.replicas and the keygroup is not deleted
    bool ready = false;    // replica with all the data
    ItemMap items;
    // Pulling the data after joining (replica && !ready).
    std::string sync_source;
    std::string sync_after;
    bool sync_first = true;
    size_t sync_attempt = 0;
    core::TimerId sync_timer = 0;
  };
  struct OutboxEntry {
    Version version;
    core::TimePoint last_sent{};  // epoch: never sent
  };
  struct Peer {
    std::map<ItemKey, OutboxEntry> outbox;
    std::vector<ItemKey> fresh;  // written since the last Flush: push at once (see fresh_peers_)
    ItemKey cursor;              // where the next retry round continues
    bool backlog = false;        // last retry round found entries to resend
    core::Duration backoff{};
    core::TimePoint next_retry{};
    core::TimePoint last_heard{};
    double rtt_ms = -1;
  };
  struct PendingForward {
    proto::Request request;
    Done done;
    std::vector<std::string> candidates;
    size_t next = 0;
    std::vector<std::string> failures;
    core::TimerId timer = 0;
    core::Duration timeout{};  // per attempt
  };
  struct SyncWrite {
    std::string keygroup;
    std::string key;
    Version version;
    std::set<std::string> waiting;
    proto::Response response;
    Done done;
    core::TimerId timer = 0;
  };

  // Requests.
  void Dispatch(proto::Request&& request, bool forwarded, Done done);
  void RunItemOp(Keygroup& kg, proto::Request&& request, Done done);
  void Forward(proto::Request&& request, Done done);
  void TryNextForward(uint64_t forward_id);
  void CreateKeygroup(const proto::CreateKeygroupRequest& r, proto::Response& response);
  core::Status ChangeReplicas(const std::string& keygroup, const std::string& node, bool add,
                              proto::Response& response);
  void Complete(Done& done, proto::Response&& response);
  void Fail(Done& done, proto::Response&& response, const core::Status& status);

  // Store.
  Keygroup* FindLive(const std::string& name);
  Version WriteLocal(Keygroup& kg, const std::string& key, std::string value, bool deleted);
  bool ApplyRemote(Keygroup& kg, const std::string& key, StoredItem item);
  // Notes a write of the batch for the trace (as its origin, or applied from a peer).
  void TraceWrite(const std::string& keygroup, const std::string& key, const StoredItem& item,
                  bool origin);
  void ApplyMeta(const proto::KeygroupMeta& meta);
  // Announces in the catalog that this node's replica of `kg` holds all the data.
  void MarkReadyInCatalog(Keygroup& kg);
  // Marks ready in `to` the replicas that `from` (same incarnation) marks ready with the same
  // joined version. Returns whether `to` changed.
  static bool MergeReadiness(const proto::KeygroupMeta& from, proto::KeygroupMeta& to);
  // Drops the items of a keygroup this node no longer replicates once no peer is owed any of them.
  void DropDrainedItems(Keygroup& kg);
  void ChangeMeta(proto::KeygroupMeta meta);
  void PersistKeygroup(const Keygroup& kg);
  void DropItems(Keygroup& kg);

  // Replication.
  void MarkDirty(const std::string& peer, const std::string& keygroup, const std::string& key,
                 const Version& version, bool push_now);
  void EraseOutbox(const std::string& peer, std::map<ItemKey, OutboxEntry>::iterator it);
  void SendEntries(const std::string& peer, const std::vector<ItemKey>& keys);
  void RetryPeer(const std::string& peer);
  void OnRetryTick();
  void OnPingTick();
  void OnReplicate(const std::string& from, proto::Replicate& msg);
  void OnReplicateAck(const std::string& from, const proto::ReplicateAck& msg);
  void FinishSyncWrites(const std::string& peer, const std::string& keygroup,
                        const std::string& key, const Version& version);
  void StartSync(Keygroup& kg);
  void SendSyncRequest(Keygroup& kg);
  void OnSyncRequest(const std::string& from, const proto::SyncRequest& msg);
  void OnSyncResponse(const std::string& from, proto::SyncResponse& msg);
  // Replicas of `kg` other than this node, nearest first (live peers by round-trip time).
  std::vector<std::string> NearestReplicas(const proto::KeygroupMeta& meta);

  void Send(const std::string& peer, proto::PeerMessage msg);
  // Has Flush run at the end of the current round (once, however often it is asked).
  void RequestFlush();
  // A log line through the Env (virtual time in simulation), prefixed with this node's id.
  template <typename... Args>
  void Log(core::LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
    env_.Log(level, "[" + options_.id + "] " + fmt::format(format, std::forward<Args>(args)...));
  }
  core::TimerId After(core::Duration delay, std::function<void()> fn);
  void CancelTimer(core::TimerId id);

  NodeOptions options_;
  core::Env& env_;
  net::Transport& transport_;
  StorageEngine& storage_;
  HybridClock clock_;
  size_t batch_bytes_;  // cap on the payload of one replication or sync message

  std::map<std::string, Keygroup> keygroups_;
  std::map<std::string, Peer> peers_;
  std::vector<std::string> fresh_peers_;  // the peers whose `fresh` is not empty
  std::map<uint64_t, PendingForward> forwards_;
  std::map<uint64_t, SyncWrite> sync_writes_;
  uint64_t next_op_id_;  // random start, so a late answer meant for an earlier run of the node does
                         // not match
  std::set<core::TimerId> timers_;
  FunctionHandler function_handler_;
  std::vector<proto::FunctionSpec> saved_functions_;
  std::set<std::string> unknown_peers_warned_;

  net::TraceSink* trace_ = nullptr;
  std::vector<proto::TraceRecord> traced_writes_;  // in the batch: stamped when it is durable

  bool flush_requested_ = false;
  std::shared_ptr<Node*> self_ = std::make_shared<Node*>(this);  // expires with the node
  WriteBatch batch_;
  std::vector<std::function<void()>> completions_;
  std::vector<std::pair<std::string, proto::PeerMessage>> outgoing_;
};

}  // namespace enoki::node
