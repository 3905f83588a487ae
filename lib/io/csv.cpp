// CSV reading and quoting.
#include "latentkit/io/csv.h"

#include <utility>

#include "latentkit/atomic_file.h"

namespace latentkit::io {

std::string csv_field(const std::string& text) {
    if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
    std::string out = "\"";
    for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
    const std::string text = read_file(path);
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
    std::string field;
    bool quoted = false, any = false;
    for (size_t i = 0; i <= text.size(); ++i) {
        const char c = i < text.size() ? text[i] : '\n';
        if (quoted) {
            if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
            else if (c == '"') quoted = false;
            else field += c;
        } else if (c == '"') {
            quoted = any = true;
        } else if (c == ',') {
            row.push_back(std::exchange(field, {})), any = true;
        } else if (c == '\n') {
            if (any || !field.empty()) row.push_back(std::exchange(field, {})), rows.push_back(std::exchange(row, {}));
            any = false;
        } else if (c != '\r') {
            field += c;
        }
    }
    return rows;
}

}  // namespace latentkit::io
