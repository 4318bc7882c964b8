// Deploying and invoking native functions.
#include "node/function_host.h"

#include <algorithm>

#include <spdlog/fmt/fmt.h>

#include "net/codec.h"
#include "node/validation.h"

namespace enoki::node {

struct FunctionHost::Call {
  std::shared_ptr<Deployment> deployment;
  FunctionContext ctx;
  proto::Response response;
  Node::Done done;
  bool answered = false;
};

FunctionHost::FunctionHost(Node& node, core::Env& env, const NativeFunctions& natives,
                           ProcessRuntime process_runtime)
    : node_(node), env_(env), natives_(natives), process_runtime_(std::move(process_runtime)) {
  node_.SetFunctionHandler(
      [this](proto::Request&& request, const net::Caller& caller, Node::Done done) {
        Execute(std::move(request), caller, std::move(done));
      });
  std::vector<proto::FunctionSpec> saved = node_.TakeSavedFunctions();
  if (process_runtime_.code != nullptr) {
    // Code no stored deployment names: an upload whose deployment never became durable (the node
    // stopped between writing the files and committing), or one replaced or deleted just before.
    std::map<std::string, uint64_t> named;
    for (const auto& spec : saved) named[spec.name()] = spec.code_generation();
    for (const auto& [name, generations] : process_runtime_.code->List()) {
      for (uint64_t g : generations) {
        if (named.contains(name) && named[name] == g) continue;
        if (core::Status st = process_runtime_.code->Discard(name, g); !st.ok()) {
          env_.Log(core::LogLevel::kWarn, fmt::format("[{}] {}", node_.id(), st.ToString()));
        }
      }
    }
  }
  for (auto& spec : saved) {
    std::string name = spec.name();
    if (core::Status st = Deploy(std::move(spec)); !st.ok()) {
      env_.Log(core::LogLevel::kWarn,
               fmt::format("[{}] stored function '{}' cannot be deployed again: {}", node_.id(),
                           name, st.ToString()));
    }
  }
}

core::Status CheckNativeSpec(const NativeFunctions& natives, const proto::FunctionSpec& spec) {
  auto fn = natives.find(spec.handler());
  if (fn == natives.end()) {
    std::string names;
    for (const auto& [name, f] : natives) names += (names.empty() ? "" : ", ") + name;
    return core::Status::InvalidArgument("no native function '" + spec.handler() +
                                         "' (available: " + names + ")");
  }
  const std::vector<std::string>& known = fn->second.params;
  std::map<std::string, std::string> params(spec.params().begin(), spec.params().end());
  for (const auto& [name, value] : params) {
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string takes;
    for (const auto& k : known) takes += (takes.empty() ? "" : ", ") + k;
    return core::Status::InvalidArgument("native function '" + spec.handler() +
                                         "' has no parameter '" + name + "' (it takes " +
                                         (takes.empty() ? "none" : takes) + ")");
  }
  return core::Status::Ok();
}

FunctionHost::~FunctionHost() { node_.SetFunctionHandler(nullptr); }

void FunctionHost::Execute(proto::Request request, const net::Caller& caller, Node::Done done) {
  proto::Response response;
  response.set_id(request.id());
  response.set_served_by(node_.id());
  auto fail = [&](const core::Status& st) {
    response.set_code(net::CodeToWire(st.code()));
    response.set_error(st.message());
    done(std::move(response));
  };
  switch (request.op_case()) {
    case proto::Request::kDeployFunction: {
      proto::DeployFunctionRequest& deploy = *request.mutable_deploy_function();
      proto::FunctionSpec& spec = *deploy.mutable_spec();
      spec.set_owner(caller.name);
      spec.set_code_generation(0);
      spec.set_code_bytes(0);
      std::string name = spec.name();
      core::Status st = caller.name.empty() ? core::Status::Ok() : FitQuota(spec, caller);
      if (st.ok() && !deploy.files().empty()) st = StoreUpload(spec, deploy.files());
      uint64_t generation = spec.code_generation();
      if (st.ok()) st = Deploy(std::move(spec));
      if (!st.ok()) {
        if (generation != 0) {
          // The new code runs nowhere: it goes at once; the deployment before it is untouched.
          if (core::Status gone = process_runtime_.code->Discard(name, generation); !gone.ok()) {
            env_.Log(core::LogLevel::kWarn, fmt::format("[{}] {}", node_.id(), gone.ToString()));
          }
        }
        return fail(st);
      }
      // Answered once the deployment is durable: it survives a restart of the node. The code
      // it replaced is removed then, not before: until the commit, a restart runs the old one.
      node_.SaveFunction(name, &functions_.at(name)->spec);
      if (process_runtime_.code != nullptr) {
        done = [this, name, done = std::move(done)](proto::Response&& r) {
          DropOldCode(name);
          done(std::move(r));
        };
      }
      return node_.CompleteAfterCommit(std::move(done), std::move(response));
    }
    case proto::Request::kDeleteFunction: {
      const std::string& name = request.delete_function().name();
      if (functions_.erase(name) == 0) {
        return fail(
            core::Status::NotFound("function '" + name + "' is not deployed at " + node_.id()));
      }
      node_.SaveFunction(name, nullptr);
      if (process_runtime_.code != nullptr) {
        done = [this, name, done = std::move(done)](proto::Response&& r) {
          DropOldCode(name);
          done(std::move(r));
        };
      }
      return node_.CompleteAfterCommit(std::move(done), std::move(response));
    }
    case proto::Request::kListFunctions: {
      auto* list = response.mutable_functions();
      for (const auto& [name, d] : functions_) {
        auto* info = list->add_functions();
        *info->mutable_spec() = d->spec;
        info->set_invocations(d->invocations);
        info->set_errors(d->errors);
        info->set_timeouts(d->timeouts);
        info->set_in_flight(d->in_flight);
      }
      return done(std::move(response));
    }
    case proto::Request::kInvoke:
      return Invoke(request.invoke(), std::move(response), std::move(done));
    case proto::Request::kFunctionLogs: {
      const auto& r = request.function_logs();
      auto it = functions_.find(r.name());
      if (it == functions_.end()) {
        return fail(
            core::Status::NotFound("function '" + r.name() + "' is not deployed at " + node_.id()));
      }
      const auto& lines = it->second->log->lines();
      size_t skip = r.tail() == 0 || r.tail() >= lines.size() ? 0 : lines.size() - r.tail();
      for (size_t i = skip; i < lines.size(); ++i) response.mutable_logs()->add_lines(lines[i]);
      return done(std::move(response));
    }
    default:
      return fail(core::Status::Internal("not a function request"));
  }
}

core::Status FunctionHost::FitQuota(proto::FunctionSpec& spec, const net::Caller& caller) const {
  const net::Quota& quota = caller.quota;
  std::string who = "client '" + caller.name + "'";
  auto raise = [&](const std::string& what) {
    return " (" + what + " in node " + node_.id() + "'s access file raises the quota)";
  };
  uint32_t functions = 0;
  uint32_t workers = 0;
  for (const auto& [name, d] : functions_) {
    if (name == spec.name() || d->spec.owner() != caller.name) continue;  // a redeploy replaces
    ++functions;
    if (d->spec.runtime() == "process") workers += d->spec.concurrency();
  }
  bool process = spec.runtime() == "process";
  if (spec.concurrency() == 0) {
    uint32_t room = std::min(kDefaultConcurrency, quota.concurrency);
    if (process) room = std::min(room, quota.workers - std::min(workers, quota.workers));
    spec.set_concurrency(std::max(room, 1u));
  }
  if (spec.concurrency() > quota.concurrency) {
    return core::Status::ResourceExhausted(
        who + " may give a function a concurrency of at most " + std::to_string(quota.concurrency) +
        ", and '" + spec.name() + "' asks for " + std::to_string(spec.concurrency()) +
        raise("concurrency=N"));
  }
  if (functions >= quota.functions) {
    return core::Status::ResourceExhausted(
        who + " has deployed " + std::to_string(functions) +
        " functions, as many as its quota allows (functions=" + std::to_string(quota.functions) +
        "): delete one" + raise("functions=N"));
  }
  if (process && workers + spec.concurrency() > quota.workers) {
    return core::Status::ResourceExhausted(
        who + " may run at most " + std::to_string(quota.workers) +
        " process workers (the sum of its process functions' concurrency); its others hold " +
        std::to_string(workers) + " and '" + spec.name() + "' asks for " +
        std::to_string(spec.concurrency()) + ": deploy it with a lower --concurrency" +
        raise("workers=N"));
  }
  return core::Status::Ok();
}

core::Status FunctionHost::Deploy(proto::FunctionSpec spec) {
  ENOKI_RETURN_IF_ERROR(ValidateName("function name", spec.name()));
  ENOKI_RETURN_IF_ERROR(ValidateName("keygroup", spec.keygroup()));
  if (spec.runtime().empty()) spec.set_runtime("native");
  if (spec.timeout_ms() == 0) spec.set_timeout_ms(kDefaultTimeoutMs);
  if (spec.concurrency() == 0) spec.set_concurrency(kDefaultConcurrency);
  if (spec.concurrency() > kMaxConcurrency) {
    return core::Status::InvalidArgument("function '" + spec.name() + "': a concurrency of " +
                                         std::to_string(spec.concurrency()) + " is over the " +
                                         std::to_string(kMaxConcurrency) + " a node allows");
  }
  if (spec.runtime() != "process" && spec.has_limits()) {
    return core::Status::InvalidArgument("function '" + spec.name() +
                                         "': only runtime 'process' takes worker limits");
  }
  auto d = std::make_shared<Deployment>();
  auto old = functions_.find(spec.name());
  d->log = old != functions_.end() ? old->second->log : std::make_shared<FunctionLog>();
  if (spec.runtime() == "native") {
    ENOKI_RETURN_IF_ERROR(CheckNativeSpec(natives_, spec));
    d->fn = natives_.at(spec.handler()).run;
  } else if (spec.runtime() == "process") {
    if (process_runtime_.processes == nullptr) {
      return core::Status::InvalidArgument(process_runtime_.off);
    }
    if (spec.handler().empty()) {
      return core::Status::InvalidArgument("runtime 'process' needs the program's path as handler");
    }
    auto limits = ProcessFunction::Limits(spec, process_runtime_.workers.limits);
    if (!limits.ok()) return limits.status();
    // Uploaded code runs from the node's copy: the handler is a path inside it.
    proto::FunctionSpec run = spec;
    if (spec.code_generation() != 0) {
      if (process_runtime_.code == nullptr) {
        return core::Status::FailedPrecondition("function '" + spec.name() +
                                                "' runs uploaded code, which node " + node_.id() +
                                                " does not keep");
      }
      auto folder = process_runtime_.code->Folder(spec.name(), spec.code_generation());
      if (!folder.ok()) return folder.status();
      run.set_handler(*folder + "/" + spec.handler());
    }
    d->process =
        std::make_shared<ProcessFunction>(*process_runtime_.processes, env_, run, node_.id(),
                                          process_runtime_.workers, *limits, d->log);
    core::Status st = d->process->Start();
    if (!st.ok()) {
      return core::Status(
          st.code(), "function '" + spec.name() + "': " + st.message() +
                         (spec.code_generation() != 0 ? " (uploaded code)"
                                                      : " (a path on node " + node_.id() + ")"));
    }
  } else {
    return core::Status::InvalidArgument("runtime '" + spec.runtime() +
                                         "' is not supported; available: native, process");
  }
  d->spec = std::move(spec);
  d->log->Add(env_.WallMicros(), 0,
              "deployed " + d->spec.runtime() + ":" + d->spec.handler() + " on keygroup " +
                  d->spec.keygroup());
  // A redeploy replaces the entry; calls in flight keep the deployment they started with.
  functions_[d->spec.name()] = std::move(d);
  return core::Status::Ok();
}

core::Status FunctionHost::StoreUpload(proto::FunctionSpec& spec, const CodeStore::Files& files) {
  if (spec.runtime() != "process") {
    return core::Status::InvalidArgument("function '" + spec.name() + "': only runtime 'process' " +
                                         "takes uploaded files (runtime '" + spec.runtime() + "')");
  }
  if (process_runtime_.processes == nullptr) {
    return core::Status::InvalidArgument(process_runtime_.off);
  }
  if (process_runtime_.code == nullptr) {
    return core::Status::PermissionDenied("node " + node_.id() +
                                          " takes no uploaded code: it runs only programs already "
                                          "on its host (an operator allows uploads with "
                                          "enoki node --allow-upload)");
  }
  ENOKI_RETURN_IF_ERROR(ValidateName("function name", spec.name()));
  auto bytes = CheckUpload(spec.name(), spec.handler(), files, process_runtime_.max_upload_bytes);
  if (!bytes.ok()) return bytes.status();
  // After every generation stored, also one a deployment that never became durable left.
  uint64_t generation = 1;
  auto stored = process_runtime_.code->List();
  if (auto it = stored.find(spec.name()); it != stored.end() && !it->second.empty()) {
    generation = *it->second.rbegin() + 1;
  }
  auto folder = process_runtime_.code->Write(spec.name(), generation, files);
  if (!folder.ok()) return folder.status();
  spec.set_code_generation(generation);
  spec.set_code_bytes(*bytes);
  return core::Status::Ok();
}

void FunctionHost::DropOldCode(const std::string& name) {
  uint64_t keep = 0;
  if (auto it = functions_.find(name); it != functions_.end()) {
    keep = it->second->spec.code_generation();
  }
  auto stored = process_runtime_.code->List();
  auto it = stored.find(name);
  if (it == stored.end()) return;
  for (uint64_t g : it->second) {
    if (g == keep) continue;
    if (core::Status st = process_runtime_.code->Discard(name, g); !st.ok()) {
      env_.Log(core::LogLevel::kWarn, fmt::format("[{}] {}", node_.id(), st.ToString()));
    }
  }
}

core::Result<uint64_t> CheckUpload(const std::string& name, const std::string& handler,
                                   const CodeStore::Files& files, uint64_t max_bytes) {
  std::string of = " of function '" + name + "'";
  if (files.size() > static_cast<int>(kMaxUploadFiles)) {
    return core::Status::ResourceExhausted("the upload" + of + " holds " +
                                           std::to_string(files.size()) + " files; a node takes " +
                                           "at most " + std::to_string(kMaxUploadFiles));
  }
  uint64_t total = 0;  // paths too: they travel and are written as well
  for (const auto& f : files) total += f.data().size() + f.path().size();
  if (total > max_bytes) {
    return core::Status::ResourceExhausted(
        "the upload" + of + " holds " + std::to_string(total) +
        " bytes (files and their paths), over this node's limit " + "of " +
        std::to_string(max_bytes) + " bytes (--max-upload-bytes)");
  }
  std::map<std::string, bool> paths;  // path -> executable
  for (const auto& f : files) {
    const std::string& p = f.path();
    std::string shown = "uploaded file '" + p.substr(0, 200) + "'" + of;
    if (p.empty()) return core::Status::InvalidArgument("an uploaded file" + of + " has no path");
    if (p.size() > kMaxUploadPathBytes) {
      return core::Status::InvalidArgument(shown + ": a path longer than " +
                                           std::to_string(kMaxUploadPathBytes) + " bytes");
    }
    if (p.front() == '/') {
      return core::Status::InvalidArgument(shown + " is absolute: paths must be relative to " +
                                           "the uploaded folder");
    }
    for (unsigned char c : p) {
      if (c < 0x20 || c == 0x7f) {
        return core::Status::InvalidArgument(shown + " holds a control character");
      }
    }
    for (size_t pos = 0; pos <= p.size();) {
      size_t end = std::min(p.find('/', pos), p.size());
      std::string_view part(p.data() + pos, end - pos);
      if (part == "..") {
        return core::Status::InvalidArgument(shown + " escapes the uploaded folder ('..')");
      }
      if (part.empty() || part == ".") {
        return core::Status::InvalidArgument(shown + " has an empty or '.' part");
      }
      if (part.size() > kMaxUploadNameBytes) {
        return core::Status::InvalidArgument(shown + " has a part longer than " +
                                             std::to_string(kMaxUploadNameBytes) + " bytes");
      }
      pos = end + 1;
    }
    if (!paths.emplace(p, f.executable()).second) {
      return core::Status::InvalidArgument(shown + " is there twice");
    }
  }
  // A path that is also another's folder: the paths inside it sort from p + "/" on.
  for (const auto& [p, x] : paths) {
    auto at = paths.lower_bound(p + "/");
    if (at != paths.end() && at->first.starts_with(p + "/")) {
      return core::Status::InvalidArgument("uploaded file '" + p.substr(0, 200) + "'" + of +
                                           " is also a folder of other files");
    }
  }
  auto h = paths.find(handler);
  if (h == paths.end()) {
    std::string some;
    size_t n = 0;
    for (const auto& [p, x] : paths) {
      if (n++ == 5) {
        some += ", ...";
        break;
      }
      some += (some.empty() ? "" : ", ") + p;
    }
    return core::Status::InvalidArgument("the handler '" + handler + "'" + of +
                                         " is not among the uploaded files (" + some +
                                         "): name the program relative to the uploaded folder");
  }
  if (!h->second) {
    return core::Status::InvalidArgument(
        "the handler '" + handler + "'" + of +
        " is not executable in the upload: make it so (chmod +x, with a #! line)");
  }
  return total;
}

void FunctionHost::Invoke(const proto::InvokeRequest& request, proto::Response response,
                          Node::Done done) {
  auto it = functions_.find(request.function());
  if (it == functions_.end()) {
    response.set_code(proto::NOT_FOUND);
    response.set_error("function '" + request.function() + "' is not deployed at " + node_.id());
    return done(std::move(response));
  }
  std::shared_ptr<Deployment> d = it->second;
  if (d->in_flight >= d->spec.concurrency()) {
    response.set_code(proto::UNAVAILABLE);
    response.set_error("function '" + d->spec.name() + "' already runs " +
                       std::to_string(d->in_flight) + " invocations, its concurrency limit");
    return done(std::move(response));
  }
  if (request.async()) {
    // Accepted: the caller hears nothing more; the counters record how it went.
    done(proto::Response(response));
    done = [](proto::Response&&) {};
  }
  uint64_t invocation = next_invocation_++;
  FunctionContext::Params params(d->spec.params().begin(), d->spec.params().end());
  // Not make_shared: the deadline queue's weak reference would keep the whole call's memory
  // until the call leaves the queue, which an earlier call still running can put off.
  std::shared_ptr<Call> call(
      new Call{d,
               FunctionContext(node_, d->spec.name(), d->spec.keygroup(), request.body(),
                               std::move(params), invocation, d->log),
               std::move(response), std::move(done)});
  ++d->in_flight;
  d->deadlines.emplace_back(env_.Now() + std::chrono::milliseconds(d->spec.timeout_ms()), call);
  ArmDeadline(d);
  if (invoke_hook_) invoke_hook_(d->spec);
  Task<core::Result<std::string>> task = d->fn ? d->fn(call->ctx) : d->process->Run(call->ctx);
  Spawn<core::Result<std::string>>(std::move(task), [call](core::Result<std::string> result) {
    Deployment& d = *call->deployment;
    --d.in_flight;
    Finish(*call, std::move(result), false);
    // Calls mostly end in the order they started: the first ones over leave at once, and the
    // timer, when it fires, finds little to do.
    while (!d.deadlines.empty()) {
      std::shared_ptr<Call> first = d.deadlines.front().second.lock();
      if (first && !first->answered) break;
      d.deadlines.pop_front();
    }
  });
}

void FunctionHost::ArmDeadline(const std::shared_ptr<Deployment>& d) {
  if (d->deadline_armed || d->deadlines.empty()) return;
  d->deadline_armed = true;
  // Holds neither the host nor the deployment: a deployment that was replaced or deleted, its
  // calls over, goes at once (with its process workers), not when this timer is due.
  env_.Schedule(d->deadlines.front().first - env_.Now(),
                [self = std::weak_ptr<FunctionHost*>(self_), weak = std::weak_ptr<Deployment>(d)] {
                  std::shared_ptr<Deployment> d = weak.lock();
                  if (!d) return;  // every call holds its deployment: none is left to time out
                  d->deadline_armed = false;
                  if (std::shared_ptr<FunctionHost*> host = self.lock()) (*host)->OnDeadline(d);
                });
}

void FunctionHost::OnDeadline(const std::shared_ptr<Deployment>& d) {
  core::TimePoint now = env_.Now();
  while (!d->deadlines.empty()) {
    auto [deadline, weak] = d->deadlines.front();
    std::shared_ptr<Call> call = weak.lock();
    if (call && !call->answered && deadline > now) break;
    d->deadlines.pop_front();
    if (!call || call->answered) continue;
    Finish(*call,
           core::Status::DeadlineExceeded("function '" + d->spec.name() +
                                          "' ran past its timeout of " +
                                          std::to_string(d->spec.timeout_ms()) + " ms"),
           true);
    // A worker serves one call at a time: the one still running this call is replaced.
    if (d->process) d->process->Abort(call->ctx.invocation());
  }
  ArmDeadline(d);
}

void FunctionHost::Finish(Call& call, core::Result<std::string> result, bool timed_out) {
  if (call.answered) return;  // the timeout answered already; this late result is dropped
  call.answered = true;
  Deployment& d = *call.deployment;
  ++d.invocations;
  if (!result.ok()) ++d.errors;
  if (timed_out) ++d.timeouts;
  if (!result.ok()) {
    d.log->Add(call.ctx.WallMicros(), call.ctx.invocation(),
               std::string(timed_out ? "timed out: " : "failed: ") + result.status().ToString());
  }
  proto::Response response = std::move(call.response);
  if (result.ok()) {
    response.mutable_invoke()->set_body(std::move(result.value()));
  } else {
    response.set_code(net::CodeToWire(result.status().code()));
    response.set_error(result.status().message());
  }
  call.done(std::move(response));
}

void FunctionHost::WriteMetrics(MetricsWriter& w) const {
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const Deployment&);
  };
  static const Family kFamilies[] = {
      {"enoki_function_calls_total", "counter",
       "Invocations of the function at this node that finished, with any outcome (since it was "
       "last deployed or the node started).",
       [](const Deployment& d) { return static_cast<double>(d.invocations); }},
      {"enoki_function_errors_total", "counter",
       "Invocations of the function that failed, timeouts included.",
       [](const Deployment& d) { return static_cast<double>(d.errors); }},
      {"enoki_function_timeouts_total", "counter", "Invocations of the function that timed out.",
       [](const Deployment& d) { return static_cast<double>(d.timeouts); }},
      {"enoki_function_in_flight", "gauge", "Invocations of the function running now.",
       [](const Deployment& d) { return static_cast<double>(d.in_flight); }},
      {"enoki_function_workers", "gauge",
       "Worker processes of a process function alive now, busy or idle (0 for native ones).",
       [](const Deployment& d) {
         return d.process ? static_cast<double>(d.process->workers()) : 0.0;
       }},
  };
  for (const auto& f : kFamilies) {
    w.Family(f.name, f.type, f.help);
    for (const auto& [name, d] : functions_) w.Sample(f.name, {{"function", name}}, f.value(*d));
  }
}

}  // namespace enoki::node
