// torch.save files, zip and legacy, read through the data-only pickle machine.
#include <fmt/format.h>

#include "latentkit/zip.h"
#include "pickle.h"
#include "pickle_machine.h"

namespace latentkit::pickle {
namespace {

constexpr std::string_view kLegacyStart("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14);

size_t work_budget(size_t bytes) { return 64 * bytes + (1u << 20); }

// The archive's one top-level folder holding data.pkl (torch names it after the file: "archive/", "rosi_32/").
std::string archive_prefix(const ZipReader& zip, const std::string& source) {
    std::string prefix;
    for (const ZipEntry& e : zip.entries()) {
        const size_t slash = e.name.find('/');
        if (slash == std::string::npos || e.name.compare(slash, std::string::npos, "/data.pkl") != 0) continue;
        if (!prefix.empty()) throw ModelFormatError(source + ": torch.save archive holds more than one data.pkl");
        prefix = e.name.substr(0, slash + 1);
    }
    if (prefix.empty())
        throw ModelFormatError(source + ": a zip archive without a data.pkl: not a torch.save file (a dataset or other archive?)");
    return prefix;
}

}  // namespace

bool is_legacy_torch_save(std::string_view data) { return data.substr(0, kLegacyStart.size()) == kLegacyStart; }

std::unique_ptr<Document> parse_torch_save(std::shared_ptr<const std::string> bytes, const std::string& source, const Limits& limits) {
    auto doc = std::make_unique<Document>();
    const std::string_view data(*bytes);
    if (is_legacy_torch_save(data)) {
        detail::Machine m(*doc, std::string_view(), source, limits, work_budget(data.size()), nullptr);
        doc->root = m.legacy_stream(data, "file");
        return doc;
    }
    const ZipReader zip(bytes, source);
    detail::ZipStorages storages{zip, archive_prefix(zip, source), {}};
    const int64_t index = zip.find(storages.prefix + "data.pkl");
    const std::string pkl = zip.read(static_cast<size_t>(index));
    detail::Machine m(*doc, pkl, source, limits, work_budget(data.size()), nullptr, &storages);
    doc->root = m.run();
    return doc;
}

}  // namespace latentkit::pickle
