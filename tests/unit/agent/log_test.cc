#include "agent/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <thread>

namespace tributary {
namespace {

std::string LogText(std::string_view s) {
  std::string out;
  AppendLogText(s, &out);
  return out;
}

// A text log record is one line: what it quotes (a config error's several
// lines, a file name with a newline or bytes that are not UTF-8) cannot
// start a line of its own under journald or a container runtime.
TEST(LogTextTest, ControlBytesAndInvalidUtf8AreEscapedTheRestKept) {
  EXPECT_EQ(LogText("plain text, \"quotes\" and a \\ stay"), "plain text, \"quotes\" and a \\ stay");
  EXPECT_EQ(LogText("keeping the running one:\nr.yaml:19:1: error\n\tdetail\r"),
            "keeping the running one:\\nr.yaml:19:1: error\\n\\tdetail\\r");
  EXPECT_EQ(LogText("we\xffird\nname \"q\".log"), "we\\xffird\\nname \"q\".log");
  EXPECT_EQ(LogText(std::string("nul\0bell\a del\x7f", 14)), "nul\\x00bell\\x07 del\\x7f");
  EXPECT_EQ(LogText("\xc3\xa9t\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80"), "\xc3\xa9t\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80");
  EXPECT_EQ(LogText("cut \xc3"), "cut \\xc3");            // a sequence cut short
  EXPECT_EQ(LogText("over \xc0\xaf"), "over \\xc0\\xaf");  // an overlong '/'
}

std::string ThreadName() {
  std::ifstream in("/proc/self/task/" + std::to_string(gettid()) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

// `top -H` tells the agent's threads apart; a name past the kernel's 15
// bytes is cut, not refused (which would leave the thread unnamed).
TEST(NameThreadTest, NamesTheCallingThreadCutTo15Bytes) {
  std::string short_name, long_name;
  std::thread([&] {
    NameThread("sink:out");
    short_name = ThreadName();
    NameThread("src:a_long_component_id");
    long_name = ThreadName();
  }).join();
  EXPECT_EQ(short_name, "sink:out");
  EXPECT_EQ(long_name, "src:a_long_comp");
}

// A destination that flaps logs its first spells, then goes quiet; a
// recovery is logged only after a logged start, so the last line logged
// says the state the sink is in.
TEST(HealthLogTest, AFlappingSinkLogsItsFirstSpellsAndEachLoggedSpellsEnd) {
  HealthLog log;
  int unhealthy_lines = 0, healthy_lines = 0;
  std::optional<HealthLog::Line> last;
  for (int spell = 0; spell < 20; ++spell) {
    auto down = log.Change(false, "HTTP 503 from http://es:9200");
    if (down) {
      ++unhealthy_lines;
      EXPECT_EQ(down->level, LogLevel::kWarn);
      EXPECT_EQ(down->text, "sink is unhealthy: HTTP 503 from http://es:9200");
      last = down;
    }
    auto up = log.Change(true, "");
    if (up) {
      ++healthy_lines;
      EXPECT_EQ(up->level, LogLevel::kInfo);
      EXPECT_EQ(up->text, "sink is healthy again");
      last = up;
    }
    EXPECT_EQ(down.has_value(), up.has_value()) << "spell " << spell;
  }
  EXPECT_EQ(unhealthy_lines, 5);
  EXPECT_EQ(healthy_lines, 5);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->text, "sink is healthy again");
}

TEST(HealthLogTest, ARecoveryWithNoLoggedSpellLogsNothing) {
  HealthLog log;
  EXPECT_FALSE(log.Change(true, "").has_value());
  auto down = log.Change(false, "all brokers down");
  ASSERT_TRUE(down.has_value());
  EXPECT_EQ(down->text, "sink is unhealthy: all brokers down");
  EXPECT_TRUE(log.Change(true, "").has_value());
  EXPECT_FALSE(log.Change(true, "").has_value());
}

}  // namespace
}  // namespace tributary
