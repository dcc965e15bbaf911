// `tether models`: the names --model accepts, one per line (the model registry);
// `tether models --blocks M`: M's blocks in order, as `--freeze-blocks N` counts them.
#include <iostream>

#include "models/registry.h"
#include "tools/commands.h"

namespace tether::cli {

void add_models_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("models", "List the model names that --model accepts");
  auto blocks_of = std::make_shared<std::string>();
  cmd->add_option("--blocks", *blocks_of, "list this model's blocks in order (what --freeze-blocks N counts)");
  cmd->callback([blocks_of] {
    if (blocks_of->empty()) {
      for (const std::string& name : models::model_names()) std::cout << name << "\n";
      return;
    }
    const models::ModelPtr model = models::create_model(*blocks_of, {});
    int64_t index = 0;
    for (const auto& block : model->blocks()) {
      std::cout << ++index << "\t";
      for (size_t i = 0; i < block.size(); ++i) std::cout << (i ? "," : "") << block[i];
      std::cout << "\n";
    }
  });
}

}  // namespace tether::cli
