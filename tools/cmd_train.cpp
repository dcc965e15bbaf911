// `tether train`: flags (tools/train/options.cpp) → TrainOptions → run_training
// (tools/train/trainer.cpp). --config FILE.json and --resume DIR are merged into the argument
// list before parsing (expand_train_args), so a file's values go through the same checks as flags.
#include <filesystem>
#include <iostream>
#include <memory>

#include "tools/commands.h"
#include "tools/train/run_files.h"
#include "tools/train/trainer.h"

namespace tether::cli {

void add_train_command(CLI::App& app) {
  auto opts = std::make_shared<train::TrainOptions>();
  auto* cmd = app.add_subcommand("train", "Fine-tune a model (SPEC 8, 9); see README: Training");
  train::add_train_flags(*cmd, *opts);
  cmd->add_option("--config", "JSON file of flag names and values (flags on the command line win)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--resume", opts->resume, "Continue the run in this directory from its last checkpoint")
      ->check(CLI::ExistingDirectory);
  cmd->callback([opts] {
    const train::TrainSummary s = train::run_training(*opts);
    if (s.interrupted) {
      const std::string dir = opts->resume.empty() ? opts->out : opts->resume;
      if (dir.empty())
        std::cerr << "interrupted at step " << s.steps << " (no --out: nothing was saved)\n";
      else
        std::cerr << "interrupted at step " << s.steps << ": checkpoint written; continue with --resume " << dir << "\n";
      throw CLI::RuntimeError(130);
    }
    std::cout << "trained " << s.steps << " steps in " << s.seconds << " s; distance from w0 "
              << s.distance_from_w0 << "\n";
    if (s.evaluated) std::cout << "final: " << train::format_eval(s.final_eval) << "\n"
                               << "best:  " << train::format_eval(s.best_eval) << "\n";
  });
}

std::vector<std::string> expand_train_args(const CLI::App& app, std::vector<std::string> args) {
  if (args.size() < 2 || args[1] != "train") return args;
  // The value of `flag` on the command line ("--flag v" or "--flag=v"), or "".
  auto value_of = [&](const std::string& flag) -> std::string {
    for (size_t i = 2; i < args.size(); ++i) {
      if (args[i] == flag) return i + 1 < args.size() ? args[i + 1] : "";
      if (args[i].rfind(flag + "=", 0) == 0) return args[i].substr(flag.size() + 1);
    }
    return "";
  };
  // Precedence: command line, then --config, then the resumed run's args.json.
  std::vector<std::string> sources;
  if (auto config = value_of("--config"); !config.empty()) sources.push_back(config);
  if (auto resume = value_of("--resume"); !resume.empty()) sources.push_back(resume + "/args.json");
  std::vector<std::string> rest(args.begin() + 2, args.end());
  for (const auto& path : sources) {
    TETHER_CHECK(std::filesystem::is_regular_file(path), "'", path, "' does not exist",
                 path.ends_with("/args.json") ? " (--resume needs a tether run directory)" : "");
    rest = train::merge_json_args(rest, train::read_json(path), path, *app.get_subcommand("train"));
  }
  rest.insert(rest.begin(), args.begin(), args.begin() + 2);
  return rest;
}

}  // namespace tether::cli
