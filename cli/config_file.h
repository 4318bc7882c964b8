// Strict config files for the commands that read one (--config FILE, `enoki node`). CLI11 reads
// the file, TOML or INI alike: `key = value` lines (a key is an option's long name without its
// dashes), arrays `["a", "b"]` (also over several lines when the first element is on the line of
// the `[`, or as lines one after another), comments from `#` or `;`, and a `[default]` section.
// Left alone, CLI11 ignores a key that names no option (so a misspelt `datadir` silently leaves the
// default), keeps the first of two values of an option given twice, and names no line in its
// errors; here each of these is an error naming the file and the line.
#pragma once

#include <optional>

#include <CLI/CLI.hpp>

namespace enoki::cli {

// Parses the command line `argv` into `app` (whose config option comes from App::set_config) and
// checks every config file it read, as CLI11 reads it: a key that is no option of `app` (with the
// nearest one by edit distance, if near), a section other than [default], a dotted key, an option
// a file may not set, and an option given again (a one-value option twice, or a list option's
// values apart) are each refused as "FILE:LINE: ...". A value that CLI11 refuses (not a number,
// out of range) is reported with the file and line it came from, unless the command line gave
// that option. Returns nothing when the command is to run, else the exit code after printing the
// help or the error.
std::optional<int> ParseWithStrictConfig(CLI::App& app, int argc, const char* const* argv);

}  // namespace enoki::cli
