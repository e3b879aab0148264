// Runs the `m3vdb` binary for the command-line tests: to completion (exit code + output), or
// in the background to be killed.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern char** environ;

namespace m3vdb::test {

struct CliResult {
  int code = -1;  // exit code; -1 when killed by a signal
  std::string output;  // stdout and stderr
};

class CliProcess {
 public:
  // Starts `m3vdb args...` with stdout+stderr to `log_path`.
  CliProcess(const std::vector<std::string>& args, const std::string& log_path) : log_(log_path) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<std::string> all = args;
    all.insert(all.begin(), M3VDB_BINARY);
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, M3VDB_BINARY, &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~CliProcess() {
    if (pid_ > 0 && !done_) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }
  bool started() const { return pid_ > 0; }
  // True (and the exit code in *code) when the process has ended.
  bool Poll(int* code) {
    int status = 0;
    if (done_) {
      *code = code_;
      return true;
    }
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
    done_ = true;
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    *code = code_;
    return true;
  }
  int Wait() {
    int status = 0;
    if (!done_) {
      ::waitpid(pid_, &status, 0);
      done_ = true;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    return code_;
  }
  void Kill() { ::kill(pid_, SIGKILL); }
  std::string output() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool done_ = false;
  int code_ = -1;
};

inline CliResult RunCli(const std::vector<std::string>& args, const std::string& log_path) {
  CliProcess p(args, log_path);
  CliResult r;
  r.code = p.Wait();
  r.output = p.output();
  return r;
}

}  // namespace m3vdb::test
