// An SQLite VFS that writes each commit's write-ahead-log frames to the file in one write, and each
// checkpoint's run of adjacent pages to the database file in one write.
//
// SQLite appends a commit to the WAL as one header write (24 bytes) and one page write per page
// it changed, each a pwrite of its own: a commit of 50 random keys makes about 150 system calls,
// and on a VM each costs microseconds. This VFS wraps the default one ("unix") and, for WAL files
// only, keeps appended bytes in a buffer until the commit's last frame (the frame whose header
// holds the database's size: WAL file format, "commit frame") has been handed over, then writes
// them at once (in pieces of at most 64 KiB, as the unix VFS takes). Anything else done to the
// file (a read, a sync, a truncation, a size query, a file control, a write that does not append,
// closing it) first writes what is buffered. So when SQLite's COMMIT returns, the commit is in the
// file as it would be without this VFS: what survives a crash of the process (SIGKILL) or, with
// synchronous=FULL, of the machine, is unchanged. A failed write is reported to SQLite by the
// write call that triggered it (the commit frame's), which fails the commit as a failed frame
// write always did; the frames written before the failure are not part of any commit. The
// buffer is written out whenever it holds 1 MiB, so one large transaction does not hold its
// whole size in memory twice.
//
// A checkpoint (SQLite copying the log's pages back into the database file) writes one page per
// call too, in ascending page order. The database file's writes are gathered the same way (each
// run of adjacent pages in one write) and written out before anything else is done to the file:
// a read, its sync (which a checkpoint makes before SQLite may start overwriting the log it
// copied, with synchronous NORMAL or FULL), a lock let go, closing it; and when a checkpoint lets
// go of the checkpoint lock, which a connection in exclusive locking mode never takes. In WAL
// mode only checkpoints write the database file; before it (a new file, in rollback mode), a
// commit's pages are written out at the sync that precedes deleting the journal.
#pragma once

#include <cstddef>

struct sqlite3;

namespace enoki::adapters {

// The name to pass to sqlite3_open_v2 for this VFS; registers it (not as the default) on the
// first call. Thread-safe. nullptr (SQLite's default VFS) when SQLite cannot register it.
const char* GatheringWalVfs();

// Writes out what the write-ahead log of `db`'s main database still holds back (opened through
// this VFS; otherwise nothing), and says in `*held` how many bytes that was. After a COMMIT it is
// none: the commit frame wrote it all out. Called after each commit all the same, so that a SQLite
// that wrote its frames otherwise than this VFS expects loses no acknowledged commit; tests check
// that it found nothing. SQLite's result code of the write (SQLITE_OK when there was none).
int WriteOutHeldLog(sqlite3* db, size_t* held);

}  // namespace enoki::adapters
