// Where a model named on the command line (or given to the library) lives on disk. One resolver
// for every place that opens a model folder:
//   * a folder (a checkpoint as `save_pretrained` writes it) is used as it is;
//   * a Hugging Face hub id, "org/name" or a legacy "name", optionally "@revision" (a branch, tag,
//     or a full or abbreviated commit hash), is looked up in the local Hugging Face cache exactly as
//     huggingface_hub lays it out: CACHE/models--org--name/refs/<revision> holds the commit hash,
//     CACHE/models--org--name/snapshots/<hash>/ the files (symlinks into ../../blobs/);
//   * a cache repo folder (".../models--org--name", optionally "@revision") resolves the same way.
// CACHE is $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (huggingface_hub's order).
// Nothing is downloaded: a model missing from the cache is an error that says where it looked and
// the command that downloads it. An open_clip checkpoint (open_clip_config.json without a
// config.json) is an error naming the conversion (`clipkit convert open-clip`).
#pragma once
#include <string>

namespace clipkit {

struct HubEnvironment {
  std::string hf_hub_cache, huggingface_hub_cache, hf_home, xdg_cache_home, home;  // "" = unset
  static HubEnvironment from_process();                                            // reads the variables
  std::string cache_dir() const;  // the hub cache folder these settings select
};

struct ModelLocation {
  std::string dir;       // the folder to read (a snapshot folder for cache entries)
  std::string repo_id;   // hub id when resolved through the cache ("" for a plain folder)
  std::string revision;  // the revision asked for ("main" by default) when resolved through the cache
  std::string commit;    // the snapshot's commit hash when resolved through the cache
};

// Throws clipkit::Error when `spec` names nothing usable (the message says what was tried).
ModelLocation locate_model(const std::string& spec, const HubEnvironment& env = HubEnvironment::from_process());
// locate_model(spec).dir
std::string resolve_model_dir(const std::string& spec);

// "org/name" -> "models--org--name" (huggingface_hub's repo folder name for a model repo).
std::string hub_repo_folder_name(const std::string& repo_id);

}  // namespace clipkit
