// Process functions: workers, the worker protocol, restarts.
#include "node/process_function.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "net/codec.h"

namespace enoki::node {
namespace {

using std::chrono::milliseconds;

// The frames a worker may write: how many of the header's numbers are field lengths (a range for
// put, whose third field, the expected version, is optional) and whether one more number follows.
struct VerbLayout {
  const char* verb;
  size_t min_fields;
  size_t max_fields;
  bool number;
};
constexpr VerbLayout kWorkerVerbs[] = {
    {"return", 1, 1, false}, {"fail", 1, 1, false},   {"log", 1, 1, false}, {"get", 1, 1, false},
    {"put", 2, 3, false},    {"delete", 1, 1, false}, {"scan", 2, 2, true}, {"call", 3, 3, true},
};

// A frame from the node: "VERB N1 N2 ...\n" and then fields of those lengths.
std::string MakeFrame(std::string_view verb, const std::vector<std::string_view>& fields) {
  std::string frame(verb);
  size_t total = 0;
  for (auto f : fields) {
    frame += ' ';
    frame += std::to_string(f.size());
    total += f.size();
  }
  frame += '\n';
  frame.reserve(frame.size() + total);
  for (auto f : fields) frame.append(f);
  return frame;
}

std::string ErrorFrame(const core::Status& st) {
  return "error " + proto::Code_Name(net::CodeToWire(st.code())) + " " +
         std::to_string(st.message().size()) + "\n" + st.message();
}

constexpr core::Duration kMinRestartDelay = milliseconds(100);
constexpr core::Duration kMaxRestartDelay = milliseconds(10000);
constexpr core::Duration kHealthyLife = milliseconds(1000);

}  // namespace

std::string ProcessFunction::ParamVariable(const std::string& name) {
  std::string var = "ENOKI_PARAM_";
  for (unsigned char c : name) var += std::isalnum(c) ? static_cast<char>(std::toupper(c)) : '_';
  return var;
}

core::Result<core::ProcessEnv::Limits> ProcessFunction::Limits(
    const proto::FunctionSpec& spec, const core::ProcessEnv::Limits& node) {
  const proto::WorkerLimits& asked = spec.limits();
  core::ProcessEnv::Limits limits;
  struct Field {
    const char* what;  // after the number, in an error
    const char* option;
    uint64_t asked;
    uint64_t node;
    uint64_t* out;
  };
  for (const Field& f : {
           Field{"bytes of memory", "--worker-memory", asked.memory_bytes(), node.memory_bytes,
                 &limits.memory_bytes},
           Field{"CPU seconds", "--worker-cpu-seconds", asked.cpu_seconds(), node.cpu_seconds,
                 &limits.cpu_seconds},
           Field{"open files", "--worker-files", asked.open_files(), node.open_files,
                 &limits.open_files},
           Field{"processes", "--worker-procs", asked.processes(), node.processes,
                 &limits.processes},
       }) {
    if (f.asked != 0 && f.node != 0 && f.asked > f.node) {
      return core::Status::InvalidArgument("function '" + spec.name() + "' asks for " +
                                           std::to_string(f.asked) + " " + f.what +
                                           " per worker; this node allows at most " +
                                           std::to_string(f.node) + " (" + f.option + ")");
    }
    *f.out = f.asked != 0 ? f.asked : f.node;
  }
  return limits;
}

ProcessFunction::ProcessFunction(core::ProcessEnv& processes, core::Env& env,
                                 const proto::FunctionSpec& spec, const std::string& node_id,
                                 const WorkerOptions& options,
                                 const core::ProcessEnv::Limits& limits,
                                 std::shared_ptr<FunctionLog> log)
    : processes_(processes),
      env_(env),
      name_(spec.name()),
      max_workers_(spec.concurrency()),
      idle_timeout_(options.idle_timeout),
      log_(std::move(log)) {
  spec_.argv = {spec.handler()};
  spec_.limits = limits;
  spec_.env = options.env;
  spec_.env["ENOKI_FUNCTION"] = spec.name();
  spec_.env["ENOKI_KEYGROUP"] = spec.keygroup();
  spec_.env["ENOKI_NODE_ID"] = node_id;
  for (const auto& [name, value] : spec.params()) spec_.env[ParamVariable(name)] = value;
}

ProcessFunction::~ProcessFunction() {
  for (auto& w : workers_) processes_.Kill(w->id);
}

core::Status ProcessFunction::Start() { return StartWorker().status(); }

core::Result<std::shared_ptr<ProcessFunction::Worker>> ProcessFunction::StartWorker() {
  auto w = std::make_shared<Worker>();
  std::weak_ptr<ProcessFunction> self = weak_from_this();
  std::weak_ptr<Worker> weak_w = w;
  // Each handler keeps this function alive while it runs: resuming a call may drop the last
  // other reference to it (a call that finishes after a redeploy).
  core::ProcessEnv::Handlers handlers;
  handlers.on_stdout = [self, weak_w](std::string_view bytes) {
    auto f = self.lock();
    auto w = weak_w.lock();
    if (f && w) f->OnStdout(w, bytes);
  };
  handlers.on_stderr = [self, weak_w](std::string_view bytes) {
    auto f = self.lock();
    auto w = weak_w.lock();
    if (f && w) f->OnStderr(*w, bytes);
  };
  handlers.on_exit = [self, weak_w](const std::string& how) {
    auto f = self.lock();
    auto w = weak_w.lock();
    if (f && w) f->Lose(w, "worker " + how, /*kill=*/false);
  };
  auto id = processes_.Spawn(spec_, std::move(handlers));
  if (!id.ok()) return id.status();
  w->id = *id;
  w->started = env_.Now();
  w->idle_since = w->started;
  workers_.push_back(w);
  StopWhenIdle(w);
  return w;
}

void ProcessFunction::StopWhenIdle(const std::shared_ptr<Worker>& w) {
  if (idle_timeout_ <= core::Duration(0) || w->idle_check) return;
  w->idle_check = true;
  core::Duration wait =
      w->invocation != 0 ? idle_timeout_ : w->idle_since + idle_timeout_ - env_.Now();
  std::weak_ptr<ProcessFunction> self = weak_from_this();
  std::weak_ptr<Worker> weak_w = w;
  env_.Schedule(std::max(wait, core::Duration(0)), [self, weak_w] {
    auto f = self.lock();
    auto w = weak_w.lock();
    if (!f || !w || w->gone) return;
    w->idle_check = false;
    if (w->invocation != 0 || f->env_.Now() - w->idle_since < f->idle_timeout_) {
      return f->StopWhenIdle(w);  // busy, or idle for less: look again later
    }
    // Not lost: no call fails and none is restarted; the next call starts a worker again.
    w->gone = "stopped";
    f->processes_.Kill(w->id);
    std::erase(f->workers_, w);
    f->log_->Add(
        f->env_.WallMicros(), 0,
        "worker stopped: idle for " +
            std::to_string(std::chrono::duration_cast<milliseconds>(f->idle_timeout_).count()) +
            " ms");
  });
}

void ProcessFunction::RestartLater(core::Duration delay) {
  if (restart_pending_) return;
  restart_pending_ = true;
  std::weak_ptr<ProcessFunction> self = weak_from_this();
  env_.Schedule(delay, [self] {
    auto f = self.lock();
    if (!f) return;
    f->restart_pending_ = false;
    if (!f->workers_.empty()) return;  // a call started one meanwhile
    auto w = f->StartWorker();
    if (!w.ok()) {
      f->log_->Add(f->env_.WallMicros(), 0, "cannot restart a worker: " + w.status().message());
      f->restart_delay_ = std::clamp(2 * f->restart_delay_, kMinRestartDelay, kMaxRestartDelay);
      f->RestartLater(f->restart_delay_);
    }
  });
}

void ProcessFunction::Lose(std::shared_ptr<Worker> w, const std::string& why, bool kill) {
  // `w` is a copy: the caller's may be the element of workers_ that the erase below moves.
  if (w->gone) return;
  w->gone = why;
  if (!w->err.empty()) LogStderrLine(*w);  // a last line without its newline
  if (kill) processes_.Kill(w->id);
  std::erase(workers_, w);
  log_->Add(env_.WallMicros(), w->invocation, why);
  // A worker that died young may die again at once: wait longer each time, up to a limit.
  bool young = env_.Now() - w->started < kHealthyLife;
  restart_delay_ = young ? std::clamp(2 * restart_delay_, kMinRestartDelay, kMaxRestartDelay)
                         : core::Duration(0);
  if (workers_.empty()) RestartLater(restart_delay_);
  Wake(*w);
}

void ProcessFunction::Wake(Worker& w) {
  if (!w.waiter) return;
  auto h = std::exchange(w.waiter, nullptr);
  h.resume();
}

void ProcessFunction::Abort(uint64_t invocation) {
  auto it = std::find_if(workers_.begin(), workers_.end(),
                         [&](const auto& w) { return w->invocation == invocation; });
  if (it == workers_.end()) return;
  std::shared_ptr<Worker> w = *it;
  Lose(w, "worker killed: its call ran past the timeout", /*kill=*/true);
}

void ProcessFunction::OnStderr(Worker& w, std::string_view bytes) {
  constexpr size_t kMaxLine = 4096;
  for (char c : bytes) {
    if (c == '\n' || w.err.size() == kMaxLine) {
      LogStderrLine(w);
      if (c == '\n') continue;
    }
    w.err += c;
  }
}

void ProcessFunction::LogStderrLine(Worker& w) {
  log_->Add(env_.WallMicros(), w.invocation, "stderr: " + w.err);
  w.err.clear();
}

void ProcessFunction::OnStdout(const std::shared_ptr<Worker>& w, std::string_view bytes) {
  if (w->gone) return;
  w->out.append(bytes);
  core::Status st = Parse(*w);
  if (st.ok() && w->invocation == 0 && !w->frames.empty()) {
    st = core::Status::InvalidArgument("it wrote '" + w->frames.front().verb +
                                       "' while it served no call");
  }
  if (!st.ok()) return Lose(w, "worker broke the protocol: " + st.message(), /*kill=*/true);
  if (!w->frames.empty()) Wake(*w);
}

core::Status ProcessFunction::Parse(Worker& w) {
  while (true) {
    size_t eol = w.out.find('\n');
    if (eol == std::string::npos) {
      if (w.out.size() > kMaxHeaderBytes) {
        return core::Status::InvalidArgument("a header line longer than 64 KiB");
      }
      return core::Status::Ok();
    }
    std::string_view header(w.out.data(), eol);
    std::vector<std::string_view> words;
    for (size_t pos = 0; pos < header.size();) {
      size_t end = header.find(' ', pos);
      if (end == std::string_view::npos) end = header.size();
      if (end > pos) words.push_back(header.substr(pos, end - pos));
      pos = end + 1;
    }
    if (words.empty()) return core::Status::InvalidArgument("an empty header line");
    const VerbLayout* layout = nullptr;
    for (const auto& l : kWorkerVerbs) {
      if (words[0] == l.verb) layout = &l;
    }
    std::string shown(words[0].substr(0, 40));
    if (layout == nullptr) return core::Status::InvalidArgument("unknown verb '" + shown + "'");
    std::vector<uint64_t> numbers;
    for (size_t i = 1; i < words.size(); ++i) {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(words[i].data(), words[i].data() + words[i].size(), n);
      if (ec != std::errc() || p != words[i].data() + words[i].size()) {
        return core::Status::InvalidArgument("'" + shown + "' with a non-number '" +
                                             std::string(words[i].substr(0, 40)) + "'");
      }
      numbers.push_back(n);
    }
    size_t lengths = numbers.size() - (layout->number ? 1 : 0);
    if (numbers.size() < (layout->number ? 1u : 0u) || lengths < layout->min_fields ||
        lengths > layout->max_fields) {
      return core::Status::InvalidArgument("'" + shown + "' with " +
                                           std::to_string(numbers.size()) + " numbers");
    }
    uint64_t total = 0;
    for (size_t i = 0; i < lengths; ++i) {
      if (numbers[i] > kMaxFieldBytes) {
        return core::Status::InvalidArgument("'" + shown + "' with a field over 64 MiB");
      }
      total += numbers[i];
    }
    if (w.out.size() - eol - 1 < total) return core::Status::Ok();  // the rest is still coming
    Frame f;
    f.verb = layout->verb;
    size_t pos = eol + 1;
    for (size_t i = 0; i < lengths; ++i) {
      f.fields.push_back(w.out.substr(pos, numbers[i]));
      pos += numbers[i];
    }
    if (layout->number) f.number = numbers.back();
    w.out.erase(0, pos);
    w.frames.push_back(std::move(f));
  }
}

core::Result<ProcessFunction::Frame> ProcessFunction::NextFrame::await_resume() {
  if (w->frames.empty()) return core::Status::Internal(*w->gone);
  Frame f = std::move(w->frames.front());
  w->frames.pop_front();
  return f;
}

Task<core::Result<std::string>> ProcessFunction::Run(FunctionContext& ctx) {
  std::shared_ptr<Worker> w;
  for (const auto& candidate : workers_) {
    if (candidate->invocation == 0) {
      w = candidate;
      break;
    }
  }
  if (!w) {
    if (workers_.size() >= max_workers_) {
      co_return core::Status::Unavailable("function '" + name_ + "' has all its " +
                                          std::to_string(max_workers_) + " workers busy");
    }
    auto started = StartWorker();
    if (!started.ok()) co_return started.status();
    w = std::move(started.value());
  }
  w->invocation = ctx.invocation();
  processes_.Write(w->id, MakeFrame("invoke " + std::to_string(ctx.invocation()), {ctx.body()}));
  core::Result<std::string> result = core::Status::Internal("no result");
  while (true) {
    core::Result<Frame> frame = co_await NextFrame{w.get()};
    if (!frame.ok()) {
      result = core::Status::Internal("function '" + name_ + "': " + frame.status().message());
      break;
    }
    if (frame->verb == "return") {
      result = std::move(frame->fields[0]);
      break;
    }
    if (frame->verb == "fail") {
      result = core::Status::Internal("function failed: " + frame->fields[0]);
      break;
    }
    if (frame->verb == "log") {
      ctx.Log(frame->fields[0]);
      continue;
    }
    std::string reply = co_await Serve(ctx, std::move(frame.value()));
    if (!w->gone) processes_.Write(w->id, reply);
  }
  w->invocation = 0;
  w->idle_since = env_.Now();
  if (!w->gone && !w->frames.empty()) {
    Lose(w, "worker broke the protocol: it wrote '" + w->frames.front().verb + "' after its result",
         /*kill=*/true);
  }
  co_return result;
}

Task<std::string> ProcessFunction::Serve(FunctionContext& ctx, Frame frame) {
  auto& f = frame.fields;
  if (frame.verb == "get") {
    auto r = co_await ctx.kv().GetVersioned(std::move(f[0]));
    if (!r.ok()) co_return ErrorFrame(r.status());
    if (!r->found) {
      co_return ErrorFrame(
          core::Status::NotFound("key not found in keygroup '" + ctx.kv().keygroup() + "'"));
    }
    std::string version = r->version.ToString();
    co_return MakeFrame("ok", {r->value, version});
  }
  if (frame.verb == "put") {
    std::optional<Version> expected;
    if (f.size() == 3) {
      expected = Version::Parse(f[2]);
      if (!expected) {
        co_return ErrorFrame(
            core::Status::InvalidArgument("'" + f[2].substr(0, 80) + "' is not a version"));
      }
    }
    core::Status st = co_await ctx.kv().Put(std::move(f[0]), std::move(f[1]), expected);
    if (!st.ok()) co_return ErrorFrame(st);
    co_return MakeFrame("ok", {});
  }
  if (frame.verb == "delete") {
    core::Status st = co_await ctx.kv().Delete(std::move(f[0]));
    if (!st.ok()) co_return ErrorFrame(st);
    co_return MakeFrame("ok", {});
  }
  if (frame.verb == "scan") {
    uint32_t limit = static_cast<uint32_t>(std::min<uint64_t>(frame.number, UINT32_MAX));
    auto r = co_await ctx.kv().Scan(std::move(f[0]), std::move(f[1]), limit);
    if (!r.ok()) co_return ErrorFrame(r.status());
    std::vector<std::string_view> fields;
    for (const auto& [k, v] : *r) {
      fields.push_back(k);
      fields.push_back(v);
    }
    co_return MakeFrame("ok", fields);
  }
  // call
  auto r = co_await ctx.Call(std::move(f[0]), std::move(f[1]), std::move(f[2]), frame.number != 0);
  if (!r.ok()) co_return ErrorFrame(r.status());
  co_return MakeFrame("ok", {*r});
}

}  // namespace enoki::node
