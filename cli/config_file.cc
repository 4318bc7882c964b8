// Strict config files: each file CLI11 read is read again line by line, the way CLI11's TOML
// reader (ConfigBase::from_config in CLI/Config.hpp, 2.1) splits it into keys, so that every key
// is known with its line.
#include "cli/config_file.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "core/status.h"

namespace enoki::cli {
namespace {

// A key of a config file, and where it is.
struct ConfigKey {
  std::string name;
  std::string file;
  int line;
};

// CLI11's own helpers, so that lines are split exactly as it splits them.
using CLI::detail::remove_quotes;
using CLI::detail::to_lower;
using CLI::detail::trim_copy;

// The Levenshtein distance of `a` and `b`.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The long name nearest to `key` among the options a file may set, if near enough to be a slip
// (at most 2 edits, or a third of the key); else "".
std::string NearestOption(const CLI::App& app, const std::string& key) {
  std::string best;
  size_t best_distance = std::string::npos;
  for (const CLI::Option* opt : app.get_options()) {
    if (!opt->get_configurable()) continue;
    for (const std::string& name : opt->get_lnames()) {
      size_t d = EditDistance(key, name);
      if (d < best_distance) best_distance = d, best = name;
    }
  }
  return best_distance <= std::max<size_t>(2, key.size() / 3) ? best : "";
}

// The option of `app` that CLI11 sets for config key `name` (App::_parse_single_config), or null.
const CLI::Option* OptionOfKey(const CLI::App& app, const std::string& name) {
  const CLI::Option* opt = app.get_option_no_throw("--" + name);
  if (opt == nullptr && name.size() == 1) opt = app.get_option_no_throw("-" + name);
  if (opt == nullptr) opt = app.get_option_no_throw(name);
  return opt;
}

// Appends the keys of config file `path` to `keys`, each checked against `app`'s options; the
// first one that CLI11 would not set as written is an InvalidArgument "PATH:LINE: ...". A file
// that cannot be read adds nothing (CLI11 says so).
core::Status ReadConfigKeys(const CLI::App& app, const std::string& path,
                            std::vector<ConfigKey>& keys) {
  std::ifstream in(path);
  std::map<const CLI::Option*, int> first_line;
  const CLI::Option* previous = nullptr;  // the option of the key before, where lists continue
  std::string line;
  int n = 0;   // the line read last
  int at = 0;  // the line the key being checked starts on
  auto error = [&](const std::string& what) {
    return core::Status::InvalidArgument(path + ":" + std::to_string(at) + ": " + what);
  };
  while (std::getline(in, line)) {
    at = ++n;
    line = trim_copy(line);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.size() > 1 && line.front() == '[' && line.back() == ']') {
      std::string section = line.substr(1, line.size() - 2);
      if (section.size() > 1 && section.front() == '[' && section.back() == ']') {
        section = section.substr(1, section.size() - 2);
      }
      if (to_lower(section) != "default") {
        return error("unknown section '" + line +
                     "' (keys go at the top of the file, or under [default])");
      }
      continue;
    }
    if (line.size() < 3) return error("cannot read '" + line + "' (expected KEY = VALUE)");
    std::string name;
    size_t eq = line.find('=');
    if (eq == std::string::npos) {  // a flag: "in-memory" alone means true
      name = trim_copy(line.substr(0, line.find('#')));
    } else {
      name = trim_copy(line.substr(0, eq));
      std::string value = trim_copy(line.substr(eq + 1));
      value = trim_copy(value.substr(0, value.find('#')));
      // An array goes on until a line ends it.
      auto open = [&] { return value.size() > 1 && value.front() == '[' && value.back() != ']'; };
      for (std::string more; open() && std::getline(in, more);) {
        ++n;
        value += trim_copy(more);
      }
      if (open()) return error("the array of '" + name + "' has no closing ']'");
    }
    if (name.find('.') == std::string::npos) remove_quotes(name);
    // CLI11 reads a dotted key as one of a subcommand, which this app has none of.
    const CLI::Option* opt = name.find('.') == std::string::npos ? OptionOfKey(app, name) : nullptr;
    if (opt == nullptr) {
      std::string nearest = NearestOption(app, name);
      return error("unknown key '" + name + "'" +
                   (nearest.empty() ? "" : " (did you mean '" + nearest + "'?)"));
    }
    if (!opt->get_configurable()) return error("'" + name + "' cannot be set in a config file");
    // CLI11 joins the values of a key on lines one after another, and ignores a later one.
    auto [first, fresh] = first_line.emplace(opt, at);
    bool list = opt->get_items_expected_max() > 1;
    if (!fresh && !(list && opt == previous)) {
      return error("'" + name + "' is given again (first on line " + std::to_string(first->second) +
                   ")" +
                   (list ? ": give all its values together, in one array or on lines one after "
                           "another"
                         : ""));
    }
    previous = opt;
    keys.push_back({name, path, at});
  }
  return core::Status::Ok();
}

// The keys of every config file `app` read, or the first error in them.
core::Status ReadAllConfigKeys(const CLI::App& app, std::vector<ConfigKey>& keys) {
  const CLI::Option* config = app.get_config_ptr();
  if (config == nullptr) return core::Status::Ok();
  for (const std::string& path : config->results()) {
    if (auto st = ReadConfigKeys(app, path, keys); !st.ok()) return st;
  }
  return core::Status::Ok();
}

// Whether the command line `argv` gives option --`name`.
bool OnCommandLine(const std::string& name, int argc, const char* const* argv) {
  const std::string option = "--" + name;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == option || arg.starts_with(option + "=")) return true;
  }
  return false;
}

// The config key whose value CLI11's error `message` is about: the first key that the message
// names as --KEY (followed by no more of a name) and that the command line does not give (its
// value then came from the file); null if none.
const ConfigKey* KeyOfError(const std::vector<ConfigKey>& keys, const std::string& message,
                            int argc, const char* const* argv) {
  for (const ConfigKey& key : keys) {
    const std::string option = "--" + key.name;
    for (size_t at = message.find(option); at != std::string::npos;
         at = message.find(option, at + 1)) {
      size_t end = at + option.size();
      bool whole =
          end == message.size() || !(std::isalnum(static_cast<unsigned char>(message[end])) ||
                                     message[end] == '-' || message[end] == '_');
      if (whole && !OnCommandLine(key.name, argc, argv)) return &key;
    }
  }
  return nullptr;
}

}  // namespace

std::optional<int> ParseWithStrictConfig(CLI::App& app, int argc, const char* const* argv) {
  // CLI11 itself stops at a key it does not know, before it checks what the command requires.
  app.allow_config_extras(CLI::config_extras_mode::error);
  std::vector<ConfigKey> keys;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    if (auto st = ReadAllConfigKeys(app, keys); !st.ok()) return ReportError(st.message());
    if (const ConfigKey* key = KeyOfError(keys, e.what(), argc, argv)) {
      return ReportError(key->file + ":" + std::to_string(key->line) + ": " + e.what());
    }
    return ReportUsageError(app, e);
  }
  if (auto st = ReadAllConfigKeys(app, keys); !st.ok()) return ReportError(st.message());
  return std::nullopt;
}

}  // namespace enoki::cli
