#include "layers/conv.h"

#include "core/init.h"

namespace tether::nn {

Conv2d::Conv2d(const Conv2dOptions& o) : options(o) {
  TETHER_CHECK(o.in > 0 && o.out > 0 && o.kernel > 0 && o.groups > 0 && o.in % o.groups == 0 && o.out % o.groups == 0,
               "Conv2d: bad options in=", o.in, " out=", o.out, " kernel=", o.kernel, " groups=", o.groups);
  params.stride = {o.stride, o.stride};
  params.padding = {o.padding, o.padding};
  params.dilation = {o.dilation, o.dilation};
  params.groups = o.groups;
  weight = register_parameter("weight", Tensor::empty({o.out, o.in / o.groups, o.kernel, o.kernel}));
  if (o.bias) bias = register_parameter("bias", Tensor::empty({o.out}));
  init::default_conv_linear_init_(weight, bias, default_generator());
}

}  // namespace tether::nn
