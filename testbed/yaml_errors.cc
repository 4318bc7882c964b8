// Parsing YAML files, refusing a key given twice in one map.
#include "testbed/yaml_errors.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include <yaml-cpp/eventhandler.h>

namespace enoki::testbed {
namespace {

// Finds the first key given twice in one map, from the parser's events. Events, not the loaded
// nodes: an alias is one event, where a walk of the nodes would go through an aliased collection
// at every alias (a few hundred bytes of nested aliases make billions of nodes to walk).
class DuplicateKeys : public YAML::EventHandler {
 public:
  explicit DuplicateKeys(const std::string& file) : file_(file) {}

  // The first duplicate key, or OK.
  const core::Status& status() const { return status_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    // A reader sees a null key as "" (YAML::Node::Scalar()).
    Remember(anchor, "");
    Begin(mark, "");
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = scalars_.find(anchor);
    Begin(mark, it == scalars_.end() ? std::nullopt : std::optional(it->second));
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    Remember(anchor, value);
    Begin(mark, value);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    open_.emplace_back(false, Begin(mark, std::nullopt));
  }
  void OnSequenceEnd() override { open_.pop_back(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    open_.emplace_back(true, Begin(mark, std::nullopt));
  }
  void OnMapEnd() override { open_.pop_back(); }

 private:
  // A map or list being read.
  struct Collection {
    Collection(bool map, std::string field) : map(map), field(std::move(field)) {}

    bool map;
    std::string field;                       // where it is, as errors name it
    size_t nodes = 0;                        // of its items (a map: its keys and values)
    std::string key;                         // a map: the key of the value to come
    std::map<std::string, YAML::Mark> keys;  // a map: its scalar keys so far
  };

  // A node starts at `mark`; `scalar` is its text if it is a scalar (or an alias of one). Checks
  // it if it is a key; returns its field.
  std::string Begin(const YAML::Mark& mark, const std::optional<std::string>& scalar) {
    if (open_.empty()) return "";
    Collection& in = open_.back();
    size_t n = in.nodes++;
    if (!in.map) return YamlItem(in.field, n);
    if (n % 2 == 1) return YamlJoin(in.field, in.key);
    in.key = scalar.value_or("?");  // a collection as a key: no reader of ours takes one
    std::string field = YamlJoin(in.field, in.key);
    if (!scalar) return field;
    auto [first, added] = in.keys.try_emplace(*scalar, mark);
    if (!added && status_.ok()) {
      status_ = YamlError(file_, mark, field,
                          "duplicate key (first at line " + std::to_string(first->second.line + 1) +
                              ", column " + std::to_string(first->second.column + 1) + ")");
    }
    return field;
  }
  // Anchor `anchor` (each anchor of the text has an id of its own) names a scalar of `value`.
  void Remember(YAML::anchor_t anchor, const std::string& value) {
    if (anchor != YAML::NullAnchor) scalars_[anchor] = value;
  }

  const std::string& file_;
  std::vector<Collection> open_;                   // from the outermost
  std::map<YAML::anchor_t, std::string> scalars_;  // anchored scalars, for their aliases
  core::Status status_ = core::Status::Ok();
};

// What a walk of the loaded nodes found.
enum class Walked { kNoDuplicate, kDuplicate, kTooLong };

// How deep the walk goes before it leaves the file to the event pass: an alias inside what it
// names (`&a [*a]`, which yaml-cpp loads as a node that holds itself) would take the walk down
// until the budget ran out, further than the stack goes. yaml-cpp refuses to load nesting a few
// hundred levels deep, and scenario files hold a few.
constexpr int kMaxDepth = 256;

// Whether a map under `n` holds a key twice (keys compared as DuplicateKeys compares them: a
// scalar's text, a null's "", an alias as what it names, a collection as no key), walking at most
// `budget` nodes and kMaxDepth levels: an alias is walked again wherever it stands, so that nested
// aliases would make the walk far longer than the text; it stops short instead (kTooLong).
Walked FindDuplicate(const YAML::Node& n, size_t& budget, int depth = 0) {
  if (budget == 0 || depth == kMaxDepth) return Walked::kTooLong;
  --budget;
  if (n.IsSequence()) {
    for (const auto& item : n) {
      if (Walked w = FindDuplicate(item, budget, depth + 1); w != Walked::kNoDuplicate) return w;
    }
  } else if (n.IsMap()) {
    std::vector<std::string_view> keys;  // views of the loaded scalars, which outlive the walk
    for (const auto& pair : n) {
      if (pair.first.IsNull()) {
        keys.emplace_back();
      } else if (pair.first.IsScalar()) {
        keys.emplace_back(pair.first.Scalar());
      }
      for (const auto& part : {pair.first, pair.second}) {
        if (Walked w = FindDuplicate(part, budget, depth + 1); w != Walked::kNoDuplicate) return w;
      }
    }
    std::sort(keys.begin(), keys.end());
    if (std::adjacent_find(keys.begin(), keys.end()) != keys.end()) return Walked::kDuplicate;
  }
  return Walked::kNoDuplicate;
}

}  // namespace

core::Result<YAML::Node> ParseYaml(const std::string& text, const std::string& file) {
  try {
    YAML::Node root = YAML::Load(text);
    // A walk of the loaded nodes tells, at a fraction of what a second parse costs, that no key
    // is given twice. Where it finds one, or gives up, the text is parsed again for its events:
    // they name the first key given twice where it stands (a loaded alias has only the mark of
    // what it names), and they are the verdict. The walk's budget, two nodes per byte of text,
    // is more than a text without aliases holds in practice; a walk cut short costs time, never
    // a wrong answer.
    size_t budget = 2 * text.size() + 16;
    if (FindDuplicate(root, budget) == Walked::kNoDuplicate) return root;
    std::istringstream in(text);
    YAML::Parser parser(in);
    DuplicateKeys keys(file);
    parser.HandleNextDocument(keys);
    if (!keys.status().ok()) return keys.status();
    return root;
  } catch (const YAML::Exception& e) {
    return core::Status::InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                                         std::to_string(e.mark.column + 1) +
                                         ": not valid YAML: " + e.msg);
  }
}

}  // namespace enoki::testbed
