// latentkit-viewer: explore a model live. Widgets edit ViewerState; the Dispatcher hands its requests
// to the render worker, the projection, the morph export and the task thread; App shows the results.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "error_text.h"
#include "app.h"
#include "latentkit/device.h"
#include "render_worker.h"

int main(int argc, char** argv) {
    using namespace latentkit::viewer;
    CLI::App cli{"latentkit-viewer: explore a StyleGAN2 or StyleGAN3 model live"};
    AppOptions o;
    cli.add_option("model", o.model, "Model file or http(s) URL to open (.pkl, .pt or .safetensors; default: $LATENTKIT_MODEL, else the bundled emoji model)");
    cli.add_option("--screenshot", o.screenshot, "Save the window to this PNG after --frames frames, then exit");
    cli.add_option("--save-image", o.save_image, "Save the generated image to this PNG after --frames frames");
    cli.add_option("--frames", o.frames, "Frames to run before --screenshot / exit");
    cli.add_option("--script", o.script, "Replay UI actions from this file, one per frame, then exit");
    cli.add_option("--dump-state", o.dump_state, "Write the final state (error, model, seed, ...) as JSON at exit");
    cli.add_option("--device", o.device, "Where the model runs: auto (CUDA when LibTorch sees a GPU), cpu or cuda[:N]");
    cli.add_option("--audio", o.audio, "Play this sound file at start; it moves the view through --audio-map");
    cli.add_option("--audio-map", o.audio_map, "How sound moves the view: pulse, motion, beats or a map .json (default pulse)");
    cli.add_option("--osc", o.osc_port, "Take OSC messages (/latentkit/psi 0.7, ...) on this UDP port; from this machine only")
        ->check(CLI::Range(1, 65535));
    cli.add_flag("--osc-any-host", o.osc_any_host, "Take OSC messages from other machines too");
    cli.add_flag("--benchmark", o.benchmark, "Animate through seeds without vsync and report frame and render times");
    cli.add_option("--width", o.width, "Window width");
    cli.add_option("--height", o.height, "Window height");
    try {
        cli.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return cli.exit(e);
    }
    if (o.benchmark && o.frames == 0) o.frames = 300;
    latentkit::configure_cpu_threads();
    try {
        o.device = resolve_device(o.device);  // before any window: a bad --device is one line and exit 1
        App app(o);
        return app.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "latentkit-viewer: error: %s\n", error_text(e).c_str());
        return 1;
    }
}
