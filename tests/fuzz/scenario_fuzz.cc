// Fuzzer of the scenario loader (libFuzzer; docs/testing.md): the input is the text of a scenario
// file, read and validated as `enoki scenario check` reads it (testbed::ParseScenario: YAML, every
// section, the link table). It must end in a scenario or an error naming what is wrong; any
// sanitizer finding, assertion, uncaught exception or hang is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "testbed/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  // Relative handler paths are taken from the file's folder: one that holds no files.
  auto scenario = enoki::testbed::ParseScenario(text, "/nonexistent/fuzz.yaml");
  scenario.status().IgnoreError();
  return 0;
}
