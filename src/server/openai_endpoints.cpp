#include "server/openai_endpoints.h"

#include <bit>
#include <cstring>
#include <filesystem>

#include "core/base64.h"
#include "server/api_error.h"
#include "server/json_http.h"

namespace clipkit::server {

using json = nlohmann::json;

namespace {

constexpr const char* kImagePrefix = "data:image/";

// An input list as OpenAI takes it: one string or a non-empty list of strings.
std::vector<std::string> inputs_of(const json& body, int max) {
  if (!body.contains("input")) throw ApiError(400, "missing \"input\" (a string or a list of strings)", "input");
  const json& in = body["input"];
  std::vector<std::string> out;
  if (in.is_string()) {
    out.push_back(in.get<std::string>());
  } else if (in.is_array()) {
    for (auto& s : in) {
      if (!s.is_string())
        throw ApiError(400,
                       "\"input\" must be a string or a list of strings (lists of token ids are not accepted: "
                       "send the text)",
                       "input");
      out.push_back(s.get<std::string>());
    }
  } else {
    throw ApiError(400, "\"input\" must be a string or a list of strings", "input");
  }
  if (out.empty()) throw ApiError(400, "\"input\" must not be an empty list", "input");
  if (static_cast<int>(out.size()) > max)
    throw ApiError(413, fmt::format("\"input\" has {} entries; at most {} per request", out.size(), max), "input");
  return out;
}

std::string string_field(const json& body, const char* key, const std::string& def) {
  if (!body.contains(key)) return def;
  if (!body[key].is_string()) throw ApiError(400, fmt::format("\"{}\" must be a string", key), key);
  return body[key].get<std::string>();
}

// OpenAI's base64 encoding: the float32 values' bytes, little-endian, as numpy.frombuffer reads them.
std::string base64_row(const float* row, int64_t n) {
  std::string bytes(static_cast<size_t>(n) * 4, '\0');
  std::memcpy(bytes.data(), row, bytes.size());
  if constexpr (std::endian::native == std::endian::big)
    for (size_t i = 0; i < bytes.size(); i += 4) std::swap(bytes[i], bytes[i + 3]), std::swap(bytes[i + 1], bytes[i + 2]);
  return base64_encode(bytes);
}

}  // namespace

void OpenAiEndpoints::embeddings(const httplib::Request& req, httplib::Response& res) const {
  const json body = parse_body(req);
  const std::vector<std::string> inputs = inputs_of(body, s_.o.max_texts);
  const auto& emb = s_.queue.embedder();
  std::filesystem::path served(s_.o.model_dir.empty() ? s_.libs.current()->model().dir : s_.o.model_dir);
  if (served.filename().empty()) served = served.parent_path();
  const std::string model = string_field(body, "model", served.filename().string());
  const std::string format = string_field(body, "encoding_format", "float");
  if (format != "float" && format != "base64")
    throw ApiError(400, "\"encoding_format\" must be \"float\" or \"base64\"", "encoding_format");
  const int64_t D = emb.dim();
  if (body.contains("dimensions") && !(body["dimensions"].is_number_integer() && body["dimensions"].get<int64_t>() == D))
    throw ApiError(400, fmt::format("\"dimensions\" must be {}, this model's embedding size (CLIP embeddings cannot be shortened)", D),
                   "dimensions");
  string_field(body, "user", "");  // accepted, as OpenAI does; must be a string

  // texts go to the model as one request; each image is decoded (within the limits) and queued
  std::vector<std::string> texts;
  std::vector<size_t> text_at;
  std::vector<std::pair<size_t, Tensor>> images;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].starts_with(kImagePrefix)) {
      texts.push_back(inputs[i]);
      text_at.push_back(i);
      continue;
    }
    const std::string where = inputs.size() == 1 ? "\"input\"" : fmt::format("\"input\"[{}]", i);
    if (inputs[i].find(";base64,") == std::string::npos)
      throw ApiError(400, where + " is an image data URL without base64 data (data:image/...;base64,...)", "input");
    std::string bytes;
    if (!base64_decode(inputs[i], &bytes)) throw ApiError(400, where + " is an image data URL that is not valid base64", "input");
    try {
      images.emplace_back(i, s_.queue.embed_image_bytes(bytes, fmt::format("input[{}]", i)));
    } catch (const ApiError& e) {
      if (e.status != 400) throw;
      throw ApiError(400, where + ": " + e.what(), "input");
    }
  }
  std::vector<const float*> rows(inputs.size());
  Tensor text_emb;
  int64_t tokens = 0;
  if (!texts.empty()) {
    text_emb = s_.queue.embed_texts(texts);
    std::vector<int32_t> ids, mask;
    int64_t L;
    emb.tokenize(texts, &ids, &mask, &L);
    for (int32_t m : mask) tokens += m;
    for (size_t t = 0; t < texts.size(); ++t) rows[text_at[t]] = text_emb.ptr<float>() + static_cast<int64_t>(t) * D;
  }
  for (auto& [i, t] : images) rows[i] = t.ptr<float>();

  json data = json::array();
  for (size_t i = 0; i < inputs.size(); ++i) {
    json e = {{"object", "embedding"}, {"index", i}};
    if (format == "base64")
      e["embedding"] = base64_row(rows[i], D);
    else
      e["embedding"] = std::vector<float>(rows[i], rows[i] + D);
    data.push_back(std::move(e));
  }
  send_json(res, 200, {{"object", "list"}, {"data", std::move(data)}, {"model", model},
                       {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
}

}  // namespace clipkit::server
