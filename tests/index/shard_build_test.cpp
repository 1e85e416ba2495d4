// Building an index from embedding shards (shard_build.h): per-rank parts merged equal a one-process
// build, an interrupted build resumes, lists on disk, recall measured on held-out rows.
#include "index/shard_build.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "cli/cli_util.h"
#include "core/error.h"
#include "core/parallel.h"
#include "embeddings_util.h"
#include "index/library.h"
#include "io/atomic_file.h"

namespace clipkit::index {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kD = 32;

// `ranks` threads, each a rank, agreeing through a shared counter (what MPI's allreduce does).
std::vector<ShardBuildReport> build_with_ranks(int ranks, const std::string& idx, const std::string& emb,
                                               ShardBuildOptions o) {
  std::mutex mu;
  std::condition_variable cv;
  int64_t round = 0, arrived = 0;
  bool all = true, result = true;
  auto all_ok = [&](bool ok) {
    std::unique_lock<std::mutex> l(mu);
    const int64_t my = round;
    all = all && ok;
    if (++arrived == ranks) {
      result = all;
      all = true;
      arrived = 0;
      ++round;
      cv.notify_all();
    } else {
      cv.wait(l, [&] { return round != my; });
    }
    return result;
  };
  std::vector<ShardBuildReport> reps(static_cast<size_t>(ranks));
  std::vector<std::thread> th;
  for (int r = 0; r < ranks; ++r)
    th.emplace_back([&, r] {
      set_num_threads(1);  // FAISS training results depend on the thread count
      ShardBuildOptions mine = o;
      mine.rank = r;
      mine.ranks = ranks;
      if (ranks > 1) mine.all_ok = all_ok;
      reps[static_cast<size_t>(r)] = build_index_from_embeddings(idx, emb, test::synthetic_model(kD), mine);
    });
  for (auto& t : th) t.join();
  return reps;
}

std::vector<int64_t> search_ids(const std::string& idx, const std::vector<float>& q, int64_t nq) {
  auto lib = Library::open(idx);
  std::vector<int64_t> ids(static_cast<size_t>(nq * 10));
  std::vector<float> sc(ids.size());
  lib->vectors().search(q.data(), nq, 10, sc.data(), ids.data(), lib->info().params);
  return ids;
}

struct Data {
  std::string dir, emb;
  std::vector<float> x;
  Data(const std::string& name, int64_t n) : dir(test::temp_dir(name)), emb(dir + "/emb") {
    x = test::clustered_rows(n, kD, 20, 3);
    test::write_embeddings(emb, x, kD, 450);
  }
  ~Data() { fs::remove_all(dir); }
};

TEST(ShardBuild, PartsMergedByRanksEqualAOneProcessBuild) {
  Data d("shard_build_ranks", 3000);
  ShardBuildOptions o;
  o.factory = "OPQ8,IVF16,PQ8";
  o.part_rows = 700;  // 5 parts
  o.heldout = 200;
  auto one = build_with_ranks(1, d.dir + "/one", d.emb, o);
  EXPECT_EQ(one[0].parts, 5);
  EXPECT_TRUE(one[0].complete);
  auto three = build_with_ranks(3, d.dir + "/three", d.emb, o);
  EXPECT_TRUE(three[0].complete);
  EXPECT_FALSE(three[1].complete);  // only rank 0 writes the library
  auto a = Library::open(d.dir + "/one"), b = Library::open(d.dir + "/three");
  EXPECT_EQ(a->info().count, 3000);
  EXPECT_EQ(b->info().count, 3000);
  EXPECT_EQ(read_file(d.dir + "/one/" + a->info().faiss_file), read_file(d.dir + "/three/" + b->info().faiss_file));
  EXPECT_EQ(search_ids(d.dir + "/one", d.x, 300), search_ids(d.dir + "/three", d.x, 300));
  EXPECT_EQ(a->info().params.nprobe, b->info().params.nprobe);
  EXPECT_GT(a->info().params.nprobe, 0);
  // the records: id = row of the embeddings folder
  ImageRecord r;
  ASSERT_TRUE(b->get(1234, &r));
  EXPECT_EQ(r.path, "/synthetic/img-1234.jpg");
  const auto& info = b->info().build;
  EXPECT_EQ(info.value("heldout_queries", 0), 200);
  EXPECT_GT(info.value("recall_at_10", 0.0), 0.2);  // 8-byte codes of 32 dims: coarse, but measured
  EXPECT_GT(info.value("memory_bytes", int64_t{0}), 3000 * 8);
  EXPECT_FALSE(fs::exists(d.dir + "/three/shard-build"));  // the work folder is gone
}

TEST(ShardBuild, AnInterruptedBuildResumesFromItsFinishedParts) {
  Data d("shard_build_resume", 2000);
  ShardBuildOptions o;
  o.factory = "IVF8,Flat";
  o.part_rows = 500;
  o.stop_after_parts = 2;
  auto r = build_index_from_embeddings(d.dir + "/idx", d.emb, test::synthetic_model(kD), o);
  EXPECT_FALSE(r.complete);
  EXPECT_FALSE(Library::exists(d.dir + "/idx"));
  EXPECT_TRUE(fs::exists(d.dir + "/idx/shard-build/part-00001.faiss"));
  o.stop_after_parts = -1;
  r = build_index_from_embeddings(d.dir + "/idx", d.emb, test::synthetic_model(kD), o);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.parts_resumed, 2);
  auto full = build_index_from_embeddings(d.dir + "/full", d.emb, test::synthetic_model(kD), o);
  EXPECT_EQ(full.parts_resumed, 0);
  auto a = Library::open(d.dir + "/idx"), b = Library::open(d.dir + "/full");
  EXPECT_EQ(read_file(d.dir + "/idx/" + a->info().faiss_file), read_file(d.dir + "/full/" + b->info().faiss_file));
  // IVF-Flat stores exact vectors: every list probed finds the exact neighbours
  const auto& sweep = r.sweep;
  ASSERT_FALSE(sweep.empty());
  EXPECT_GE(r.chosen.recall, 0.95);
  // a work folder made for other settings is not reused
  o.factory = "IVF4,Flat";
  o.stop_after_parts = 1;
  build_index_from_embeddings(d.dir + "/other", d.emb, test::synthetic_model(kD), o);
  o.factory = "IVF8,Flat";
  o.stop_after_parts = -1;
  r = build_index_from_embeddings(d.dir + "/other", d.emb, test::synthetic_model(kD), o);
  EXPECT_EQ(r.parts_resumed, 0);
  EXPECT_THROW(build_index_from_embeddings(d.dir + "/other", d.emb, test::synthetic_model(kD), o), Error);  // exists
}

TEST(ShardBuild, ListsOnDiskSearchLikeListsInMemoryAndSurviveChanges) {
  Data d("shard_build_disk", 1500);
  ShardBuildOptions o;
  o.factory = "IVF8,SQ8";
  o.part_rows = 400;
  o.nprobe = 3;
  build_index_from_embeddings(d.dir + "/mem", d.emb, test::synthetic_model(kD), o);
  o.on_disk = true;
  auto r = build_index_from_embeddings(d.dir + "/disk", d.emb, test::synthetic_model(kD), o);
  EXPECT_GE(r.disk_bytes, 1500 * (kD + 8));
  EXPECT_LT(r.memory_bytes, 1500 * (kD + 8));  // the lists are not in memory
  EXPECT_EQ(search_ids(d.dir + "/mem", d.x, 100), search_ids(d.dir + "/disk", d.x, 100));
  auto lib = Library::open(d.dir + "/disk");
  const std::string lists = d.dir + "/disk/" + lib->info().faiss_file + ".ivfdata";
  EXPECT_TRUE(fs::exists(lists));
  EXPECT_EQ(lib->vectors().storage_file(), lists);
  // a change writes a new generation with its own lists file; the old one is collected
  EXPECT_EQ(lib->remove({0, 1, 2}), 3);
  EXPECT_FALSE(fs::exists(lists));
  auto again = Library::open(d.dir + "/disk");
  EXPECT_EQ(again->info().count, 1497);
  EXPECT_TRUE(fs::exists(d.dir + "/disk/" + again->info().faiss_file + ".ivfdata"));
  // the folder moves: the lists are found beside the index file
  fs::rename(d.dir + "/disk", d.dir + "/moved");
  auto moved = Library::open(d.dir + "/moved");
  EXPECT_EQ(moved->info().count, 1497);
  auto ids = search_ids(d.dir + "/moved", d.x, 20);
  EXPECT_EQ(ids[10 * 5], 5);  // row 5 finds itself
}

TEST(ShardBuild, ChoosesForTheBudgetAndRefusesWhatCannotWork) {
  Data d("shard_build_choice", 800);
  ShardBuildOptions o;
  auto r = build_index_from_embeddings(d.dir + "/idx", d.emb, test::synthetic_model(kD), o);
  EXPECT_EQ(r.choice.factory, "IDMap,Flat");
  EXPECT_DOUBLE_EQ(r.chosen.recall, 1.0);
  o.factory = "IVF4096,Flat";  // more lists than rows
  EXPECT_THROW(build_index_from_embeddings(d.dir + "/too_many", d.emb, test::synthetic_model(kD), o), Error);
  o.factory = "Flat";
  o.on_disk = true;
  EXPECT_THROW(build_index_from_embeddings(d.dir + "/flat_disk", d.emb, test::synthetic_model(kD), o), Error);
  o = {};
  o.max_memory = 1000;
  EXPECT_THROW(build_index_from_embeddings(d.dir + "/tiny", d.emb, test::synthetic_model(kD), o), Error);
  EXPECT_THROW(build_index_from_embeddings(d.dir + "/x", d.dir + "/missing", test::synthetic_model(kD), {}), Error);
}

}  // namespace
}  // namespace clipkit::index
