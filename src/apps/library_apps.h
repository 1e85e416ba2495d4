// The applications over an image library (index/): its stored embeddings as a dedup scan, ranked
// hits as RAG results, and a video's sampled frames added to a library with their timestamps.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/dedup.h"
#include "apps/retrieve.h"
#include "apps/video.h"
#include "index/library.h"

namespace clipkit::apps {

// The encoded bytes of a record's image: its file, or its member of a WebDataset shard (read at the
// offset the embedding run recorded, extra["tar_offset"]). Throws Error naming the path.
std::string record_bytes(const index::ImageRecord& rec);

// Every image of the library as a dedup item with its stored embedding (no model run). Files still
// on disk are read and hashed so exact copies are found; those that are gone are kept (compared by
// embedding only) and listed in `unreadable`. `records` (optional) gets each item's record.
ScanResult scan_library(const index::Library& lib, Progress* p = nullptr, std::vector<std::string>* unreadable = nullptr,
                        std::vector<index::ImageRecord>* records = nullptr);

// Library hits as RAG items: caption = first caption; id, split, size, video, timestamp... as metadata.
std::vector<Ranked> ranked_from_hits(const std::vector<index::SearchHit>& hits);

// The top-k of a query embedding q [D] over the library, as retrieve()'s JSON. Metadata filters
// (`f`) run inside the index search; `o.filters` run on the results, so the search over-fetches
// when there are any.
nlohmann::json retrieve_from_library(const index::Library& lib, const std::string& query, const float* q,
                                     const RetrieveOptions& o, const index::Filter& f = {});

// Where a video's frames go by default: INDEX/frames/<video name>-<hash of its absolute path>.
std::string default_frames_dir(const std::string& index_dir, const std::string& video);

// Adds the frames embed_video saved (VideoSampling::frames_dir) to the library in index_dir,
// creating the library when there is none; each record names its video and timestamp. A library
// made by another model is refused. Returns how many frames were added (frames already indexed
// are skipped).
int64_t index_video_frames(const std::string& index_dir, const pipeline::ModelIdentity& model,
                           const std::string& video, const VideoFrames& v);

}  // namespace clipkit::apps
