#include "io/model_location.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"

namespace clipkit {
namespace {

namespace fs = std::filesystem;

std::string env_var(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string expand_user(const std::string& p, const std::string& home) {
  if (p == "~") return home;
  if (p.starts_with("~/")) return home + p.substr(1);
  return p;
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// huggingface_hub's repo id rule: "name" or "namespace/name", letters, digits, "-", "_", ".",
// no "--" or "..", not starting or ending with "-" or ".".
bool looks_like_hub_id(const std::string& s) {
  if (s.empty() || s.size() > 96 || s.find("--") != std::string::npos || s.find("..") != std::string::npos) return false;
  int slashes = 0;
  size_t part_start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '/') {
      if (i == part_start) return false;  // empty part
      const char a = s[part_start], b = s[i - 1];
      if (a == '-' || a == '.' || b == '-' || b == '.') return false;
      if (i < s.size() && ++slashes > 1) return false;
      part_start = i + 1;
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

bool is_hex(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

// A huggingface_hub repo folder: "models--org--name" holding snapshots/ (and normally refs/).
bool is_cache_repo(const fs::path& p) {
  return is_dir(p / "snapshots") && (is_dir(p / "refs") || p.filename().string().starts_with("models--"));
}

std::string repo_id_of_folder(const fs::path& repo) {
  std::string n = repo.filename().string();
  if (!n.starts_with("models--")) return "";
  n = n.substr(8);
  if (auto p = n.find("--"); p != std::string::npos) n.replace(p, 2, "/");
  return n;
}

std::vector<std::string> list_names(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    out.push_back(it->path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

std::string download_command(const std::string& repo_id, const std::string& revision) {
  std::string c = "huggingface-cli download " + (repo_id.empty() ? std::string("ORG/NAME") : repo_id);
  if (!revision.empty() && revision != "main") c += " --revision " + revision;
  return c;
}

// Fails when `dir` is an open_clip checkpoint without the Hugging Face files next to it.
void refuse_open_clip(const fs::path& dir, const std::string& spec) {
  if (is_file(dir / "config.json") || !is_file(dir / "open_clip_config.json")) return;
  fail("{}: an open_clip checkpoint (open_clip_config.json, no config.json); clipkit reads Hugging Face checkpoints: "
       "convert it with `clipkit convert open-clip {} --out DIR`",
       spec, dir.string());
}

ModelLocation resolve_in_repo(const fs::path& repo, const std::string& spec, const std::string& repo_id,
                              const std::string& revision) {
  const std::string rev = revision.empty() ? "main" : revision;
  if (rev.find("..") != std::string::npos || rev.starts_with("/"))
    fail("{}: revision \"{}\" is not a branch, tag or commit name", spec, rev);
  std::string commit;
  const fs::path ref = repo / "refs" / rev;
  const auto snapshots = list_names(repo / "snapshots");
  if (is_file(ref)) {
    commit = read_file(ref.string());
    while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
    if (commit.empty()) fail("{}: {} is empty (an interrupted download? run: {})", spec, ref.string(),
                             download_command(repo_id, rev));
  } else if (is_hex(rev) && rev.size() >= 7) {  // a commit hash, full or abbreviated (as git accepts)
    std::vector<std::string> hits;
    for (auto& s : snapshots)
      if (s.starts_with(rev)) hits.push_back(s);
    if (hits.size() > 1) fail("{}: commit \"{}\" is ambiguous in {}: {}", spec, rev, (repo / "snapshots").string(), join(hits));
    if (hits.size() == 1) commit = hits[0];
  } else if (revision.empty() && snapshots.size() == 1) {  // a copied cache without refs/
    commit = snapshots[0];
  }
  if (commit.empty())
    fail("{}: revision \"{}\" is not in the cache folder {} (refs: {}; snapshots: {}); download it with: {}", spec, rev,
         repo.string(), join(list_names(repo / "refs")), join(snapshots), download_command(repo_id, rev));
  const fs::path snap = repo / "snapshots" / commit;
  if (!is_dir(snap))
    fail("{}: {} points at commit {}, but {} is missing (an interrupted download? run: {})", spec, ref.string(), commit,
         snap.string(), download_command(repo_id, rev));
  refuse_open_clip(snap, spec);
  return {snap.string(), repo_id, rev, commit};
}

}  // namespace

HubEnvironment HubEnvironment::from_process() {
  HubEnvironment e;
  e.hf_hub_cache = env_var("HF_HUB_CACHE");
  e.huggingface_hub_cache = env_var("HUGGINGFACE_HUB_CACHE");
  e.hf_home = env_var("HF_HOME");
  e.xdg_cache_home = env_var("XDG_CACHE_HOME");
  e.home = env_var("HOME");
  return e;
}

std::string HubEnvironment::cache_dir() const {
  if (!hf_hub_cache.empty()) return expand_user(hf_hub_cache, home);
  if (!huggingface_hub_cache.empty()) return expand_user(huggingface_hub_cache, home);
  std::string hf = !hf_home.empty()          ? expand_user(hf_home, home)
                   : !xdg_cache_home.empty() ? expand_user(xdg_cache_home, home) + "/huggingface"
                                             : home + "/.cache/huggingface";
  return hf + "/hub";
}

std::string hub_repo_folder_name(const std::string& repo_id) {
  std::string n = "models--" + repo_id;
  if (auto p = n.find('/'); p != std::string::npos) n.replace(p, 1, "--");
  return n;
}

ModelLocation locate_model(const std::string& spec, const HubEnvironment& env) {
  if (spec.empty()) fail("no model given (a folder, or a Hugging Face hub id such as openai/clip-vit-base-patch32)");
  std::string base = spec, revision;
  if (!is_dir(spec))
    if (auto at = spec.rfind('@'); at != std::string::npos && at > 0) base = spec.substr(0, at), revision = spec.substr(at + 1);
  if (is_dir(base)) {
    const fs::path p = fs::path(base).lexically_normal();
    if (is_cache_repo(p)) return resolve_in_repo(p, spec, repo_id_of_folder(p), revision);
    if (!revision.empty())
      fail("{}: \"@{}\" selects a revision of a hub id or a cache folder (models--ORG--NAME), but {} is a plain folder",
           spec, revision, base);
    refuse_open_clip(p, spec);
    return {base, "", "", ""};
  }
  if (!looks_like_hub_id(base)) fail("{}: model folder not found", spec);
  const fs::path cache = env.cache_dir();
  const fs::path repo = cache / hub_repo_folder_name(base);
  if (!is_dir(repo))
    fail("{}: no such model folder, and not in the Hugging Face cache (looked for {}); download it on a connected "
         "machine with: {}",
         spec, repo.string(), download_command(base, revision));
  return resolve_in_repo(repo, spec, base, revision);
}

std::string resolve_model_dir(const std::string& spec) { return locate_model(spec).dir; }

}  // namespace clipkit
