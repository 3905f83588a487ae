#version 330 core
// A textured rectangle: corners from gl_VertexID, placed by scale and offset in normalised device coordinates.
uniform vec2 u_scale;
uniform vec2 u_offset;
out vec2 v_uv;
void main() {
    vec2 corner = vec2(float(gl_VertexID & 1), float((gl_VertexID >> 1) & 1));
    v_uv = vec2(corner.x, 1.0 - corner.y);
    gl_Position = vec4((corner * 2.0 - 1.0) * u_scale + u_offset, 0.0, 1.0);
}
