// `tether models`: the names --model accepts, one per line (the model registry).
#include <iostream>

#include "models/registry.h"
#include "tools/commands.h"

namespace tether::cli {

void add_models_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("models", "List the model names that --model accepts");
  cmd->callback([] {
    for (const std::string& name : models::model_names()) std::cout << name << "\n";
  });
}

}  // namespace tether::cli
