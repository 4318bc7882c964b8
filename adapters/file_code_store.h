// FileCodeStore: the CodeStore of real nodes. Uploaded code lives in files under one folder, by
// default the data directory's `functions/`:
//   ROOT/NAME/GENERATION/...     the files of one upload, as uploaded (mode 0755 or 0644)
//   ROOT/.tmp-NAME-GEN-XXXXXX/   an upload being written
// A generation is written into a temporary folder, each file and folder synced, and then renamed
// into place and the parent synced: it is there whole or not at all, also after a crash of the
// machine. Temporary folders an interrupted write left are removed when the store is opened.
// Folders are 0755 and files keep their executable bit, so that workers running as another user
// (--worker-user) can read what they run. Not thread-safe: one node's loop thread uses it; writes
// block that thread for as long as the files take to reach the disk.
#pragma once

#include <memory>
#include <string>

#include "node/code_store.h"

namespace enoki::adapters {

class FileCodeStore : public node::CodeStore {
 public:
  // Opens the store in folder `root` (created with its parents if missing; kept as its real
  // path) and removes the temporary folders of interrupted writes. IOError naming the folder.
  static core::Result<std::unique_ptr<FileCodeStore>> Open(const std::string& root);

  // The store's folder, a real path.
  const std::string& root() const { return root_; }

  core::Result<std::string> Write(const std::string& name, uint64_t generation,
                                  const Files& files) override;
  core::Result<std::string> Folder(const std::string& name, uint64_t generation) const override;
  std::map<std::string, std::set<uint64_t>> List() const override;
  core::Status Discard(const std::string& name, uint64_t generation) override;

 private:
  explicit FileCodeStore(std::string root) : root_(std::move(root)) {}

  std::string root_;
};

}  // namespace enoki::adapters
