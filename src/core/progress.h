// Progress for long work: "label  done/total  rate/s  ETA" redrawn on a terminal (stderr),
// silent when stderr is not a TTY (pipes, CI), except for an optional final summary line.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace clipkit {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit = "items");
  ~Progress();
  void add(int64_t n = 1);
  void set_suffix(std::string s) { suffix_ = std::move(s); }  // e.g. "loss 0.53"
  void finish();
  int64_t done() const { return done_; }

 private:
  void draw(bool final);
  std::string label_, unit_, suffix_;
  int64_t total_, done_ = 0;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);

}  // namespace clipkit
