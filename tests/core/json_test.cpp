#include "core/json.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace clipkit {
namespace {

using json = nlohmann::json;

std::string nested(int depth, const std::string& inner = "1") {
  return std::string(static_cast<size_t>(depth), '[') + inner + std::string(static_cast<size_t>(depth), ']');
}

TEST(Json, NestingIsBoundedBeforeAValueIsBuilt) {
  EXPECT_NO_THROW(parse_json(nested(kMaxJsonDepth), "ok.json"));
  try {
    parse_json(nested(kMaxJsonDepth + 1), "deep.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("deep.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("deeper than 128"), std::string::npos) << e.what();
  }
  // what crashed config.json / tokenizer.json / request bodies: hundreds of thousands of levels
  json j;
  std::string why;
  EXPECT_FALSE(try_parse_json(nested(300000), &j, &why));
  EXPECT_FALSE(try_parse_json("{\"a\":" + nested(150000) + "}", &j, &why));
  std::string objs;
  for (int i = 0; i < 200000; ++i) objs += "{\"k\":";
  EXPECT_FALSE(try_parse_json(objs, &j, &why));
  EXPECT_NE(why.find("deeper than"), std::string::npos);
  // brackets inside strings are text, not nesting
  EXPECT_TRUE(try_parse_json("[\"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"]", &j, &why)) << why;
  EXPECT_EQ(j[0].get<std::string>().size(), 2001u);
}

TEST(Json, SaxParseHasTheSameBound) {
  struct Count : nlohmann::json_sax<json> {
    int events = 0;
    bool bump() {
      ++events;
      return true;
    }
    bool null() override { return bump(); }
    bool boolean(bool) override { return bump(); }
    bool number_integer(number_integer_t) override { return bump(); }
    bool number_unsigned(number_unsigned_t) override { return bump(); }
    bool number_float(number_float_t, const string_t&) override { return bump(); }
    bool string(string_t&) override { return bump(); }
    bool binary(binary_t&) override { return bump(); }
    bool start_object(std::size_t) override { return bump(); }
    bool key(string_t&) override { return bump(); }
    bool end_object() override { return bump(); }
    bool start_array(std::size_t) override { return bump(); }
    bool end_array() override { return bump(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
  } c;
  std::string why;
  EXPECT_TRUE(sax_parse_json(nested(10), &c, &why));
  EXPECT_EQ(c.events, 21);
  EXPECT_FALSE(sax_parse_json(nested(100000), &c, &why));
  EXPECT_NE(why.find("deeper than"), std::string::npos);
}

TEST(Json, BadJsonNamesTheSource) {
  try {
    parse_json("{\"a\": ", "config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("config.json: not valid JSON", 0), 0u) << e.what();
  }
}

TEST(Json, IntegerIsCheckedBeforeItIsConverted) {
  EXPECT_EQ(json_integer(json::parse("3"), 0, 5, "\"resample\""), 3);
  EXPECT_EQ(json_integer(json::parse("-7"), -10, 10, "x"), -7);
  EXPECT_EQ(json_integer(json::parse("9223372036854775807"), 0, INT64_MAX, "x"), INT64_MAX);
  // Floats (1e300 would be undefined behaviour in get<int>()), out-of-range values, unsigned values
  // beyond int64, and non-numbers are errors naming the field.
  for (const char* bad : {"1e300", "-1e300", "3.0", "2.5", "6", "-1", "18446744073709551615", "\"3\"", "null",
                          "true", "[3]"}) {
    try {
      json_integer(json::parse(bad), 0, 5, "preprocessor_config.json: \"resample\"");
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      const std::string want = "preprocessor_config.json: \"resample\" must be an integer from 0 to 5, got ";
      EXPECT_EQ(std::string(e.what()).rfind(want, 0), 0u) << e.what();
    }
  }
}

TEST(Json, OptionalFieldsOfTheWrongTypeAreErrorsNamingTheField) {
  const json j = json::parse(R"({"s": "x", "n": 2.5, "b": true, "z": null, "long": ")" + std::string(200, 'a') + "\"}");
  EXPECT_EQ(json_string_or(j, "s", "d", "f"), "x");
  EXPECT_EQ(json_string_or(j, "missing", "d", "f"), "d");
  EXPECT_EQ(json_string_or(j, "z", "d", "f"), "d");  // null keeps the default, as HF's configs mean it
  EXPECT_EQ(json_number_or(j, "n", 1, "f"), 2.5);
  EXPECT_EQ(json_number_or(j, "missing", 1, "f"), 1);
  EXPECT_TRUE(json_bool_or(j, "b", false, "f"));
  EXPECT_FALSE(json_bool_or(json::parse("[1]"), "b", false, "f"));  // not an object: the default
  auto message = [](auto&& read) {
    try {
      read();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([&] { json_string_or(j, "n", "", "config.json"); }), "config.json: field \"n\" must be a string, got 2.5");
  EXPECT_EQ(message([&] { json_number_or(j, "s", 0, "config.json"); }), "config.json: field \"s\" must be a number, got \"x\"");
  EXPECT_EQ(message([&] { json_bool_or(j, "n", false, "config.json"); }), "config.json: field \"n\" must be true or false, got 2.5");
  // a long value is cut in the message
  EXPECT_EQ(message([&] { json_number_or(j, "long", 0, "c"); }), "c: field \"long\" must be a number, got \"" + std::string(59, 'a') + "...");
}

TEST(Json, TextMatchesNlohmannDumpOnUtf8) {
  json j = {{"path", "/a/b c.jpg"}, {"n", 3}, {"f", 0.1}, {"neg", -2.5e-8}, {"big", 18446744073709551615ull},
            {"t", true}, {"z", nullptr}, {"u", "caf\xc3\xa9 \xf0\x9f\x98\x80 \x7f"}, {"ctl", std::string("a\x01\n\t\"\\/\0b", 9)},
            {"arr", {1, {2, 3}, json::array(), json::object()}}, {"obj", {{"x", {{"y", json::array()}}}}}};
  for (int indent : {-1, 0, 1, 2, 4}) EXPECT_EQ(json_text(j, indent), j.dump(indent)) << indent;
  nlohmann::ordered_json o = {{"row", 1}, {"file", "x"}};
  EXPECT_EQ(json_text(o), o.dump());
  EXPECT_EQ(json_text(json("x")), "\"x\"");
  EXPECT_EQ(json_text(json::array()), "[]");
}

TEST(Json, NonUtf8BytesRoundTripAsSurrogateEscapes) {
  const std::string name = "photos/\xff\xfe-caf\xe9-\xe2\x82.jpg";  // Latin-1 and truncated UTF-8 bytes
  EXPECT_THROW((void)json(name).dump(), json::type_error);          // what stopped whole jobs
  const std::string text = json_text(json{{"path", name}, {name, 1}});
  EXPECT_EQ(text, "{\"path\":\"photos/\\udcff\\udcfe-caf\\udce9-\\udce2\\udc82.jpg\",\"photos/\\udcff\\udcfe-caf\\udce9-\\udce2\\udc82.jpg\":1}")
      << text;
  json back = parse_json(text, "t");
  EXPECT_EQ(back["path"].get<std::string>(), name);
  EXPECT_EQ(back[name].get<int>(), 1);
  // real NULs and surrogate pairs beside escaped bytes stay what they were
  const std::string mixed = std::string("a\0b\xff", 4) + "\xf0\x9f\x98\x80";
  json m = parse_json(json_text(json(mixed)), "t");
  EXPECT_EQ(m.get<std::string>(), mixed);
  EXPECT_EQ(parse_json("\"\\ud83d\\ude00 \\u0000\"", "t").get<std::string>(), std::string("\xf0\x9f\x98\x80 \0", 6));
  // lone surrogates that are not escaped bytes stay invalid JSON, as in nlohmann
  json j;
  EXPECT_FALSE(try_parse_json("\"\\udc00\"", &j));
  EXPECT_FALSE(try_parse_json("\"\\ud800\"", &j));
}

TEST(Json, ValidUtf8) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("caf\xc3\xa9 \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf"));
  for (const char* bad : {"\xff", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\x80", "\xf0\x9f\x98"})
    EXPECT_FALSE(valid_utf8(bad)) << bad;
}

}  // namespace
}  // namespace clipkit
