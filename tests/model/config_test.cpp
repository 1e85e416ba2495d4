// config.json of an untrusted checkpoint: every malformed field is a clipkit::Error naming the file.
#include "model/config.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/json.h"

namespace clipkit::model {
namespace {

using json = nlohmann::json;

std::string error_of(const std::string& text) {
  try {
    ModelConfig::from_json(parse_json(text, "config.json"), "config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(ModelConfigJson, FieldsOfTheWrongTypeAreErrorsNamingTheFile) {
  // (the first is what libFuzzer found: a model_type that is not a string ended the process)
  for (const char* text : {R"({"model_type": 1})", R"({"model_type": ["clip"]})",
                           R"({"model_type": "clip", "vision_config": {"model_type": 7}, "text_config": {}})",
                           R"({"model_type": "vision-text-dual-encoder", "vision_config": {}, "text_config": {"model_type": {}}})",
                           R"({"model_type": "clip", "vision_config": {"model_type": "clip", "vision_config": 3}, "text_config": {}})",
                           R"({"model_type": "clip", "vision_config": {"hidden_act": 5}, "text_config": {}})",
                           R"({"model_type": "clip", "vision_config": {"hidden_size": "768"}, "text_config": {}})",
                           R"({"model_type": "clip", "vision_config": {}, "text_config": {"layer_norm_eps": "x"}})",
                           R"({"model_type": "roberta", "position_embedding_type": 0})",
                           R"({"model_type": "clip", "vision_config": {}, "text_config": {}, "projection_dim": 1.5})"}) {
    const std::string e = error_of(text);
    EXPECT_EQ(e.rfind("config.json", 0), 0u) << text << " -> " << e;
  }
  EXPECT_NE(error_of(R"({"model_type": 1})").find("\"model_type\" must be a string"), std::string::npos);
}

TEST(ModelConfigJson, TowerConfigsMustBeObjects) {
  EXPECT_NE(error_of(R"({"model_type": "clip", "vision_config": {}, "text_config": []})").find("text_config"), std::string::npos);
  EXPECT_THROW(parse_vision_config(json::array(), "x"), Error);
  EXPECT_THROW(parse_text_config(json(3), "x"), Error);
}

TEST(ModelConfigJson, HfDefaultsFillAnEmptyClipConfig) {
  const auto c = ModelConfig::from_json(parse_json(R"({"model_type": "clip", "vision_config": {}, "text_config": {}})", "c"), "c");
  ASSERT_TRUE(c.vision && c.text);
  EXPECT_EQ(c.vision->hidden_size, 768);
  EXPECT_EQ(c.vision->patch_size, 32);
  EXPECT_EQ(c.text->hidden_size, 512);
  EXPECT_EQ(c.projection_dim, 512);
}

}  // namespace
}  // namespace clipkit::model
