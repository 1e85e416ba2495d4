// Embedding lookup (gather) and its gradient (scatter-add), for token / position / token-type tables.
//   y[r] (+)= table[ids[r]]           table [V, C], ids [n], y [n, C]; rows with a negative id are skipped
//   dtable[ids[r]] += dy[r]           rows with a negative id or `skip_id` (HF padding_idx) get no gradient
#pragma once
#include <cstdint>

namespace clipkit::backend::cpu {

// accumulate: y += table rows instead of y = table rows.
void embedding_forward(const float* table, const int32_t* ids, int64_t n, int64_t C, float* y, bool accumulate);

// dtable [V, C] accumulated. Ids equal to skip_id are skipped too (-1: no other).
// Threaded over columns, so duplicate ids never race.
void embedding_backward(const float* dy, const int32_t* ids, int64_t n, int64_t C, float* dtable, int32_t skip_id = -1);

}  // namespace clipkit::backend::cpu
