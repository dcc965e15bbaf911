// Whole models against torchvision: same weights, same input; logits and loss within 1e-4
// relative error (‖got − want‖ / ‖want‖), every parameter gradient and the input gradient
// within 1e-3, BN running statistics after a train forward within 1e-4, in eval and train
// modes.
//
// Two refinements keep the check honest where float32 itself is the limit:
// - A gradient that is mathematically zero (a conv bias or BN shift feeding a train-mode BN,
//   which removes per-channel constants) is rounding noise in both frameworks; its error is
//   measured against 1e-3 of the norm of the same layer's weight gradient.
// - With f64 references (resnet50 in train mode), tether's float32 gradients are compared with
//   the float64 truth, with tolerance max(2e-2, 3 x PyTorch's own float32 error). Measured
//   here: one ReLU whose float32 pre-activation (|x| < 1e-4) lands on the other side of zero
//   than in float64, out of 65,536 in layer4.2, moves every gradient below it by ~1% (PyTorch's
//   float32 run happened to have none). Defects show as errors of order 1, far above that.
#include "tests/models/model_parity.h"

using namespace tether;
using tether::model_parity::check_model;

TEST_SUITE("models") {
  TEST_CASE("resnet18 matches torchvision (eval and train)") { check_model("resnet18", 10, 64, 2, "eval,train"); }
  TEST_CASE("resnet50 matches torchvision (eval and train)") { check_model("resnet50", 10, 128, 2, "eval,train", /*f64=*/true); }
  // vgg16_bn at 32x32 ends in 2x2 maps: train-mode BN over 8 values per channel, where a
  // single ReLU flip moves float32 gradients by a few percent (see the top of this file; a
  // float64 reference for VGG would cost gigabytes). Its train-mode gradients are held to 5e-2;
  // the same BN/ReLU/conv backward is held to 1e-3 in eval mode here and in the other models.
  TEST_CASE("vgg16_bn matches torchvision (eval and train)") {
    check_model("vgg16_bn", 10, 32, 2, "eval,train", /*f64=*/false, /*train_grad_tol=*/5e-2);
  }
  TEST_CASE("efficientnet_b0 matches torchvision (eval and train)") { check_model("efficientnet_b0", 10, 64, 2, "eval,train"); }
  TEST_CASE("resnet18 at 224x224 with 1000 classes matches torchvision (eval)") { check_model("resnet18", 1000, 224, 1, "eval"); }
}
