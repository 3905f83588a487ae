// latentkit: explore StyleGAN2 and StyleGAN3 latent spaces from the command line.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "common.h"
#include "latentkit/error.h"
#include "latentkit/log.h"
#include "latentkit/networks.h"
#include "latentkit/device.h"
#include "latentkit/stop.h"

namespace {
// SIGINT and SIGTERM ask the running operation to stop cleanly; a second one ends the process at once.
extern "C" void on_stop_signal(int) {
    latentkit::request_stop();
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
}
}  // namespace

int main(int argc, char** argv) {
    using namespace latentkit;
    CLI::App app{"latentkit: explore the latent spaces of StyleGAN2 and StyleGAN3 generators"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "latentkit 0.1.0");
    bool quiet = false, verbose = false;
    app.add_flag("-q,--quiet", quiet, "Only print errors");
    app.add_flag("-v,--verbose", verbose, "Print debug messages");
    int threads = 0;
    app.add_option("--threads", threads, "CPU threads for LibTorch (default: one per CPU; OpenBLAS then runs in one thread)")
        ->check(CLI::Range(1, 1024));
    std::string impl;
    app.add_option("--impl", impl, "Resampling convolutions: fast (default) or reference (the reference formulation; also LATENTKIT_IMPL)")
        ->check(CLI::IsMember({"fast", "reference"}));

    tools::register_info(app);
    tools::register_generate(app);
    tools::register_export(app);
    tools::register_morph(app);
    tools::register_style_mix(app);
    tools::register_project(app);
    tools::register_align(app);
    tools::register_directions(app);
    tools::register_edit(app);
    tools::register_dataset(app);
    tools::register_train(app);
    tools::register_nearest(app);
    tools::register_serve(app);
    tools::register_blend(app);
    tools::register_curate(app);
    tools::register_bench(app);

    auto logger = spdlog::stderr_color_mt("latentkit");
    logger->set_pattern("%^%l%$: %v");
    spdlog::set_default_logger(logger);
    set_log_callback([](LogLevel level, const std::string& msg) {
        switch (level) {
            case LogLevel::debug: spdlog::debug(msg); break;
            case LogLevel::info: spdlog::info(msg); break;
            case LogLevel::warn: spdlog::warn(msg); break;
            case LogLevel::error: spdlog::error(msg); break;
        }
    });

    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    try {
        app.parse_complete_callback([&]() {
            spdlog::set_level(quiet ? spdlog::level::err : verbose ? spdlog::level::debug : spdlog::level::info);
            configure_cpu_threads(threads);
            if (!impl.empty()) set_implementation(*option_from_name<Implementation>(impl));
            tools::set_invocation(app);
            tools::check_finite_options(app);
        });
        app.parse(argc, argv);
        return 0;
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "latentkit: usage error: %s (see --help)\n", e.what());
        return 2;
    } catch (const CancelledError& e) {
        std::fprintf(stderr, "latentkit: interrupted: %s\n", e.what());
        return 130;
    } catch (const ArgumentError& e) {
        std::fprintf(stderr, "latentkit: usage error: %s\n", latentkit::first_line(e, tools::flag_of).c_str());
        return 2;
    } catch (const Error& e) {
        std::fprintf(stderr, "latentkit: error: %s\n", latentkit::first_line(e, tools::flag_of).c_str());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "latentkit: error: %s\n", latentkit::first_line(e).c_str());
        return 1;
    }
}
