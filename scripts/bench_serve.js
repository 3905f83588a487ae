// Served images per second: CLIENTS clients ask `latentkit serve` at URL for new seeds (PNG) as fast as
// it answers, for SECONDS; prints one JSON line. Each client waits for its answer before asking again.
//
//   node scripts/bench_serve.js URL CLIENTS SECONDS [psi]
'use strict';
const http = require('http');

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    }).on('error', reject);
  });
}

async function main() {
  const [base, clientsText, secondsText, psi = '0.7'] = process.argv.slice(2);
  const clients = Number(clientsText), seconds = Number(secondsText);
  if (!base || !(clients > 0) || !(seconds > 0)) throw new Error('usage: node bench_serve.js URL CLIENTS SECONDS [psi]');
  await get(`${base}/api/render?seed=0&psi=${psi}`);  // loads the model
  const end = Date.now() + seconds * 1000;
  let images = 0, bytes = 0;
  const latencies = [];
  await Promise.all(Array.from({length: clients}, async (_, c) => {
    for (let i = 0; Date.now() < end; i++) {
      const t0 = process.hrtime.bigint();
      const body = await get(`${base}/api/render?seed=${c * 100000 + i}&psi=${psi}`);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      images++;
      bytes += body.length;
    }
  }));
  latencies.sort((a, b) => a - b);
  console.log(JSON.stringify({clients, seconds, images, images_per_s: images / seconds, median_ms: latencies[latencies.length >> 1],
                              kib_per_image: bytes / images / 1024}));
}

main().catch((e) => { console.error(String(e.message || e)); process.exit(1); });
