// latentkit serve: the model over HTTP for a browser or scripts (serve.cpp has the server).
#include "common.h"
#include "latentkit/error.h"
#include "serve_options.h"
#if LATENTKIT_HAVE_SERVE
#include "serve.h"
#endif

namespace latentkit::tools {

void register_serve(CLI::App& app) {
    auto o = std::make_shared<ServeOptions>();
    auto* cmd = app.add_subcommand("serve", "Serve a model over HTTP: a JSON and image API for scripts and browsers");
    cmd->add_option("--model,-m", o->model, "Model file or URL (the default model)");
    cmd->add_option("--models", o->models_dir, "A folder whose model files (and direction .json files) can be chosen by name");
    cmd->add_option("--directions", o->directions, "Direction files offered besides those in --models");
    cmd->add_option("--host", o->host, "Address to listen on; any but 127.0.0.1 / localhost / ::1 needs --token")->default_str("127.0.0.1");
    cmd->add_option("--port", o->port, "Port (0: any free one, printed at start)")->check(CLI::Range(0, 65535))->default_str("8000");
    cmd->add_option("--token", o->token, "Secret every request must carry (Authorization: Bearer TOKEN, or token=TOKEN)");
    cmd->add_option("--max-upload", o->max_upload_mib, "Largest request body in MiB (photos to project)")->check(CLI::Range(1, 1024))->default_str("16");
    cmd->add_option("--threads", o->threads, "Connections served at once")->check(CLI::Range(1, 256))->default_str("8");
    add_device_option(cmd, o->device);
    cmd->callback([o]() {
#if LATENTKIT_HAVE_SERVE
        o->device = device_from_name(o->device).str();  // "auto" -> cuda or cpu
        run_server(*o);
#else
        throw Error("this build of latentkit has no HTTP server (cpp-httplib was not found at build time: apt install libcpp-httplib-dev)");
#endif
    });
}

}  // namespace latentkit::tools
