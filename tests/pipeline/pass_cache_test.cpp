// PassCache's bookkeeping (pipeline/pass_cache.h) over a stand-in capture: which runs are direct,
// recorded and replayed, and how failed recordings and replays fall back.
#include "pipeline/pass_cache.h"

#include <gtest/gtest.h>

namespace clipkit::pipeline {
namespace {

// A stand-in device: capture() runs the pass and records it unless `refuse`; a recorded pass's
// run() replays (counted) unless `stale`, else runs the pass directly and says so.
struct FakeDevice {
  bool refuse = false, stale = false;
  int captures = 0, replays = 0;
  struct Recorded : backend::CapturedPass {
    Recorded(FakeDevice& d, std::function<void()> f) : dev(d), pass(std::move(f)) {}
    bool run() override {
      if (dev.stale) {
        pass();
        return false;
      }
      ++dev.replays;
      return true;
    }
    FakeDevice& dev;
    std::function<void()> pass;
  };
  PassCache::Capture capture() {
    return [this](std::function<void()> f) -> std::unique_ptr<backend::CapturedPass> {
      ++captures;
      f();
      if (refuse) return nullptr;
      return std::make_unique<Recorded>(*this, std::move(f));
    };
  }
};

TEST(PassCache, FirstRunDirectSecondRecordedThenReplayed) {
  FakeDevice dev;
  PassCache cache(dev.capture(), 4);
  int ran = 0;
  auto pass = [&] { ++ran; };
  cache.run("image/1", 1, pass);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(dev.captures, 0);
  cache.run("image/1", 1, pass);
  EXPECT_EQ(dev.captures, 1);
  EXPECT_EQ(ran, 2);  // the recording run gives results
  for (int i = 0; i < 3; ++i) cache.run("image/1", 1, pass);
  EXPECT_EQ(dev.replays, 3);
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(cache.stats().direct, 1);
  EXPECT_EQ(cache.stats().recorded, 1);
  EXPECT_EQ(cache.stats().replayed, 3);
  cache.run("image/2", 2, pass);  // keys are separate
  EXPECT_EQ(ran, 3);
  EXPECT_EQ(dev.captures, 1);
}

TEST(PassCache, LargeBatchesAlwaysRunDirectly) {
  FakeDevice dev;
  PassCache cache(dev.capture(), 4);
  int ran = 0;
  for (int i = 0; i < 5; ++i) cache.run("image/5", 5, [&] { ++ran; });
  EXPECT_EQ(ran, 5);
  EXPECT_EQ(dev.captures, 0);
  EXPECT_FALSE(cache.takes(0));
  EXPECT_TRUE(cache.takes(4));
}

TEST(PassCache, AStaleReplayRunsDirectlyAndIsRecordedAgain) {
  FakeDevice dev;
  PassCache cache(dev.capture(), 4);
  int ran = 0;
  auto pass = [&] { ++ran; };
  cache.run("k", 1, pass);
  cache.run("k", 1, pass);  // recorded
  dev.stale = true;
  cache.run("k", 1, pass);  // replay refused: ran directly, dropped
  EXPECT_EQ(ran, 3);
  EXPECT_EQ(cache.stats().dropped, 1);
  dev.stale = false;
  cache.run("k", 1, pass);  // recorded again
  EXPECT_EQ(dev.captures, 2);
  cache.run("k", 1, pass);
  EXPECT_EQ(dev.replays, 1);
  EXPECT_EQ(ran, 4);
}

TEST(PassCache, AKeyThatKeepsFailingRunsDirectlyForGood) {
  FakeDevice dev;
  dev.refuse = true;
  PassCache cache(dev.capture(), 4);
  int ran = 0;
  for (int i = 0; i < 10; ++i) cache.run("k", 1, [&] { ++ran; });
  EXPECT_EQ(ran, 10);  // every run gives results
  EXPECT_EQ(dev.captures, PassCache::kMaxFailures);
}

}  // namespace
}  // namespace clipkit::pipeline
