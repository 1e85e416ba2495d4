// RFC-4180 CSV records over an in-memory text: quoted fields may hold the delimiter, doubled quotes
// and line breaks; CRLF, LF or CR end a record. Lenient like Python's csv module (a quote inside an
// unquoted field is literal; text after a closing quote is appended), except that an unterminated
// quoted field is reported instead of silently swallowing the rest of the file.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace clipkit::dataset {

class CsvReader {
 public:
  explicit CsvReader(std::string_view text, char delimiter = ',');

  // Next non-blank record into fields; false at the end of the text. When the record is malformed
  // (unterminated quote) error is set and fields holds what was read.
  bool next(std::vector<std::string>& fields, std::string& error);
  int64_t line() const { return record_line_; }  // 1-based line where the last record began

 private:
  std::string_view text_;
  size_t pos_ = 0;
  char delim_;
  int64_t cur_line_ = 1, record_line_ = 0;
};

}  // namespace clipkit::dataset
