#version 330 core
// The generated image; filtering (nearest or linear) is set on the texture.
uniform sampler2D u_image;
in vec2 v_uv;
out vec4 frag_color;
void main() {
    frag_color = vec4(texture(u_image, v_uv).rgb, 1.0);
}
