#include "pipeline/pass_cache.h"

namespace clipkit::pipeline {

PassCache::PassCache(backend::Backend& be, int64_t max_batch)
    : PassCache([&be](std::function<void()> f) { return be.capture(std::move(f)); }, max_batch) {}

PassCache::PassCache(Capture capture, int64_t max_batch) : capture_(std::move(capture)), max_batch_(max_batch) {}

void PassCache::run(const std::string& key, int64_t batch, std::function<void()> pass) {
  if (!takes(batch)) {
    ++stats_.direct;
    return pass();
  }
  Entry& e = entries_[key];
  if (e.pass) {
    if (e.pass->run()) {
      ++stats_.replayed;
      return;
    }
    ++stats_.dropped;  // it ran directly; recorded again next time
    e.pass.reset();
    ++e.failures;
    return;
  }
  if (e.runs++ == 0 || e.failures >= kMaxFailures) {  // the first run settles the arenas
    ++stats_.direct;
    return pass();
  }
  e.pass = capture_(std::move(pass));  // runs the pass
  if (e.pass) {
    ++stats_.recorded;
  } else {  // it ran directly
    ++e.failures;
    ++stats_.direct;
  }
}

}  // namespace clipkit::pipeline
