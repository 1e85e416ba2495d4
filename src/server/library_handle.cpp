#include "server/library_handle.h"

#include <chrono>
#include <cstdio>

#include "core/error.h"

namespace clipkit::server {

LibraryHandle::LibraryHandle(std::shared_ptr<const index::Library> lib, double interval_s)
    : dir_(lib->info().dir), lib_(std::move(lib)) {
  if (interval_s <= 0) return;
  watcher_ = std::thread([this, interval_s] {
    const auto every = std::chrono::duration<double>(interval_s);
    std::unique_lock<std::mutex> l(stop_mu_);
    while (!stop_cv_.wait_for(l, every, [this] { return stop_; })) {
      l.unlock();
      refresh();
      l.lock();
    }
  });
}

LibraryHandle::~LibraryHandle() {
  {
    std::lock_guard<std::mutex> l(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

std::shared_ptr<const index::Library> LibraryHandle::current() const {
  std::lock_guard<std::mutex> l(mu_);
  return lib_;
}

bool LibraryHandle::refresh() {
  std::lock_guard<std::mutex> one(refresh_mu_);
  const auto old = current();
  const int64_t gen = index::Library::current_generation(dir_);
  if (gen < 0 || gen == old->info().generation || gen == refused_) return false;
  std::shared_ptr<const index::Library> fresh;
  try {
    auto lib = index::Library::open(dir_);
    lib->check_model(old->model());
    if (lib->info().dim != old->info().dim)
      fail("{}: the new generation holds dimension {}, not {}", dir_, lib->info().dim, old->info().dim);
    fresh = std::move(lib);
  } catch (const std::exception& e) {
    refused_ = gen;
    std::fprintf(stderr, "clipkit: serve: keeping index generation %lld: generation %lld cannot be served: %s\n",
                 static_cast<long long>(old->info().generation), static_cast<long long>(gen), e.what());
    return false;
  }
  std::fprintf(stderr, "clipkit: serve: now serving index generation %lld (%lld images)\n",
               static_cast<long long>(fresh->info().generation), static_cast<long long>(fresh->info().count));
  std::lock_guard<std::mutex> l(mu_);
  lib_ = std::move(fresh);
  return true;
}

}  // namespace clipkit::server
