// A few bytes from rank 0 to every rank through a folder they all see, for launches without MPI
// (the standalone GPU build under mpirun/srun): rank 0 writes "<dir>/<name>" atomically
// (io/atomic_file.h), the others poll for it until `timeout_s`, then throw clipkit::Error naming the
// file, the folder and what to check. The file holds a header, the payload size and the payload, so
// a file of another size is an error rather than a wrong value. Rank 0 removes the file once every
// rank has it (remove_rendezvous). A file a crashed run left behind is not taken: the others wait
// for one written after `not_before` (default: 10 s before this process started), and the name
// carries the launch's job id where the launcher gives one.
#pragma once
#include <filesystem>
#include <string>

namespace clipkit::dist {

std::filesystem::file_time_type process_start();  // (its first call, at static initialization)

struct Rendezvous {
  std::string dir;   // a folder every rank sees (created by rank 0)
  std::string name;  // the file's name in it
  double timeout_s = 300;
  std::filesystem::file_time_type not_before = process_start() - std::chrono::seconds(10);
  std::string path() const { return dir + "/" + name; }
};

// rank 0: writes `payload` (bytes) and returns it; others: waits for the file and returns its payload,
// which must be `bytes` long.
std::string rendezvous_exchange(const Rendezvous& r, int rank, const std::string& payload, size_t bytes);
void remove_rendezvous(const Rendezvous& r);

}  // namespace clipkit::dist
