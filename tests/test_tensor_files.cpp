// safetensors reading and writing, including hostile input.
#include "test_util.h"

#include <cstring>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/tensor_data.h"

using namespace latentkit;

namespace {
std::string with_header(const std::string& json, const std::string& data = "") {
    std::string out(8, '\0');
    const uint64_t n = json.size();
    std::memcpy(out.data(), &n, 8);
    return out + json + data;
}
TensorFile parse(const std::string& bytes) { return parse_safetensors(std::make_shared<const std::string>(bytes), "test.safetensors"); }
}  // namespace

TEST_CASE("safetensors round trip keeps names, shapes, values and metadata") {
    TensorFile f;
    f.metadata["hello"] = "world";
    f.tensors.emplace_back("b", TensorData::from_floats({2, 3}, {1, 2, 3, 4, 5, 6}));
    f.tensors.emplace_back("a", TensorData::from_floats({}, {42}));
    f.tensors.emplace_back("empty", TensorData::from_floats({0, 4}, {}));
    const TensorFile g = parse(serialize_safetensors(f));
    CHECK(g.metadata.at("hello") == "world");
    REQUIRE(g.tensors.size() == 3);
    REQUIRE(g.find("b"));
    CHECK(g.find("b")->shape == std::vector<int64_t>{2, 3});
    CHECK(g.find("b")->to_floats() == std::vector<float>{1, 2, 3, 4, 5, 6});
    CHECK(g.find("a")->to_floats() == std::vector<float>{42});
    CHECK(g.find("empty")->numel() == 0);
}

TEST_CASE("safetensors: every golden file parses") {
    for (const char* f : {"tiny32.G_ema.safetensors", "gray16.expected.safetensors", "seeds_z512.safetensors", "tiny32.train.safetensors"})
        CHECK_NOTHROW(read_safetensors(lktest::data_path(std::string("golden/") + f)));
}

TEST_CASE("safetensors: hostile input fails cleanly with ModelFormatError") {
    CHECK_THROWS_AS(parse(""), ModelFormatError);
    CHECK_THROWS_AS(parse("abc"), ModelFormatError);
    std::string huge(8, '\xff');
    CHECK_THROWS_WITH_AS(parse(huge + "{}"), doctest::Contains("implausible"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse(with_header("{}").substr(0, 9)), doctest::Contains("runs past the end"), ModelFormatError);
    CHECK_THROWS_AS(parse(with_header("{not json")), ModelFormatError);
    CHECK_THROWS_AS(parse(with_header("[1,2]")), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse(with_header(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234")),
                         doctest::Contains("data section"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse(with_header(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678")),
                         doctest::Contains("bytes for shape"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse(with_header(R"({"x":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}})", "12345678")),
                         doctest::Contains("implausibly large"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse(with_header(R"({"x":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", "1234")),
                         doctest::Contains("unsupported dtype"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse(with_header(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                                           "12345678")),
                         doctest::Contains("overlap"), ModelFormatError);
    CHECK_THROWS_AS(parse(with_header(std::string(100000, '[') + std::string(100000, ']'))), ModelFormatError);
    CHECK_THROWS_AS(parse(with_header(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "1234")), ModelFormatError);
}

TEST_CASE("safetensors: truncating a real file at any point fails cleanly") {
    const std::string bytes = latentkit::read_file(lktest::data_path("golden/gray16.expected.safetensors"));
    for (size_t cut = 0; cut < bytes.size(); cut += 97) CHECK_THROWS_AS(parse(bytes.substr(0, cut)), ModelFormatError);
}
