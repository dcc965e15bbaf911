// The `tether` subcommands, one file each (tools/cmd_<name>.cpp). Each add_*_command registers
// its subcommand, flags and callback on the app; tools/main.cpp calls them all.
// Callbacks report failures by throwing tether::Error (main prints "tether: <message>", exit 1)
// or CLI::RuntimeError(code) for a silent exit with that code (`tether inspect`: 2 = would not load).
#pragma once
#include <CLI/CLI.hpp>

namespace tether::cli {

void add_models_command(CLI::App& app);   // tools/cmd_models.cpp
void add_inspect_command(CLI::App& app);  // tools/cmd_inspect.cpp
void add_forward_command(CLI::App& app);  // tools/cmd_forward.cpp
void add_bench_command(CLI::App& app);    // tools/cmd_bench.cpp
void add_train_command(CLI::App& app);    // tools/cmd_train.cpp
void add_eval_command(CLI::App& app);     // tools/cmd_eval.cpp
void add_demo_command(CLI::App& app);     // tools/cmd_demo.cpp
void add_fisher_command(CLI::App& app);   // tools/cmd_fisher.cpp
void add_attention_command(CLI::App& app);  // tools/cmd_attention.cpp
void add_analyze_command(CLI::App& app);  // tools/cmd_analyze.cpp

// `tether train --config FILE.json` / `--resume DIR`: the file's keys become flags (those not on
// the command line) before parsing. Other subcommands pass through unchanged.
std::vector<std::string> expand_train_args(const CLI::App& app, std::vector<std::string> args);

}  // namespace tether::cli
