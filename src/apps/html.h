// Bits shared by the self-contained HTML reports.
#pragma once
#include <fmt/format.h>

#include <string>

namespace clipkit::apps {

std::string html_escape(const std::string& s);
// <!doctype html> ... <body> with the inline stylesheet the reports share.
std::string html_head(const std::string& title);

}  // namespace clipkit::apps
