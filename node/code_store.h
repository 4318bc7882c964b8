// CodeStore: where a node keeps the code that clients upload for their process functions (`enoki
// deploy --upload`), durably, beside its state. Each upload of a function is one generation (1,
// 2, ...) in a folder of its own; the function's stored specification names the generation it
// runs (FunctionSpec.code_generation), so a restarted node runs the same files. What to keep and
// what to remove is the FunctionHost's choice; a store only writes, finds, lists and removes.
//
// The real one (adapters/file_code_store.h) keeps them in files under the node's data directory;
// a node without one (a simulation, a node without process functions) refuses uploads.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include <google/protobuf/repeated_ptr_field.h>

#include "core/status.h"
#include "net/proto/enoki.pb.h"

namespace enoki::node {

class CodeStore {
 public:
  using Files = google::protobuf::RepeatedPtrField<proto::FunctionFile>;

  virtual ~CodeStore() = default;
  // Writes `files` (paths already checked by CheckUpload) as generation `generation` of function
  // `name`: all of them or none, durable when it returns ok. Returns the generation's folder, an
  // absolute path. IOError naming the path on failure.
  [[nodiscard]] virtual core::Result<std::string> Write(const std::string& name,
                                                        uint64_t generation,
                                                        const Files& files) = 0;
  // The folder of a stored generation; NOT_FOUND when it is not stored.
  [[nodiscard]] virtual core::Result<std::string> Folder(const std::string& name,
                                                         uint64_t generation) const = 0;
  // The generations stored, by function name.
  virtual std::map<std::string, std::set<uint64_t>> List() const = 0;
  // Removes one generation (and the function's folder with its last one); removing what is not
  // there is ok.
  [[nodiscard]] virtual core::Status Discard(const std::string& name, uint64_t generation) = 0;
};

}  // namespace enoki::node
