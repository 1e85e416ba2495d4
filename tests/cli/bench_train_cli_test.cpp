// clipkit bench train on the tiny dual encoder: the rows, and --profile's op table (issue 20: where
// a training step's time goes).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "backend/backend.h"
#include "cli_util.h"
#include "test_util.h"

namespace clipkit {
namespace {

using test::data_path;
using test::run_clipkit;

TEST(BenchTrainCli, ProfileSplitsTheTimedStepsByOp) {
  const std::string model = data_path("models/tiny-clip-roberta");
  auto r = run_clipkit("bench train --model " + model +
                       " --batch-size 4 --warmup 1 --steps 2 --precision fp32,bf16 --padding dynamic --profile --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const auto rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) {
    const std::string prec = row.at("precision");
    // "" where this CPU multiplies in the precision natively, else what runs instead (never for fp32)
    EXPECT_EQ(row.at("precision_note").get<std::string>(),
              backend::backend_for("cpu").precision_note(backend::precision_from_name(prec))) << prec;
    if (prec == "fp32") {
      EXPECT_EQ(row.at("precision_note"), "");
    }
    ASSERT_TRUE(row.contains("ops")) << prec;
    std::set<std::string> names;
    double named = 0, outside = -1;
    for (const auto& op : row.at("ops")) {
      const std::string name = op.at("op");
      names.insert(name);
      const double ms = op.at("ms_per_step");
      if (name == "outside the named ops") {
        outside = ms;
        continue;
      }
      EXPECT_GE(ms, 0) << name;
      EXPECT_GE(op.at("calls_per_step").get<int64_t>(), 1) << name;
      if (!op.at("nested").get<bool>()) named += ms;
    }
    const std::string sfx = prec == "bf16" ? " bf16" : "";
    // every linear layer runs forward and backward once per step; the optimizer once
    EXPECT_TRUE(names.count("linear fwd" + sfx)) << prec << ": " << row.at("ops").dump();
    EXPECT_TRUE(names.count("linear bwd" + sfx)) << prec;
    EXPECT_TRUE(names.count("adamw")) << prec;
    for (const auto& op : row.at("ops")) {
      if (op.at("op") == "adamw") {
        EXPECT_EQ(op.at("calls_per_step").get<int64_t>(), 1);
      }
    }
    // each op's row counts the matmul FLOPs performed inside it: the products are in the linear
    // layers (and attention), none in the optimizer; the ops' counts add up to the step's
    double named_flops = 0;
    for (const auto& op : row.at("ops")) {
      const std::string name = op.at("op");
      if (name == "outside the named ops") continue;
      const double gf = op.at("gflops");
      if (name == "linear fwd" || name == "linear bwd" || name == "linear fwd bf16" || name == "linear bwd bf16") {
        EXPECT_GT(gf, 0) << prec << " " << name;
      }
      if (name == "adamw") {
        EXPECT_EQ(gf, 0) << prec;
      }
      if (!op.at("nested").get<bool>()) named_flops += gf * 1e6 * op.at("ms_per_step").get<double>();
    }
    const double step_flops = row.at("performed_gflops").get<double>() * 1e9 * row.at("step_s").get<double>();
    EXPECT_LE(named_flops, step_flops * 1.001) << prec;
    EXPECT_GE(named_flops, step_flops * 0.99) << prec << ": every product runs inside a named op";
    // the named ops never add up to more than the step (nested scopes are not counted twice), and
    // the table covers the timed steps only (the warm-up's first-call costs are not in it)
    // (step_s is the median of the two timed steps, here the slower one; the table's step is their mean)
    const double step_ms = 1e3 * row.at("step_s").get<double>();
    EXPECT_GE(outside, 0) << prec;
    EXPECT_LE(named, step_ms) << prec;
    if (prec == "bf16") {  // the dy conversion is a scope inside the backward's
      bool nested_seen = false;
      for (const auto& op : row.at("ops"))
        if (op.at("op") == "linear bwd dy+db") nested_seen = op.at("nested").get<bool>();
      EXPECT_TRUE(nested_seen) << row.at("ops").dump();
    }
  }
  // without --profile there is no table
  r = run_clipkit("bench train --model " + model + " --batch-size 4 --warmup 0 --steps 1 --precision fp32 --padding 8 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(nlohmann::json::parse(r.out)[0].contains("ops"));
}

}  // namespace
}  // namespace clipkit
