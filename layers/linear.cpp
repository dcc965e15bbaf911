#include "layers/linear.h"

#include "core/init.h"

namespace tether::nn {

Linear::Linear(const LinearOptions& o) : options(o) {
  TETHER_CHECK(o.in > 0 && o.out > 0, "Linear: bad sizes in=", o.in, " out=", o.out);
  weight = register_parameter("weight", Tensor::empty({o.out, o.in}));
  if (o.bias) bias = register_parameter("bias", Tensor::empty({o.out}));
  init::default_conv_linear_init_(weight, bias, default_generator());
}

}  // namespace tether::nn
