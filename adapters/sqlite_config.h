// SQLite's process-wide settings for the node's store, made once, before SQLite is first used in
// the process (at start-up: this file's own static initializer; SqliteStorage::Open asks again).
//
// - No memory statistics (SQLITE_CONFIG_MEMSTATUS off): otherwise every allocation SQLite makes
//   takes a process-wide mutex to count it. Nothing of the node reads the counts.
// - A page cache that does not scan itself on every commit that split a B-tree page. SQLite ends
//   every write transaction by dropping the cached pages past the end of the database
//   (sqlite3PcacheTruncate). Its page cache (pcache1) knows the largest page number it has held
//   since the last such drop, and scans its whole hash table whenever that is further past the
//   end than the table has slots (only the slots in between otherwise). When a page split gives
//   the new pages numbers out of order, SQLite swaps two pages' numbers through a temporary one:
//   the number of the page that holds the lock byte (the page past 2^30 bytes, 1,048,577 with
//   1 KiB pages), far past the end of a smaller database. So every commit that splits pages out
//   of order, which is most commits while a store grows under new random keys, scanned the
//   cache: one slot per cached page (tens of thousands with the node's 64 MiB cache), 12% of a
//   commit's instructions in a store of 100,000 keys. This cache wraps SQLite's own and passes a
//   drop on only when a page past the end may be held: past the largest page number it created
//   or moved a page to, the swap's temporary number aside, which it counts apart (moved there,
//   then moved away).
#pragma once

#include <cstdint>

namespace enoki::adapters {

// Makes the settings above if SQLite is not in use yet in this process; whether they are in
// effect (false: SQLite was initialized before, and runs with its defaults). The first call
// (this file's static initializer) must come before any thread uses SQLite; later ones only
// answer.
bool ConfigureSqlite();

// What the page cache above saw, process-wide (for tests).
struct PageCacheCounts {
  uint64_t swaps = 0;  // pages moved to the temporary number of a page swap
  uint64_t drops = 0;  // drops of the pages past the end passed on to SQLite's cache
  uint64_t skips = 0;  // drops not passed on: no page past the end was held
};
PageCacheCounts PageCacheCountsNow();

}  // namespace enoki::adapters
