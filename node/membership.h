// Membership: the nodes of the cluster as this node knows them, each a proto::Member entry (its
// endpoint, public key, whether it left, a version). Entries converge by version: the higher wins,
// and at equal versions one that says the node left. They spread by gossip: every ping carries a
// digest of the sender's list (PeerTable::SetDigest), a receiver whose own digest differs answers
// with its list, and whoever merges a list that lacked something of its own sends its list back.
// So a change made at one member reaches every member within a few ping intervals.
//
// Entries are made in three places: the configured peers (NodeOptions::peers) are members of
// version 0, which are this node's configuration, not news: they are not gossiped (a node that
// joins gets them with the member list) and any versioned entry beats them; this node makes its
// own entry at start-up (versioned once it joined or announces itself; again when its endpoint or
// key changed);
// and the member a node joins through (Join) makes that node's entry, as the member that handles
// a leave (Leave) makes the entry that says so. Every entry applied is persisted and handed on:
// to the PeerTable (whom to ping), Replication (whom to replicate to; a new member is owed the
// whole catalog) and the Transport (how to reach it). A node that learns that it left itself
// stops talking to anyone. docs/membership.md has the whole protocol.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "net/transport.h"
#include "node/core.h"
#include "node/peers.h"
#include "node/replication.h"

namespace enoki::node {

class Membership {
 public:
  Membership(Core& core, PeerTable& peers, Replication& replication);

  // An entry loaded from storage, before Start.
  void Load(proto::Member&& member);
  // Adds the configured peers that are not members yet and this node's own entry, and hands
  // every member to the PeerTable, Replication and the Transport.
  void Start();

  // Whether this node left the cluster (asked of every request: kept, not looked up).
  bool HasLeft() const { return left_; }
  // Whether `node` is a member other than this node that has not left.
  bool IsPeer(const std::string& node) const;
  // The entry of `node`, or nullptr.
  const proto::Member* Find(const std::string& node) const;
  // Every entry, this node's and those that left included, in id order; `configured`: also
  // those of version 0 (what the configuration says, never gossiped).
  void List(proto::MemberList& out, bool configured) const;

  // At the member a node joins through: makes the entry of `member` (with keys, `caller` is the
  // joining node, authenticated: its key is the entry's) and lists every member in `out`.
  core::Status Join(const proto::Member& member, const net::Caller& caller, proto::MemberList& out);
  // Makes the entry that says `node` (another member) left.
  core::Status Leave(const std::string& node);
  // Sends `to` this node's list (a node that left learns so from it: the transport still
  // delivers to it for net::kLeftGrace).
  void SendListTo(const std::string& to);
  // The list of the member this node joined through.
  void OnJoined(const proto::MemberList& list);

  // Gossip: a ping's digest from `from`; its list.
  void OnPing(const std::string& from, uint64_t digest);
  void OnMembers(const std::string& from, const proto::MemberList& list);

 private:
  // Merges `list` entry by entry; returns whether it lacked something of this node's list.
  bool Merge(const proto::MemberList& list);
  // Makes `member` this node's entry of it, persists it and hands it on (`owe_catalog`: a peer
  // new to this node, owed the catalog).
  void Apply(const proto::Member& member);
  // Hands an entry on to the PeerTable, Replication and the Transport.
  void HandOn(const proto::Member& member, bool owe_catalog);
  // A version newer than the entry of `node` has (at least this node's wall clock).
  uint64_t NextVersion(const std::string& node) const;
  // After every change of the list: the digest the pings carry, and whether this node left.
  void UpdateDigest();
  void SendList(const std::string& to);

  Core& core_;
  PeerTable& peers_;
  Replication& replication_;
  std::map<std::string, proto::Member> members_;
  uint64_t digest_ = 0;
  bool left_ = false;
};

// The digest of a member list (in id order) as pings carry it.
uint64_t MembersDigest(const std::map<std::string, proto::Member>& members);

}  // namespace enoki::node
