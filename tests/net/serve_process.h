// `m3vdb serve` (or any `m3vdb` command) as a child process for tests: spawned with
// posix_spawn, its stdout and stderr collected, the port it prints awaited, signalled, reaped.
// M3VDB_BINARY must name the m3vdb executable (a compile definition of the test target).
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace m3vdb::test {

using namespace std::chrono_literals;

// A running `m3vdb` with its stdout and stderr collected.
class ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> args) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    args.insert(args.begin(), M3VDB_BINARY);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, M3VDB_BINARY, &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] {
      char buffer[4096];
      ssize_t n;
      while ((n = ::read(fd, buffer, sizeof(buffer))) > 0) {
        std::lock_guard lock(mu_);
        output_.append(buffer, static_cast<size_t>(n));
        changed_.notify_all();
      }
      ::close(fd);
      std::lock_guard lock(mu_);
      eof_ = true;
      changed_.notify_all();
    });
  }
  ~ServeProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (reader_.joinable()) reader_.join();
  }

  // The port from "m3vdb listening on http://HOST:PORT", or 0 when the process did not get there.
  uint16_t WaitForPort(std::chrono::seconds timeout = 30s) {
    static const std::regex kListening(R"(m3vdb listening on http://[^:]+:(\d+))");
    std::unique_lock lock(mu_);
    std::smatch match;
    changed_.wait_for(lock, timeout, [&] { return eof_ || std::regex_search(output_, match, kListening); });
    return std::regex_search(output_, match, kListening) ? static_cast<uint16_t>(std::stoi(match[1])) : 0;
  }

  void Signal(int signal) { ::kill(pid_, signal); }
  pid_t pid() const { return pid_; }

  // kill -9 and reap: the process gets no chance to flush or close anything.
  void Kill9() {
    if (pid_ <= 0 || exited_) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    exited_ = true;
    if (reader_.joinable()) reader_.join();
  }

  // The exit code, or -1 when it did not exit normally within `timeout`.
  int WaitForExit(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        if (reader_.joinable()) reader_.join();
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }

  std::string output() {
    std::lock_guard lock(mu_);
    return output_;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::string output_;
  bool eof_ = false;
};

}  // namespace m3vdb::test
