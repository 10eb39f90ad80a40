// Randomized model test of the `file` source: random sequences of append,
// rename-rotate, copytruncate, truncate, delete and restart run against the
// real binary, checked against a model of the expected output (every line
// written exactly once). Seeded and reproducible: set
// TRIBUTARY_MODEL_SEED=<n> to replay one seed; the op log and the logs of
// every agent run of the failing seed are printed on failure
// (TRIBUTARY_MODEL_LOG=debug for the source's debug lines).

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "tests/support/test_util.h"

namespace tributary::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class Model {
 public:
  Model(uint32_t seed, const TempDir& dir) : rng_(seed), dir_(dir) {
    fs::create_directories(dir_ / "logs");
    app_ = dir_ / "logs/app.log";
    Open();
  }
  ~Model() { ::close(fd_); }

  std::string Config() const {
    const char* level = std::getenv("TRIBUTARY_MODEL_LOG");
    return "data_dir: " + (dir_ / "data") +
           "\napi: { address: 127.0.0.1:0 }\nshutdown_timeout_secs: 20\n" +
           (level ? "log: { level: " + std::string(level) + " }\n" : std::string()) +
           "sources:\n  in:\n    type: file\n    include: [\"" +
           app_ + "*\"]\n    glob_minimum_cooldown_ms: 50\n    rotate_wait_secs: 0.2\n"
           "sinks:\n  out:\n    type: file\n    inputs: [in]\n    path: " +
           out() + "\n    encoding: { codec: text }\n";
  }
  std::string out() const { return dir_ / "out.log"; }

  void Start() {
    agent_ = std::make_unique<Agent>(dir_, Config());
    ASSERT_NE(agent_->api_port(), 0) << agent_->process().Stderr();
  }
  void Stop() {
    agent_->process().Signal(SIGTERM);
    ASSERT_EQ(agent_->process().Wait(30s), std::optional<int>(0)) << agent_->process().Stderr();
    past_logs_ += "--- agent run " + std::to_string(++runs_) + " (stopped)\n" + agent_->process().Stderr();
    agent_.reset();
  }

  void Step() {
    int op = static_cast<int>(rng_() % 100);
    if (op < 45) Append();
    else if (op < 57) RenameRotate();
    else if (op < 69) CopyTruncate();
    else if (op < 77) Truncate();
    else if (op < 90) Delete();
    else Restart();
  }

  // Waits until everything written arrived; then checks exactly once.
  void Check(const std::string& when) {
    bool all = WaitFor([&] { return Missing().empty(); }, 30s);
    auto counts = Counts();
    std::vector<std::string> dup, extra;
    for (auto& [l, n] : counts) {
      if (!expected_.count(l)) extra.push_back(l);
      else if (n > 1) dup.push_back(l);
    }
    auto missing = Missing();
    ASSERT_TRUE(all && dup.empty() && extra.empty())
        << when << ": " << missing.size() << " missing (first: " << (missing.empty() ? "" : *missing.begin())
        << "), " << dup.size() << " twice (first: " << (dup.empty() ? "" : dup[0]) << "), " << extra.size()
        << " unexpected\nops:" << log_ << "\nagent logs:\n"
        << past_logs_ << "--- agent run " << runs_ + 1 << " (running)\n"
        << (agent_ ? agent_->process().Stderr() : "");
  }

 private:
  void Open() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(app_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  std::map<std::string, int> Counts() const {
    std::map<std::string, int> c;
    for (auto& l : ReadLines(out())) ++c[l];
    return c;
  }
  std::set<std::string> Missing() const {
    auto c = Counts();
    std::set<std::string> m;
    for (auto& e : expected_)
      if (!c.count(e)) m.insert(e);
    return m;
  }
  void Append() {
    int n = 1 + static_cast<int>(rng_() % 300);
    std::string text;
    for (int i = 0; i < n; ++i) {
      std::string line = "line-" + std::to_string(seq_++) + " " + std::string(rng_() % 120, 'x');
      expected_.insert(line);
      text += line + "\n";
    }
    ASSERT_EQ(::write(fd_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    log_ += " append(" + std::to_string(n) + ")";
  }
  void RenameRotate() {
    std::string to = app_ + "." + std::to_string(++rotation_);
    fs::rename(app_, to);
    rotated_.push_back(to);
    if (rng_() % 2) Append();  // a late write to the renamed file
    Open();
    log_ += " rename";
  }
  void CopyTruncate() {
    std::string to = app_ + "." + std::to_string(++rotation_);
    fs::copy_file(app_, to);
    ASSERT_EQ(::ftruncate(fd_, 0), 0);
    rotated_.push_back(to);
    log_ += " copytruncate";
  }
  void Truncate() {
    // Truncating unread lines loses them by definition: wait for them first.
    Check("before truncate");
    ASSERT_EQ(::ftruncate(fd_, 0), 0);
    log_ += " truncate";
  }
  void Delete() {
    if (rotated_.empty()) return;
    Check("before delete");
    size_t i = rng_() % rotated_.size();
    fs::remove(rotated_[i]);
    rotated_.erase(rotated_.begin() + static_cast<ptrdiff_t>(i));
    log_ += " delete";
  }
  void Restart() {
    Stop();
    if (rng_() % 2) Append();  // written while the agent is down
    Start();
    log_ += " restart";
  }

  std::mt19937 rng_;
  const TempDir& dir_;
  std::string app_;
  int fd_ = -1;
  uint64_t seq_ = 0;
  int rotation_ = 0;
  std::vector<std::string> rotated_;
  std::set<std::string> expected_;
  std::unique_ptr<Agent> agent_;
  std::string log_;
  std::string past_logs_;  // of the agents stopped so far
  int runs_ = 0;

 public:
  bool running() const { return agent_ != nullptr; }
};

TEST(FileSourceModelTest, RandomOperationSequences) {
  std::vector<uint32_t> seeds = {1, 2, 3};
  if (const char* s = std::getenv("TRIBUTARY_MODEL_SEED")) seeds = {static_cast<uint32_t>(std::stoul(s))};
  for (uint32_t seed : seeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TempDir dir;
    Model m(seed, dir);
    m.Start();
    for (int step = 0; step < 40; ++step) {
      m.Step();
      if (::testing::Test::HasFatalFailure()) return;
    }
    m.Check("at the end");
    if (::testing::Test::HasFatalFailure()) return;
    m.Stop();
  }
}

}  // namespace
}  // namespace tributary::testing
