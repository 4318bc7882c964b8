// The sandbox's checks of ChildProcesses without starting anything: which programs it admits
// (real paths inside the process directories only) and which worker users it accepts. Workers
// that run are tested through real nodes in tests/integration/process_function_test.cc.
#include "adapters/child_processes.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace enoki::adapters {
namespace {

namespace fs = std::filesystem;

class SandboxTest : public ::testing::Test {
 protected:
  SandboxTest() : loop_(1) {
    base_ = fs::temp_directory_path() / ("enoki-sandbox-unit-" + std::to_string(::getpid()));
    fs::create_directories(base_ / "fns");
    fs::create_directories(base_ / "fns-other");  // shares a prefix with fns, not a folder
    std::ofstream(base_ / "fns" / "f.py") << "#!/bin/sh\n";
    std::ofstream(base_ / "fns-other" / "g.py") << "#!/bin/sh\n";
    fs::create_symlink(base_ / "fns-other" / "g.py", base_ / "fns" / "escape.py");
    fs::create_symlink(base_ / "fns" / "f.py", base_ / "fns" / "alias.py");
    real_ = fs::canonical(base_).string();
  }
  ~SandboxTest() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  std::string Path(const std::string& rel) const { return (base_ / rel).string(); }

  EventLoop loop_;
  fs::path base_;
  std::string real_;
};

TEST_F(SandboxTest, AdmitsRealPathsInsideTheFoldersOnly) {
  auto sandbox = MakeProcessSandbox({Path("fns")}, "");
  ASSERT_TRUE(sandbox.ok()) << sandbox.status().ToString();
  EXPECT_EQ(sandbox->dirs, std::vector<std::string>{real_ + "/fns"});
  ChildProcesses children(loop_, *sandbox);
  EXPECT_EQ(*children.Admit(Path("fns/f.py")), real_ + "/fns/f.py");
  EXPECT_EQ(*children.Admit(Path("fns/alias.py")), real_ + "/fns/f.py");  // stays inside
  auto escape = children.Admit(Path("fns/escape.py"));
  EXPECT_EQ(escape.status().code(), core::Code::kPermissionDenied);
  EXPECT_EQ(escape.status().message(),
            "the program " + Path("fns/escape.py") + " leads to " + real_ +
                "/fns-other/g.py, which is outside the node's process directories "
                "(--process-dir): " +
                real_ + "/fns");
  EXPECT_EQ(children.Admit(Path("fns/../fns-other/g.py")).status().code(),
            core::Code::kPermissionDenied);
  EXPECT_EQ(children.Admit(Path("fns")).status().code(), core::Code::kPermissionDenied);
  EXPECT_EQ(children.Admit("f.py").status().code(), core::Code::kInvalidArgument);
  EXPECT_EQ(children.Admit(Path("fns/missing.py")).status().code(), core::Code::kIOError);
}

TEST_F(SandboxTest, FoldersMustExistAndRootNeverRunsWorkers) {
  EXPECT_EQ(MakeProcessSandbox({Path("nope")}, "").status().code(), core::Code::kInvalidArgument);
  EXPECT_EQ(MakeProcessSandbox({Path("fns/f.py")}, "").status().code(),
            core::Code::kInvalidArgument);
  EXPECT_EQ(MakeProcessSandbox({Path("fns")}, "no-such-user-here").status().message(),
            "--worker-user no-such-user-here: no such user");
  auto root = MakeProcessSandbox({Path("fns")}, "root");
  EXPECT_FALSE(root.ok());
  auto dflt = MakeProcessSandbox({Path("fns")}, "");
  ASSERT_TRUE(dflt.ok());
  if (::geteuid() == 0) {
    EXPECT_EQ(dflt->user, "nobody");
    EXPECT_TRUE(dflt->switch_to.has_value());
  } else {
    EXPECT_FALSE(dflt->switch_to.has_value());  // its own user: it cannot switch
  }
}

TEST(DescribeBytesTest, MebibytesKibibytesOrBytes) {
  EXPECT_EQ(DescribeBytes(256 << 20), "256 MiB");
  EXPECT_EQ(DescribeBytes(3 << 10), "3 KiB");
  EXPECT_EQ(DescribeBytes(1000), "1000 bytes");
}

}  // namespace
}  // namespace enoki::adapters
