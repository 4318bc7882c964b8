// SQLite's process-wide settings: no memory statistics, and a page cache that does not scan
// itself after page swaps (adapters/sqlite_config.h says why).
#include "adapters/sqlite_config.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <new>

namespace enoki::adapters {
namespace {

// SQLite's own page cache, which ours wraps.
sqlite3_pcache_methods2 g_base{};

std::atomic<uint64_t> g_swaps{0};
std::atomic<uint64_t> g_drops{0};
std::atomic<uint64_t> g_skips{0};

// One connection's cache (SQLite uses a cache from one thread at a time).
struct Cache {
  sqlite3_pcache* base;
  // The number a page swap moves a page to for a moment: the lock byte's page (SQLite's
  // PENDING_BYTE, 2^30, over the page size, plus one), which holds no data.
  unsigned swap_key;
  // No page is held at a larger number, but maybe at swap_key.
  unsigned max_key = 0;
  // Pages moved to swap_key and not (yet seen) moved away; > 0: one may be held there.
  int at_swap_key = 0;
};

Cache* Of(sqlite3_pcache* p) { return reinterpret_cast<Cache*>(p); }

sqlite3_pcache* Create(int page_size, int extra, int purgeable) {
  sqlite3_pcache* base = g_base.xCreate(page_size, extra, purgeable);
  if (base == nullptr) return nullptr;
  auto* c = new (std::nothrow)
      Cache{base, static_cast<unsigned>((1u << 30) / static_cast<unsigned>(page_size) + 1)};
  if (c == nullptr) {
    g_base.xDestroy(base);
    return nullptr;
  }
  return reinterpret_cast<sqlite3_pcache*>(c);
}

void Cachesize(sqlite3_pcache* p, int pages) { g_base.xCachesize(Of(p)->base, pages); }

int Pagecount(sqlite3_pcache* p) { return g_base.xPagecount(Of(p)->base); }

sqlite3_pcache_page* Fetch(sqlite3_pcache* p, unsigned key, int create) {
  Cache* c = Of(p);
  sqlite3_pcache_page* page = g_base.xFetch(c->base, key, create);
  if (page != nullptr) {
    if (key == c->swap_key) {
      c->at_swap_key = std::max(c->at_swap_key, 1);
    } else {
      c->max_key = std::max(c->max_key, key);
    }
  }
  return page;
}

void Unpin(sqlite3_pcache* p, sqlite3_pcache_page* page, int discard) {
  g_base.xUnpin(Of(p)->base, page, discard);
}

void Rekey(sqlite3_pcache* p, sqlite3_pcache_page* page, unsigned from, unsigned to) {
  Cache* c = Of(p);
  g_base.xRekey(c->base, page, from, to);
  if (to == c->swap_key) {
    ++c->at_swap_key;
    g_swaps.fetch_add(1, std::memory_order_relaxed);
  } else {
    c->max_key = std::max(c->max_key, to);
  }
  if (from == c->swap_key && c->at_swap_key > 0) --c->at_swap_key;
}

// Drops the pages numbered `limit` and above.
void Truncate(sqlite3_pcache* p, unsigned limit) {
  Cache* c = Of(p);
  if (limit > c->max_key && c->at_swap_key == 0) {
    g_skips.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  g_base.xTruncate(c->base, limit);
  g_drops.fetch_add(1, std::memory_order_relaxed);
  c->max_key = limit == 0 ? 0 : std::min(c->max_key, limit - 1);
  if (limit <= c->swap_key) c->at_swap_key = 0;
}

void Destroy(sqlite3_pcache* p) {
  g_base.xDestroy(Of(p)->base);
  delete Of(p);
}

void Shrink(sqlite3_pcache* p) { g_base.xShrink(Of(p)->base); }

bool Configure() {
  // Before SQLite is initialized, or not at all (SQLITE_MISUSE): every call below would fail.
  if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK) return false;
  if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &g_base) != SQLITE_OK || g_base.xCreate == nullptr) {
    return false;
  }
  static sqlite3_pcache_methods2 wrapped = g_base;  // iVersion, pArg, xInit, xShutdown: SQLite's
  wrapped.xCreate = Create;
  wrapped.xCachesize = Cachesize;
  wrapped.xPagecount = Pagecount;
  wrapped.xFetch = Fetch;
  wrapped.xUnpin = Unpin;
  wrapped.xRekey = Rekey;
  wrapped.xTruncate = Truncate;
  wrapped.xDestroy = Destroy;
  wrapped.xShrink = Shrink;
  return sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapped) == SQLITE_OK;
}

// At start-up, before anything can use SQLite.
[[maybe_unused]] const bool g_configured = ConfigureSqlite();

}  // namespace

bool ConfigureSqlite() {
  static const bool configured = Configure();
  return configured;
}

PageCacheCounts PageCacheCountsNow() {
  return {g_swaps.load(std::memory_order_relaxed), g_drops.load(std::memory_order_relaxed),
          g_skips.load(std::memory_order_relaxed)};
}

}  // namespace enoki::adapters
