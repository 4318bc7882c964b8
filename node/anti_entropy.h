// AntiEntropy: replicas of a keygroup compare digests of their items now and then and repair what
// differs, in both directions, by the usual version order. Replication's outbox already brings
// every write to every replica; this catches what it cannot: a replica that lost items or a
// whole keygroup (a deleted or corrupt database), or that diverged for any other reason.
//
// Every interval (NodeOptions::anti_entropy_interval) a ready replica starts exchanges for the
// keygroups it holds with other replicas, one peer per keygroup in turn, until it has walked a
// bounded number of items (the rest wait for the next interval). An exchange:
//   1. the initiator sends a DigestRequest: kDigestBuckets digests of its items, each the XOR of
//      the hashes of (key, version, tombstone) of the items whose key hashes into that bucket,
//      counting only items written before a cut-off a few seconds back (writes in flight are
//      replication's);
//   2. the peer answers a DigestReply with its own keys and versions in the buckets that differ
//      (whole buckets, up to a bounded number of items; `more` when others differ too), or says
//      it does not know the keygroup;
//   3. the initiator pushes what it holds newer (Replicate, marked `repair`) and asks for what the
//      peer holds newer (RepairRequest, answered by Replicate marked `repair`); with `more`, it
//      goes on from the next bucket at once. A peer that does not know the keygroup gets its
//      catalog entry, and the next exchange repairs its items.
// Cost: each exchange hashes the keygroup's items once at each end (O(items)); the messages are
// O(buckets) plus O(items that differ, and their buckets' neighbours).
//
// The catalog has an exchange of its own, as every node holds every keygroup's entry, replica or
// not (a node that lost its database gets back the keygroups it replicates from the exchanges
// above, and the others only from this one). Every interval a node starts one with one peer, the
// next live one in turn:
//   1. a CatalogDigest: the XOR of CatalogEntryHash over all its entries, deleted ones included
//      (so that a deletion spreads rather than being undone);
//   2. a peer whose own digest is the same answers CatalogList{agree}, and that is all; else it
//      lists its entries' names and versions, in name order, at most kMaxListedEntries (`more`
//      when there are others);
//   3. the initiator sends a MetaUpdate for each entry that the peer lacks or holds older, and a
//      CatalogWant for those it lacks or holds older itself (answered by MetaUpdates); entries
//      are applied by the catalog's version order (a deleted keygroup stays deleted). With
//      `more`, it sends the next CatalogDigest at once, from the last name listed on.
// Cost when catalogs agree: one CatalogDigest and one CatalogList per node and interval, and
// hashing every entry once at each end (O(keygroups)).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "node/core.h"
#include "node/peers.h"
#include "node/replication.h"

namespace enoki::node {

// Buckets of a digest. The more, the fewer items an exchange lists around each difference; each
// costs 8 bytes in every DigestRequest.
constexpr uint32_t kDigestBuckets = 1024;
// Items written less than this before an exchange starts are not compared.
constexpr core::Duration kDigestSettle = std::chrono::seconds(5);
// A DigestReply lists whole buckets, no more items than this (at least one bucket).
constexpr size_t kMaxListedItems = 4096;
// One interval starts exchanges until it has walked this many items.
constexpr size_t kItemsPerInterval = 1'000'000;

// A CatalogList lists no more entries than this.
constexpr size_t kMaxListedEntries = 2048;

// The bucket a key hashes into, and the hash of an item in its bucket's digest.
uint32_t DigestBucket(const std::string& key);
uint64_t DigestHash(const std::string& key, const StoredItem& item);
// The hash of a catalog entry in a CatalogDigest: of its name, incarnation, version and deletion.
uint64_t CatalogEntryHash(const std::string& name, const proto::Version& created,
                          const proto::Version& version, bool deleted);

class AntiEntropy {
 public:
  AntiEntropy(Core& core, const PeerTable& peers);

  // Starts the rounds (none with an interval of 0).
  void Start();
  void OnDigestRequest(const std::string& from, const proto::DigestRequest& msg);
  void OnDigestReply(const std::string& from, const proto::DigestReply& msg);
  void OnRepairRequest(const std::string& from, const proto::RepairRequest& msg);
  void OnCatalogDigest(const std::string& from, const proto::CatalogDigest& msg);
  void OnCatalogList(const std::string& from, const proto::CatalogList& msg);
  void OnCatalogWant(const std::string& from, const proto::CatalogWant& msg);

 private:
  void OnTick();
  // Starts an exchange of `kg` with `peer`, comparing the buckets from `first_bucket` on, with
  // items written before `before_us`.
  void SendDigest(const std::string& peer, const Keygroup& kg, int64_t before_us,
                  uint32_t first_bucket);
  // Starts (or goes on with, from the entries after `after`) a catalog exchange with `peer`.
  void SendCatalogDigest(const std::string& peer, const std::string& after);
  // The keygroup if this node holds a ready replica of it, of incarnation `incarnation`.
  Keygroup* ReadyReplica(const std::string& name, const proto::Version& incarnation);

  Core& core_;
  const PeerTable& peers_;
  std::string cursor_;                       // the keygroup the next interval starts at
  std::map<std::string, size_t> next_peer_;  // by keygroup: the replica asked next
  std::string catalog_peer_;                 // the peer the last catalog exchange started with
};

}  // namespace enoki::node
