// Backend::precision_note on the CPU: empty where oneDNN multiplies bf16 / int8 natively, a
// sentence naming the instruction set where they run as fp32 matmuls. The *.avx2 ctest variants run
// these with oneDNN held to AVX2 (DNNL_MAX_CPU_ISA), where both must be noted; the *.bf16_native and
// *.bf16_fp32 variants set CLIPKIT_CPU_BF16, which overrides the measured bf16 rate (bf16_rate.h).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "backend/cpu/bf16_rate.h"
#include "backend/cpu/dnnl_matmul.h"

namespace clipkit::backend::cpu {
namespace {

bool held_to_avx2() {
  const char* e = std::getenv("DNNL_MAX_CPU_ISA");
  return e && std::string(e) == "AVX2";
}

TEST(Bf16PrecisionNote, EmptyExactlyWhereNative) {
  const std::string note = emulation_note(false);
  EXPECT_EQ(note.empty(), bf16_matmul_native()) << note;
  if (held_to_avx2()) {
    EXPECT_STREQ(cpu_isa_name(), "avx2");
    EXPECT_EQ(note, "this CPU has no bf16 matmul instructions (AVX512_BF16 or AMX; oneDNN runs avx2): bf16 products "
                    "run as fp32 matmuls of the bf16 values, slower than fp32 precision here");
  }
  if (!note.empty()) {
    EXPECT_NE(note.find(std::string("oneDNN runs ") + cpu_isa_name()), std::string::npos) << note;
  }
}

std::string bf16_override() {
  const char* e = std::getenv("CLIPKIT_CPU_BF16");
  return e ? e : "";
}

// The rate is measured exactly where the CPU has AVX512_BF16 (one core's vdpbf16ps against its fp32
// FMAs, in FLOPs: 2.0 on AMD Zen 4/5, 0.50 on the Intel Xeons without AMX measured here), once.
TEST(Bf16Rate, MeasuredWhereTheCpuHasBf16DotProducts) {
  __builtin_cpu_init();
  const double r = bf16_dot_rate_vs_fp32();
  if (!__builtin_cpu_supports("avx512bf16")) {
    EXPECT_EQ(r, 0.0);
    return;
  }
  EXPECT_GT(r, 0.1);
  EXPECT_LT(r, 8.0);
  EXPECT_EQ(bf16_dot_rate_vs_fp32(), r);
}

// bf16 runs on oneDNN's bf16 kernels only where they exist and pay (AMX, or bf16 dot products at
// least 0.75x the fp32 FMA rate), unless CLIPKIT_CPU_BF16 says otherwise; the note says which.
TEST(Bf16PrecisionNote, KernelsChosenByTheMeasuredRate) {
  const std::string o = bf16_override(), note = emulation_note(false);
  const bool amx = std::string(cpu_isa_name()) == "avx512_core_amx";
  if (!bf16_kernels_built()) {
    EXPECT_FALSE(bf16_matmul_native());
    EXPECT_NE(note.find("this CPU has no bf16 matmul instructions"), std::string::npos) << note;
  } else if (o == "native") {
    EXPECT_TRUE(bf16_matmul_native());
  } else if (o == "fp32") {
    EXPECT_FALSE(bf16_matmul_native());
    EXPECT_EQ(note, std::string("CLIPKIT_CPU_BF16=fp32 (oneDNN runs ") + cpu_isa_name() +
                        "): bf16 products run as fp32 matmuls of the bf16 values, no faster than fp32 precision");
  } else {
    const double r = bf16_dot_rate_vs_fp32();
    EXPECT_EQ(bf16_matmul_native(), amx || r >= 0.75) << r;
    if (!bf16_matmul_native() && r > 0) {
      const std::string want = std::string("this CPU's bf16 dot products run below 0.75x the FLOP rate of its fp32 "
                                           "FMAs (measured; oneDNN runs ") + cpu_isa_name() + ", no AMX)";
      EXPECT_EQ(note.rfind(want, 0), 0u) << note;
    }
    if (!bf16_matmul_native() && r == 0) {
      EXPECT_NE(note.find("this CPU has no bf16 dot-product instructions (AVX512_BF16;"), std::string::npos) << note;
    }
  }
}

TEST(Int8PrecisionNote, EmptyExactlyWhereNative) {
  const std::string note = emulation_note(true);
  EXPECT_EQ(note.empty(), int8_matmul_native()) << note;
  if (held_to_avx2()) {
    EXPECT_EQ(note, "this CPU has no VNNI instructions (oneDNN runs avx2): int8 products run as fp32 matmuls of the "
                    "int8 values, slower than fp32 precision here");
  }
  if (!note.empty()) {
    EXPECT_NE(note.find(std::string("oneDNN runs ") + cpu_isa_name()), std::string::npos) << note;
  }
}

}  // namespace
}  // namespace clipkit::backend::cpu
