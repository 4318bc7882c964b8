// The enoki subcommands. Each Add*Command registers its subcommand (with --help for every option)
// on the app and sets `run` to what executes it once the command line has been parsed; run
// returns the process's exit code.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace enoki::cli {

using Runner = std::function<int()>;

void AddNodeCommand(CLI::App& app, Runner& run);
// `enoki node status` and `enoki node leave`, under the `node` entry (client_commands.cc).
void AddNodeStatusCommand(CLI::App& node_cmd, Runner& run);
void AddNodeLeaveCommand(CLI::App& node_cmd, Runner& run);
void AddKvCommand(CLI::App& app, Runner& run);
void AddKeygroupCommand(CLI::App& app, Runner& run);
void AddDemoCommand(CLI::App& app, Runner& run);
void AddFunctionCommands(CLI::App& app, Runner& run);
void AddScenarioCommand(CLI::App& app, Runner& run);
void AddEmulateCommand(CLI::App& app, Runner& run);
void AddSimulateCommand(CLI::App& app, Runner& run);
void AddCalibrateCommand(CLI::App& app, Runner& run);
// `enoki run SCENARIO --cluster FILE` (emulate_command.cc).
void AddRunCommand(CLI::App& app, Runner& run);
void AddReportCommand(CLI::App& app, Runner& run);
// `enoki cluster plan SCENARIO --hosts FILE` (cluster_command.cc).
void AddClusterCommand(CLI::App& app, Runner& run);
void AddKeysCommand(CLI::App& app, Runner& run);

// `enoki node ARGS...`: argv[0] is "node". Parsed as an app of its own (see node_command.cc).
int NodeMain(int argc, const char* const* argv);

// Prints "enoki: error: <message>" on stderr and returns the exit code for a failed command (1).
int ReportError(const std::string& message);

// A command line that `app` could not parse (not --help or --version): prints one line on stderr,
// "enoki: error: <command>: <what is wrong>; see `<command> --help`", naming the subcommands
// where one is missing or unknown, and returns the exit code for a usage error (2).
int ReportUsageError(const CLI::App& app, const CLI::ParseError& error);

}  // namespace enoki::cli
