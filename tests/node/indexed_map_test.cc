// IndexedMap (as ItemMap, a keygroup's items): point look-ups through the hash index agree with
// the ordered map, for scans in key order, after inserts in any order, erases, a move and a
// clear.
#include "node/indexed_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace enoki::node {
namespace {

TEST(ItemMapTest, FindsEveryKeyAndScansInKeyOrder) {
  std::vector<std::string> keys;
  for (int i = 0; i < 1000; ++i) keys.push_back("k" + std::to_string(i));
  std::shuffle(keys.begin(), keys.end(), std::mt19937(7));
  ItemMap items;
  for (const auto& k : keys) {
    auto [it, made] = items.try_emplace(k);
    ASSERT_TRUE(made) << k;
    it->second.value = "v" + k;
  }
  EXPECT_FALSE(items.try_emplace("k5").second);  // there already
  items["k5"].value = "five";
  items["new"].value = "made";
  EXPECT_EQ(items.size(), 1001u);
  for (const auto& k : keys) {
    auto it = items.find(k);
    ASSERT_NE(it, items.end()) << k;
    EXPECT_EQ(it->first, k);
    EXPECT_EQ(it->second.value, k == "k5" ? "five" : "v" + k);
  }
  EXPECT_EQ(items.find("new")->second.value, "made");
  EXPECT_EQ(items.find("k1000"), items.end());
  // In key order from any point, as the ordered map keeps them.
  std::sort(keys.begin(), keys.end());
  auto it = items.lower_bound("k5");
  EXPECT_EQ(it->first, "k5");
  EXPECT_EQ((++it)->first, "k50");
  EXPECT_EQ(items.upper_bound("k999")->first, "new");
  std::vector<std::string> scanned;
  for (const auto& [k, item] : items) scanned.push_back(k);
  keys.push_back("new");
  EXPECT_EQ(scanned, keys);

  // Erased, a key is gone from both (an absent one erases nothing).
  items.erase("k50");
  items.erase("absent");
  EXPECT_EQ(items.find("k50"), items.end());
  EXPECT_EQ(items.lower_bound("k50")->first, "k500");
  EXPECT_EQ(items.size(), 1000u);
  EXPECT_TRUE(items.try_emplace("k50").second);
  items["k50"].value = "vk50";

  // Moved, the index still finds every item, and what was moved from is empty and usable;
  // cleared, nothing.
  ItemMap moved = std::move(items);
  EXPECT_EQ(moved.find("k123")->second.value, "vk123");
  const ItemMap& view = moved;
  EXPECT_EQ(view.find("new")->second.value, "made");
  EXPECT_TRUE(view.contains("k5"));
  EXPECT_FALSE(view.contains("k1000"));
  EXPECT_EQ(view.lower_bound("k5")->first, "k5");
  EXPECT_EQ(view.upper_bound("k5")->first, "k50");
  EXPECT_TRUE(items.empty());
  EXPECT_EQ(items.find("k123"), items.end());
  EXPECT_TRUE(items.try_emplace("k123").second);
  items = std::move(moved);
  EXPECT_EQ(items.find("k999")->second.value, "vk999");
  EXPECT_TRUE(moved.empty());
  moved = std::move(items);
  moved.clear();
  EXPECT_TRUE(moved.empty());
  EXPECT_EQ(moved.find("k123"), moved.end());
  EXPECT_TRUE(moved.try_emplace("k123").second);
}

// Inserts and erases in a random mix, with the index growing and keys erased from the middle of
// their probe runs: the index finds exactly the keys a plain std::set holds, and no other.
TEST(ItemMapTest, RandomInsertsAndErasesAgreeWithASet) {
  std::mt19937 random(11);
  ItemMap items;
  std::set<std::string> expected;
  for (int step = 0; step < 20000; ++step) {
    std::string key = "k" + std::to_string(random() % 600);
    if (random() % 3 == 0) {
      items.erase(key);
      expected.erase(key);
    } else {
      EXPECT_EQ(items.try_emplace(key).second, expected.insert(key).second) << key;
    }
    if (step % 500 == 0) {
      ASSERT_EQ(items.size(), expected.size());
      for (int k = 0; k < 600; ++k) {
        std::string probe = "k" + std::to_string(k);
        auto it = items.find(probe);
        ASSERT_EQ(it != items.end(), expected.contains(probe)) << probe << " at step " << step;
        ASSERT_EQ(items.contains(probe), expected.contains(probe)) << probe;
        if (it != items.end()) {
          EXPECT_EQ(it->first, probe);
        }
      }
    }
  }
}

}  // namespace
}  // namespace enoki::node
