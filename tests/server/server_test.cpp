// The service end to end over loopback: every endpoint, API keys, bad requests, size limits, path
// traversal attempts, and concurrent requests sharing model batches.
#include "server/server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <thread>

#include "cli/cli_util.h"
#include "index/library.h"
#include "index/query.h"
#include "apps/classify.h"
#include "apps/synthetic.h"
#include "apps/video_io.h"
#include "core/base64.h"
#include "io/atomic_file.h"
#include "server/serve_process.h"
#include "test_util.h"

namespace clipkit::server {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string b64(const std::string& s) { return base64_encode(s); }

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(test::temp_dir("server"));
    test::build_test_index(*dir_, /*shard_size=*/16);
    ServerOptions o;
    o.index_dir = *dir_ + "/idx";
    o.port = 0;
    o.api_key = "k3y";
    o.max_body_bytes = 256 * 1024;
    o.max_texts = 8;
    server_ = new Server(o);
    port_ = server_->bind();
    thread_ = new std::thread([] { server_->run(); });
  }
  static void TearDownTestSuite() {
    server_->stop();
    thread_->join();
    delete thread_;
    delete server_;
    fs::remove_all(*dir_);
    delete dir_;
  }
  httplib::Client client(bool auth = true) {
    httplib::Client c("127.0.0.1", port_);
    if (auth) c.set_default_headers({{"Authorization", "Bearer k3y"}});
    c.set_read_timeout(60, 0);
    return c;
  }
  static json body(const httplib::Result& r) { return json::parse(r->body); }
  static json post(httplib::Client& c, const std::string& path, const json& j, int want) {
    auto r = c.Post(path, j.dump(), "application/json");
    EXPECT_TRUE(r) << path;
    if (!r) return {};
    EXPECT_EQ(r->status, want) << path << " " << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    return json::parse(r->body, nullptr, false);
  }
  static inline std::string* dir_ = nullptr;
  static inline Server* server_ = nullptr;
  static inline std::thread* thread_ = nullptr;
  static inline int port_ = 0;
};

TEST_F(ServerTest, PageHealthAndMetrics) {
  auto c = client(false);
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("id=\"q\""), std::string::npos);
  EXPECT_EQ(page->body.find("http://"), std::string::npos);  // no external resources
  auto h = c.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(body(h)["status"], "ok");
  EXPECT_EQ(body(h)["images"], 40);
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("# TYPE clipkit_http_requests_total counter"), std::string::npos);
  EXPECT_NE(m->body.find("clipkit_index_images 40"), std::string::npos);
}

TEST_F(ServerTest, EmbedTextMatchesTheEmbedder) {
  auto c = client();
  auto j = post(c, "/v1/embed/text", {{"texts", {"a red circle", "two shapes"}}}, 200);
  ASSERT_EQ(j["embeddings"].size(), 2u);
  auto e = pipeline::Embedder::load(test::data_path("models/tiny-clip"));
  Tensor ref = e->embed_texts({"a red circle", "two shapes"}, {});
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t d = 0; d < ref.dim(1); ++d)
      EXPECT_NEAR(j["embeddings"][r][d].get<float>(), ref.ptr<float>()[r * ref.dim(1) + d], 1e-5);
}

TEST_F(ServerTest, EmbedImageMultipartAndBase64Agree) {
  auto c = client();
  const std::string img = read_file(test::data_path("images/chelsea.jpg"));
  httplib::MultipartFormDataItems items = {{"image", img, "chelsea.jpg", "image/jpeg"}};
  auto r = c.Post("/v1/embed/image", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto a = body(r)["embeddings"][0];
  auto b = post(c, "/v1/embed/image", {{"image_base64", b64(img)}}, 200)["embeddings"][0];
  ASSERT_EQ(a.size(), 48u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_FLOAT_EQ(a[i].get<float>(), b[i].get<float>());
  // data: URLs (what the page sends) work too
  auto d = post(c, "/v1/embed/image", {{"image_base64", "data:image/jpeg;base64," + b64(img)}}, 200);
  EXPECT_EQ(d["embeddings"][0], b);
}

TEST_F(ServerTest, SearchShapeFiltersAndMoreLikeThis) {
  auto c = client();
  auto j = post(c, "/v1/search", {{"text", "a yellow star"}, {"k", 5}}, 200);
  ASSERT_EQ(j["results"].size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    auto& h = j["results"][i];
    EXPECT_EQ(h["rank"], i + 1);
    for (const char* key : {"id", "path", "score", "caption", "split"}) EXPECT_TRUE(h.contains(key)) << key;
    if (i) {
      EXPECT_LE(h["score"].get<float>(), j["results"][i - 1]["score"].get<float>());
    }
  }
  auto none = post(c, "/v1/search", {{"text", "x"}, {"filter", {{"split", "train"}}}}, 200);
  EXPECT_TRUE(none["results"].empty());  // this index holds val only
  // an indexed image finds itself first, by upload and by id
  const int64_t id = j["results"][2]["id"];
  const std::string bytes = read_file(j["results"][2]["path"]);
  auto by_img = post(c, "/v1/search", {{"image_base64", b64(bytes)}, {"k", 1}}, 200);
  EXPECT_EQ(by_img["results"][0]["id"], id);
  auto by_id = post(c, "/v1/search", {{"image_id", id}, {"k", 1}}, 200);
  EXPECT_EQ(by_id["results"][0]["id"], id);
  EXPECT_NEAR(by_id["results"][0]["score"].get<float>(), 1.0f, 1e-4);
}

TEST_F(ServerTest, CompareGivesProbabilities) {
  auto c = client();
  const std::string img = read_file(test::data_path("images/chelsea.jpg"));
  auto j = post(c, "/v1/compare", {{"image_base64", b64(img)}, {"prompts", {"a cat", "a dog", "a car"}}}, 200);
  ASSERT_EQ(j["scores"].size(), 3u);
  double s = 0;
  for (auto& v : j["scores"]) s += v.get<double>();
  EXPECT_NEAR(s, 1.0, 1e-6);
}

TEST_F(ServerTest, ServesIndexedImagesByIdOnly) {
  auto c = client();
  auto j = post(c, "/v1/search", {{"text", "circle"}, {"k", 1}}, 200);
  const int64_t id = j["results"][0]["id"];
  auto r = c.Get("/v1/images/" + std::to_string(id));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "image/jpeg");
  EXPECT_EQ(r->body, read_file(j["results"][0]["path"]));
  for (const char* bad : {"/v1/images/../../../../etc/passwd", "/v1/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                          "/v1/images/-1", "/v1/images/1.jpg", "/v1/images/", "/v1/images/..%2F..%2Fidx%2Findex.json"}) {
    auto b = c.Get(bad);
    ASSERT_TRUE(b) << bad;
    EXPECT_TRUE(b->status == 400 || b->status == 404) << bad << " -> " << b->status;
    EXPECT_EQ(b->body.find("root:"), std::string::npos);
    EXPECT_TRUE(json::parse(b->body, nullptr, false).contains("error")) << bad << " " << b->body;
  }
  auto missing = c.Get("/v1/images/999999");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(ServerTest, ApiKeyIsRequiredOnV1) {
  auto anon = client(false);
  auto r = anon.Post("/v1/search", json{{"text", "x"}}.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(body(r)["error"]["status"], 401);
  httplib::Client wrong("127.0.0.1", port_);
  wrong.set_default_headers({{"Authorization", "Bearer nope"}});
  for (const char* p : {"/v1/embed/text", "/v1/embed/image", "/v1/compare", "/v1/classify", "/v1/retrieve", "/v1/dedup",
                        "/v1/video"}) {
    auto w = wrong.Post(p, "{}", "application/json");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->status, 401) << p;
  }
  auto img = wrong.Get("/v1/images/0");
  ASSERT_TRUE(img);
  EXPECT_EQ(img->status, 401);
}

TEST_F(ServerTest, BadRequestsGetClearJsonErrors) {
  auto c = client();
  struct Case {
    std::string path, body;
    int status;
    std::string says;
  };
  const Case cases[] = {
      {"/v1/search", "{not json", 400, "not valid JSON"},
      {"/v1/search", "[1,2]", 400, "JSON object"},
      {"/v1/search", "{}", 400, "exactly one of"},
      {"/v1/search", R"({"text": "a", "image_id": 1})", 400, "exactly one of"},
      {"/v1/search", R"({"text": "a", "k": 0})", 400, "\"k\""},
      {"/v1/search", R"({"text": "a", "k": "ten"})", 400, "\"k\""},
      {"/v1/search", R"({"text": "a", "filter": {"colour": "red"}})", 400, "unknown filter"},
      {"/v1/search", R"({"image_base64": "!!!"})", 400, "base64"},
      {"/v1/search", R"({"image_base64": "aGVsbG8gd29ybGQ="})", 400, "cannot read the image"},
      {"/v1/search", R"({"image_id": 424242})", 404, "no image"},
      {"/v1/embed/text", R"({"texts": []})", 400, "non-empty list"},
      {"/v1/embed/text", R"({"texts": [1]})", 400, "only strings"},
      {"/v1/embed/text", R"({"texts": ["a","a","a","a","a","a","a","a","a"]})", 413, "at most 8"},
      {"/v1/embed/image", R"({})", 400, "image_base64"},
      {"/v1/compare", R"({"image_base64": "aGk="})", 400, "prompts"},
      {"/v1/nothing", "{}", 404, "no such endpoint"},
  };
  for (auto& t : cases) {
    auto r = c.Post(t.path, t.body, "application/json");
    ASSERT_TRUE(r) << t.path;
    EXPECT_EQ(r->status, t.status) << t.path << " " << t.body << " -> " << r->body;
    auto j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.contains("error")) << r->body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(t.says), std::string::npos) << r->body;
  }
}

TEST_F(ServerTest, OversizedUploadsAre413) {
  auto c = client();
  std::string big(300 * 1024, 'x');
  httplib::MultipartFormDataItems items = {{"image", big, "big.jpg", "image/jpeg"}};
  auto r = c.Post("/v1/embed/image", items);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("too large"), std::string::npos) << r->body;
  auto j = c.Post("/v1/search", json{{"image_base64", std::string(400 * 1024, 'A')}}.dump(), "application/json");
  ASSERT_TRUE(j);
  EXPECT_EQ(j->status, 413);
}

TEST_F(ServerTest, ConcurrentTextRequestsShareModelBatches) {
  auto metric = [&](const std::string& name) {
    auto m = client(false).Get("/metrics");
    auto at = m->body.find(name + " ");
    return std::stoll(m->body.substr(at + name.size() + 1));
  };
  const int64_t b0 = metric("clipkit_model_batches_total{kind=\"text\"}"),
                r0 = metric("clipkit_model_rows_total{kind=\"text\"}");
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&, t] {
      auto c = client();
      for (int i = 0; i < 6; ++i) {
        auto r = c.Post("/v1/search", json{{"text", "query " + std::to_string(t * 10 + i)}}.dump(), "application/json");
        if (r && r->status == 200) ok++;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 48);
  const int64_t batches = metric("clipkit_model_batches_total{kind=\"text\"}") - b0,
                rows = metric("clipkit_model_rows_total{kind=\"text\"}") - r0;
  EXPECT_EQ(rows, 48);
  std::printf("  48 concurrent text queries ran in %lld model batches\n", static_cast<long long>(batches));
  EXPECT_LT(batches, 48);  // some requests shared a batch
}

// POST /v1/embeddings with the bodies the official OpenAI Node client (openai 6.30.1) sent, recorded
// byte for byte: its default asks for base64 (float32 little-endian) and a single string may come
// alone; rows equal the embedder's, usage counts the texts' tokens.
TEST_F(ServerTest, OpenAiEmbeddingsAnswerRecordedClientBodies) {
  auto c = client();
  auto e = pipeline::Embedder::load(test::data_path("models/tiny-clip"));
  const Tensor ref = e->embed_texts({"a red circle", "two shapes"}, {});
  const int64_t D = ref.dim(1);
  std::vector<int32_t> ids, mask;
  int64_t L;
  e->tokenize({"a red circle", "two shapes"}, &ids, &mask, &L);
  const int64_t tokens = std::count(mask.begin(), mask.end(), 1);
  auto r = c.Post("/v1/embeddings",
                  R"({"model":"text-embedding-3-small","input":["a red circle","two shapes"],"encoding_format":"base64"})",
                  "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = body(r);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "text-embedding-3-small");
  EXPECT_EQ(j["usage"]["prompt_tokens"], tokens);
  EXPECT_EQ(j["usage"]["total_tokens"], tokens);
  ASSERT_EQ(j["data"].size(), 2u);
  for (int64_t i = 0; i < 2; ++i) {
    const auto& d = j["data"][static_cast<size_t>(i)];
    EXPECT_EQ(d["object"], "embedding");
    EXPECT_EQ(d["index"], i);
    std::string bytes;
    ASSERT_TRUE(base64_decode(d["embedding"].get<std::string>(), &bytes));
    ASSERT_EQ(bytes.size(), static_cast<size_t>(D) * 4);
    std::vector<float> v(static_cast<size_t>(D));
    std::memcpy(v.data(), bytes.data(), bytes.size());
    for (int64_t k = 0; k < D; ++k) EXPECT_NEAR(v[static_cast<size_t>(k)], ref.ptr<float>()[i * D + k], 1e-5);
  }
  auto f = post(c, "/v1/embeddings",
                json::parse(R"({"model":"text-embedding-3-small","input":"a red circle","encoding_format":"float"})"), 200);
  ASSERT_EQ(f["data"].size(), 1u);
  ASSERT_EQ(f["data"][0]["embedding"].size(), static_cast<size_t>(D));
  for (int64_t k = 0; k < D; ++k) EXPECT_NEAR(f["data"][0]["embedding"][static_cast<size_t>(k)].get<float>(), ref.ptr<float>()[k], 1e-5);
}

// An input that is an image data URL is embedded as /v1/embed/image embeds the same bytes; texts
// around it keep their places; without "model" the served model's folder names it.
TEST_F(ServerTest, OpenAiEmbeddingsTakeImagesAsDataUrls) {
  auto c = client();
  const std::string img = read_file(test::data_path("images/chelsea.jpg"));
  auto want = post(c, "/v1/embed/image", {{"image_base64", b64(img)}}, 200)["embeddings"][0];
  auto t = post(c, "/v1/embed/text", {{"texts", {"a cat"}}}, 200)["embeddings"][0];
  auto j = post(c, "/v1/embeddings", {{"input", {"a cat", "data:image/jpeg;base64," + b64(img)}}}, 200);
  EXPECT_EQ(j["model"], "tiny-clip");
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][1]["index"], 1);
  ASSERT_EQ(j["data"][1]["embedding"].size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_FLOAT_EQ(j["data"][1]["embedding"][k].get<float>(), want[k].get<float>());
    EXPECT_FLOAT_EQ(j["data"][0]["embedding"][k].get<float>(), t[k].get<float>());
  }
}

// Invalid input gets OpenAI's error object (message, type, param, code) with the right status,
// under the same key, body and pixel limits as every endpoint.
TEST_F(ServerTest, OpenAiEmbeddingsErrorsAreOpenAiErrorObjects) {
  struct Case {
    std::string body;
    int status;
    std::string param, says;
  };
  const std::string png_header = b64(std::string("\x89PNG\r\n\x1a\n", 8));
  const Case cases[] = {
      {R"({"model": "m"})", 400, "input", "missing \"input\""},
      {R"({"model": "m", "input": 5})", 400, "input", "string or a list of strings"},
      {R"({"model": "m", "input": [[1, 2, 3]]})", 400, "input", "token ids"},
      {R"({"model": "m", "input": []})", 400, "input", "empty"},
      {R"({"model": "m", "input": ["a","a","a","a","a","a","a","a","a"]})", 413, "input", "at most 8"},
      {R"({"model": 7, "input": "a"})", 400, "model", "must be a string"},
      {R"({"model": "m", "input": "a", "encoding_format": "int8"})", 400, "encoding_format", "\"base64\""},
      {R"({"model": "m", "input": "a", "dimensions": 16})", 400, "dimensions", "must be 48"},
      {R"({"model": "m", "input": "data:image/png,rawbytes"})", 400, "input", "without base64"},
      {R"({"model": "m", "input": ["a", "data:image/png;base64,!!!"]})", 400, "input", "\"input\"[1] is an image data URL that is not valid base64"},
      {R"({"model": "m", "input": "data:image/png;base64,)" + png_header + R"("})", 400, "input", "cannot read the image"},
      {"{not json", 400, "", "not valid JSON"},
  };
  auto c = client();
  for (auto& t : cases) {
    auto r = c.Post("/v1/embeddings", t.body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, t.status) << t.body << " -> " << r->body;
    auto j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.contains("error")) << r->body;
    const auto& e = j["error"];
    EXPECT_NE(e["message"].get<std::string>().find(t.says), std::string::npos) << r->body;
    EXPECT_EQ(e["type"], "invalid_request_error") << r->body;
    EXPECT_EQ(e["param"], t.param.empty() ? json(nullptr) : json(t.param)) << r->body;
    EXPECT_TRUE(e.contains("code")) << r->body;
  }
  auto r = client(false).Post("/v1/embeddings", R"({"model": "m", "input": "a"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(body(r)["error"]["type"], "authentication_error");
  EXPECT_EQ(body(r)["error"]["code"], "invalid_api_key");
  // the body limit (256 KiB here) holds for images in "input" too
  auto big = c.Post("/v1/embeddings", json{{"input", "data:image/jpeg;base64," + std::string(300 * 1024, 'A')}}.dump(),
                    "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
}

// /v1/classify gives what the zero-shot classifier gives for the same image, from JSON or a form.
TEST_F(ServerTest, ClassifyMatchesTheLibraryAndChecksItsInput) {
  auto c = client();
  const std::string img = read_file(test::data_path("images/chelsea.jpg"));
  auto j = post(c, "/v1/classify",
                {{"image_base64", b64(img)}, {"labels", {"cat", "dog", "car"}}, {"templates", {"a photo of a {}.", "a {}"}}},
                200);
  auto e = pipeline::Embedder::load(test::data_path("models/tiny-clip"));
  apps::EmbedderEncoder enc(*e);
  apps::ZeroShotOptions zo;
  zo.templates = {"a photo of a {}.", "a {}"};
  apps::ZeroShotClassifier clf(enc, {"cat", "dog", "car"}, zo);
  std::vector<int64_t> kept;
  Tensor x = e->embed_image_files({test::data_path("images/chelsea.jpg")}, {}, &kept, nullptr);
  auto ref = clf.classify(x.ptr<float>());
  const char* labels[] = {"cat", "dog", "car"};
  double sum = 0;
  for (int l = 0; l < 3; ++l) {
    EXPECT_NEAR(j["scores"][labels[l]].get<double>(), ref.scores[static_cast<size_t>(l)], 1e-5) << labels[l];
    sum += j["scores"][labels[l]].get<double>();
  }
  EXPECT_NEAR(sum, 1.0, 1e-9);
  ASSERT_EQ(j["labels"].size(), 1u);
  EXPECT_EQ(j["labels"][0], labels[ref.chosen[0]]);
  // multipart form: labels as "a,b", flags as JSON literals; multi-label thresholds per label
  httplib::MultipartFormDataItems items = {{"image", img, "chelsea.jpg", "image/jpeg"},
                                           {"labels", "cat,dog", "", ""},
                                           {"multi_label", "true", "", ""},
                                           {"thresholds", R"({"cat": 0.0})", "", ""}};
  auto r = c.Post("/v1/classify", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto m = body(r);
  EXPECT_EQ(m["mode"], "multi_label");
  EXPECT_EQ(m["labels"][0], "cat");  // threshold 0 always chooses it
  // bad input: no labels, a template without {}, thresholds without multi_label, a text query
  post(c, "/v1/classify", {{"image_base64", b64(img)}}, 400);
  post(c, "/v1/classify", {{"image_base64", b64(img)}, {"labels", {"a"}}, {"templates", {"no slot"}}}, 400);
  post(c, "/v1/classify", {{"image_base64", b64(img)}, {"labels", {"a"}}, {"thresholds", {{"a", 0.2}}}}, 400);
  post(c, "/v1/classify", {{"text", "a cat"}, {"labels", {"a"}}}, 400);
  post(c, "/v1/classify", {{"image_base64", "!!!"}, {"labels", {"a"}}}, 400);
}

// /v1/retrieve: RAG-ready JSON with thumbnails, the image URL, index filters and result filters.
TEST_F(ServerTest, RetrieveGivesRagReadyResults) {
  auto c = client();
  auto j = post(c, "/v1/retrieve", {{"text", "a dog on a couch"}, {"k", 3}, {"thumbnails", true}, {"thumb_size", 64}}, 200);
  ASSERT_EQ(j["results"].size(), 3u);
  EXPECT_EQ(j["query"], "a dog on a couch");
  for (auto& r : j["results"]) {
    EXPECT_EQ(r["url"], "/v1/images/" + std::to_string(r["metadata"]["id"].get<int64_t>()));
    EXPECT_EQ(r["image"].get<std::string>().rfind("data:image/jpeg;base64,", 0), 0u);
    EXPECT_TRUE(r.contains("caption"));
  }
  EXPECT_GE(j["results"][0]["score"].get<double>(), j["results"][1]["score"].get<double>());
  // content: one text intro, then text + image parts per result
  ASSERT_EQ(j["content"].size(), 7u);
  EXPECT_EQ(j["content"][2]["type"], "image_url");
  auto none = post(c, "/v1/retrieve", {{"text", "x"}, {"filter", {{"split", "train"}}}}, 200);
  EXPECT_TRUE(none["results"].empty());
  auto first = post(c, "/v1/search", {{"text", "x"}, {"k", 1}}, 200)["results"][0];
  const std::string name = fs::path(first["path"].get<std::string>()).filename().string();
  auto only = post(c, "/v1/retrieve", {{"text", "x"}, {"k", 5}, {"filters", {"path~" + name}}}, 200);
  ASSERT_EQ(only["results"].size(), 1u);
  EXPECT_EQ(only["results"][0]["path"], first["path"]);
  post(c, "/v1/retrieve", {{"text", "x"}, {"filters", {"nonsense"}}}, 400);
  post(c, "/v1/retrieve", {{"text", "x"}, {"k", 0}}, 400);
  post(c, "/v1/retrieve", {{"k", 3}}, 400);
}

// /v1/dedup: an indexed image uploaded again is an exact duplicate of itself; the library scope
// gives the dedup report contract.
TEST_F(ServerTest, DedupFindsAnUploadInTheLibraryAndReportsTheLibrary) {
  auto c = client();
  auto first = post(c, "/v1/search", {{"text", "x"}, {"k", 1}}, 200)["results"][0];
  const std::string bytes = read_file(first["path"].get<std::string>());
  auto j = post(c, "/v1/dedup", {{"image_base64", b64(bytes)}}, 200);
  ASSERT_GE(j["duplicates"].size(), 1u);
  EXPECT_EQ(j["duplicates"][0]["id"], first["id"]);
  EXPECT_TRUE(j["duplicates"][0]["exact"].get<bool>());
  EXPECT_NEAR(j["duplicates"][0]["score"].get<double>(), 1.0, 1e-4);
  EXPECT_EQ(j["exact_duplicates"], 1);
  // by id: the image itself is not its own duplicate
  auto by_id = post(c, "/v1/dedup", {{"image_id", first["id"]}, {"threshold", 0.9999}}, 200);
  for (auto& d : by_id["duplicates"]) EXPECT_NE(d["id"], first["id"]);
  // a different image (not in the index) at a strict threshold: nothing
  auto other = post(c, "/v1/dedup", {{"image_base64", b64(read_file(test::data_path("images/rocket.jpg")))},
                                     {"threshold", 0.9999}}, 200);
  EXPECT_TRUE(other["duplicates"].empty());
  auto lib = post(c, "/v1/dedup", json::object(), 200);
  EXPECT_EQ(lib["images"], 40);
  EXPECT_TRUE(lib["groups"].is_array());
  EXPECT_TRUE(lib["cross_split"].is_array());
  post(c, "/v1/dedup", {{"threshold", 3}}, 400);
}

// /v1/video: an uploaded video's timeline, from a form or base64; unreadable videos are 400s.
TEST_F(ServerTest, VideoTimelineFromAnUpload) {
  const std::string path = *dir_ + "/v.mp4";
  {
    apps::VideoWriter w(path, 64, 48, 10);
    const uint8_t col[3][3] = {{210, 30, 30}, {30, 190, 40}, {30, 40, 200}};
    for (int f = 0; f < 60; ++f) w.write(apps::synthetic::solid(64, 48, col[f / 20][0], col[f / 20][1], col[f / 20][2], f + 1));
    w.close();
  }
  const std::string video = read_file(path);
  auto c = client();
  httplib::MultipartFormDataItems items = {{"video", video, "v.mp4", "video/mp4"},
                                           {"labels", "red,green", "", ""},
                                           {"query", "a green field", "", ""},
                                           {"every", "0.5", "", ""}};
  auto r = c.Post("/v1/video", items);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = body(r);
  EXPECT_NEAR(j["duration"].get<double>(), 6.0, 0.11);
  ASSERT_EQ(j["frames"].size(), 12u);
  ASSERT_GE(j["segments"].size(), 1u);
  ASSERT_EQ(j["matches"].size(), 5u);
  auto s = post(c, "/v1/video", {{"video_base64", b64(video)}, {"labels", {"a", "b"}}, {"scenes", true}}, 200);
  ASSERT_EQ(s["scene_cuts"].size(), 2u);
  EXPECT_NEAR(s["scene_cuts"][0].get<double>(), 2.0, 0.101);
  auto bad = post(c, "/v1/video", {{"video_base64", b64("not a video")}, {"labels", {"a"}}}, 400);
  EXPECT_NE(bad["error"]["message"].get<std::string>().find("cannot read the video"), std::string::npos);
  post(c, "/v1/video", {{"video_base64", b64(video)}}, 400);  // nothing to look for
  post(c, "/v1/video", {{"video_base64", b64(video)}, {"labels", {"a"}}, {"every", 1}, {"scenes", true}}, 400);
  post(c, "/v1/video", {{"labels", {"a"}}}, 400);
}

}  // namespace
}  // namespace clipkit::server
