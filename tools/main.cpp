// The `tether` command-line tool. One file per subcommand (tools/cmd_*.cpp, declared in
// tools/commands.h); this file only wires them together and turns errors into exit codes:
// tether::Error -> "tether: <message>" and exit 1; flag errors -> CLI11's message and code.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "core/check.h"
#include "core/cuda/backend.h"
#include "core/device.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  // Keep freed image and activation buffers mapped instead of returning them to the kernel on
  // every free: glibc's defaults page-fault multi-megabyte buffers back in on nearly every
  // image, which halves the data loader's throughput (tools/bench/bench_data.cpp measures it).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  CLI::App app{"tether: fine-tuning pretrained CNNs with an inductive bias toward the pretrained weights"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "tether 0.1.0");

  auto* info = app.add_subcommand("info", "Print the build configuration (devices, threads)");
  info->callback([] {
    std::cout << "tether 0.1.0\n"
              << "cuda back end: "
#ifdef TETHER_WITH_CUDA
              << "compiled"
#else
              << "not compiled"
#endif
              << ", GPUs visible: " << tether::cuda_device_count() << "\n";
    if (tether::cuda_device_count() > 0) {
      std::cout << tether::cuda::library_versions() << "\n";
      for (int i = 0; i < tether::cuda_device_count(); ++i)
        std::cout << "cuda:" << i << ": " << tether::cuda::describe_device(i) << "\n";
    }
    std::cout << "tf32 (--tf32): " << tether::tf32_mode() << "\n";
  });

  tether::cli::add_models_command(app);
  tether::cli::add_inspect_command(app);
  tether::cli::add_forward_command(app);
  tether::cli::add_bench_command(app);
  tether::cli::add_train_command(app);
  tether::cli::add_eval_command(app);
  tether::cli::add_demo_command(app);
  tether::cli::add_fisher_command(app);
  tether::cli::add_attention_command(app);
  tether::cli::add_analyze_command(app);

  try {
    std::vector<std::string> args(argv, argv + argc);
    args = tether::cli::expand_train_args(app, args);
    std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);  // CLI11 takes them reversed, without argv[0]
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const tether::Error& e) {
    std::cerr << "tether: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
