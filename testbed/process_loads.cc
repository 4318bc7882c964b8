// The processes' windows, started and collected over the `loop_stats` request.
#include "testbed/process_loads.h"

namespace enoki::testbed {

void ProcessLoads::Start(NodeCalls& calls, Driver& driver, const std::vector<Process>& processes) {
  own_.Take(true);
  for (const auto& p : processes) {
    if (calls.down(p.name)) continue;
    proto::Request request;
    request.mutable_loop_stats()->set_reset(true);
    calls.Call("", p.name, std::move(request), [&driver, p](core::Result<proto::Response> answer) {
      std::string why = !answer.ok()                  ? answer.status().message()
                        : answer->code() != proto::OK ? answer->error()
                                                      : "";
      if (!why.empty()) {
        driver.Record("warning", p.role + " " + p.name +
                                     " did not start measuring how late it is with the run (its "
                                     "figures cover its whole life): " +
                                     why);
      }
    });
  }
}

std::vector<ProcessRecord> ProcessLoads::Collect(const std::vector<Process>& processes,
                                                 const Connect& connect,
                                                 std::vector<std::string>& warnings) {
  std::vector<ProcessRecord> out;
  out.push_back({"driver", "driver", own_.Take(false)});
  for (const auto& p : processes) {
    adapters::Client client = connect(p.name);
    proto::Request request;
    request.mutable_loop_stats();
    auto answer = client.Call(std::move(request));
    if (!answer.ok()) {
      warnings.push_back(p.role + " " + p.name +
                         " did not say how late it was: " + answer.status().message());
      continue;
    }
    out.push_back({p.name, p.role, answer->loop_stats()});
  }
  return out;
}

}  // namespace enoki::testbed
