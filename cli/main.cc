// enoki: one binary for real nodes, the client commands and the demo. Parses the command line
// with CLI11 and runs the chosen subcommand.
#include <cstdio>
#include <iostream>
#include <string_view>

#include "adapters/protobuf_log.h"
#include "cli/commands.h"

namespace enoki::cli {

int ReportError(const std::string& message) {
  std::fflush(stdout);  // what was printed before comes before the error
  std::fprintf(stderr, "enoki: error: %s\n", message.c_str());
  return 1;
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
    return enoki::cli::NodeMain(argc - 1, argv + 1);
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
    return app.exit(e);
  }
  return run();
}
