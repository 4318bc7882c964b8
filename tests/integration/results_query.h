// A results database read as the tests read it: the first column of the first row of a query.
#pragma once

#include <sqlite3.h>

#include <string>

namespace enoki::testing {

// The first column of the first row of `sql` on the database at `db_path`, as text; "<error>"
// when the query fails or has no row, "<null>" for NULL. With `other`, the database at that path
// is attached as `one` (to compare two runs' rows).
inline std::string Query(const std::string& db_path, const std::string& sql,
                         const std::string& other = "") {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  std::string out = "<error>";
  bool attached =
      other.empty() || sqlite3_exec(db, ("ATTACH DATABASE '" + other + "' AS one").c_str(), nullptr,
                                    nullptr, nullptr) == SQLITE_OK;
  if (attached && sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(s, 0);
    out = text == nullptr ? "<null>" : reinterpret_cast<const char*>(text);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

}  // namespace enoki::testing
