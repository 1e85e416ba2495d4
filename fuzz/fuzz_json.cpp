// core/json: the bounded-depth parser every JSON input goes through, and json_text. A parsed value
// must print and parse back to itself (file names with non-UTF-8 bytes included).
#include "core/json.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j;
  if (!clipkit::try_parse_json(clipkit::fuzz::as_view(data, size), &j)) return 0;
  const std::string text = clipkit::json_text(j), pretty = clipkit::json_text(j, 2);
  nlohmann::json back, back2;
  if (!clipkit::try_parse_json(text, &back) || back != j) __builtin_trap();
  if (!clipkit::try_parse_json(pretty, &back2) || back2 != j) __builtin_trap();
  return 0;
}
