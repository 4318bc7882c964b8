// The CPU counters: getrusage(RUSAGE_SELF) for the process, /proc/stat's "cpu" line for the host.
#include "adapters/loop_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <sstream>
#include <string>

namespace enoki::adapters {
namespace {

void SetLateness(const core::LatenessHistogram& h, proto::Lateness& out) {
  out.set_count(h.count());
  out.set_p50_ns(h.Percentile(0.5).count());
  out.set_p99_ns(h.Percentile(0.99).count());
  out.set_max_ns(h.max().count());
}

}  // namespace

LoopStats::LoopStats(EventLoop& loop) : loop_(loop), since_(loop.Now()), start_(ReadCpu()) {}

LoopStats::CpuReading LoopStats::ReadCpu() {
  CpuReading r;
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) == 0) {
    auto ns = [](const timeval& t) { return int64_t{t.tv_sec} * 1000000000 + t.tv_usec * 1000; };
    r.process_ns = ns(usage.ru_utime) + ns(usage.ru_stime);
  }
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is in user)
  std::ifstream stat("/proc/stat");
  std::string line, label;
  if (!std::getline(stat, line)) return r;
  std::istringstream fields(line);
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(fields >> label >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) ||
      label != "cpu") {
    return r;
  }
  r.host_busy = user + nice + system + irq + softirq + steal;
  r.host_total = r.host_busy + idle + iowait;
  return r;
}

proto::LoopStats LoopStats::Take(bool reset) {
  proto::LoopStats out;
  core::TimePoint now = loop_.Now();
  CpuReading cpu = ReadCpu();
  SetLateness(loop_.timer_lateness(), *out.mutable_timers());
  SetLateness(loop_.delivery_lateness(), *out.mutable_deliveries());
  out.set_window_ns((now - since_).count());
  out.set_cpu_ns(cpu.process_ns - start_.process_ns);
  uint64_t total = cpu.host_total - start_.host_total;
  out.set_host_busy(cpu.host_total == 0 || total == 0
                        ? -1
                        : static_cast<double>(cpu.host_busy - start_.host_busy) /
                              static_cast<double>(total));
  long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  out.set_host_cores(cores > 0 ? static_cast<uint32_t>(cores) : 0);
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof host - 1) == 0) out.set_host(host);
  if (reset) {
    since_ = now;
    start_ = cpu;
    loop_.ResetLateness();
  }
  return out;
}

}  // namespace enoki::adapters
