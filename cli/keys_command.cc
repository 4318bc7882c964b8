// `enoki keys generate NAME`: a CURVE key pair for a node or a client; `enoki keys token NAME`: a
// bearer token for the HTTP gateway (docs/security.md).
#include <filesystem>
#include <iostream>

#include "adapters/access.h"
#include "adapters/curve.h"
#include "cli/commands.h"
#include "node/validation.h"

namespace enoki::cli {

void AddKeysCommand(CLI::App& app, Runner& run) {
  CLI::App* keys =
      app.add_subcommand("keys", "Make CURVE keys for nodes and clients, and HTTP bearer tokens");
  keys->require_subcommand(1);
  auto name = std::make_shared<std::string>();
  auto dir = std::make_shared<std::string>(".");
  CLI::App* generate = keys->add_subcommand(
      "generate",
      "Write a new key pair: DIR/NAME.key (secret: readable by its owner only; give it to the "
      "node, enoki node --key, or the client, --identity or ENOKI_IDENTITY) and DIR/NAME.pub "
      "(public: give "
      "it to whoever must admit NAME: --peer-key, an access file, --server-key)");
  generate->add_option("name", *name, "Whose key: a node id or a client name")->required();
  generate->add_option("-d,--dir", *dir, "Folder to write the two files to")
      ->check(CLI::ExistingDirectory)
      ->capture_default_str();
  generate->callback([&run, name, dir] {
    run = [=] {
      if (auto st = node::ValidateName("NAME", *name); !st.ok()) return ReportError(st.message());
      auto pair = adapters::GenerateKeyPair();
      if (!pair.ok()) return ReportError(pair.status().message());
      std::string base = (std::filesystem::path(*dir) / *name).string();
      if (auto st = adapters::WriteKeyFiles(base, *name, *pair); !st.ok()) {
        return ReportError(st.message());
      }
      std::cout << "wrote " << base << ".key (secret) and " << base
                << ".pub (public: " << pair->public_key << ")\n";
      return 0;
    };
  });

  CLI::App* token = keys->add_subcommand(
      "token",
      "Write a new random bearer token to DIR/NAME.token (secret: readable by its owner only; "
      "an HTTP caller sends it as 'Authorization: Bearer TOKEN') and print the access-file line "
      "that admits it (it holds only the token's SHA-256; add the permissions)");
  token->add_option("name", *name, "Whose token: a client name")->required();
  token->add_option("-d,--dir", *dir, "Folder to write the file to")
      ->check(CLI::ExistingDirectory)
      ->capture_default_str();
  token->callback([&run, name, dir] {
    run = [=] {
      if (auto st = node::ValidateName("NAME", *name); !st.ok()) return ReportError(st.message());
      std::string path = (std::filesystem::path(*dir) / (*name + ".token")).string();
      auto written = adapters::WriteTokenFile(path);
      if (!written.ok()) return ReportError(written.status().message());
      std::cout << "wrote " << path << " (secret); add this line to the node's access file:\n"
                << *name << " token:" << adapters::TokenDigest(*written) << " invoke:FUNCTION\n";
      return 0;
    };
  });
}

}  // namespace enoki::cli
