// SPEC 1: the parameter sets every penalty and projection refers to.
//   S  (inherited): trainable parameters outside the head, whose values came from --weights
//   S̄ (head):      the classifier head's trainable parameters
//   w0:             the pretrained values of S, copied once after loading and never modified
// `--reg-params weights` keeps conv/linear weights (ndim >= 2) in both sets; `all` adds biases
// and BN affine parameters. Frozen parameters are in neither.
#pragma once
#include <map>
#include <string>

#include "models/model.h"

namespace tether::reg {

enum class ParamFilter { weights, all };
ParamFilter parse_param_filter(const std::string& name);  // "weights" | "all"

struct ParamSets {
  nn::NamedTensors inherited;         // S, in the model's parameter order
  nn::NamedTensors head;              // S̄
  std::map<std::string, Tensor> w0;   // name -> pretrained value, for every tensor of S
};

// Call right after the pretrained weights were loaded (and before --init): the current
// values of S become w0.
ParamSets select_param_sets(const models::Model& model, ParamFilter filter);

// True when `name` is the head itself or below it ("fc.weight" for head "fc").
bool is_head_parameter(const std::string& name, const std::string& head_name);

}  // namespace tether::reg
