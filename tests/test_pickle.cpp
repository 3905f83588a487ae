// The data-only pickle reader: real snapshots, allowed constructs, and hostile input.
#include "test_util.h"

#include <random>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "latentkit/model_io.h"
#include "pickle.h"

using namespace latentkit;
namespace pk = latentkit::pickle;
using namespace std::string_literals;

namespace {
std::unique_ptr<pk::Document> parse(const std::string& bytes) { return pk::parse(bytes, "test.pkl"); }
std::string u32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string binunicode(const std::string& s) { return "X" + u32(static_cast<uint32_t>(s.size())) + s; }
}  // namespace

TEST_CASE("pickle: reference snapshots of protocols 3 and 4 parse into G, D, G_ema, augment_pipe") {
    for (const char* name : {"golden/tiny32.pkl", "golden/gray16.pkl"}) {
        const std::string bytes = read_file(lktest::data_path(name));
        auto doc = parse(bytes);
        REQUIRE(doc->root->kind == pk::Kind::dict);
        for (const char* key : {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}) CHECK(doc->root->get(key) != nullptr);
        const pk::Value* g = doc->root->get("G_ema");
        CHECK(g->kind == pk::Kind::object);
        CHECK(g->s == "Generator");
        const pk::Value* w_avg = g->state->get("_modules")->get("mapping")->state->get("_buffers")->get("w_avg");
        REQUIRE(w_avg);
        const TensorData t = pk::to_tensor_data(*w_avg, name);
        CHECK(t.shape.size() == 1);
    }
}

TEST_CASE("pickle: allowed constructs of protocols 0 to 5") {
    auto doc = parse("\x80\x02" "c_codecs\nencode\n" + binunicode("\xc3\xa9z") + binunicode("latin1") + "\x86R.");
    CHECK(doc->root->kind == pk::Kind::bytes);
    CHECK(doc->root->s == "\xe9z");

    doc = parse("\x80\x02" "cdnnlib.util\nEasyDict\n)\x81(" + binunicode("a") + "K\x07u.");
    REQUIRE(doc->root->kind == pk::Kind::dict);
    CHECK(doc->root->get("a")->i == 7);

    doc = parse("(lp0\nI1\naI-3\naF0.5\naS'txt'\na.");  // protocol 0 text opcodes
    REQUIRE(doc->root->kind == pk::Kind::list);
    REQUIRE(doc->root->items.size() == 4);
    CHECK(doc->root->items[1]->i == -3);
    CHECK(doc->root->items[2]->f == 0.5);
    CHECK(doc->root->items[3]->s == "txt");

    doc = parse("\x80\x05\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8f(K\x01K\x02\x90\x94h\x00\x86."s);
    REQUIRE(doc->root->kind == pk::Kind::tuple);
    CHECK(doc->root->items[0] == doc->root->items[1]);  // memo shares the same set
    CHECK(doc->root->items[0]->items.size() == 2);

    // numpy float64 scalar: numpy.dtype('f8') with little-endian state, then scalar(dtype, bytes)
    const double v = 0.25;
    doc = parse("\x80\x02" "cnumpy.core.multiarray\nscalar\n" "cnumpy\ndtype\n" + binunicode("f8") + "\x89\x88\x87R(K\x03" + binunicode("<") +
                "NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"s + "C\x08" + std::string(reinterpret_cast<const char*>(&v), 8) + "\x86R.");
    CHECK(doc->root->kind == pk::Kind::floating);
    CHECK(doc->root->f == 0.25);

    // Records: a TensorFlow network and an argparse.Namespace are NEWOBJ + BUILD of a dict state.
    doc = parse("\x80\x02" "cargparse\nNamespace\n)\x81}(" + binunicode("size") + "K\x20ub.");
    REQUIRE(doc->root->kind == pk::Kind::object);
    CHECK(doc->root->s == "argparse.Namespace");
    CHECK(doc->root->state->get("size")->i == 32);
    CHECK_THROWS_WITH_AS(parse("\x80\x02" "cargparse\nNamespace\n)\x81K\x01" "b."), doctest::Contains("state is not a dict"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("\x80\x02" "cdnnlib.tflib.network\nNetwork\nK\x01\x85\x81."), doctest::Contains("with arguments"),
                         ModelFormatError);
    // An OrderedDict's attributes (a state dict's _metadata) stay out of its items.
    doc = parse("\x80\x02" "ccollections\nOrderedDict\n)R}(" + binunicode("_metadata") + "K\x01ub.");
    CHECK(doc->root->items.empty());
    CHECK(doc->root->state->get("_metadata")->i == 1);
    // numpy's protocol-5 arrays: _frombuffer(buffer, dtype, shape, order), here a Fortran-ordered 2x2 int8.
    doc = parse("\x80\x05" "cnumpy._core.numeric\n_frombuffer\n(" "\x96\x04\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04"s +
                "cnumpy\ndtype\n" + binunicode("i1") + "\x89\x88\x87R" + "K\x02K\x02\x86" + binunicode("F") + "tR.");
    REQUIRE(doc->root->kind == pk::Kind::tensor);
    CHECK(pk::to_tensor_data(*doc->root, "t").to_floats() == std::vector<float>{1, 3, 2, 4});

    doc = parse("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.");
    CHECK(doc->root->kind == pk::Kind::big_integer);
    doc = parse("\x80\x02\x8a\x02\xff\x7f.");
    CHECK(doc->root->i == 32767);
    doc = parse("\x80\x02\x8a\x01\xff.");
    CHECK(doc->root->i == -1);
}

TEST_CASE("pickle: code execution and unknown classes are refused") {
    CHECK_THROWS_WITH_AS(parse("cos\nsystem\n(S'echo pwned'\ntR."), doctest::Contains("refuses global 'os.system'"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93."), doctest::Contains("builtins.eval"), ModelFormatError);
    CHECK_THROWS_AS(parse("\x80\x02" "ccollections\nOrderedDict\n" "ccollections\nOrderedDict\n" "\x85R."), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("(i__main__\nEvil\n."), doctest::Contains("not allowed"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("\x80\x02\x82\x01."), doctest::Contains("not allowed"), ModelFormatError);
    // torch storage classes are only allowed inside legacy tensor payloads
    CHECK_THROWS_AS(parse("\x80\x02" "ctorch\nFloatStorage\n."), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("\x80\x02(X\x07\x00\x00\x00storageNtQ."s), doctest::Contains("persistent id"), ModelFormatError);
}

TEST_CASE("pickle: malformed and hostile streams fail cleanly") {
    CHECK_THROWS_WITH_AS(parse(""), doctest::Contains("ends early"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("\x80\x06N."), doctest::Contains("protocol 6"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f"), doctest::Contains("ends early"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("\x80\x02X\xff\xff\xff\xff"), doctest::Contains("ends early"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("\x80\x02h\x05."), doctest::Contains("memo"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("\x80\x02."), doctest::Contains("malformed stack"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("\x80\x02R"), doctest::Contains("underflow"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("\x80\x02\xfe"), doctest::Contains("unknown opcode"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse(std::string(200000, '(')), doctest::Contains("too deep"), ModelFormatError);
    CHECK_THROWS_AS(parse("\x80\x02NN."), ModelFormatError);

    // A million nested tuples: no recursion, so no stack overflow; the result is just not a model.
    const std::string deep = "\x80\x02N" + std::string(1000000, '\x85') + ".";
    auto doc = parse(deep);
    CHECK(doc->root->kind == pk::Kind::tuple);
    lktest::TempDir dir;
    lktest::write_bytes(dir / "deep.pkl", deep);
    CHECK_THROWS_WITH_AS(load_model(dir / "deep.pkl"), doctest::Contains("no StyleGAN2 networks"), ModelFormatError);

    // Quadratic blow-up attempt: copying a large list into sets many times exceeds the work budget.
    std::string blow = "\x80\x02]q\x00("s + std::string(20000, 'N') + "e";
    for (int k = 0; k < 2000; ++k) blow += "cbuiltins\nset\nh\x00\x85R0"s;
    blow += ".";
    CHECK_THROWS_WITH_AS(parse(blow), doctest::Contains("too much work"), ModelFormatError);
}

TEST_CASE("pickle: a tensor claiming more data than its storage holds is refused") {
    const std::string bytes = read_file(lktest::data_path("golden/gray16.pkl"));
    auto doc = parse(bytes);
    const pk::Value* w_avg = doc->root->get("G_ema")->state->get("_modules")->get("mapping")->state->get("_buffers")->get("w_avg");
    pk::Value forged = *w_avg;
    forged.sizes = {1000000};
    CHECK_THROWS_WITH_AS(pk::to_tensor_data(forged, "x"), doctest::Contains("past the end"), ModelFormatError);
    forged.sizes = {int64_t(1) << 62, int64_t(1) << 62};
    forged.strides = {1, 1};
    CHECK_THROWS_AS(pk::to_tensor_data(forged, "x"), ModelFormatError);
}

TEST_CASE("pickle: truncated and corrupted snapshots never crash the loader") {
    lktest::TempDir dir;
    const std::string bytes = read_file(lktest::data_path("golden/gray16.pkl"));
    for (size_t cut = 1; cut < bytes.size(); cut += bytes.size() / 61) {
        lktest::write_bytes(dir / "cut.pkl", bytes.substr(0, cut));
        CHECK_THROWS_AS(load_model(dir / "cut.pkl"), ModelFormatError);
    }
    std::mt19937 rng(1234);
    int loaded = 0, refused = 0;
    for (int k = 0; k < 60; ++k) {
        std::string bad = bytes;
        for (int f = 0; f < 4; ++f) bad[rng() % bad.size()] = static_cast<char>(rng() & 0xff);
        lktest::write_bytes(dir / "bad.pkl", bad);
        try {
            load_model(dir / "bad.pkl");
            ++loaded;
        } catch (const latentkit::Error&) {
            ++refused;
        }
    }
    CHECK(loaded + refused == 60);
}

TEST_CASE("model files of other kinds get a one-line explanation") {
    lktest::TempDir dir;
    lktest::write_bytes(dir / "zip.pt", std::string("PK\x03\x04", 4) + std::string(100, '\0'));
    CHECK_THROWS_WITH_AS(load_model(dir / "zip.pt"), doctest::Contains("zip archive"), ModelFormatError);
    lktest::write_bytes(dir / "random.bin", "this is not a model at all");
    CHECK_THROWS_WITH_AS(load_model(dir / "random.bin"), doctest::Contains("not a model file"), ModelFormatError);
    lktest::write_bytes(dir / "empty.pkl", "");
    CHECK_THROWS_WITH_AS(load_model(dir / "empty.pkl"), doctest::Contains("empty"), ModelFormatError);
    CHECK_THROWS_AS(load_model(dir / "missing.pkl"), IoError);
    CHECK_THROWS_WITH_AS(load_model(dir.path()), doctest::Contains("directory"), IoError);

    // A StyleGAN3 generator (told by its SynthesisInput module) without its tensors: read as one, and refused for them.
    auto obj = [](const std::string& cls, const std::string& state) {
        return "ctorch_utils.persistence\n_reconstruct_persistent_obj\n}(" + binunicode("type") + binunicode("class") + binunicode("version") +
               "K\x06" + binunicode("class_name") + binunicode(cls) + binunicode("state") + state + "u\x85R";
    };
    const std::string input_state = "}(" + binunicode("_parameters") + "}" + binunicode("_buffers") + "}" + binunicode("_modules") + "}u";
    const std::string synthesis_state = "}(" + binunicode("_modules") + "}(" + binunicode("input") + obj("SynthesisInput", input_state) + "uu";
    const std::string g_state = "}(" + binunicode("_modules") + "}(" + binunicode("synthesis") + obj("SynthesisNetwork", synthesis_state) + "u" +
                                binunicode("_init_kwargs") + "}(" + binunicode("z_dim") + "K\x10" + "uu";
    const std::string sg3 = "\x80\x02}(" + binunicode("G_ema") + obj("Generator", g_state) + "u.";
    lktest::write_bytes(dir / "sg3.pkl", sg3);
    CHECK_THROWS_WITH_AS(load_model(dir / "sg3.pkl"), doctest::Contains("StyleGAN3"), ModelFormatError);
}

TEST_CASE("pickle: popping across a MARK is refused (fuzzer regression)") {
    CHECK_THROWS_WITH_AS(parse("K\x01(a."), doctest::Contains("underflow"), ModelFormatError);
    CHECK_THROWS_WITH_AS(parse("K\x01(\x85."), doctest::Contains("underflow"), ModelFormatError);
    CHECK_THROWS_AS(parse("(1(l(l(0lp0\nI1a\nF0.50.5\nc\ncS'txt'\na.5\na(1.\n\naF0\xae"), ModelFormatError);
    auto doc = parse("K\x07(0.");  // POP of a bare MARK drops the mark
    CHECK(doc->root->i == 7);
}
