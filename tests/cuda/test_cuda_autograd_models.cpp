// Autograd and whole models on the GPU: float64 finite-difference gradchecks with CUDA inputs
// (conv2d, batch norm, pooling, softmax + cross-entropy), whole-model parity against
// torchvision run on the GPU (tests/models/model_parity.h with the reference's --device cuda,
// both in strict float32), and a CPU-vs-CUDA whole-model comparison that needs no PyTorch:
// resnet18's logits, loss, every parameter gradient and BN running statistics within 1e-4
// relative (‖cuda − cpu‖ / ‖cpu‖) in strict float32.
#include "layers/dropout.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/models/model_parity.h"

using namespace tether;
using namespace tether::cudatest;

namespace {

// Seeded f64 values on the GPU, a leaf requiring grad.
Tensor gpu_leaf(const Shape& shape, uint64_t seed) { return testing::randn(shape, seed).to(gpu()).set_requires_grad(); }

// Distinct values 0.1 apart in random order: max pooling without ties is differentiable.
Tensor distinct_gpu_leaf(const Shape& shape, uint64_t seed) {
  std::vector<double> v(shape_numel(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1 * static_cast<double>(i) - 1.0;
  std::shuffle(v.begin(), v.end(), std::mt19937_64(seed));
  return Tensor::from_vector(v, shape).to(gpu()).set_requires_grad();
}

Pool2dParams pool(std::array<int64_t, 2> k, std::array<int64_t, 2> s, std::array<int64_t, 2> pad, bool ceil_mode = false,
                  bool count_include_pad = true) {
  Pool2dParams p;
  p.kernel = k;
  p.stride = s;
  p.padding = pad;
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  return p;
}

Conv2dParams conv_params(int64_t stride, int64_t pad, int64_t dil, int64_t groups) {
  Conv2dParams p;
  p.stride = {stride, stride};
  p.padding = {pad, pad};
  p.dilation = {dil, dil};
  p.groups = groups;
  return p;
}

}  // namespace

TEST_SUITE("cuda") {
  TEST_CASE("gradcheck on the GPU: conv2d (stride, padding, dilation, groups, depthwise)") {
    TETHER_REQUIRE_GPU("gradcheck of conv2d");
    struct Case {
      Shape x, w;
      Conv2dParams p;
    };
    for (const Case& c : std::vector<Case>{{{2, 2, 5, 5}, {3, 2, 3, 3}, conv_params(1, 1, 1, 1)},
                                           {{1, 2, 6, 5}, {2, 2, 3, 3}, conv_params(2, 1, 2, 1)},
                                           {{2, 4, 5, 5}, {4, 2, 3, 3}, conv_params(1, 1, 1, 2)},
                                           {{1, 3, 5, 5}, {6, 1, 3, 3}, conv_params(2, 1, 1, 3)}}) {
      CAPTURE(shape_str(c.x));
      CAPTURE(shape_str(c.w));
      const Tensor x = gpu_leaf(c.x, 1), w = gpu_leaf(c.w, 2), b = gpu_leaf({c.w[0]}, 3);
      const Conv2dParams p = c.p;
      TETHER_GRADCHECK([p](auto& in) { return conv2d(in[0], in[1], in[2], p); }, std::vector<Tensor>{x, w, b});
      TETHER_GRADCHECK([p](auto& in) { return conv2d(in[0], in[1], Tensor(), p); }, std::vector<Tensor>{x, w});
    }
  }

  TEST_CASE("gradcheck on the GPU: batch_norm (train and eval) and pooling") {
    TETHER_REQUIRE_GPU("gradcheck of batch_norm and pooling");
    for (const Shape& xs : std::vector<Shape>{{5, 3}, {2, 3, 3, 2}}) {
      CAPTURE(shape_str(xs));
      const int64_t C = xs[1];
      const Tensor x = gpu_leaf(xs, 10), w = gpu_leaf({C}, 11), b = gpu_leaf({C}, 12);
      const Tensor rm = testing::randn({C}, 13).to(gpu()), rv = testing::uniform({C}, 0.5, 2.0, 14).to(gpu());
      TETHER_GRADCHECK([rm, rv](auto& in) { return batch_norm(in[0], in[1], in[2], rm.clone(), rv.clone(), true); },
                       std::vector<Tensor>{x, w, b});
      TETHER_GRADCHECK([rm, rv](auto& in) { return batch_norm(in[0], in[1], in[2], rm, rv, false); },
                       std::vector<Tensor>{x, w, b});
      TETHER_GRADCHECK([](auto& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
                       std::vector<Tensor>{x});
    }
    const Tensor xd = distinct_gpu_leaf({2, 2, 7, 6}, 20);
    for (const Pool2dParams& p : {pool({3, 3}, {2, 2}, {1, 1}), pool({3, 2}, {2, 1}, {1, 0}, true)})
      TETHER_GRADCHECK([p](auto& in) { return max_pool2d(in[0], p); }, std::vector<Tensor>{xd});
    const Tensor x = gpu_leaf({2, 2, 7, 6}, 21);
    for (bool include : {true, false})
      for (bool ceil_mode : {false, true}) {
        CAPTURE(include);
        CAPTURE(ceil_mode);
        const Pool2dParams p = pool({3, 3}, {2, 2}, {1, 1}, ceil_mode, include);
        TETHER_GRADCHECK([p](auto& in) { return avg_pool2d(in[0], p); }, std::vector<Tensor>{x});
      }
    for (auto [oh, ow] : std::vector<std::pair<int64_t, int64_t>>{{3, 4}, {1, 1}, {9, 7}})
      TETHER_GRADCHECK([oh = oh, ow = ow](auto& in) { return adaptive_avg_pool2d(in[0], oh, ow); }, std::vector<Tensor>{x});
  }

  TEST_CASE("gradcheck on the GPU: softmax, log_softmax and cross_entropy") {
    TETHER_REQUIRE_GPU("gradcheck of softmax and cross_entropy");
    const Tensor x = gpu_leaf({3, 4, 5}, 30);
    for (int dim : {0, 1, -1}) {
      CAPTURE(dim);
      TETHER_GRADCHECK([dim](auto& in) { return softmax(in[0], dim); }, std::vector<Tensor>{x});
      TETHER_GRADCHECK([dim](auto& in) { return log_softmax(in[0], dim); }, std::vector<Tensor>{x});
    }
    const Tensor logits = gpu_leaf({5, 4}, 31);
    const Tensor target = Tensor::from_vector(std::vector<int64_t>{3, 0, 1, 3, 2}, {5}).to(gpu());
    for (double s : {0.0, 0.1})
      for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
        CAPTURE(s);
        CAPTURE(static_cast<int>(red));
        TETHER_GRADCHECK([&](auto& in) { return cross_entropy(in[0], target, s, red); }, std::vector<Tensor>{logits});
      }
  }

  // The CPU suite's models (tests/models/test_model_parity.cpp), on the GPU against PyTorch on
  // the GPU. Skipped with a visible message where PyTorch is absent (parity::reference).
  TEST_CASE("whole models on the GPU match torchvision on the GPU (strict float32)") {
    TETHER_REQUIRE_GPU("model parity against PyTorch");
    Tf32Scope strict("none");
    using model_parity::check_model;
    check_model("resnet18", 10, 64, 2, "eval,train", false, 1e-3, gpu());
    check_model("resnet50", 10, 128, 2, "eval,train", /*f64=*/true, 1e-3, gpu());
    check_model("vgg16_bn", 10, 32, 2, "eval,train", false, /*train_grad_tol=*/5e-2, gpu());
    check_model("efficientnet_b0", 10, 64, 2, "eval,train", false, 1e-3, gpu());
  }

  TEST_CASE("resnet18 on the GPU matches tether on the CPU: logits, loss, every gradient, BN statistics") {
    TETHER_REQUIRE_GPU("resnet18 CPU vs CUDA");
    Tf32Scope strict("none");
    manual_seed(3);
    models::ModelPtr cpu_model = models::create_model("resnet18", {.num_classes = 10});
    models::ModelPtr gpu_model = models::create_model("resnet18", {.num_classes = 10});
    std::map<std::string, Tensor> weights;
    for (const auto& [n, t] : cpu_model->state_dict()) weights[n] = t.clone();
    gpu_model->load_state_dict(weights);
    gpu_model->to(gpu());
    for (const auto& [n, t] : gpu_model->state_dict()) {
      CAPTURE(n);
      CHECK(t.device() == gpu());
    }
    // 96x96, batch 4: layer4's train-mode BN normalises 36 values per channel.
    const Tensor input = testing::randn({4, 3, 96, 96}, 40, DType::f32);
    const Tensor target = Tensor::from_vector(std::vector<int64_t>{1, 7, 3, 7}, {4});
    for (bool training : {false, true}) {
      CAPTURE(training);
      Tensor logits[2], loss[2];
      for (int side = 0; side < 2; ++side) {
        models::ModelPtr& model = side ? gpu_model : cpu_model;
        const Device device = side ? gpu() : Device::cpu();
        model->train(training);
        model->zero_grad();
        logits[side] = (*model)(input.to(device));
        loss[side] = cross_entropy(logits[side], target.to(device));
        loss[side].backward();
      }
      model_parity::expect_relative("logits", logits[1], logits[0], 1e-4);
      model_parity::expect_relative("loss", reshape(loss[1], {1}), reshape(loss[0], {1}), 1e-4);
      const nn::NamedTensors cpu_params = cpu_model->named_parameters(), gpu_params = gpu_model->named_parameters();
      REQUIRE(cpu_params.size() == gpu_params.size());
      for (size_t i = 0; i < cpu_params.size(); ++i) {
        const auto& [n, p] = cpu_params[i];
        CAPTURE(n);
        REQUIRE(gpu_params[i].second.grad().defined());
        CHECK(gpu_params[i].second.grad().device() == gpu());
        model_parity::expect_relative("grad." + n, gpu_params[i].second.grad(), p.grad(), 1e-4);
      }
      const nn::NamedTensors cpu_buffers = cpu_model->named_buffers(), gpu_buffers = gpu_model->named_buffers();
      for (size_t i = 0; i < cpu_buffers.size(); ++i) {
        const auto& [n, b] = cpu_buffers[i];
        CAPTURE(n);
        if (b.dtype() == DType::i64) CHECK(gpu_buffers[i].second.item<int64_t>() == b.item<int64_t>());
        else model_parity::expect_relative(n, gpu_buffers[i].second, b, 1e-4);
      }
    }
  }
}
