#pragma once
#include <string>

namespace clipkit::ops {

// Matmul precision. Activations, layer norms, softmax and accumulation stay fp32 in both.
enum class Precision { F32, BF16 };

Precision precision_from_name(const std::string& s);  // "fp32" | "bf16"; throws Error otherwise
const char* precision_name(Precision p);

}  // namespace clipkit::ops
