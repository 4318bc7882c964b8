// `enoki deploy`, `enoki invoke` and `enoki functions list|delete`: functions at one node.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include <zmq.hpp>

#include "adapters/log_time.h"
#include "adapters/zip_archive.h"
#include "cli/client_options.h"
#include "cli/commands.h"

namespace enoki::cli {
namespace {

struct DeployArgs {
  std::string name, runtime = "native", handler, keygroup;
  std::vector<std::string> params;
  uint32_t timeout_ms = 0, concurrency = 0;
  uint64_t memory = 0;
  uint32_t cpu_seconds = 0, max_files = 0, max_procs = 0;
  std::string upload;
  bool create_keygroup = false;
};

namespace fs = std::filesystem;

// The file at `path` as an uploaded file named `name`.
core::Result<proto::FunctionFile> ReadUploadFile(const fs::path& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  // Read whole, an empty file too (`<<` of an empty stream sets failbit).
  std::string data(std::istreambuf_iterator<char>(in), {});
  if (!in.is_open() || in.bad())
    return core::Status::IOError("--upload: cannot read " + path.string());
  proto::FunctionFile f;
  f.set_path(name);
  f.set_data(std::move(data));
  std::error_code ec;
  auto perms = fs::status(path, ec).permissions();
  f.set_executable((perms & fs::perms::owner_exec) != fs::perms::none);
  return f;
}

// The most a zip archive may unpack to here: a node takes less (its --max-upload-bytes).
constexpr uint64_t kMaxUnpackedBytes = 1ull << 30;

// What `enoki deploy --upload PATH` sends: every file under folder PATH by its path relative to
// it (symlinks to files are read, the executable bit is kept), the files of a zip archive
// PATH.zip, or the one file PATH by its name.
core::Result<std::vector<proto::FunctionFile>> ReadUpload(const std::string& path) {
  std::vector<proto::FunctionFile> files;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    auto f = ReadUploadFile(path, fs::path(path).filename().string());
    if (!f.ok()) return f.status();
    if (fs::path(path).extension() == ".zip") {
      // The archive's files, unpacked here; the node checks their paths and their size.
      auto unpacked = adapters::ReadZip(f->data(), kMaxUnpackedBytes);
      if (!unpacked.ok()) {
        return core::Status(unpacked.status().code(),
                            "--upload " + path + ": " + unpacked.status().message());
      }
      return unpacked;
    }
    files.push_back(std::move(f.value()));
    return files;
  }
  if (!fs::is_directory(path, ec)) {
    return core::Status::InvalidArgument("--upload " + path + " is neither a folder nor a file");
  }
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path& p = it->path();
    if (it->is_directory(ec) && !it->is_symlink(ec)) continue;
    if (!it->is_regular_file(ec)) {
      return core::Status::InvalidArgument("--upload: " + p.string() +
                                           " is not a file or folder (a symlink to a folder, a "
                                           "socket, ...): only files are sent");
    }
    auto f = ReadUploadFile(p, p.lexically_relative(path).generic_string());
    if (!f.ok()) return f.status();
    files.push_back(std::move(f.value()));
  }
  if (ec) return core::Status::IOError("--upload: cannot read " + path + ": " + ec.message());
  if (files.empty()) return core::Status::InvalidArgument("--upload " + path + " holds no files");
  return files;
}

// Whether keygroup `name` exists at the node of `c`: an error naming the keygroups the node knows
// when it does not, unless `create`, which creates it there (replicated at that node). A client
// that may not read the keygroup's entry (a node with keys) deploys without the check.
core::Status CheckKeygroup(adapters::Client& c, const std::string& name, bool create) {
  auto info = c.KeygroupInfo(name);
  if (info.ok() || info.status().code() == core::Code::kPermissionDenied) return core::Status::Ok();
  if (info.status().code() != core::Code::kNotFound) return info.status();
  if (create) {
    proto::CreateKeygroupRequest r;
    r.set_name(name);
    ENOKI_RETURN_IF_ERROR(c.CreateKeygroup(r));
    std::cout << "created keygroup " << name << " (its replica: the node asked)\n";
    return core::Status::Ok();
  }
  std::string known;
  if (auto list = c.ListKeygroups(); list.ok()) {
    for (const auto& k : list->keygroups()) known += (known.empty() ? "" : ", ") + k.meta().name();
    known = known.empty() ? "the node has no keygroups" : "the node has: " + known;
  } else {
    known = "`enoki keygroup list` shows the node's";
  }
  return core::Status::NotFound("keygroup '" + name + "' does not exist (" + known +
                                "): create it first (`enoki keygroup create " + name +
                                "`), or deploy with --create-keygroup");
}

}  // namespace

void AddFunctionCommands(CLI::App& app, Runner& run) {
  auto target = std::make_shared<Target>();
  auto d = std::make_shared<DeployArgs>();
  CLI::App* deploy = app.add_subcommand(
      "deploy", "Deploy a function at a node (again: replaces it; calls in flight finish)");
  deploy->add_option("name", d->name, "Function name")->required();
  deploy
      ->add_option("--handler", d->handler,
                   "native: the built-in function, e.g. echo, increment, movingaverage, "
                   "objectrecognition (docs/functions.md lists them all); process: the path of "
                   "the program on the node's machine (a relative path that exists here is made "
                   "absolute), or with --upload its path inside the uploaded folder (e.g. fn.py)")
      ->required();
  deploy
      ->add_option("-k,--keygroup", d->keygroup,
                   "Keygroup holding the function's state; one the node does not know is refused, "
                   "naming those it knows, unless --create-keygroup")
      ->required();
  deploy->add_flag("--create-keygroup", d->create_keygroup,
                   "Create the keygroup, replicated at the node asked, if it does not exist");
  deploy
      ->add_option("--runtime", d->runtime,
                   "native (built into enoki) or process (a program kept running as workers "
                   "that speak the worker protocol; docs/functions.md)")
      ->check(CLI::IsMember({"native", "process"}))
      ->capture_default_str();
  deploy->add_option(
      "--upload", d->upload,
      "process: send the function's code to the node, which keeps it in its data directory and "
      "runs --handler from there: every file under folder DIR (paths relative to it, executable "
      "bits kept), the files of an archive FILE.zip, or one FILE; at most the node's "
      "--max-upload-bytes (16 MiB by default). A "
      "second upload replaces the first");
  deploy->add_option("-p,--param", d->params, "A parameter as KEY=VALUE (repeat)");
  deploy
      ->add_option("--call-timeout-ms", d->timeout_ms,
                   "Time limit of one call of the function, in ms (0: 10000)")
      ->capture_default_str();
  deploy
      ->add_option("--concurrency", d->concurrency,
                   "Calls running at once (0: 100; at most 1024); process: at most one worker each")
      ->capture_default_str();
  deploy
      ->add_option("--memory", d->memory,
                   "process: resident memory of one worker (suffixes: KiB, MiB, GiB...); over it "
                   "the worker is killed and its call fails (0: the node's --worker-memory, also "
                   "the most it allows)")
      ->transform(CLI::AsSizeValue(false));
  deploy->add_option("--cpu-seconds", d->cpu_seconds,
                     "process: CPU time of one worker over its life, then it is replaced (0: the "
                     "node's --worker-cpu-seconds)");
  deploy->add_option("--max-files", d->max_files,
                     "process: open files of one worker (0: the node's --worker-files)");
  deploy->add_option("--max-procs", d->max_procs,
                     "process: processes of the worker user (0: the node's --worker-procs)");
  AddTargetOptions(deploy, *target);
  deploy->callback([&run, target, d] {
    run = [=] {
      proto::FunctionSpec spec;
      spec.set_name(d->name);
      spec.set_runtime(d->runtime);
      std::string handler = d->handler;
      std::vector<proto::FunctionFile> files;
      if (!d->upload.empty()) {
        if (d->runtime != "process") return ReportError("--upload needs --runtime process");
        auto read = ReadUpload(d->upload);
        if (!read.ok()) return ReportError(read.status().message());
        files = std::move(read.value());
      } else if (d->runtime == "process" && std::filesystem::path(handler).is_relative() &&
                 std::filesystem::exists(handler)) {
        handler = std::filesystem::absolute(handler).lexically_normal().string();
      }
      spec.set_handler(handler);
      spec.set_keygroup(d->keygroup);
      spec.set_timeout_ms(d->timeout_ms);
      spec.set_concurrency(d->concurrency);
      if (d->memory != 0 || d->cpu_seconds != 0 || d->max_files != 0 || d->max_procs != 0) {
        proto::WorkerLimits* limits = spec.mutable_limits();
        limits->set_memory_bytes(d->memory);
        limits->set_cpu_seconds(d->cpu_seconds);
        limits->set_open_files(d->max_files);
        limits->set_processes(d->max_procs);
      }
      for (const auto& p : d->params) {
        auto eq = p.find('=');
        if (eq == std::string::npos || eq == 0) {
          return ReportError("--param '" + p + "' must look like KEY=VALUE");
        }
        (*spec.mutable_params())[p.substr(0, eq)] = p.substr(eq + 1);
      }
      return WithClient(*target, [&](adapters::Client& c) {
        ENOKI_RETURN_IF_ERROR(CheckKeygroup(c, d->keygroup, d->create_keygroup));
        core::Status st = c.DeployFunction(spec, files);
        if (st.code() != core::Code::kDeadlineExceeded || files.empty()) return st;
        uint64_t bytes = 0;
        for (const auto& f : files) bytes += f.data().size();
        // The node's transport drops a message over its largest one without an answer.
        return core::Status(st.code(), st.message() + "; the upload holds " +
                                           std::to_string(bytes) +
                                           " bytes: a node drops a request larger than its "
                                           "--max-upload-bytes (16 MiB by default) and 3 MiB "
                                           "(with the default --max-value-size) unanswered");
      });
    };
  });

  auto fn = std::make_shared<std::string>();
  auto input = std::make_shared<ValueInput>();
  auto async = std::make_shared<bool>(false);
  CLI::App* invoke = app.add_subcommand(
      "invoke", "Call a function with BODY (or --file, '-': stdin) and print its response");
  invoke->add_option("name", *fn, "Function name")->required();
  input->AddTo(invoke, "body", "Request body (default: empty)");
  invoke->add_flag("--async", *async,
                   "Return once the node accepted the call; it runs in the background and its "
                   "result is dropped (see the counters of `functions list`)");
  // Its own target: waits longer by default than a function's default timeout (10 s), so that a
  // slow call shows the function's own result or DEADLINE_EXCEEDED.
  auto invoke_target = std::make_shared<Target>();
  invoke_target->timeout_ms = 15000;
  AddTargetOptions(invoke, *invoke_target);
  invoke->callback([&run, invoke_target, fn, input, async] {
    run = [=] {
      auto body = input->Read(/*required=*/false);
      if (!body.ok()) return ReportError("invoke: " + body.status().message());
      return WithClient(*invoke_target, [&](adapters::Client& c) {
        auto r = c.Invoke(*fn, *body, *async);
        if (r.ok() && !*async) std::cout << *r << "\n";
        return r.status();
      });
    };
  });

  CLI::App* functions =
      app.add_subcommand("functions", "List deployed functions, read their logs, delete them");
  functions->require_subcommand(1);
  CLI::App* list = functions->add_subcommand("list", "Print the functions deployed at a node");
  AddTargetOptions(list, *target);
  list->callback([&run, target] {
    run = [=] {
      return WithClient(*target, [&](adapters::Client& c) {
        auto r = c.ListFunctions();
        if (!r.ok()) return r.status();
        for (const auto& f : r->functions()) {
          const auto& s = f.spec();
          std::cout << s.name() << "\t" << s.runtime() << ":" << s.handler()
                    << (s.code_generation() != 0
                            ? " (uploaded, " + std::to_string(s.code_bytes()) + " bytes)"
                            : "")
                    << "\tkeygroup=" << s.keygroup() << "\tinvocations=" << f.invocations()
                    << " errors=" << f.errors() << " timeouts=" << f.timeouts()
                    << " in_flight=" << f.in_flight() << " concurrency=" << s.concurrency()
                    << (s.owner().empty() ? "" : " owner=" + s.owner()) << "\n";
        }
        return core::Status::Ok();
      });
    };
  });
  auto tail = std::make_shared<uint32_t>(0);
  auto utc = std::make_shared<bool>(false);
  CLI::App* logs = functions->add_subcommand(
      "logs", "Print a function's log: deployments, failures, timeouts, and what it logged");
  logs->add_option("name", *fn, "Function name")->required();
  logs->add_option("--tail", *tail, "Only the last N lines (0: all the node keeps, up to 1000)")
      ->capture_default_str();
  logs->add_flag("--utc", *utc,
                 "Times in UTC (default: local time; either way ISO 8601 with milliseconds and the "
                 "offset)");
  AddTargetOptions(logs, *target);
  logs->callback([&run, target, fn, tail, utc] {
    run = [=] {
      return WithClient(*target, [&](adapters::Client& c) {
        auto r = c.FunctionLogs(*fn, *tail);
        if (!r.ok()) return r.status();
        for (const auto& line : r->lines()) {
          std::cout << adapters::ReadableFunctionLogLine(line, *utc) << "\n";
        }
        return core::Status::Ok();
      });
    };
  });
  CLI::App* del =
      functions->add_subcommand("delete", "Remove a function from a node")->alias("del");
  del->add_option("name", *fn, "Function name")->required();
  AddTargetOptions(del, *target);
  del->callback([&run, target, fn] {
    run = [=] {
      return WithClient(*target, [&](adapters::Client& c) { return c.DeleteFunction(*fn); });
    };
  });
}

}  // namespace enoki::cli
