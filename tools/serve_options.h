#pragma once
// The options of `latentkit serve`, apart from the server (which needs cpp-httplib), so that a build
// without it still parses them and refuses in one line.
#include <string>
#include <vector>

namespace latentkit::tools {

/// Options of `latentkit serve`.
struct ServeOptions {
    std::string model;                    ///< a model file (or URL); optional with models_dir
    std::string models_dir;               ///< a folder: its model files (and direction .json files) can be chosen
    std::vector<std::string> directions;  ///< direction files offered besides those in models_dir
    std::string host = "127.0.0.1";
    int port = 8000;
    std::string token;                    ///< required of every request when set (and for a non-loopback host)
    std::string device = "cpu";
    int max_upload_mib = 16;              ///< largest request body
    int threads = 8;                      ///< connections handled at once
};

}  // namespace latentkit::tools
