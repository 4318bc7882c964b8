// `enoki keys generate NAME`: a CURVE key pair for a node or a client (docs/security.md).
#include <filesystem>
#include <iostream>

#include "adapters/curve.h"
#include "cli/commands.h"
#include "node/validation.h"

namespace enoki::cli {

void AddKeysCommand(CLI::App& app, Runner& run) {
  CLI::App* keys = app.add_subcommand("keys", "Make CURVE keys for nodes and clients");
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
}

}  // namespace enoki::cli
