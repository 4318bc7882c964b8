// KeyFolder: a temporary folder of CURVE key pairs and an access file, for integration tests of
// nodes with keys.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "adapters/curve.h"
#include "tests/integration/commands.h"

namespace enoki::testing {

// A folder of key pairs, made with the library `enoki keys generate` uses (and a TLS certificate
// where a test asks for one).
class KeyFolder {
 public:
  explicit KeyFolder(const std::vector<std::string>& names) {
    dir_ = std::filesystem::temp_directory_path() /
           ("enoki-keys-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    for (const auto& n : names) {
      auto pair = adapters::GenerateKeyPair();
      EXPECT_TRUE(pair.ok());
      EXPECT_TRUE(adapters::WriteKeyFiles((dir_ / n).string(), n, *pair).ok());
    }
  }
  ~KeyFolder() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string key(const std::string& n) const { return (dir_ / (n + ".key")).string(); }
  std::string pub(const std::string& n) const { return (dir_ / (n + ".pub")).string(); }
  // An access file admitting `clients`, each with every permission.
  std::string Access(const std::vector<std::string>& clients) const {
    std::vector<std::string> lines;
    for (const auto& c : clients) {
      lines.push_back(c + " " + c + ".pub admin read:* write:* deploy-process invoke:*");
    }
    return AccessLines(lines);
  }
  // An access file of these lines (rewritten in place: the node reads it again on SIGHUP).
  std::string AccessLines(const std::vector<std::string>& lines) const {
    std::string path = (dir_ / "access").string();
    std::ofstream out(path + ".new");
    out << "# clients of the test\n";
    for (const auto& l : lines) out << l << "\n";
    out.close();
    std::filesystem::rename(path + ".new", path);
    return path;
  }
  adapters::ClientKeys ClientOf(const std::string& client, const std::string& node) const {
    auto keys = adapters::LoadClientKeys(key(client), pub(node));
    EXPECT_TRUE(keys.ok()) << keys.status().ToString();
    return *keys;
  }
  // A self-signed TLS certificate for 127.0.0.1, made with the openssl command: cert.pem and
  // key.pem in the folder.
  void MakeCertificate() const {
    Output made = RunShell(
        "cd " + dir_.string() +
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>&1");
    ASSERT_EQ(made.status, 0) << made.text;
  }
  std::string cert() const { return (dir_ / "cert.pem").string(); }
  std::string cert_key() const { return (dir_ / "key.pem").string(); }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
};

}  // namespace enoki::testing
