// What request handlers throw and parse: an error with its HTTP status, and JSON field readers that
// turn wrong input into 400/413 errors with a message saying which field and why.
#pragma once
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace clipkit::server {

// `param`: the request field at fault ("" when none), given back as the error's "param";
// retry_after_s > 0: sent as the Retry-After header (a 503 for a full queue).
struct ApiError : std::runtime_error {
  int status;
  std::string param;
  int retry_after_s = 0;
  ApiError(int s, const std::string& m, std::string p = "", int retry_after = 0)
      : std::runtime_error(m), status(s), param(std::move(p)), retry_after_s(retry_after) {}
};

// body[key]: a non-empty list of strings (or, with allow_csv, one "a,b,c" string) of at most max.
std::vector<std::string> string_list(const nlohmann::json& body, const char* key, int max, bool allow_csv = false);
// Optional fields: the default when absent, a 400 naming the field when of the wrong type/range.
double number_field(const nlohmann::json& body, const char* key, double def, double lo, double hi);
int64_t int_field(const nlohmann::json& body, const char* key, int64_t def, int64_t lo, int64_t hi);
bool bool_field(const nlohmann::json& body, const char* key, bool def);

}  // namespace clipkit::server
