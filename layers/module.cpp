#include "layers/module.h"

#include <set>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/meta.h"

namespace tether::nn {

std::string LoadReport::str() const {
  std::ostringstream os;
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    os << "\n  " << what << " (" << names.size() << "):";
    for (const auto& n : names) os << "\n    " << n;
  };
  list("missing from the file", missing);
  list("unexpected in the file", unexpected);
  list("shape mismatch", mismatched);
  return os.str();
}

Tensor Module::operator()(const Tensor& x) {
  if (tap_store_ && tap_input_as_rep_) (*tap_store_)["rep"] = x;
  Tensor y = forward(x);
  if (output_hook_) y = output_hook_(y);
  if (tap_store_ && !tap_name_.empty()) (*tap_store_)[tap_name_] = y;
  return y;
}

void Module::check_new_name(const std::string& name) const {
  TETHER_CHECK(!name.empty() && name.find('.') == std::string::npos, "bad name '", name,
               "' (names are non-empty and contain no '.')");
  auto taken = [&](const auto& list) {
    for (const auto& [n, v] : list)
      if (n == name) return true;
    return false;
  };
  TETHER_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_), "name '", name,
               "' is already registered in this ", type_name());
}

Tensor Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name(name);
  TETHER_CHECK(value.defined() && is_floating(value.dtype()), "parameter '", name, "' must be a floating tensor");
  value.set_requires_grad(requires_grad);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name);
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, ModulePtr module) {
  check_new_name(name);
  TETHER_CHECK(module != nullptr, "child module '", name, "' is null");
  children_.emplace_back(name, std::move(module));
}

void Module::replace_parameter(const std::string& name, Tensor value) {
  for (auto& [n, t] : parameters_)
    if (n == name) {
      value.set_requires_grad(true);
      t = value;
      return;
    }
  TETHER_FAIL("no parameter '", name, "' to replace in ", type_name());
}

void Module::replace_module(const std::string& name, ModulePtr module) {
  for (auto& [n, m] : children_)
    if (n == name) {
      m = std::move(module);
      return;
    }
  TETHER_FAIL("no child module '", name, "' to replace in ", type_name());
}

void Module::visit(const std::function<void(const std::string&, Module&)>& fn, const std::string& prefix) {
  fn(prefix, *this);
  for (const auto& [n, c] : children_) c->visit(fn, prefix.empty() ? n : prefix + "." + n);
}

namespace {
std::string join(const std::string& prefix, const std::string& name) { return prefix.empty() ? name : prefix + "." + name; }
}  // namespace

// The const accessors walk a const tree; visit() is non-const only because callbacks may mutate.
NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  const_cast<Module*>(this)->visit([&](const std::string& name, Module& m) {
    if (!recurse && !name.empty()) return;
    for (const auto& [n, t] : m.parameters_) out.emplace_back(join(name, n), t);
  });
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  const_cast<Module*>(this)->visit([&](const std::string& name, Module& m) {
    if (!recurse && !name.empty()) return;
    for (const auto& [n, t] : m.buffers_) out.emplace_back(join(name, n), t);
  });
  return out;
}

std::vector<std::pair<std::string, ModulePtr>> Module::named_modules() const {
  std::vector<std::pair<std::string, ModulePtr>> out;
  // const_pointer_cast: the tree is shared; callers that only read get a read-only view.
  std::function<void(const std::string&, ModulePtr)> walk = [&](const std::string& prefix, ModulePtr m) {
    out.emplace_back(prefix, m);
    for (const auto& [n, c] : m->children_) walk(prefix.empty() ? n : prefix + "." + n, c);
  };
  walk("", std::const_pointer_cast<Module>(shared_from_this()));
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (const auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

ModulePtr Module::submodule(const std::string& path) const {
  for (const auto& [name, m] : named_modules())
    if (name == path) return m;
  TETHER_FAIL("no module named '", path, "' in ", type_name());
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  const_cast<Module*>(this)->visit([&](const std::string& name, Module& m) {
    for (const auto& [n, t] : m.parameters_) out.emplace_back(join(name, n), t);
    for (const auto& [n, t] : m.buffers_) out.emplace_back(join(name, n), t);
  });
  return out;
}

LoadReport Module::check_state_dict(const std::map<std::string, Tensor>& values) const {
  LoadReport report;
  std::set<std::string> known;
  for (const auto& [name, dst] : state_dict()) {
    known.insert(name);
    auto it = values.find(name);
    if (it == values.end()) report.missing.push_back(name);
    else if (it->second.shape() != dst.shape())
      report.mismatched.push_back(name + ": file " + shape_str(it->second.shape()) + " vs model " + shape_str(dst.shape()));
  }
  for (const auto& [name, t] : values)
    if (!known.count(name)) report.unexpected.push_back(name);
  return report;
}

LoadReport Module::load_state_dict(const std::map<std::string, Tensor>& values, bool strict) {
  LoadReport report = check_state_dict(values);
  // Strict: nothing is copied unless everything matches, so a failed load changes nothing.
  TETHER_CHECK(!strict || report.ok(), "load_state_dict: the weights do not match the model:", report.str());
  NoGradGuard no_grad;
  for (const auto& [name, dst] : state_dict()) {
    auto it = values.find(name);
    if (it != values.end() && it->second.shape() == dst.shape()) dst.copy_(it->second);
  }
  return report;
}

void Module::train(bool on) {
  visit([&](const std::string&, Module& m) { m.training_ = on && !m.frozen_; });
}

void Module::freeze(const std::string& prefix) {
  bool any = false;
  visit([&](const std::string& name, Module& m) {
    const bool under = prefix.empty() || name == prefix || name.rfind(prefix + ".", 0) == 0;
    if (!under) return;
    any = true;
    m.frozen_ = true;
    m.training_ = false;
    for (auto& [n, t] : m.parameters_) t.set_requires_grad(false);
  });
  TETHER_CHECK(any, "freeze: no module named '", prefix, "'");
}

void Module::to(Device device) {
  auto move = [&](Tensor& t) {
    if (t.device() == device) return;
    Tensor moved = t.to(device);
    TensorImpl& impl = t.impl();  // swap the data in place so every handle follows
    impl.storage = moved.storage();
    impl.strides = moved.strides();
    impl.offset = moved.offset();
    if (impl.autograd && impl.autograd->grad.defined()) impl.autograd->grad = impl.autograd->grad.to(device);
  };
  visit([&](const std::string&, Module& m) {
    for (auto& [n, t] : m.parameters_) move(t);
    for (auto& [n, t] : m.buffers_) move(t);
  });
}

Device Module::device() const {
  for (const Tensor& p : parameters()) return p.device();
  return Device::cpu();
}

void Module::zero_grad() {
  for (const Tensor& p : parameters()) p.zero_grad();
}

void Module::apply(const std::function<void(const std::string&, Module&)>& fn) { visit(fn); }

void Module::set_taps(const std::vector<std::string>& names, std::shared_ptr<TapStore> store,
                      const std::string& rep_module) {
  visit([](const std::string&, Module& m) {
    m.tap_name_.clear();
    m.tap_input_as_rep_ = false;
    m.tap_store_ = nullptr;
  });
  for (const std::string& n : names) {
    ModulePtr m = submodule(n);
    m->tap_name_ = n;
    m->tap_store_ = store;
  }
  if (!rep_module.empty()) {
    ModulePtr m = submodule(rep_module);
    m->tap_input_as_rep_ = true;
    m->tap_store_ = store;
  }
}

}  // namespace tether::nn
