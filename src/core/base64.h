// Base64 (RFC 4648) both ways: the service decodes uploads, reports and RAG answers embed
// thumbnails as data URIs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace clipkit {

// Standard alphabet with '=' padding.
std::string base64_encode(const uint8_t* data, size_t n);
inline std::string base64_encode(std::string_view s) {
  return base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// Standard or URL-safe alphabet, '=' padding optional, whitespace ignored; a "data:...;base64,"
// prefix is skipped. Returns false on invalid input.
bool base64_decode(std::string_view in, std::string* out);

}  // namespace clipkit
