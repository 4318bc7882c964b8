// enoki: one binary for real nodes, the client commands and the demo. Parses the command line
// with CLI11 and runs the chosen subcommand.
#include <cctype>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string_view>
#include <vector>

#include "adapters/protobuf_log.h"
#include "cli/commands.h"
#include "enoki_version.h"

namespace enoki::cli {

int ReportError(const std::string& message) {
  std::fflush(stdout);  // what was printed before comes before the error
  std::fprintf(stderr, "enoki: error: %s\n", message.c_str());
  return 1;
}

int ReportUsageError(const CLI::App& app, const CLI::ParseError& error) {
  // The subcommand the parse got to: "enoki kv get".
  const CLI::App* at = &app;
  // The main app is named after argv[0] once parsed: "enoki" it is, wherever it was run from.
  std::string command = app.get_name();
  if (command.empty() || command.find('/') != std::string::npos) command = "enoki";
  for (auto subs = at->get_subcommands(); !subs.empty(); subs = at->get_subcommands()) {
    at = subs.front();
    command += " " + at->get_name();
  }
  std::string message = error.what();
  if (!message.empty()) message[0] = static_cast<char>(std::tolower(message[0]));
  auto nl = message.find('\n');
  if (nl != std::string::npos) message.resize(nl);
  std::string names;
  for (const CLI::App* sub : at->get_subcommands({})) {
    if (sub->get_group().empty()) continue;  // hidden
    names += (names.empty() ? "" : ", ") + sub->get_name();
  }
  if (!names.empty()) {
    // A word where a subcommand goes that names none is what is wrong, not that none was given.
    std::vector<std::string> rest = at->remaining();
    if (!rest.empty() && !rest.front().starts_with("-")) {
      message = "'" + rest.front() + "' is not a subcommand";
    }
    message += " (subcommands: " + names + ")";
  }
  std::fflush(stdout);
  std::fprintf(stderr, "enoki: error: %s: %s; see `%s --help`\n", command.c_str(), message.c_str(),
               command.c_str());
  return 2;
}

}  // namespace enoki::cli

int main(int argc, char** argv) {
  enoki::adapters::RouteProtobufLog();  // before any thread starts
  CLI::App app{
      "Enoki: stateful serverless functions from edge to cloud.\n"
      "Runs real nodes, talks to them, deploys and calls functions, emulates whole scenarios "
      "(scenario, emulate, report), simulates them in virtual time (simulate), places them on "
      "machines (cluster plan) and runs them on nodes that are running already (run --cluster), "
      "and runs a three-node demo."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "enoki " ENOKI_VERSION);
  // `enoki node status` and `enoki node leave` are client commands; any other `enoki node ...`
  // runs a node.
  if (argc > 1 && std::string_view(argv[1]) == "node" &&
      !(argc > 2 &&
        (std::string_view(argv[2]) == "status" || std::string_view(argv[2]) == "leave"))) {
    try {
      return enoki::cli::NodeMain(argc - 1, argv + 1);
    } catch (const std::exception& e) {
      return enoki::cli::ReportError(std::string("unexpected: ") + e.what());
    }
  }
  enoki::cli::Runner run;
  enoki::cli::AddNodeCommand(app, run);
  enoki::cli::AddKvCommand(app, run);
  enoki::cli::AddKeygroupCommand(app, run);
  enoki::cli::AddFunctionCommands(app, run);
  enoki::cli::AddScenarioCommand(app, run);
  enoki::cli::AddEmulateCommand(app, run);
  enoki::cli::AddSimulateCommand(app, run);
  enoki::cli::AddCalibrateCommand(app, run);
  enoki::cli::AddRunCommand(app, run);
  enoki::cli::AddClusterCommand(app, run);
  enoki::cli::AddReportCommand(app, run);
  enoki::cli::AddDemoCommand(app, run);
  enoki::cli::AddKeysCommand(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return enoki::cli::ReportUsageError(app, e);
  }
  // The edge of the program: an exception that escaped a library is one line too, never an abort.
  try {
    return run();
  } catch (const std::exception& e) {
    return enoki::cli::ReportError(std::string("unexpected: ") + e.what());
  }
}
