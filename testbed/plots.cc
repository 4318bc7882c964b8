// Running the plotting script.
#include "testbed/plots.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "adapters/subprocess.h"
#include "testbed/plots_script.h"

namespace enoki::testbed {

core::Result<std::vector<std::string>> WritePlots(const std::string& database,
                                                  const std::string& dir) {
  if (!std::filesystem::exists(database)) {
    return core::Status::NotFound("no results database " + database);
  }
  std::string script = (std::filesystem::temp_directory_path() /
                        ("enoki-plots-" + std::to_string(::getpid()) + ".py"))
                           .string();
  {
    std::ofstream out(script, std::ios::trunc);
    out << kPlotsScript;
    if (!out) return core::Status::IOError("cannot write " + script);
  }
  // Debian's python3, where python3-matplotlib is installed, before whatever PATH offers.
  std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  auto ran = adapters::RunCommand({python, script, database, dir}, std::chrono::minutes(5));
  std::error_code ec;
  std::filesystem::remove(script, ec);
  if (!ran.ok()) {
    return core::Status(ran.status().code(),
                        "drawing the plots needs python3 with matplotlib (scripts/setup.sh "
                        "installs python3-matplotlib): " +
                            ran.status().message());
  }
  std::vector<std::string> names;
  std::istringstream lines(*ran);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

}  // namespace enoki::testbed
