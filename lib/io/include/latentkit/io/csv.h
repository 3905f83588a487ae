#pragma once
// CSV files (RFC 4180 quoting): the labels `curate` reads, the indexes and reports latentkit writes.
#include <string>
#include <vector>

namespace latentkit::io {

/// One CSV field: quoted (with doubled quotes) when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& text);

/// The rows of a CSV file (quoted fields with doubled quotes allowed; blank lines skipped); throws
/// IoError naming the file when it cannot be read.
std::vector<std::vector<std::string>> read_csv(const std::string& path);

}  // namespace latentkit::io
