#include "apps/classify.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "apps/synthetic.h"
#include "apps_test_util.h"
#include "core/error.h"

namespace clipkit {
namespace {

TEST(ZeroShot, FillTemplate) {
  EXPECT_EQ(apps::fill_template("a photo of a {}.", "cat"), "a photo of a cat.");
  EXPECT_EQ(apps::fill_template("{} and {}", "x"), "x and x");
  EXPECT_THROW(apps::fill_template("no slot", "x"), Error);
}

TEST(ZeroShot, EnsembleAveragesNormalizedTemplateEmbeddings) {
  test::SyntheticEncoder enc(4);
  enc.set_text("a cat", {1, 0, 0, 0});
  enc.set_text("art of cat", {0, 3, 0, 0});  // normalized before averaging: equal weight
  enc.set_text("a dog", {0, 0, 1, 0});
  enc.set_text("art of dog", {0, 0, 1, 0});
  Tensor e = apps::ensemble_label_embeddings(enc, {"cat", "dog"}, {"a {}", "art of {}"});
  ASSERT_EQ(e.shape, (Shape{2, 4}));
  const float h = 1 / std::sqrt(2.f);
  EXPECT_NEAR(e.ptr<float>()[0], h, 1e-6);
  EXPECT_NEAR(e.ptr<float>()[1], h, 1e-6);
  EXPECT_NEAR(e.ptr<float>()[6], 1, 1e-6);
}

TEST(ZeroShot, SingleLabelSoftmaxUsesTheLogitScale) {
  Tensor lab = Tensor::zeros(DType::F32, {3, 3});
  for (int i = 0; i < 3; ++i) lab.ptr<float>()[i * 3 + i] = 1;
  apps::ZeroShotClassifier c(lab, {}, 10.f, {"r", "g", "b"}, {});
  const float x[3] = {0.8f, 0.6f, 0.f};
  auto r = c.classify(x);
  const double e0 = std::exp(10 * double(0.8f)), e1 = std::exp(10 * double(0.6f)), e2 = 1;
  EXPECT_NEAR(r.scores[0], e0 / (e0 + e1 + e2), 1e-9);
  EXPECT_NEAR(r.scores[1], e1 / (e0 + e1 + e2), 1e-9);
  EXPECT_NEAR(r.scores[0] + r.scores[1] + r.scores[2], 1.0, 1e-12);
  EXPECT_EQ(r.chosen, (std::vector<int>{0}));
  EXPECT_NEAR(r.cosine[1], 0.6, 1e-7);
}

TEST(ZeroShot, MultiLabelPerLabelThresholds) {
  Tensor lab = Tensor::zeros(DType::F32, {3, 3});
  for (int i = 0; i < 3; ++i) lab.ptr<float>()[i * 3 + i] = 1;
  apps::ZeroShotOptions o;
  o.multi_label = true;
  o.threshold = 0.5;
  o.label_thresholds["b"] = 0.2;
  const float other[3] = {0.57735f, 0.57735f, 0.57735f};
  apps::ZeroShotClassifier c(lab, {other, other + 3}, 10.f, {"r", "g", "b"}, o);
  const float x[3] = {0.8f, 0.6f, 0.f};  // cos_other = 0.8083
  auto r = c.classify(x);
  const double co = 0.57735 * 1.4;
  for (int l = 0; l < 3; ++l) EXPECT_NEAR(r.scores[l], 1 / (1 + std::exp(-10 * (x[l] - co))), 1e-6);
  // r: sigmoid(-0.08) = 0.48 < 0.5; g: below; b: 0.0003 < 0.2: nothing chosen
  EXPECT_TRUE(r.chosen.empty());
  const float y[3] = {0.9f, 0.f, 0.436f};  // cos_other = 0.771: r 0.78 >= 0.5; b 0.034 < 0.2
  EXPECT_EQ(c.classify(y).chosen, (std::vector<int>{0}));
  o.label_thresholds["b"] = 0.01;
  apps::ZeroShotClassifier c2(lab, {other, other + 3}, 10.f, {"r", "g", "b"}, o);
  EXPECT_EQ(c2.classify(y).chosen, (std::vector<int>{0, 2}));  // best first
  o.label_thresholds["zebra"] = 0.1;
  EXPECT_THROW(apps::ZeroShotClassifier(lab, {other, other + 3}, 10.f, {"r", "g", "b"}, o), Error);
  apps::ZeroShotOptions m;
  m.multi_label = true;
  EXPECT_THROW(apps::ZeroShotClassifier(lab, {}, 10.f, {"r", "g", "b"}, m), Error);  // no "other" embedding
}

TEST(ZeroShot, LabelParsing) {
  EXPECT_EQ(apps::parse_label_list(" cat, dog ,,a\\, b"), (std::vector<std::string>{"cat", "dog", "a, b"}));
  auto dir = test::apps_temp_dir("labels");
  std::ofstream(dir + "/l.txt") << "# animals\ncat\n\ndog\t0.3\n";
  std::map<std::string, double> th;
  EXPECT_EQ(apps::read_label_file(dir + "/l.txt", &th), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(th["dog"], 0.3);
  std::ofstream(dir + "/bad.txt") << "cat\tlots\n";
  try {
    apps::read_label_file(dir + "/bad.txt", &th);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:1: threshold \"lots\""), std::string::npos) << e.what();
  }
  EXPECT_THROW(apps::read_label_file(dir + "/none.txt", &th), Error);
}

// A folder-per-class set of solid-colour images; the synthetic encoder sees mean colour and the
// prompts are built to point at the class colours, so the answer is known: all correct except the
// deliberately ambiguous image.
TEST(ZeroShot, EvalOnFolderPerClassDataset) {
  auto dir = test::apps_temp_dir("zs_eval");
  struct C {
    const char* name;
    uint8_t r, g, b;
  } cls[] = {{"red_thing", 220, 20, 20}, {"green_thing", 20, 200, 30}, {"blue_thing", 30, 40, 210}};
  for (auto& c : cls) {
    std::filesystem::create_directories(dir + "/" + c.name);
    for (int i = 0; i < 4; ++i)
      apps::synthetic::write_jpeg(dir + "/" + c.name + "/" + std::to_string(i) + ".jpg",
                                  apps::synthetic::solid(32, 32, c.r, c.g, static_cast<uint8_t>(c.b + i), i + 1));
  }
  // One blue-folder image that is actually red: the classifier must get it "wrong".
  apps::synthetic::write_jpeg(dir + "/blue_thing/zz.jpg", apps::synthetic::solid(32, 32, 230, 10, 10));
  auto ds = apps::list_class_folders(dir);
  ASSERT_EQ(ds.classes, (std::vector<std::string>{"blue thing", "green thing", "red thing"}));
  ASSERT_EQ(ds.paths.size(), 13u);
  test::SyntheticEncoder enc(8);
  for (const char* t : {"a photo of a {}.", "art of a {}."}) {
    enc.set_text(apps::fill_template(t, "red thing"), {1, 0, 0, 0.05f});
    enc.set_text(apps::fill_template(t, "green thing"), {0, 1, 0, 0.05f});
    enc.set_text(apps::fill_template(t, "blue thing"), {0, 0, 1, 0.05f});
  }
  apps::ZeroShotOptions o;
  o.templates = {"a photo of a {}.", "art of a {}."};
  apps::ZeroShotClassifier clf(enc, ds.classes, o);
  EXPECT_EQ(enc.text_calls, 1);  // every prompt in one batch
  std::vector<image::Image> ims;
  for (auto& p : ds.paths) ims.push_back(image::decode_file(p));
  std::vector<const image::Image*> ptr;
  for (auto& i : ims) ptr.push_back(&i);
  auto scores = clf.classify(enc.encode_images(ptr));
  std::vector<int> pred;
  for (auto& s : scores) pred.push_back(s.chosen[0]);
  auto ev = apps::evaluate(ds.truth, pred, ds.classes);
  EXPECT_EQ(ev.images, 13);
  EXPECT_EQ(ev.correct, 12);
  EXPECT_NEAR(ev.accuracy, 12.0 / 13, 1e-12);
  EXPECT_EQ(ev.classes[0].n, 5);
  EXPECT_EQ(ev.classes[0].correct, 4);
  EXPECT_EQ(ev.classes[2].predicted, 5);
  EXPECT_NEAR(ev.classes[2].precision, 0.8, 1e-12);
  EXPECT_EQ(ev.confusion[0][2], 1);
  EXPECT_THROW(apps::list_class_folders(dir + "/red_thing"), Error);  // no class sub-folders
}

TEST(ZeroShot, TinyClipEndToEndShapes) {
  auto emb = pipeline::Embedder::load(test::tiny_clip());
  apps::EmbedderEncoder enc(*emb);
  apps::ZeroShotOptions o;
  o.templates = {"a photo of a {}.", "a drawing of a {}."};
  apps::ZeroShotClassifier clf(enc, {"cat", "rocket", "coffee"}, o);
  EXPECT_NEAR(clf.logit_scale(), std::exp(2.6592f), 1e-3);
  auto im = image::decode_file(std::string(CLIPKIT_TEST_DATA) + "/images/chelsea.jpg");
  Tensor e = enc.encode_images({&im});
  ASSERT_EQ(e.shape, (Shape{1, 48}));
  auto r = clf.classify(e)[0];
  double sum = 0;
  for (double p : r.scores) sum += p;
  EXPECT_NEAR(sum, 1.0, 1e-9);
  EXPECT_EQ(r.chosen.size(), 1u);
  EXPECT_THROW(apps::ZeroShotClassifier(enc, {}, o), Error);
}

}  // namespace
}  // namespace clipkit
