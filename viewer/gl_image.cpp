// Image display with a GLSL program and a pixel-buffer upload.
#include "gl_image.h"

#include <fmt/format.h>
#include <glad/gl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "latentkit/atomic_file.h"
#include "latentkit/error.h"
#include "render_worker.h"
#include "texture_interop.h"

namespace latentkit::viewer {
namespace {

unsigned compile(unsigned kind, const std::string& path) {
    const std::string source = read_file(path);
    const unsigned s = glCreateShader(kind);
    const char* text = source.c_str();
    glShaderSource(s, 1, &text, nullptr);
    glCompileShader(s);
    int ok = 0;
    glGetShaderiv(s, GL_COMPILE_STATUS, &ok);
    if (!ok) {
        char log[1024] = {};
        glGetShaderInfoLog(s, sizeof(log) - 1, nullptr, log);
        glDeleteShader(s);
        std::string first(log);
        throw Error(fmt::format("{}: the shader does not compile: {}", path, first.substr(0, first.find('\n'))));
    }
    return s;
}

}  // namespace

std::string find_shader_dir() {
    namespace fs = std::filesystem;
    if (const char* env = std::getenv("LATENTKIT_SHADERS")) return env;
    for (const char* dir : {LATENTKIT_SHADER_INSTALL_DIR, LATENTKIT_SHADER_SOURCE_DIR})
        if (fs::exists(fs::path(dir) / "image.frag")) return dir;
    throw Error(fmt::format("shaders not found in {} or {} (set LATENTKIT_SHADERS)", LATENTKIT_SHADER_INSTALL_DIR, LATENTKIT_SHADER_SOURCE_DIR));
}

GlImage::GlImage(const std::string& shader_dir) {
    const unsigned vs = compile(GL_VERTEX_SHADER, shader_dir + "/image.vert");
    const unsigned fs = compile(GL_FRAGMENT_SHADER, shader_dir + "/image.frag");
    program_ = glCreateProgram();
    glAttachShader(program_, vs);
    glAttachShader(program_, fs);
    glLinkProgram(program_);
    glDeleteShader(vs);
    glDeleteShader(fs);
    int ok = 0;
    glGetProgramiv(program_, GL_LINK_STATUS, &ok);
    if (!ok) throw Error(shader_dir + ": the image shaders do not link");
    u_scale_ = glGetUniformLocation(program_, "u_scale");
    u_offset_ = glGetUniformLocation(program_, "u_offset");
    glGenVertexArrays(1, &vao_);
    glGenTextures(1, &texture_);
    glGenBuffers(1, &pbo_);
}

GlImage::~GlImage() {
    storage_.release();  // before the texture goes
    glDeleteBuffers(1, &pbo_);
    glDeleteTextures(1, &texture_);
    glDeleteVertexArrays(1, &vao_);
    glDeleteProgram(program_);
}

void GlImage::allocate() {
    glBindTexture(GL_TEXTURE_2D, texture_);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, storage_.width(), storage_.height(), 0, GL_RGBA, GL_UNSIGNED_BYTE, nullptr);  // RGBA: CUDA can map it
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_LINEAR);  // no mipmaps
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_LINEAR);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
}

void GlImage::upload(const Image8& image) {
    if (image.channels != 3 || image.width < 1 || image.height < 1) return;
    if (storage_.prepare(image.width, image.height)) allocate();  // releases a CUDA registration first; before the buffer is bound
    const size_t bytes = image.pixels.size();
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, pbo_);
    glBufferData(GL_PIXEL_UNPACK_BUFFER, static_cast<GLsizeiptr>(bytes), nullptr, GL_STREAM_DRAW);
    if (void* dst = glMapBufferRange(GL_PIXEL_UNPACK_BUFFER, 0, static_cast<GLsizeiptr>(bytes), GL_MAP_WRITE_BIT | GL_MAP_INVALIDATE_BUFFER_BIT)) {
        std::memcpy(dst, image.pixels.data(), bytes);
        glUnmapBuffer(GL_PIXEL_UNPACK_BUFFER);
    }
    glBindTexture(GL_TEXTURE_2D, texture_);
    glPixelStorei(GL_UNPACK_ALIGNMENT, 1);
    glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, storage_.width(), storage_.height(), GL_RGB, GL_UNSIGNED_BYTE, nullptr);
    glBindBuffer(GL_PIXEL_UNPACK_BUFFER, 0);
}

bool GlImage::upload(const DeviceImage& image, TextureInterop& interop) {
    if (!interop.available() || image.width < 1 || image.height < 1) return false;
    if (storage_.prepare(image.width, image.height)) allocate();
    glBindTexture(GL_TEXTURE_2D, 0);
    if (!interop.copy(image, texture_)) return false;
    storage_.registered(&interop);
    return true;
}

void GlImage::draw(int x, int y, int w, int h, int fb_w, int fb_h, const ImageView& view) const {
    if (empty() || w < 1 || h < 1) return;
    const double fit = std::min(static_cast<double>(w) / width(), static_cast<double>(h) / height()) * view.zoom;
    const double half_w = width() * fit / 2, half_h = height() * fit / 2;
    const double cx = x + w / 2.0 + view.pan_x, cy = y + h / 2.0 + view.pan_y;
    glViewport(0, 0, fb_w, fb_h);
    glEnable(GL_SCISSOR_TEST);
    glScissor(x, fb_h - (y + h), w, h);
    glUseProgram(program_);
    glUniform2f(u_scale_, static_cast<float>(2 * half_w / fb_w), static_cast<float>(2 * half_h / fb_h));
    glUniform2f(u_offset_, static_cast<float>(2 * cx / fb_w - 1), static_cast<float>(1 - 2 * cy / fb_h));
    glActiveTexture(GL_TEXTURE0);
    glBindTexture(GL_TEXTURE_2D, texture_);
    const int filter = view.nearest ? GL_NEAREST : GL_LINEAR;
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, filter);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, filter);
    glBindVertexArray(vao_);
    glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
    glBindVertexArray(0);
    glDisable(GL_SCISSOR_TEST);
}

Image8 GlImage::read_back() const {
    Image8 out;
    if (empty()) return out;
    out.width = width();
    out.height = height();
    out.channels = 3;
    out.pixels.resize(static_cast<size_t>(width()) * height() * 3);
    glBindTexture(GL_TEXTURE_2D, texture_);
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glGetTexImage(GL_TEXTURE_2D, 0, GL_RGB, GL_UNSIGNED_BYTE, out.pixels.data());
    return out;
}

}  // namespace latentkit::viewer
