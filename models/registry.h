// Model registry: name -> factory, for the CLI (`--model resnet50`) and the tests.
#pragma once
#include <string>
#include <vector>

#include "models/model.h"

namespace tether::models {

std::vector<std::string> model_names();
// Throws naming the unknown model and listing the known ones.
ModelPtr create_model(const std::string& name, const ModelOptions& options = {});

}  // namespace tether::models
