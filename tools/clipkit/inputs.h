// Reading the input lists the CLI takes: text files (.txt lines / .jsonl "text"), image lists.
#pragma once
#include <string>
#include <vector>

namespace clipkit::cli {

// .jsonl: one JSON object per line with a "text" field (texts may contain newlines);
// anything else: one text per line (a trailing '\r' is dropped, empty lines are kept as texts
// only when they are not the final line).
std::vector<std::string> read_texts(const std::string& path);

// One path per line; blank lines and lines starting with '#' are skipped; relative paths stay as given.
std::vector<std::string> read_list(const std::string& path);

// Writes rows of JSON objects (one per line), atomically.
void write_jsonl(const std::string& path, const std::vector<std::string>& lines);

// "X.npy" -> "X.jsonl"
std::string sidecar_path(const std::string& npy_path);

}  // namespace clipkit::cli
