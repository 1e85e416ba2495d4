#include "dataset/csv_reader.h"

namespace clipkit::dataset {

CsvReader::CsvReader(std::string_view text, char delimiter) : text_(text), delim_(delimiter) {
  if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // UTF-8 byte order mark
}

bool CsvReader::next(std::vector<std::string>& fields, std::string& error) {
  const size_t n = text_.size();
  error.clear();
  for (;;) {
    fields.clear();
    if (pos_ >= n) return false;
    record_line_ = cur_line_;
    bool end_of_record = false;
    while (!end_of_record) {
      std::string field;
      if (pos_ < n && text_[pos_] == '"') {
        ++pos_;
        bool closed = false;
        while (pos_ < n) {
          size_t q = text_.find('"', pos_);
          if (q == std::string_view::npos) q = n;
          for (size_t i = pos_; i < q; ++i) cur_line_ += text_[i] == '\n';
          field.append(text_.substr(pos_, q - pos_));
          pos_ = q;
          if (q >= n) break;
          if (q + 1 < n && text_[q + 1] == '"') {  // "" -> "
            field.push_back('"');
            pos_ = q + 2;
            continue;
          }
          pos_ = q + 1;
          closed = true;
          break;
        }
        if (!closed) {
          error = "unterminated quoted field";
          fields.push_back(std::move(field));
          return true;
        }
      }
      // Unquoted part (or what follows a closing quote): up to the delimiter or a line end.
      size_t start = pos_;
      while (pos_ < n && text_[pos_] != delim_ && text_[pos_] != '\n' && text_[pos_] != '\r') ++pos_;
      field.append(text_.substr(start, pos_ - start));
      fields.push_back(std::move(field));
      if (pos_ >= n) {
        end_of_record = true;
      } else if (text_[pos_] == delim_) {
        ++pos_;
      } else {  // \n, \r\n or \r
        if (text_[pos_] == '\r' && pos_ + 1 < n && text_[pos_ + 1] == '\n') ++pos_;
        ++pos_;
        ++cur_line_;
        end_of_record = true;
      }
    }
    if (fields.size() == 1 && fields[0].empty()) continue;  // blank line
    return true;
  }
}

}  // namespace clipkit::dataset
