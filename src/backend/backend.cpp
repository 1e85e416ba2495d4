#include "backend/backend.h"

#include <algorithm>
#include <atomic>

#include <map>
#include <mutex>
#include <new>

#include "core/error.h"

namespace clipkit::backend {

Precision precision_from_name(const std::string& s) {
  if (s == "fp32" || s == "f32" || s == "float32") return Precision::F32;
  if (s == "bf16" || s == "bfloat16") return Precision::BF16;
  if (s == "int8") return Precision::INT8;
  fail("unknown precision \"{}\" (use fp32, bf16 or int8)", s);
}

const char* precision_name(Precision p) {
  return p == Precision::F32 ? "fp32" : p == Precision::BF16 ? "bf16" : "int8";
}

bool act_from_name(const std::string& s, Act* out) {
  if (s == "quick_gelu") *out = Act::QuickGelu;
  else if (s == "gelu") *out = Act::Gelu;
  else if (s == "gelu_new" || s == "gelu_pytorch_tanh") *out = Act::GeluNew;
  else if (s == "relu") *out = Act::Relu;
  else if (s == "tanh") *out = Act::Tanh;
  else return false;
  return true;
}

const char* act_name(Act a) {
  switch (a) {
    case Act::None: return "none";
    case Act::QuickGelu: return "quick_gelu";
    case Act::Gelu: return "gelu";
    case Act::GeluNew: return "gelu_new";
    case Act::Relu: return "relu";
    case Act::Tanh: return "tanh";
  }
  return "?";
}

Tensor Backend::alloc(DType t, Shape s) {
  const size_t bytes = static_cast<size_t>(clipkit::numel(s)) * dtype_size(t);
  auto mem = allocate(bytes ? bytes : 1);
  void* p = mem.get();
  return Tensor(t, std::move(s), p, std::move(mem));
}

Tensor Backend::borrow(const clipkit::Tensor& host, Shape s) {
  CLIPKIT_ASSERT(host.dtype == DType::F32 && host.numel() == clipkit::numel(s));
  Tensor t = alloc(DType::F32, std::move(s));
  upload(host.data, t);
  return t;
}

std::shared_ptr<void> Backend::host_buffer(size_t bytes) {
  return std::shared_ptr<void>(::operator new(bytes ? bytes : 1, std::align_val_t{64}),
                               [](void* p) { ::operator delete(p, std::align_val_t{64}); });
}

namespace {
class DirectPass final : public CapturedPass {
 public:
  explicit DirectPass(std::function<void()> f) : f_(std::move(f)) {}
  bool run() override {
    f_();
    return true;
  }

 private:
  std::function<void()> f_;
};
}  // namespace

std::unique_ptr<CapturedPass> Backend::capture(std::function<void()> pass) {
  pass();
  return std::make_unique<DirectPass>(std::move(pass));
}

Arena& Backend::thread_arena() {
  thread_local std::map<const Backend*, std::unique_ptr<Arena>> arenas;  // backends live for the process
  auto& a = arenas[this];
  if (!a) a = std::make_unique<Arena>(*this);
  return *a;
}

namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, BackendFactory> factories;
  std::map<std::string, std::unique_ptr<Backend>> made;
};
Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

BackendRegistrar::BackendRegistrar(const char* device, BackendFactory make) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.factories[device] = make;
}

std::vector<std::string> built_devices() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> out;
  for (auto& [name, f] : r.factories) out.push_back(name);
  return out;
}

Backend& backend_for(const std::string& device) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.made.find(device);
  if (it != r.made.end()) return *it->second;
  auto f = r.factories.find(device);
  if (f == r.factories.end()) {
    std::string built;
    for (auto& [name, make] : r.factories) built += (built.empty() ? "" : ", ") + name;
    if (device == "cpu" || device == "cuda")
      fail("--device {}: this clipkit was built without the {} backend (built: {})", device, device, built);
    fail("--device {}: unknown device (built: {})", device, built);
  }
  return *(r.made[device] = f->second());
}

namespace {
std::atomic<int> g_local_device{0};
}  // namespace
void set_local_device(int ordinal) { g_local_device = ordinal; }
int local_device() { return g_local_device; }

std::string resolve_device(const std::string& device) {
  if (device != "auto") return device;
  const std::vector<std::string> built = built_devices();
  auto has = [&](const char* d) { return std::find(built.begin(), built.end(), d) != built.end(); };
  if (has("cuda")) {
    try {
      backend_for("cuda");  // throws without a usable GPU
      return "cuda";
    } catch (const Error&) {
    }
  }
  if (has("cpu") || built.empty()) return "cpu";
  return built.front();
}

}  // namespace clipkit::backend
