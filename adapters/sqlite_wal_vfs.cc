// The gathering VFS: a shim over SQLite's default VFS (sqlite.org/vfs.html). Every file it opens
// is a GatheredFile holding the real file object right behind it; every method forwards to the
// real one, after writing out what the WAL buffer holds where the method could observe it.
#include "adapters/sqlite_wal_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstddef>
#include <string>

namespace enoki::adapters {
namespace {

// The WAL file format's frame header: 24 bytes, bytes 4 to 7 the database's size in pages after
// the commit in a commit frame, zero in every other frame.
constexpr int kFrameHeaderSize = 24;
// The unix VFS writes at most 128 KiB - 1 per call (its seekAndWrite masks the length).
constexpr size_t kLargestWrite = 64 * 1024;
constexpr size_t kFlushAt = 1024 * 1024;
// The checkpoint lock's slot among the shared-memory locks (WAL_CKPT_LOCK in SQLite's wal.c).
constexpr int kCheckpointLock = 1;

struct GatheredFile {
  sqlite3_file base;      // pMethods: &kMethods once the real file is open
  sqlite3_file* real;     // the default VFS's file object, in the memory right behind this one
  bool wal;               // a write-ahead log: its appends are gathered
  bool main_db;           // a main database file: its runs of adjacent pages are gathered
  bool commit_page_next;  // the last write was a commit frame's header: its page comes next
  sqlite3_int64 offset;   // where `pending` goes in the file
  std::string* pending;   // gathered bytes not yet written
};

sqlite3_vfs* real_vfs = nullptr;

GatheredFile* Gathered(sqlite3_file* f) { return reinterpret_cast<GatheredFile*>(f); }
sqlite3_file* Real(sqlite3_file* f) { return Gathered(f)->real; }

// Writes what is pending, in order.
int WritePending(GatheredFile* f) {
  if (f->pending == nullptr || f->pending->empty()) return SQLITE_OK;
  int rc = SQLITE_OK;
  for (size_t done = 0; done < f->pending->size() && rc == SQLITE_OK;) {
    size_t n = std::min(f->pending->size() - done, kLargestWrite);
    rc = f->real->pMethods->xWrite(f->real, f->pending->data() + done, static_cast<int>(n),
                                   f->offset + static_cast<sqlite3_int64>(done));
    done += n;
  }
  f->pending->clear();
  return rc;
}

int Close(sqlite3_file* file) {
  GatheredFile* f = Gathered(file);
  int rc = WritePending(f);
  int closed = f->real->pMethods->xClose(f->real);
  delete f->pending;
  f->pending = nullptr;
  return rc != SQLITE_OK ? rc : closed;
}

int Read(sqlite3_file* file, void* buffer, int amount, sqlite3_int64 offset) {
  if (int rc = WritePending(Gathered(file)); rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xRead(Real(file), buffer, amount, offset);
}

int Write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  GatheredFile* f = Gathered(file);
  if (!f->wal && !f->main_db) {
    return f->real->pMethods->xWrite(f->real, data, amount, offset);
  }
  std::string& pending = *f->pending;
  if (!pending.empty() && offset != f->offset + static_cast<sqlite3_int64>(pending.size())) {
    if (int rc = WritePending(f); rc != SQLITE_OK) return rc;
  }
  if (pending.empty()) f->offset = offset;
  pending.append(static_cast<const char*>(data), static_cast<size_t>(amount));
  if (f->commit_page_next) {
    f->commit_page_next = false;
    return WritePending(f);
  }
  const auto* bytes = static_cast<const unsigned char*>(data);
  if (f->wal && amount == kFrameHeaderSize && (bytes[4] | bytes[5] | bytes[6] | bytes[7]) != 0) {
    f->commit_page_next = true;
  }
  return pending.size() >= kFlushAt ? WritePending(f) : SQLITE_OK;
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  if (int rc = WritePending(Gathered(file)); rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xTruncate(Real(file), size);
}

int Sync(sqlite3_file* file, int flags) {
  if (int rc = WritePending(Gathered(file)); rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xSync(Real(file), flags);
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  if (int rc = WritePending(Gathered(file)); rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xFileSize(Real(file), size);
}

int Lock(sqlite3_file* file, int level) { return Real(file)->pMethods->xLock(Real(file), level); }

int Unlock(sqlite3_file* file, int level) {
  int written = WritePending(Gathered(file));  // before another connection may read the file
  int rc = Real(file)->pMethods->xUnlock(Real(file), level);
  return written != SQLITE_OK ? written : rc;
}

int CheckReservedLock(sqlite3_file* file, int* out) {
  return Real(file)->pMethods->xCheckReservedLock(Real(file), out);
}

int FileControl(sqlite3_file* file, int op, void* arg) {
  if (int rc = WritePending(Gathered(file)); rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xFileControl(Real(file), op, arg);
}

int SectorSize(sqlite3_file* file) { return Real(file)->pMethods->xSectorSize(Real(file)); }

int DeviceCharacteristics(sqlite3_file* file) {
  return Real(file)->pMethods->xDeviceCharacteristics(Real(file));
}

int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  return Real(file)->pMethods->xShmMap(Real(file), region, size, extend, out);
}

// A checkpoint holds the checkpoint lock (WAL_CKPT_LOCK in SQLite's wal.c) while it copies pages
// into the database file, and syncs the file before it records them as copied (synchronous
// NORMAL and FULL, the only settings SqliteStorage uses), which writes out what was gathered.
// Letting go of the lock writes out whatever is left all the same. (A connection in exclusive
// locking mode, as SqliteStorage's, keeps the log's index in its heap and takes no such lock: its
// checkpoints end at that sync.)
int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  int written = SQLITE_OK;
  if (offset == kCheckpointLock && n == 1 && (flags & SQLITE_SHM_UNLOCK) != 0) {
    written = WritePending(Gathered(file));
  }
  int rc = Real(file)->pMethods->xShmLock(Real(file), offset, n, flags);
  return written != SQLITE_OK ? written : rc;
}

void ShmBarrier(sqlite3_file* file) { Real(file)->pMethods->xShmBarrier(Real(file)); }

int ShmUnmap(sqlite3_file* file, int delete_flag) {
  return Real(file)->pMethods->xShmUnmap(Real(file), delete_flag);
}

// A page read through a memory map (SQLite's mmap_size, off by default) sees what was written.
int Fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  if (int rc = WritePending(Gathered(file)); rc != SQLITE_OK) return rc;
  return Real(file)->pMethods->xFetch(Real(file), offset, amount, out);
}

int Unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  return Real(file)->pMethods->xUnfetch(Real(file), offset, page);
}

const sqlite3_io_methods kMethods = {
    3,
    Close,
    Read,
    Write,
    Truncate,
    Sync,
    FileSize,
    Lock,
    Unlock,
    CheckReservedLock,
    FileControl,
    SectorSize,
    DeviceCharacteristics,
    ShmMap,
    ShmLock,
    ShmBarrier,
    ShmUnmap,
    Fetch,
    Unfetch,
};

int Open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  GatheredFile* f = Gathered(file);
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK || f->real->pMethods == nullptr) {
    // SQLite calls xClose only on a file whose pMethods is set; the real file closed itself.
    file->pMethods = nullptr;
    return rc;
  }
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  f->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
  f->commit_page_next = false;
  f->offset = 0;
  f->pending = new std::string();
  file->pMethods = &kMethods;
  return rc;
}

// A copy of the default VFS that opens files as GatheredFiles.
sqlite3_vfs Register() {
  real_vfs = sqlite3_vfs_find(nullptr);
  sqlite3_vfs vfs = *real_vfs;  // everything but opening files is the default VFS's
  vfs.zName = "enoki-gathering-wal";
  // The real file object sits behind ours, aligned as sqlite3_file objects are.
  vfs.szOsFile = static_cast<int>(sizeof(GatheredFile)) + real_vfs->szOsFile;
  vfs.xOpen = Open;
  vfs.pNext = nullptr;
  return vfs;
}

}  // namespace

int WriteOutHeldLog(sqlite3* db, size_t* held) {
  *held = 0;
  sqlite3_file* log = nullptr;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &log) != SQLITE_OK ||
      log == nullptr || log->pMethods != &kMethods) {
    return SQLITE_OK;
  }
  GatheredFile* f = Gathered(log);
  *held = f->pending == nullptr ? 0 : f->pending->size();
  return WritePending(f);
}

const char* GatheringWalVfs() {
  static sqlite3_vfs vfs = Register();
  static const char* const name = sqlite3_vfs_register(&vfs, 0) == SQLITE_OK ? vfs.zName : nullptr;
  return name;
}

}  // namespace enoki::adapters
