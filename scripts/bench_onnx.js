// Times an exported generator (.onnx) in ONNX Runtime for Node.js (npm onnxruntime-node, CPU, all graph
// optimisations on), as `latentkit bench generate` times latentkit: median ms per image over --iters
// runs after --warmup. Inputs follow the model's declared inputs: z normal, c one-hot, psi 0.7, every
// ws truncated, the identity transform, normal noise.
//   node scripts/bench_onnx.js MODEL.onnx [--batch N] [--iters N] [--warmup N] [--threads N]
'use strict';
const path = require('path');

function options(argv) {
    const o = {batch: 1, iters: 20, warmup: 3, threads: 0, model: null};
    for (let k = 0; k < argv.length; ++k) {
        const a = argv[k];
        if (a.startsWith('--')) {
            const key = a.slice(2);
            if (!(key in o) || key === 'model') throw new Error(`unknown option ${a}`);
            o[key] = Number(argv[++k]);
            if (!Number.isInteger(o[key]) || o[key] < 0) throw new Error(`${a} needs a whole number`);
        } else {
            o.model = a;
        }
    }
    if (!o.model) throw new Error('usage: node scripts/bench_onnx.js MODEL.onnx [--batch N] [--iters N] [--warmup N] [--threads N]');
    return o;
}

function normal(n) {
    const out = new Float32Array(n);
    for (let k = 0; k < n; ++k) out[k] = Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
    return out;
}

function feeds(ort, session, batch) {
    const out = {};
    for (const meta of session.inputMetadata) {
        const dims = meta.shape.map((d) => (typeof d === 'number' ? d : batch));
        const size = dims.reduce((a, b) => a * b, 1);
        let data;
        if (meta.name === 'truncation_cutoff') data = new BigInt64Array([1000n]);
        else if (meta.name === 'psi') data = new Float32Array([0.7]);
        else if (meta.name === 'transform') data = new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1]);
        else if (meta.name === 'c') {
            data = new Float32Array(size);
            for (let k = 0; k < batch; ++k) data[k * dims[1] + (k % dims[1])] = 1;
        } else data = normal(size);
        out[meta.name] = new ort.Tensor(meta.type, data, dims);
    }
    return out;
}

async function main() {
    const o = options(process.argv.slice(2));
    const ort = require(path.join(__dirname, '..', 'node_modules', 'onnxruntime-node'));
    const session = await ort.InferenceSession.create(o.model, {
        graphOptimizationLevel: 'all', executionProviders: ['cpu'], ...(o.threads ? {intraOpNumThreads: o.threads} : {})});
    const input = feeds(ort, session, o.batch);
    for (let k = 0; k < o.warmup; ++k) await session.run(input);
    const times = [];
    for (let k = 0; k < Math.max(1, o.iters); ++k) {
        const t0 = process.hrtime.bigint();
        await session.run(input);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    console.log(`onnxruntime-node ${ort.env.versions.node}  batch ${o.batch}  iterations ${times.length} (+${o.warmup} warm-up)`);
    console.log(`batch time median ${median.toFixed(1)} ms  min ${times[0].toFixed(1)} ms  max ${times[times.length - 1].toFixed(1)} ms`);
    console.log(`per image  ${(median / o.batch).toFixed(2)} ms   ${(1000 * o.batch / median).toFixed(2)} images/s`);
}

main().catch((e) => {
    process.stderr.write(`bench_onnx: ${String(e.message || e).split('\n')[0]}\n`);
    process.exit(1);
});
