// JSON in and out, the one way for everything clipkit reads or writes (configs, tokenizer files,
// datasets, manifests, shard records, index metadata, request bodies).
//
// Reading bounds the nesting depth at kMaxJsonDepth before a value is built (a linear scan of the
// text outside strings), so no file or request can make a value deep enough to overflow the stack
// in the recursive code that copies, compares or prints it. 128 is serde_json's limit, the one HF
// tokenizers reads tokenizer.json with.
//
// Writing never fails on bytes that are not UTF-8 (file names are bytes): each such byte is
// written as the escape \udcXX (Python's "surrogateescape": json.loads + os.fsencode give the
// original bytes back), and reading turns those escapes back into the same bytes, so file names
// survive a round trip through our JSON files exactly.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace clipkit {

inline constexpr int kMaxJsonDepth = 128;

// Throws clipkit::Error "<name>: ..." on invalid JSON or nesting deeper than kMaxJsonDepth.
nlohmann::json parse_json(std::string_view text, const std::string& name);
// The same without throwing: false (and *why, when given, says what is wrong) on bad input.
bool try_parse_json(std::string_view text, nlohmann::json* out, std::string* why = nullptr);
// nlohmann's SAX parse of the text, under the same depth bound; false with *why on bad input
// (or when the handler stops the parse).
bool sax_parse_json(std::string_view text, nlohmann::json::json_sax_t* sax, std::string* why);

// Serializes like nlohmann's dump(indent) (indent < 0: compact), escaping non-UTF-8 bytes as above.
std::string json_text(const nlohmann::json& j, int indent = -1);
std::string json_text(const nlohmann::ordered_json& j, int indent = -1);

// The integer v holds, when it is a JSON integer in lo..hi; otherwise throws clipkit::Error
// "<what> must be an integer from lo to hi, got <v>". For numbers read from files and requests:
// nlohmann's get<int>() casts a float such as 1e300 to int, which is undefined behaviour.
int64_t json_integer(const nlohmann::json& v, int64_t lo, int64_t hi, std::string_view what);

// obj[key] when obj is an object holding an integer that fits int64 there; otherwise dflt. For
// optional fields of clipkit's own files (a float there is never converted).
int64_t json_integer_or(const nlohmann::json& obj, const char* key, int64_t dflt);

// Optional fields of files and requests clipkit does not trust: obj[key] when obj is an object
// holding a value of the right type there, dflt when the key is missing or null; any other value
// throws clipkit::Error "<what>: field \"key\" must be a string (a number, true or false), got
// <value>". (nlohmann's value(key, dflt) throws its own type_error there, which nothing above a
// parser expects.)
std::string json_string_or(const nlohmann::json& obj, const char* key, std::string_view dflt, std::string_view what);
double json_number_or(const nlohmann::json& obj, const char* key, double dflt, std::string_view what);
bool json_bool_or(const nlohmann::json& obj, const char* key, bool dflt, std::string_view what);

// Whether s is well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points above U+10FFFF).
bool valid_utf8(std::string_view s);
// The offset of the first byte that is not part of well-formed UTF-8, or npos.
size_t utf8_error_at(std::string_view s);

}  // namespace clipkit
