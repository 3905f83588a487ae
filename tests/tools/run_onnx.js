// Runs an ONNX model in ONNX Runtime for Node.js (the npm registry's onnxruntime-node, CPU execution
// provider, all graph optimisations on), for latentkit's tests (scripts/bench_onnx.js times models).
//
//   node run_onnx.js MODEL.onnx REQUEST.json
//
// REQUEST.json: {"inputs": {"z": {"type": "float32", "dims": [4, 64], "file": "z.bin"}, ...},
//                "outputs": {"img": "img.bin"}}
// Input files and the output files written hold raw little-endian float32 (or int64) values. Prints one
// JSON line: {"dims": {"img": [...]}}. Exits 1 with a one-line message on any error.
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
    const [modelPath, requestPath] = process.argv.slice(2);
    if (!modelPath || !requestPath) throw new Error('usage: node run_onnx.js MODEL.onnx REQUEST.json');
    let ort;
    try {
        ort = require('onnxruntime-node');
    } catch (e) {
        throw new Error('onnxruntime-node is not installed: run `npm ci --ignore-scripts` in the source tree (scripts/setup.sh does)');
    }
    const request = JSON.parse(fs.readFileSync(requestPath, 'utf8'));
    const base = path.dirname(requestPath);
    const feeds = {};
    for (const [name, spec] of Object.entries(request.inputs || {})) {
        const bytes = fs.readFileSync(path.resolve(base, spec.file));
        const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
        const data = spec.type === 'int64' ? new BigInt64Array(buffer) : new Float32Array(buffer);
        feeds[name] = new ort.Tensor(spec.type || 'float32', data, spec.dims);
    }
    const session = await ort.InferenceSession.create(modelPath, {graphOptimizationLevel: 'all', executionProviders: ['cpu']});
    const results = await session.run(feeds);
    const dims = {};
    for (const [name, file] of Object.entries(request.outputs || {})) {
        const tensor = results[name];
        if (!tensor) throw new Error(`${modelPath}: the model has no output '${name}'`);
        fs.writeFileSync(path.resolve(base, file), Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
        dims[name] = tensor.dims;
    }
    process.stdout.write(JSON.stringify({dims}) + '\n');
}

main().catch((e) => {
    process.stderr.write(`run_onnx: ${String(e.message || e).split('\n')[0]}\n`);
    process.exit(1);
});
