// Models by name: hub ids and cache repo folders resolved through a fake Hugging Face cache laid
// out as huggingface_hub writes it (blobs/, refs/<revision>, snapshots/<commit>/ of symlinks),
// with two revisions; plain folders; the errors for what is missing; open_clip folders.
#include "io/model_location.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"

namespace clipkit {
namespace {

namespace fs = std::filesystem;

const std::string kOld = "1111111111aaaaaaaaaabbbbbbbbbbcccccccccc";
const std::string kNew = "2222222222ddddddddddeeeeeeeeeeffffffffff";

// CACHE/models--org--tiny: blobs hold the files, snapshots link to them, refs/main -> kNew,
// refs/v1 -> kOld.
class FakeCache : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("clipkit_model_location_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    cache_ = root_ / "hub";
    repo_ = cache_ / "models--org--tiny";
    for (auto [commit, text] : {std::pair{kOld, std::string("{\"v\": 1}")}, std::pair{kNew, std::string("{\"v\": 2}")}}) {
      const std::string blob = "blob" + commit.substr(0, 4);
      fs::create_directories(repo_ / "blobs");
      fs::create_directories(repo_ / "snapshots" / commit);
      write_file_atomic((repo_ / "blobs" / blob).string(), text);
      fs::create_symlink(fs::path("../../blobs") / blob, repo_ / "snapshots" / commit / "config.json");
    }
    fs::create_directories(repo_ / "refs");
    write_file_atomic((repo_ / "refs/main").string(), kNew);  // huggingface_hub writes no newline
    write_file_atomic((repo_ / "refs/v1").string(), kOld + "\n");
    env_.hf_hub_cache = cache_.string();
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string config_at(const std::string& dir) { return read_file(dir + "/config.json"); }
  std::string error_of(const std::string& spec) {
    try {
      locate_model(spec, env_);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }

  fs::path root_, cache_, repo_;
  HubEnvironment env_;
};

TEST_F(FakeCache, HubIdResolvesMainThroughRefsAndSymlinks) {
  auto loc = locate_model("org/tiny", env_);
  EXPECT_EQ(loc.dir, (repo_ / "snapshots" / kNew).string());
  EXPECT_EQ(loc.repo_id, "org/tiny");
  EXPECT_EQ(loc.revision, "main");
  EXPECT_EQ(loc.commit, kNew);
  EXPECT_EQ(config_at(loc.dir), "{\"v\": 2}");  // read through the symlink into blobs/
}

TEST_F(FakeCache, RevisionsByRefFullAndAbbreviatedCommit) {
  EXPECT_EQ(config_at(locate_model("org/tiny@v1", env_).dir), "{\"v\": 1}");  // refs/v1 (trailing newline trimmed)
  EXPECT_EQ(config_at(locate_model("org/tiny@main", env_).dir), "{\"v\": 2}");
  EXPECT_EQ(locate_model("org/tiny@" + kOld, env_).commit, kOld);
  EXPECT_EQ(locate_model("org/tiny@1111111", env_).commit, kOld);
  EXPECT_EQ(locate_model("org/tiny@2222222222dd", env_).commit, kNew);
}

TEST_F(FakeCache, CacheRepoFolderResolvesLikeItsId) {
  EXPECT_EQ(locate_model(repo_.string(), env_).commit, kNew);
  EXPECT_EQ(locate_model(repo_.string() + "@v1", env_).commit, kOld);
  EXPECT_EQ(locate_model(repo_.string(), env_).repo_id, "org/tiny");
  // a snapshot folder is a plain model folder
  const std::string snap = (repo_ / "snapshots" / kOld).string();
  EXPECT_EQ(locate_model(snap, env_).dir, snap);
  EXPECT_EQ(locate_model(snap, env_).repo_id, "");
}

TEST_F(FakeCache, CopiedCacheWithoutRefsUsesItsOnlySnapshot) {
  fs::remove_all(repo_ / "refs");
  fs::remove_all(repo_ / "snapshots" / kOld);
  EXPECT_EQ(locate_model("org/tiny", env_).commit, kNew);
}

TEST_F(FakeCache, CacheFolderFromTheEnvironmentInHuggingfaceHubOrder) {
  HubEnvironment e;
  e.home = "/home/u";
  EXPECT_EQ(e.cache_dir(), "/home/u/.cache/huggingface/hub");
  e.xdg_cache_home = "/xdg";
  EXPECT_EQ(e.cache_dir(), "/xdg/huggingface/hub");
  e.hf_home = "~/hf";
  EXPECT_EQ(e.cache_dir(), "/home/u/hf/hub");
  e.huggingface_hub_cache = "/legacy";
  EXPECT_EQ(e.cache_dir(), "/legacy");
  e.hf_hub_cache = "/new";
  EXPECT_EQ(e.cache_dir(), "/new");
  // HF_HOME alone finds the fake cache (it lives at HF_HOME/hub)
  HubEnvironment h;
  h.hf_home = root_.string();
  EXPECT_EQ(locate_model("org/tiny", h).commit, kNew);
}

TEST_F(FakeCache, MissingModelSaysWhereItLookedAndHowToDownload) {
  const std::string e = error_of("openai/clip-vit-base-patch32");
  EXPECT_NE(e.find((cache_ / "models--openai--clip-vit-base-patch32").string()), std::string::npos) << e;
  EXPECT_NE(e.find("huggingface-cli download openai/clip-vit-base-patch32"), std::string::npos) << e;
  EXPECT_NE(error_of("org/tiny@v9").find("refs: main, v1"), std::string::npos) << error_of("org/tiny@v9");
  EXPECT_NE(error_of("org/tiny@v9").find("--revision v9"), std::string::npos);
  EXPECT_NE(error_of("a/b/c").find("a/b/c: model folder not found"), std::string::npos) << error_of("a/b/c");
  EXPECT_NE(error_of("").find("no model given"), std::string::npos);
  EXPECT_NE(error_of("org/tiny@../../etc").find("not a branch"), std::string::npos) << error_of("org/tiny@../../etc");
  // refs/main pointing at a snapshot that is not there: an interrupted download
  fs::remove_all(repo_ / "snapshots" / kNew);
  const std::string gone = error_of("org/tiny");
  EXPECT_NE(gone.find("interrupted download"), std::string::npos) << gone;
  EXPECT_NE(gone.find("huggingface-cli download org/tiny"), std::string::npos) << gone;
}

TEST_F(FakeCache, LegacyIdWithoutOrganisation) {
  fs::create_directories(cache_ / "models--gpt2/snapshots" / kOld);
  fs::create_directories(cache_ / "models--gpt2/refs");
  write_file_atomic((cache_ / "models--gpt2/refs/main").string(), kOld);
  EXPECT_EQ(locate_model("gpt2", env_).repo_id, "gpt2");
  EXPECT_EQ(hub_repo_folder_name("org/name"), "models--org--name");
}

TEST_F(FakeCache, PlainFoldersAndOpenClipFolders) {
  const fs::path plain = root_ / "plain";
  fs::create_directories(plain);
  EXPECT_EQ(locate_model(plain.string(), env_).dir, plain.string());
  EXPECT_NE(error_of(plain.string() + "@v1").find("is a plain folder"), std::string::npos);
  write_file_atomic((plain / "open_clip_config.json").string(), "{}");
  const std::string e = error_of(plain.string());
  EXPECT_NE(e.find("open_clip checkpoint"), std::string::npos) << e;
  EXPECT_NE(e.find("clipkit convert open-clip"), std::string::npos) << e;
  write_file_atomic((plain / "config.json").string(), "{}");  // both formats (as LAION's hub repos ship): fine
  EXPECT_EQ(locate_model(plain.string(), env_).dir, plain.string());
}

}  // namespace
}  // namespace clipkit
