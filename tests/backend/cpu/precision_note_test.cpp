// Backend::precision_note on the CPU: empty where oneDNN multiplies bf16 / int8 natively, a
// sentence naming the instruction set where they run as fp32 matmuls. The *.avx2 ctest variants run
// these with oneDNN held to AVX2 (DNNL_MAX_CPU_ISA), where both must be noted.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

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
