// Plots: the figures of a run (`enoki report RUN.db --plots DIR`), drawn by testbed/plots.py with
// matplotlib, the script carried by the binary and run by Debian's python3 (scripts/setup.sh
// installs python3-matplotlib). PNG and SVG of each figure the run has data for.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace enoki::testbed {

// Draws the figures of run `database` into `dir` (created). Returns their names
// (latency_cdf, ...).
core::Result<std::vector<std::string>> WritePlots(const std::string& database,
                                                  const std::string& dir);

}  // namespace enoki::testbed
