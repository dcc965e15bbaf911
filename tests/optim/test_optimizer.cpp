// Optimizer behaviour beyond the formulas (those are in test_optim_parity.cpp): parameters
// without a gradient, checkpoint state (save, load, resume bitwise; rejecting bad state without
// half-loading), option checks.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "core/safetensors.h"
#include "optim/optimizer.h"
#include "tests/test_util.h"

using namespace tether;
using tether::testing::error_of;
using nlohmann::json;

namespace {

// The optimizers under test, by label.
std::unique_ptr<optim::Optimizer> make(const std::string& which, std::vector<optim::ParamGroup> groups) {
  if (which == "sgd") return optim::make_sgd(std::move(groups), {.lr = 0.1});
  if (which == "sgd-momentum") return optim::make_sgd(std::move(groups), {.lr = 0.1, .momentum = 0.9, .dampening = 0.2});
  if (which == "sgd-nesterov") return optim::make_sgd(std::move(groups), {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  if (which == "adam") return optim::make_adam(std::move(groups), {.lr = 1e-2});
  if (which == "adam-amsgrad") return optim::make_adam(std::move(groups), {.lr = 1e-2, .amsgrad = true});
  if (which == "adamw") return optim::make_adam(std::move(groups), {.lr = 1e-2, .decoupled_weight_decay = true});
  if (which == "adamw-amsgrad")
    return optim::make_adam(std::move(groups), {.lr = 1e-2, .amsgrad = true, .decoupled_weight_decay = true});
  FAIL("unknown optimizer " << which);
  return nullptr;
}
const std::vector<std::string> kAll = {"sgd", "sgd-momentum", "sgd-nesterov", "adam", "adam-amsgrad", "adamw", "adamw-amsgrad"};

// A small model's parameters: names, shapes (one large enough for the threaded loop), two groups.
struct Model {
  std::vector<std::string> names = {"features.0.weight", "features.0.bias", "big.weight", "fc.weight", "fc.bias"};
  std::vector<Shape> shapes = {{4, 3, 3, 3}, {4}, {300, 400}, {10, 4}, {10}};
  std::vector<Tensor> params;
  explicit Model(DType dtype = DType::f32, uint64_t seed = 7) {
    for (size_t i = 0; i < names.size(); ++i) params.push_back(testing::randn(shapes[i], seed + i, dtype, true));
  }
  // Same names and values, fresh tensors.
  Model copy() const {
    Model m(params[0].dtype());
    for (size_t i = 0; i < params.size(); ++i) m.params[i] = params[i].clone().set_requires_grad();
    return m;
  }
  std::vector<optim::ParamGroup> groups() const {
    std::vector<optim::ParamGroup> g(2);
    g[0] = {.name = "inherited", .names = {}, .params = {}, .lr_mult = 1.0, .weight_decay = 1e-2};
    g[1] = {.name = "head", .names = {}, .params = {}, .lr_mult = 3.0, .weight_decay = 0.0};
    for (size_t i = 0; i < names.size(); ++i) {
      const size_t k = names[i].starts_with("fc.") ? 1 : 0;
      g[k].names.push_back(names[i]);
      g[k].params.push_back(params[i]);
    }
    return g;
  }
  // Seeded gradients for step s; fc.bias has none at step 1 and features.0.bias none at step 4.
  void set_grads(int s) const {
    for (size_t i = 0; i < params.size(); ++i) {
      if ((s == 1 && names[i] == "fc.bias") || (s == 4 && names[i] == "features.0.bias")) {
        params[i].zero_grad();
        continue;
      }
      params[i].set_grad(testing::randn(shapes[i], 1000 + 31 * s + i, params[i].dtype()));
    }
  }
};

double lr_at(int s) { return 0.05 / (1 + s); }  // a schedule

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor x = a.clone(), y = b.clone();
  return std::memcmp(x.raw_data(), y.raw_data(), x.numel() * element_size(x.dtype())) == 0;
}

bool same_state(const optim::Optimizer& a, const optim::Optimizer& b) {
  const auto ta = a.state_tensors(), tb = b.state_tensors();
  if (ta.size() != tb.size() || a.state_json() != b.state_json()) return false;
  for (const auto& [k, t] : ta)
    if (!tb.count(k) || !bitwise_equal(t, tb.at(k))) return false;
  return true;
}

}  // namespace

TEST_SUITE("optim") {
  TEST_CASE("a parameter without a gradient is left untouched and gets no state") {
    for (const std::string& which : kAll) {
      CAPTURE(which);
      Model m;
      const Tensor before = m.params[1].clone();  // features.0.bias: never gets a gradient
      auto opt = make(which, m.groups());
      for (int s = 0; s < 3; ++s) {
        m.set_grads(s);
        m.params[1].zero_grad();
        opt->step();
      }
      CHECK(bitwise_equal(m.params[1], before));
      CHECK_FALSE(bitwise_equal(m.params[0], Model().params[0]));  // the others moved
      for (const auto& [key, t] : opt->state_tensors()) CHECK_FALSE(key.starts_with("features.0.bias."));
      const json steps = opt->state_json()["param_steps"];
      CHECK_FALSE(steps.contains("features.0.bias"));
      CHECK(steps["features.0.weight"] == 3);
      CHECK(steps["fc.bias"] == 2);  // no gradient at step 1
      CHECK(opt->steps() == 3);
      // Buffers: the names of section 9's checkpoints, one set per updated parameter.
      const auto state = opt->state_tensors();
      if (which == "sgd") CHECK(state.empty());
      if (which.starts_with("sgd-")) CHECK(state.count("fc.weight.momentum_buffer"));
      if (which.starts_with("adam")) CHECK((state.count("fc.weight.exp_avg") && state.count("fc.weight.exp_avg_sq")));
      CHECK(state.count("fc.weight.max_exp_avg_sq") == (which.ends_with("amsgrad") ? 1u : 0u));
    }
  }

  TEST_CASE("zero_grad drops every gradient; a gradient of another dtype is an error; strided gradients work") {
    Model m;
    auto opt = make("adam", m.groups());
    m.set_grads(0);
    opt->zero_grad();
    for (const Tensor& p : m.params) CHECK_FALSE(p.grad().defined());
    m.params[3].set_grad(Tensor::zeros({10, 4}, DType::f64));
    CHECK_THROWS_WITH_AS(opt->step(), doctest::Contains("gradient of 'fc.weight' is f64, the parameter f32"), Error);
    // A non-contiguous gradient (a transposed view) updates as its contiguous copy would.
    Model a, b;
    auto opt_a = make("sgd-momentum", a.groups()), opt_b = make("sgd-momentum", b.groups());
    const Tensor g = testing::randn({4, 10}, 99, DType::f32);
    a.params[3].set_grad(ops::transpose(g, 0, 1));
    b.params[3].set_grad(ops::contiguous(ops::transpose(g, 0, 1)));
    REQUIRE_FALSE(a.params[3].grad().is_contiguous());
    opt_a->step();
    opt_b->step();
    CHECK(bitwise_equal(a.params[3], b.params[3]));
  }

  TEST_CASE("state saved after k steps, loaded into a fresh optimizer, resumes bitwise") {
    const auto dir = std::filesystem::temp_directory_path() / ("tether-optim-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    for (const DType dtype : {DType::f32, DType::f64})
      for (const std::string& which : kAll) {
        CAPTURE(which);
        CAPTURE(dtype_name(dtype));
        const int total = 7, k = 3;
        // Uninterrupted.
        Model a(dtype);
        auto opt_a = make(which, a.groups());
        for (int s = 0; s < total; ++s) {
          opt_a->set_lr(lr_at(s));
          a.set_grads(s);
          opt_a->step();
        }
        // Interrupted after k steps: the weights and the optimizer state go through files.
        Model b(dtype);
        auto opt_b = make(which, b.groups());
        for (int s = 0; s < k; ++s) {
          opt_b->set_lr(lr_at(s));
          b.set_grads(s);
          opt_b->step();
        }
        const std::string path = (dir / "last.optim.safetensors").string();
        safetensors::save(path, opt_b->state_tensors());
        const std::string json_text = opt_b->state_json().dump();
        Model c = b.copy();
        auto opt_c = make(which, c.groups());
        opt_c->load_state(safetensors::load(path).tensors, json::parse(json_text));
        CHECK(same_state(*opt_b, *opt_c));
        CHECK(opt_c->steps() == k);
        CHECK(opt_c->base_lr() == lr_at(k - 1));
        for (int s = k; s < total; ++s) {
          opt_c->set_lr(lr_at(s));
          c.set_grads(s);
          opt_c->step();
          // The original keeps going too: loading copied the buffers, it did not share them.
          opt_b->set_lr(lr_at(s));
          b.set_grads(s);
          opt_b->step();
        }
        for (size_t i = 0; i < a.params.size(); ++i) {
          CAPTURE(a.names[i]);
          CHECK(bitwise_equal(a.params[i], c.params[i]));
          CHECK(bitwise_equal(a.params[i], b.params[i]));
        }
        CHECK(same_state(*opt_a, *opt_c));
      }
    std::filesystem::remove_all(dir);
  }

  TEST_CASE("load_state rejects bad state naming the key, and never half-loads") {
    Model m;
    auto saved_opt = make("adam-amsgrad", m.groups());
    for (int s = 0; s < 3; ++s) {
      m.set_grads(s);
      saved_opt->step();
    }
    const std::map<std::string, Tensor> good = saved_opt->state_tensors();
    const json good_json = saved_opt->state_json();

    Model m2;
    auto opt = make("adam-amsgrad", m2.groups());
    m2.set_grads(0);
    opt->step();  // a different state, which a failed load must leave as it is
    const auto before_tensors = opt->state_tensors();
    const json before_json = opt->state_json();
    auto unchanged = [&] {
      CHECK(opt->state_json() == before_json);
      const auto now = opt->state_tensors();
      CHECK(now.size() == before_tensors.size());
      for (const auto& [key, t] : before_tensors) CHECK((now.count(key) && bitwise_equal(now.at(key), t)));
    };
    auto expect_error = [&](const std::map<std::string, Tensor>& tensors, const json& j, const std::string& what) {
      CAPTURE(what);
      CHECK_THROWS_WITH_AS(opt->load_state(tensors, j), doctest::Contains(what.c_str()), Error);
      unchanged();
    };

    // Keys sorting after valid ones ("zz..."), so a loader that applied as it went would have changed state.
    auto t = good;
    t["zz.weight.exp_avg"] = Tensor::zeros({3});
    expect_error(t, good_json, "unknown parameter 'zz.weight'");
    t = good;
    t["fc.weight.momentum_buffer"] = Tensor::zeros({10, 4});
    expect_error(t, good_json, "unexpected tensor 'fc.weight.momentum_buffer'");
    t = good;
    t["fc.weight.exp_avg"] = Tensor::zeros({4, 10});
    expect_error(t, good_json, "tensor 'fc.weight.exp_avg' has shape [4, 10], the parameter [10, 4]");
    t = good;
    t.erase("fc.bias.max_exp_avg_sq");
    expect_error(t, good_json, "missing tensor 'fc.bias.max_exp_avg_sq'");
    json j = good_json;
    j["param_steps"].erase("fc.weight");
    expect_error(good, j, "'fc.weight.exp_avg' but no step count");
    j = good_json;
    j["param_steps"]["nope"] = 1;
    expect_error(good, j, "unknown parameter 'nope'");
    j = good_json;
    j["param_steps"]["fc.weight"] = 0;
    expect_error(good, j, "param_steps.fc.weight");
    j = good_json;
    j["optimizer"] = "sgd";
    expect_error(good, j, "saved by optimizer \"sgd\"");
    j = good_json;
    j.erase("steps");
    expect_error(good, j, "missing 'steps'");
    // An amsgrad state into plain Adam: the extra buffer is unexpected.
    auto plain = make("adam", Model().groups());
    CHECK_THROWS_WITH_AS(plain->load_state(good, good_json), doctest::Contains("max_exp_avg_sq"), Error);

    // And the good state loads.
    opt->load_state(good, good_json);
    CHECK(same_state(*opt, *saved_opt));
    // Copies both ways: the optimizer neither keeps the caller's tensors nor hands out its own.
    for (const auto& [key, tensor] : good) tensor.fill_(0);
    for (const auto& [key, tensor] : opt->state_tensors()) tensor.fill_(7);
    CHECK(same_state(*opt, *saved_opt));
  }

  TEST_CASE("optimizer options are checked as PyTorch checks them, naming the option") {
    Model m;
    auto sgd = [&](optim::SGDOptions o) { return error_of([&] { optim::make_sgd(m.groups(), o); }); };
    auto adam = [&](optim::AdamOptions o) { return error_of([&] { optim::make_adam(m.groups(), o); }); };
    CHECK(sgd({.lr = -0.1}).find("invalid learning rate (lr) -0.1") != std::string::npos);
    CHECK(sgd({.lr = NAN}).find("(lr)") != std::string::npos);
    CHECK(sgd({.lr = 0.1, .momentum = -0.5}).find("invalid momentum value -0.5") != std::string::npos);
    CHECK(sgd({.lr = 0.1, .nesterov = true}).find("nesterov momentum requires a momentum > 0") != std::string::npos);
    CHECK(sgd({.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}).find("zero dampening") !=
          std::string::npos);
    CHECK(sgd({.lr = 0.1, .momentum = 0.9, .nesterov = true}) == "(no error)");
    CHECK(adam({.lr = -1}).find("adam: invalid learning rate (lr)") != std::string::npos);
    CHECK(adam({.eps = 0}).find("invalid epsilon value (eps) 0") != std::string::npos);
    CHECK(adam({.eps = -1e-8}).find("(eps)") != std::string::npos);
    CHECK(adam({.beta1 = 1.0}).find("beta parameter at index 0 (beta1) 1") != std::string::npos);
    CHECK(adam({.beta1 = -0.1}).find("(beta1)") != std::string::npos);
    CHECK(adam({.beta2 = 1.0}).find("beta parameter at index 1 (beta2)") != std::string::npos);
    CHECK(adam({.beta1 = 0.0, .beta2 = 0.0}) == "(no error)");
    CHECK(adam({.eps = 0, .decoupled_weight_decay = true}).find("adamw: invalid epsilon") != std::string::npos);

    auto groups = m.groups();
    groups[1].weight_decay = -1e-4;
    CHECK(error_of([&] { optim::make_sgd(groups, {}); }).find("'head': invalid weight_decay value -0.0001") !=
          std::string::npos);
    groups = m.groups();
    groups[0].lr_mult = -1;
    CHECK(error_of([&] { optim::make_adam(groups, {}); }).find("invalid lr_mult") != std::string::npos);
    groups = m.groups();
    groups[1].names.push_back("extra");
    CHECK(error_of([&] { optim::make_adam(groups, {}); }).find("has 2 parameters but 3 names") != std::string::npos);
    groups = m.groups();
    groups[1].names[0] = groups[0].names[0];
    CHECK(error_of([&] { optim::make_adam(groups, {}); }).find("'features.0.weight' appears twice") !=
          std::string::npos);
    groups = m.groups();
    groups[0].params[0] = Tensor::zeros({2}, DType::i64);
    CHECK(error_of([&] { optim::make_adam(groups, {}); }).find("is i64") != std::string::npos);
    auto opt = optim::make_sgd(m.groups(), {});
    CHECK(error_of([&] { opt->set_lr(-1); }).find("invalid learning rate (lr) -1") != std::string::npos);
    opt->set_lr(0.25);
    CHECK(opt->base_lr() == 0.25);
    CHECK(opt->group_lr(1) == 0.75);
  }
}
