#include "pickle_writer.h"

#include <cstring>

#include "latentkit/error.h"
#include "pickle_opcodes.h"

namespace latentkit::pickle {

PickleWriter::PickleWriter(int protocol) : protocol_(protocol) {
    out_.push_back(static_cast<char>(opcode::PROTO));
    out_.push_back(static_cast<char>(protocol));
}

void PickleWriter::u32(uint32_t v) {
    for (int k = 0; k < 4; ++k) out_.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}

void PickleWriter::none() { out_.push_back(static_cast<char>(opcode::NONE)); }
void PickleWriter::boolean(bool v) { out_.push_back(static_cast<char>(v ? opcode::NEWTRUE : opcode::NEWFALSE)); }

void PickleWriter::integer(int64_t v) {
    if (v >= 0 && v < 256) {
        out_.push_back(static_cast<char>(opcode::BININT1));
        out_.push_back(static_cast<char>(v));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        out_.push_back(static_cast<char>(opcode::BININT));
        u32(static_cast<uint32_t>(static_cast<int32_t>(v)));
    } else {
        out_.push_back(static_cast<char>(opcode::LONG1));  // LONG1, 8 bytes two's complement
        out_.push_back(8);
        for (int k = 0; k < 8; ++k) out_.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * k)) & 0xff));
    }
}

void PickleWriter::floating(double v) {
    out_.push_back(static_cast<char>(opcode::BINFLOAT));  // BINFLOAT, big-endian
    uint64_t bits = 0;
    std::memcpy(&bits, &v, 8);
    for (int k = 7; k >= 0; --k) out_.push_back(static_cast<char>((bits >> (8 * k)) & 0xff));
}

void PickleWriter::text(const std::string& s) {
    out_.push_back(static_cast<char>(opcode::BINUNICODE));
    u32(static_cast<uint32_t>(s.size()));
    out_ += s;
}

void PickleWriter::bytes(const std::string& b) {
    if (protocol_ < 3) throw ArgumentError("PickleWriter: bytes objects need protocol 3");
    out_.push_back(static_cast<char>(opcode::BINBYTES));
    u32(static_cast<uint32_t>(b.size()));
    out_ += b;
}

void PickleWriter::global(const std::string& module, const std::string& name) {
    out_.push_back(static_cast<char>(opcode::GLOBAL));
    out_ += module + "\n" + name + "\n";
}

void PickleWriter::mark() { out_.push_back(static_cast<char>(opcode::MARK)); }
void PickleWriter::tuple() { out_.push_back(static_cast<char>(opcode::TUPLE)); }
void PickleWriter::empty_tuple() { out_.push_back(static_cast<char>(opcode::EMPTY_TUPLE)); }
void PickleWriter::empty_dict() { out_.push_back(static_cast<char>(opcode::EMPTY_DICT)); }
void PickleWriter::setitems() { out_.push_back(static_cast<char>(opcode::SETITEMS)); }
void PickleWriter::empty_list() { out_.push_back(static_cast<char>(opcode::EMPTY_LIST)); }
void PickleWriter::appends() { out_.push_back(static_cast<char>(opcode::APPENDS)); }
void PickleWriter::reduce() { out_.push_back(static_cast<char>(opcode::REDUCE)); }
void PickleWriter::newobj() { out_.push_back(static_cast<char>(opcode::NEWOBJ)); }
void PickleWriter::build() { out_.push_back(static_cast<char>(opcode::BUILD)); }
void PickleWriter::persistent_id() { out_.push_back(static_cast<char>(opcode::BINPERSID)); }

void PickleWriter::int_tuple(const std::vector<int64_t>& values) {
    if (values.empty()) return empty_tuple();
    mark();
    for (int64_t v : values) integer(v);
    tuple();
}

void PickleWriter::numpy_array(const TensorData& t) {
    if (t.dtype != DType::f32) throw ArgumentError("PickleWriter: only float32 arrays are written");
    global("numpy.core.multiarray", "_reconstruct");
    global("numpy", "ndarray");
    int_tuple({0});
    bytes("b");
    out_.push_back(static_cast<char>(opcode::TUPLE3));
    reduce();
    mark();  // state: (version, shape, dtype, fortran order, raw data)
    integer(1);
    int_tuple(t.shape);
    global("numpy", "dtype");
    text("f4");
    boolean(false);
    boolean(true);
    out_.push_back(static_cast<char>(opcode::TUPLE3));
    reduce();
    mark();  // the dtype's state: little-endian float32
    integer(3);
    text("<");
    none();
    none();
    none();
    integer(-1);
    integer(-1);
    integer(0);
    tuple();
    build();
    boolean(false);
    bytes(std::string(reinterpret_cast<const char*>(t.data()), t.nbytes()));
    tuple();
    build();
}

std::string PickleWriter::finish() {
    out_.push_back(static_cast<char>(opcode::STOP));
    return std::move(out_);
}

}  // namespace latentkit::pickle
