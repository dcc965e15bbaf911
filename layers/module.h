// Module: the building block of models, as torch.nn.Module. A module owns named parameters,
// buffers and child modules; names compose into PyTorch's dotted paths
// ("layer1.0.conv1.weight"), which is what state dicts, weight files, freezing and taps use.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"

namespace tether::nn {

class Module;
using ModulePtr = std::shared_ptr<Module>;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What load_state_dict found, by name. Strict loading throws unless all three are empty.
struct LoadReport {
  std::vector<std::string> missing;     // in the model, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the model
  std::vector<std::string> mismatched;  // "name: file [a, b] vs model [c, d]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;
};

// Outputs captured during a forward (see Module::set_taps): module name -> output, plus
// "rep" -> the input of the final classifier.
using TapStore = std::map<std::string, Tensor>;

class Module : public std::enable_shared_from_this<Module> {
 public:
  virtual ~Module() = default;

  // Runs forward() and records taps. Modules are called as functions: y = (*m)(x).
  Tensor operator()(const Tensor& x);
  virtual Tensor forward(const Tensor& x) = 0;
  virtual std::string type_name() const = 0;  // "Conv2d", for printing

  // ---- structure (PyTorch's order: own entries first, then children, depth first) ------
  NamedTensors named_parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, ModulePtr>> named_modules() const;  // includes "" (self)
  std::vector<Tensor> parameters() const;
  // The child or descendant at a dotted path ("layer1.0"); throws naming the path if absent.
  ModulePtr submodule(const std::string& path) const;
  const std::vector<std::pair<std::string, ModulePtr>>& children() const { return children_; }

  // ---- state ----------------------------------------------------------------------------
  // Parameters and buffers by dotted name, in PyTorch's state_dict order.
  NamedTensors state_dict() const;
  // Copies values in place (handles stay valid). strict: any missing, unexpected or
  // mismatched key throws one error listing them all; otherwise the report says what was
  // skipped. Values are converted to the model's dtype and device.
  LoadReport load_state_dict(const std::map<std::string, Tensor>& values, bool strict = true);
  // What load_state_dict would report, without copying anything.
  LoadReport check_state_dict(const std::map<std::string, Tensor>& values) const;

  // ---- modes -----------------------------------------------------------------------------
  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Stops gradients for every parameter whose name starts with `prefix` ("" = all) and puts
  // the modules under it in eval mode for good (frozen BN uses running statistics).
  void freeze(const std::string& prefix);
  bool is_frozen() const { return frozen_; }

  // ---- devices, gradients, initialisation ----------------------------------------------------
  void to(Device device);  // moves parameters and buffers in place (handles stay valid)
  Device device() const;   // where the parameters live (the first one's device; CPU when none)
  void zero_grad();
  // Calls fn(name, module) on every module, depth first (init hooks, inspection).
  void apply(const std::function<void(const std::string&, Module&)>& fn);

  // ---- taps --------------------------------------------------------------------------------
  // During each forward, the outputs of the named modules are stored in `store` (and the
  // input of `rep_module`, if given, under "rep"). Pass an empty list and nullptr to stop.
  void set_taps(const std::vector<std::string>& names, std::shared_ptr<TapStore> store,
                const std::string& rep_module = "");
  // fn(y) replaces this module's output on every forward, before taps record it (DELTA's
  // channel ablation, SPEC 5). An empty function removes the hook.
  void set_output_hook(std::function<Tensor(const Tensor&)> fn) { output_hook_ = std::move(fn); }

 protected:
  Tensor register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  // Replaces a registered parameter/child (head replacement); the name must exist.
  void replace_parameter(const std::string& name, Tensor value);
  void replace_module(const std::string& name, ModulePtr module);

  bool training_ = true;

 private:
  void add_child(const std::string& name, ModulePtr module);
  // Depth-first walk over (dotted name, module), self first; usable inside constructors
  // (unlike named_modules(), which needs the module to be owned by a shared_ptr).
  void visit(const std::function<void(const std::string&, Module&)>& fn, const std::string& prefix = "");
  void check_new_name(const std::string& name) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, ModulePtr>> children_;
  bool frozen_ = false;
  // Taps set on this module by an ancestor's set_taps.
  std::string tap_name_;
  bool tap_input_as_rep_ = false;
  std::shared_ptr<TapStore> tap_store_;
  std::function<Tensor(const Tensor&)> output_hook_;
};

// Creates a module: auto conv = nn::make<Conv2d>(3, 64, 7, ...).
template <typename M, typename... Args>
std::shared_ptr<M> make(Args&&... args) {
  return std::make_shared<M>(std::forward<Args>(args)...);
}

}  // namespace tether::nn
