#pragma once
// `latentkit serve`: an HTTP front end (cpp-httplib) on the viewer's GL-free core. Requests are parsed
// into the same RenderSpec the viewer and the commands render; files are only ever looked up among
// those the command line named, never joined from a request.
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "latentkit/directions.h"
#include "serve_options.h"
#include "model_store.h"
#include "render_worker.h"

namespace latentkit::tools {

/// The files a server may open: the --model, and the model and direction files under --models (found
/// again on every listing; symbolic links that lead out of the folder are left out). Requests name them
/// by these names only.
class Catalog {
public:
    explicit Catalog(const ServeOptions& options);
    /// Lists the files again.
    void refresh();
    /// Model names, the default first.
    std::vector<std::string> models() const;
    /// Direction file names.
    std::vector<std::string> direction_files() const;
    /// The path of a model by name (empty: the default). Throws ArgumentError for an unknown name.
    std::string model_path(const std::string& name) const;
    /// The path of a direction file by name. Throws ArgumentError for an unknown name.
    std::string direction_path(const std::string& name) const;
    /// Offers a direction file the server made (computed directions) under `name` from now on.
    void add_direction(const std::string& name, const std::string& path);

private:
    ServeOptions o_;
    mutable std::mutex mutex_;
    std::vector<std::pair<std::string, std::string>> models_, directions_, made_;  // (name, path)
};

/// One query parameter set, as a map (the last value of a repeated key wins, except `dir`).
struct Query {
    std::multimap<std::string, std::string> params;
    /// The value of `key`, if given.
    std::optional<std::string> get(const std::string& key) const;
    /// Every value of `key`, in order.
    std::vector<std::string> all(const std::string& key) const;
};

/// The render settings of query parameters, without a latent: psi, cutoff, class, noise, noise_seed,
/// translate, rotate, mix and mix_layers, dir. Throws ArgumentError naming the parameter.
RenderSpec render_settings(const Query& q, const Catalog& catalog, const viewer::ModelSummary& model);

/// A render request from query parameters: model, seed (or x and y), psi, cutoff, class, noise,
/// noise_seed, translate, rotate, mix and mix_layers, dir (FILE#NAME@STRENGTH, repeatable). Throws
/// ArgumentError naming the parameter for a bad value or an unknown name.
viewer::RenderRequest render_request(const Query& q, const Catalog& catalog, const std::string& device, const viewer::ModelSummary& model);

/// The whole-number parameter `key` in [lo, hi], or `fallback` when it is not given. Throws ArgumentError.
int64_t integer_param(const Query& q, const std::string& key, int64_t fallback, int64_t lo, int64_t hi);

/// Throws ArgumentError for a parameter that is neither one render_request reads (or format, client,
/// token) nor one of `extra`.
void check_parameters(const Query& q, const std::vector<std::string>& extra = {});

/// Renders one request at a time on the shared model; a request waiting for its turn is dropped when a
/// newer one of the same client arrives (the page keeps only its newest).
class RenderQueue {
public:
    explicit RenderQueue(viewer::ModelStore& store) : worker_(store) {}
    /// The result, or nothing when a newer request of `client` superseded this one before it started.
    std::optional<viewer::RenderResult> render(const viewer::RenderRequest& request, const std::string& client);

private:
    viewer::RenderWorker worker_;
    std::mutex render_mutex_, clients_mutex_;
    std::map<std::string, uint64_t> newest_;  // clients with a request in flight
    uint64_t next_ = 0;
};

/// Runs the server until a stop is requested (SIGINT, SIGTERM). Throws ArgumentError for unsafe or
/// bad options, IoError when the address cannot be bound.
void run_server(const ServeOptions& options);

}  // namespace latentkit::tools
