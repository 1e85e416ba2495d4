// clipkit.train's C++ half: train::train with the CLI's flags as keyword arguments. Training runs
// on its own thread while the calling thread waits with the GIL released, checking for Ctrl-C:
// a KeyboardInterrupt asks the trainer to checkpoint at the next step boundary (resumable with
// resume=True), waits for it, and is raised again.
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common.h"
#include "core/error.h"
#include "core/json.h"
#include "core/parallel.h"
#include "image/preprocess.h"
#include "train/trainer.h"

namespace clipkit::py {
namespace {

template <typename T>
T value_of(const std::string& name, pyb::handle v) {
  const bool is_bool = pyb::isinstance<pyb::bool_>(v);
  if constexpr (std::is_same_v<T, bool>) {
    if (!is_bool) throw BadValue(name + " must be True or False");
  } else if constexpr (std::is_integral_v<T>) {
    if (is_bool || !pyb::isinstance<pyb::int_>(v)) throw BadValue(name + " must be an integer");
  } else if constexpr (std::is_floating_point_v<T>) {
    if (is_bool || !(pyb::isinstance<pyb::int_>(v) || pyb::isinstance<pyb::float_>(v)))
      throw BadValue(name + " must be a number");
  } else {
    if (!pyb::isinstance<pyb::str>(v)) throw BadValue(name + " must be a string");
  }
  try {
    return v.cast<T>();
  } catch (const pyb::cast_error&) {
    throw BadValue(name + " is out of range");
  }
}

// Fills o from `clipkit train`'s flags spelled as keyword arguments (--max-steps -> max_steps);
// *threads gets threads=. Unknown names raise TypeError, as Python does for a function.
void apply_flags(const pyb::dict& flags, train::TrainOptions* o, int* threads) {
  for (auto [k, v] : flags) {
    const std::string n = k.cast<std::string>();
    if (n == "split") o->split = value_of<std::string>(n, v);
    else if (n == "eval_split") o->eval_split = value_of<std::string>(n, v);
    else if (n == "eval_data") o->eval_data = value_of<std::string>(n, v);
    else if (n == "caption_key") o->caption_key = value_of<std::string>(n, v);
    else if (n == "epochs") o->epochs = value_of<int>(n, v);
    else if (n == "max_steps") o->max_steps = value_of<int64_t>(n, v);
    else if (n == "batch_size") o->batch_size = value_of<int>(n, v);
    else if (n == "lr") o->lr = value_of<double>(n, v);
    else if (n == "weight_decay") o->weight_decay = value_of<double>(n, v);
    else if (n == "warmup_steps") o->warmup_steps = value_of<int64_t>(n, v);
    else if (n == "lr_scheduler") o->lr_scheduler = value_of<std::string>(n, v);
    else if (n == "max_grad_norm") o->max_grad_norm = value_of<double>(n, v);
    else if (n == "adam_beta1") o->adam_beta1 = value_of<double>(n, v);
    else if (n == "adam_beta2") o->adam_beta2 = value_of<double>(n, v);
    else if (n == "adam_eps") o->adam_eps = value_of<double>(n, v);
    else if (n == "max_seq_length") o->max_seq_length = value_of<int64_t>(n, v);
    else if (n == "freeze_vision") o->freeze_vision = value_of<bool>(n, v);
    else if (n == "freeze_text") o->freeze_text = value_of<bool>(n, v);
    else if (n == "freeze_vision_layers") o->freeze_vision_layers = value_of<int>(n, v);
    else if (n == "freeze_text_layers") o->freeze_text_layers = value_of<int>(n, v);
    else if (n == "gradient_checkpointing") o->gradient_checkpointing = value_of<bool>(n, v);
    else if (n == "no_dropout") o->dropout = !value_of<bool>(n, v);
    else if (n == "seed") o->seed = value_of<uint64_t>(n, v);
    else if (n == "no_shuffle") o->shuffle = !value_of<bool>(n, v);
    else if (n == "no_eval") o->eval = !value_of<bool>(n, v);
    else if (n == "resume") o->resume = value_of<bool>(n, v);
    else if (n == "save_steps") o->save_steps = value_of<int64_t>(n, v);
    else if (n == "stop_after_steps") o->stop_after_steps = value_of<int64_t>(n, v);
    else if (n == "cache_dir") o->cache_dir = value_of<std::string>(n, v);
    else if (n == "threads") *threads = value_of<int>(n, v);
    else if (n == "embed_batch_size") o->embed_batch_size = value_of<int>(n, v);
    else if (n == "precision") o->precision = value_of<std::string>(n, v);
    else if (n == "image_backend") o->image_backend = image_backend_arg(value_of<std::string>(n, v));
    else {
      throw pyb::type_error("train() got an unexpected keyword argument '" + n + "' (the keywords are `clipkit train`'s flags, e.g. max_steps=)");
    }
  }
  if (o->batch_size < 1) throw BadValue("batch_size must be >= 1, got " + std::to_string(o->batch_size));
  if (o->embed_batch_size < 1) throw BadValue("embed_batch_size must be >= 1, got " + std::to_string(o->embed_batch_size));
  precision_arg(o->precision);  // checked here: ValueError before anything runs
}

// -> the final metrics as JSON text: {"steps", "last_loss", "interrupted", "eval_before", "eval_after", "out"}
std::string run_train(const std::string& model, const std::string& data, const std::string& out, const pyb::dict& flags) {
  train::TrainOptions o;
  o.model_dir = model;
  o.data = data;
  o.out = out;
  int threads = 0;
  apply_flags(flags, &o, &threads);
  std::atomic<bool> stop{false}, done{false};
  o.stop = &stop;
  train::TrainResult r;
  std::exception_ptr failure;
  std::thread worker([&] {
    try {
      set_num_threads(threads);
      std::lock_guard<std::mutex> lock(compute_mutex());
      auto comm = dist::make_comm(nullptr, nullptr);
      r = train::train(o, *comm);
    } catch (...) {
      failure = std::current_exception();
    }
    done = true;
  });
  bool interrupted = false;
  while (!done) {
    {
      pyb::gil_scoped_release nogil;
      for (int i = 0; i < 20 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!interrupted && PyErr_CheckSignals() != 0) {  // KeyboardInterrupt (or another signal handler's error)
      interrupted = true;
      stop = true;
      pyb::error_already_set pending;  // holds the exception while the trainer reaches a step boundary
      {
        pyb::gil_scoped_release nogil;
        worker.join();
      }
      if (!r.interrupted && !failure) std::fprintf(stderr, "clipkit train: interrupted after the last step\n");
      else if (r.interrupted)
        std::fprintf(stderr, "clipkit train: interrupted at step %lld; checkpoint written to %s (resume=True continues)\n",
                     static_cast<long long>(r.steps), o.out.c_str());
      throw pending;
    }
  }
  {
    pyb::gil_scoped_release nogil;
    worker.join();
  }
  if (failure) std::rethrow_exception(failure);
  std::fprintf(stderr, "clipkit train: %lld steps, last loss %.4f; model in %s\n", static_cast<long long>(r.steps),
               r.last_loss, o.out.c_str());
  nlohmann::json j = {{"steps", r.steps}, {"last_loss", r.last_loss}, {"interrupted", r.interrupted},
                      {"eval_before", r.eval_before}, {"eval_after", r.eval_after}, {"out", o.out}};
  return json_text(j);
}

}  // namespace

void bind_train(pyb::module_& m) {
  m.def("train", &run_train, pyb::arg("model"), pyb::arg("data"), pyb::arg("out"), pyb::arg("flags"));
}

}  // namespace clipkit::py
