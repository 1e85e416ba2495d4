#include "inputs.h"

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/json.h"
#include "io/atomic_file.h"

namespace clipkit::cli {

static bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

std::vector<std::string> read_texts(const std::string& path) {
  std::string data = read_file(path);
  std::vector<std::string> out;
  std::istringstream in(data);
  std::string line;
  int64_t n = 0;
  const bool jsonl = ends_with(path, ".jsonl");
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!jsonl) {
      out.push_back(line);
      continue;
    }
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json j;
    std::string why;
    if (!try_parse_json(line, &j, &why)) fail("{}:{}: not valid JSON: {}", path, n, why);
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      fail("{}:{}: expected an object with a string \"text\" field", path, n);
    out.push_back(j["text"].get<std::string>());
  }
  return out;
}

std::vector<std::string> read_list(const std::string& path) {
  std::string data = read_file(path);
  std::vector<std::string> out;
  std::istringstream in(data);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    out.push_back(line);
  }
  return out;
}

void write_jsonl(const std::string& path, const std::vector<std::string>& lines) {
  std::string s;
  for (auto& l : lines) s += l + "\n";
  write_file_atomic(path, s);
}

std::string sidecar_path(const std::string& p) {
  return ends_with(p, ".npy") ? p.substr(0, p.size() - 4) + ".jsonl" : p + ".jsonl";
}

}  // namespace clipkit::cli
