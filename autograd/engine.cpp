#include "autograd/engine.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "autograd/function.h"
#include "core/ops.h"

namespace tether {

namespace {
thread_local bool grad_mode_enabled = true;
uint64_t next_sequence = 0;

// Sum of two gradients for the same tensor (never in place: a backward may return one
// tensor for several inputs).
Tensor add_grad(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  return ops::binary(ops::Binary::add, a, b);
}

struct RunResult {
  std::vector<Tensor> captured;
};

// The one engine behind backward() and grad(). With `capture` non-empty, gradients arriving
// at those nodes are returned, leaves' .grad is left alone, and only nodes on a path to a
// captured node run.
RunResult run(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs, bool retain_graph,
              const std::vector<Node*>& capture) {
  TETHER_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), "backward: ", grad_outputs.size(),
               " gradients for ", outputs.size(), " outputs");
  const bool capture_mode = !capture.empty();

  // 1. Root gradients.
  std::unordered_map<Node*, Tensor> buffer;
  std::vector<std::shared_ptr<Node>> roots;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    std::shared_ptr<Node> node = gradient_edge(out);
    TETHER_CHECK(node != nullptr, "backward: output ", i, " (", out.str(),
                 ") does not require grad and has no grad_fn");
    Tensor g = i < grad_outputs.size() ? grad_outputs[i] : Tensor();
    if (!g.defined()) {
      TETHER_CHECK(out.numel() == 1, "backward: a gradient must be given for non-scalar output ", out.str());
      g = Tensor::ones(out.shape(), out.dtype(), out.device());
    }
    TETHER_CHECK(g.shape() == out.shape(), "backward: gradient ", shape_str(g.shape()), " for output ",
                 shape_str(out.shape()));
    buffer[node.get()] = add_grad(buffer[node.get()], g);
    roots.push_back(node);
  }

  // 2. Discover the graph (iterative DFS) in post-order.
  std::vector<Node*> post_order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack;
  for (const auto& r : roots)
    if (seen.insert(r.get()).second) stack.push_back({r.get(), 0});
  while (!stack.empty()) {
    auto& [node, child] = stack.back();
    if (child < node->next.size()) {
      Node* c = node->next[child++].get();
      if (c && seen.insert(c).second) stack.push_back({c, 0});
    } else {
      post_order.push_back(node);
      stack.pop_back();
    }
  }

  // 3. Which nodes must run: all, or (capture mode) those with a path to a captured node.
  std::unordered_map<Node*, size_t> capture_index;
  for (size_t i = 0; i < capture.size(); ++i) capture_index.emplace(capture[i], i);
  std::unordered_set<Node*> needed;
  for (Node* n : post_order) {  // children come before parents in post-order
    bool need = !capture_mode || capture_index.count(n);
    for (const auto& c : n->next) need = need || (c && needed.count(c.get()));
    if (need) needed.insert(n);
  }

  // 4. Dependencies among needed nodes, then Kahn's algorithm, latest-created first.
  std::unordered_map<Node*, int> pending;
  for (Node* n : post_order)
    if (needed.count(n))
      for (const auto& c : n->next)
        if (c && needed.count(c.get())) ++pending[c.get()];
  auto later = [](Node* a, Node* b) { return a->sequence < b->sequence; };
  std::priority_queue<Node*, std::vector<Node*>, decltype(later)> ready(later);
  for (const auto& r : roots)
    if (needed.count(r.get()) && pending[r.get()] == 0 && buffer.count(r.get())) {
      ready.push(r.get());
      pending[r.get()] = -1;  // queued
    }

  RunResult result;
  result.captured.resize(capture.size());
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    Tensor g = std::move(buffer[node]);
    buffer.erase(node);
    if (auto it = capture_index.find(node); it != capture_index.end()) result.captured[it->second] = g;
    const bool is_leaf_sink = dynamic_cast<AccumulateGrad*>(node) != nullptr;
    std::vector<Tensor> grads;
    bool feeds_needed = !capture_mode;  // in capture mode, skip backwards nobody reads
    for (const auto& c : node->next) feeds_needed = feeds_needed || (c && needed.count(c.get()));
    if (g.defined() && feeds_needed && !(capture_mode && is_leaf_sink)) {
      TETHER_CHECK(!node->released, "backward through ", node->name(),
                   " a second time: its saved tensors were freed after the first backward; "
                   "pass retain_graph=true to the first call");
      grads = node->backward(g);
      TETHER_CHECK(is_leaf_sink || grads.size() == node->next.size(), node->name(), " returned ", grads.size(),
                   " gradients for ", node->next.size(), " inputs");
    }
    if (!retain_graph && !is_leaf_sink) {
      node->release_saved();
      node->released = true;
    }
    for (size_t i = 0; i < node->next.size(); ++i) {
      Node* c = node->next[i].get();
      if (!c || !needed.count(c)) continue;
      if (i < grads.size() && grads[i].defined()) buffer[c] = add_grad(buffer[c], grads[i]);
      if (--pending[c] == 0) ready.push(c);
    }
  }
  return result;
}
}  // namespace

bool GradMode::enabled() { return grad_mode_enabled; }
void GradMode::set_enabled(bool enabled) { grad_mode_enabled = enabled; }

AutogradMeta& autograd_meta(const Tensor& t) {
  TensorImpl& impl = t.impl();
  if (!impl.autograd) impl.autograd = std::make_shared<AutogradMeta>();
  return *impl.autograd;
}

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.impl().autograd) return nullptr;
  AutogradMeta& meta = *t.impl().autograd;
  if (meta.grad_fn) return meta.grad_fn;
  if (!meta.requires_grad) return nullptr;
  std::shared_ptr<AccumulateGrad> acc = meta.accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    acc->sequence = next_sequence++;
    meta.accumulator = acc;
  }
  return acc;
}

bool needs_grad(std::initializer_list<Tensor> inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const Tensor& out, std::shared_ptr<Node> node, const std::vector<Tensor>& inputs) {
  node->sequence = next_sequence++;
  node->next.reserve(inputs.size());
  for (const Tensor& in : inputs) node->next.push_back(gradient_edge(in));
  AutogradMeta& meta = autograd_meta(out);
  meta.requires_grad = true;
  meta.grad_fn = std::move(node);
}

std::vector<Tensor> AccumulateGrad::backward(const Tensor& grad_output) {
  AutogradMeta& meta = *leaf->autograd;
  TETHER_CHECK(grad_output.shape() == leaf->shape, "AccumulateGrad: gradient ", shape_str(grad_output.shape()),
               " for a leaf of shape ", shape_str(leaf->shape));
  if (!meta.grad.defined()) meta.grad = grad_output.clone();
  else ops::axpy_(meta.grad, 1.0, grad_output);
  return {};
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph, bool allow_unused) {
  TETHER_CHECK(!inputs.empty(), "grad: no inputs given");
  std::vector<std::shared_ptr<Node>> keep;  // keeps lazily created sinks alive for the run
  std::vector<Node*> capture;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::shared_ptr<Node> n = gradient_edge(inputs[i]);
    TETHER_CHECK(n != nullptr, "grad: input ", i, " (", inputs[i].str(), ") does not require grad");
    keep.push_back(n);
    capture.push_back(n.get());
  }
  RunResult r = run(outputs, grad_outputs, retain_graph, capture);
  for (size_t i = 0; i < inputs.size(); ++i) {
    TETHER_CHECK(allow_unused || r.captured[i].defined(), "grad: input ", i, " (", inputs[i].str(),
                 ") was not used to compute the outputs");
    if (r.captured[i].defined() && !r.captured[i].same(inputs[i]))
      r.captured[i] = r.captured[i].detach();
  }
  return r.captured;
}

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs, bool retain_graph) {
  run(outputs, grad_outputs, retain_graph, {});
}

}  // namespace tether
