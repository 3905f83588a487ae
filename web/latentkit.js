// latentkit's page: one front end for two back ends. Served by `latentkit serve`, it asks the server's
// API for images; exported by `latentkit export --format web`, it runs the model in the browser with
// ONNX Runtime Web (WebGPU where the browser has it, else WASM). latentkit-page.json says which.
'use strict';

// numpy.random.RandomState(seed).randn(n) (MT19937, 53-bit doubles, the polar Gaussian): seed N gives
// the z that NVIDIA's scripts and latentkit give.
class NumpyRandomState {
  constructor(seed) {
    this.mt = new Uint32Array(624);
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = this.mt[i - 1] ^ (this.mt[i - 1] >>> 30);
      this.mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.pos = 624;
    this.gauss = null;
  }
  nextU32() {
    const mt = this.mt;
    if (this.pos >= 624) {
      for (let i = 0; i < 624; i++) {
        const y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7fffffff);
        mt[i] = mt[(i + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.pos = 0;
    }
    let y = mt[this.pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
  nextDouble() {
    const a = this.nextU32() >>> 5, b = this.nextU32() >>> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }
  nextGauss() {
    if (this.gauss !== null) {
      const g = this.gauss;
      this.gauss = null;
      return g;
    }
    let x1, x2, r2;
    do {
      x1 = 2.0 * this.nextDouble() - 1.0;
      x2 = 2.0 * this.nextDouble() - 1.0;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 === 0.0);
    const f = Math.sqrt(-2.0 * Math.log(r2) / r2);
    this.gauss = f * x1;
    return f * x2;
  }
}

function seedZ(seed, zDim) {
  const rs = new NumpyRandomState(seed);
  const z = new Float32Array(zDim);
  for (let i = 0; i < zDim; i++) z[i] = rs.nextGauss();
  return z;
}

// The four seeds around a point and their bilinear weights (seed = x + 100 y), as the viewer.
function blendSeeds(x, y) {
  const x0 = Math.floor(x), y0 = Math.floor(y), fx = x - x0, fy = y - y0, out = [];
  for (const [dx, dy, w] of [[0, 0, (1 - fx) * (1 - fy)], [1, 0, fx * (1 - fy)], [0, 1, (1 - fx) * fy], [1, 1, fx * fy]]) {
    if (w > 0) out.push([((x0 + dx) + (y0 + dy) * 100) >>> 0, w]);
  }
  return out;
}

// The page's state, read from and written to the URL: seed (or x and y), psi, d.NAME=strength.
class State {
  constructor(params) {
    this.x = Number(params.get('x') ?? params.get('seed') ?? 0) || 0;
    this.y = Number(params.get('y') ?? 0) || 0;
    this.psi = params.has('psi') ? Number(params.get('psi')) : 1;
    this.cutoff = params.has('cutoff') ? Math.floor(Number(params.get('cutoff'))) : -1;
    this.noise = params.get('noise') || 'const';
    this.mix = params.has('mix') ? Math.floor(Number(params.get('mix'))) : -1;
    this.mixLayers = params.get('mix_layers') || '0-3';
    this.model = params.get('model') || '';
    this.directionFile = params.get('dfile') || '';
    this.strengths = {};
    for (const [k, v] of params) if (k.startsWith('d.')) this.strengths[k.slice(2)] = Number(v) || 0;
    this.token = params.get('token') || '';
  }
  isSeed() { return Number.isInteger(this.x) && this.y === 0; }
  // cutoff, noise and style mixing, as /api/render and the URL name them (defaults left out).
  renderParams(p) {
    if (this.cutoff >= 0) p.set('cutoff', String(this.cutoff));
    if (this.noise !== 'const') p.set('noise', this.noise);
    if (this.mix >= 0) { p.set('mix', String(this.mix)); p.set('mix_layers', this.mixLayers); }
  }
  toURL() {
    const p = new URLSearchParams();
    if (this.isSeed()) p.set('seed', String(this.x));
    else { p.set('x', this.x.toFixed(3)); p.set('y', this.y.toFixed(3)); }
    p.set('psi', String(this.psi));
    this.renderParams(p);
    if (this.model) p.set('model', this.model);
    if (this.directionFile) p.set('dfile', this.directionFile);
    for (const [k, v] of Object.entries(this.strengths)) if (v !== 0) p.set('d.' + k, String(v));
    if (this.token) p.set('token', this.token);
    return '?' + p.toString();
  }
}

// Images from `latentkit serve`.
class ServerBackend {
  constructor(state) {
    this.state = state;
    this.client = 'page-' + Math.random().toString(36).slice(2);
  }
  headers() { return this.state.token ? {Authorization: 'Bearer ' + this.state.token} : {}; }
  async json(path, options = {}) {
    const r = await fetch(path, {...options, headers: this.headers()});
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }
  async init() {
    const q = this.state.model ? '?model=' + encodeURIComponent(this.state.model) : '';
    const info = await this.json('api/models' + q);
    this.info = info;
    return {name: 'server', resolution: info.summary.resolution, models: info.models, model: info.model, directionFiles: info.directions};
  }
  async directions(file) {
    if (!file) return [];
    return (await this.json('api/directions?file=' + encodeURIComponent(file))).directions;
  }
  // The image of the state, or null when a newer request replaced this one.
  async render(state) {
    const p = new URLSearchParams();
    if (state.isSeed()) p.set('seed', String(state.x));
    else { p.set('x', String(state.x)); p.set('y', String(state.y)); }
    p.set('psi', String(state.psi));
    state.renderParams(p);
    if (state.model) p.set('model', state.model);
    for (const [name, v] of Object.entries(state.strengths)) if (v !== 0) p.append('dir', `${state.directionFile}#${name}@${v}`);
    p.set('client', this.client);
    const t0 = performance.now();
    const r = await fetch('api/render?' + p.toString(), {headers: this.headers()});
    if (r.status === 409) return null;
    if (!r.ok) throw new Error((await r.json()).error);
    const bitmap = await createImageBitmap(await r.blob());
    return {bitmap, ms: performance.now() - t0};
  }
}

// The exported model, run in the browser: mapping.onnx then synthesis.onnx.
class OnnxBackend {
  constructor(config) { this.config = config; }
  async init() {
    const c = this.config;
    await new Promise((resolve, reject) => {  // ONNX Runtime Web, copied beside the page by the export
      const s = document.createElement('script');
      s.src = 'ort.min.js';
      s.onload = resolve;
      s.onerror = () => reject(new Error('ort.min.js (ONNX Runtime Web) did not load'));
      document.head.appendChild(s);
    });
    ort.env.wasm.wasmPaths = new URL('./', document.baseURI).href;
    const tryCreate = async (providers) => [await ort.InferenceSession.create(c.mapping, {executionProviders: providers}),
                                            await ort.InferenceSession.create(c.synthesis, {executionProviders: providers})];
    this.backend = 'wasm';
    if (navigator.gpu && !new URLSearchParams(location.search).has('wasm')) {
      try {
        [this.mapping, this.synthesis] = await tryCreate(['webgpu']);
        this.backend = 'webgpu';
      } catch (e) { /* no usable adapter: WASM below */ }
    }
    if (this.backend === 'wasm') [this.mapping, this.synthesis] = await tryCreate(['wasm']);
    const list = await fetch(c.directions || 'data:application/json,[]').then((r) => r.json()).catch(() => []);
    this.directionList = list;
    return {name: 'onnx', resolution: c.resolution, models: [], model: c.title, directionFiles: list.length ? ['directions.json'] : []};
  }
  async directions() { return this.directionList; }
  async ws(seeds, psi) {
    const c = this.config, n = seeds.length;
    const z = new Float32Array(n * c.z_dim);
    seeds.forEach((s, k) => z.set(seedZ(s, c.z_dim), k * c.z_dim));
    const feeds = {z: new ort.Tensor('float32', z, [n, c.z_dim]), psi: new ort.Tensor('float32', new Float32Array([psi]), [1]),
                   truncation_cutoff: new ort.Tensor('int64', new BigInt64Array([BigInt(this.cutoff >= 0 ? this.cutoff : c.num_ws)]), [1])};
    if (c.c_dim > 0) {
      const onehot = new Float32Array(n * c.c_dim);
      for (let k = 0; k < n; k++) onehot[k * c.c_dim] = 1;
      feeds.c = new ort.Tensor('float32', onehot, [n, c.c_dim]);
    }
    return (await this.mapping.run(feeds)).ws.data;
  }
  async render(state) {
    const c = this.config, size = c.num_ws * c.w_dim, t0 = performance.now();
    this.cutoff = state.cutoff;
    const parts = blendSeeds(state.x, state.y);
    const all = await this.ws(parts.map((p) => p[0]), state.psi);
    const ws = new Float32Array(size);
    parts.forEach(([, w], k) => { for (let i = 0; i < size; i++) ws[i] += w * all[k * size + i]; });
    for (const d of this.directionList) {
      const s = state.strengths[d.name] || 0;
      if (s === 0) continue;
      const [first, last] = d.layers || [0, c.num_ws - 1];
      for (let l = first; l <= Math.min(last, c.num_ws - 1); l++)
        for (let i = 0; i < c.w_dim; i++) ws[l * c.w_dim + i] += s * d.scale * d.vector[i];
    }
    const feeds = {ws: new ort.Tensor('float32', ws, [1, c.num_ws, c.w_dim])};
    if (c.transform) feeds.transform = new ort.Tensor('float32', Float32Array.from(c.transform), [3, 3]);
    const img = (await this.synthesis.run(feeds)).img.data;
    return {imageData: toImageData(img, c.img_channels, c.resolution), ms: performance.now() - t0};
  }
}

// NCHW floats in about [-1, 1] -> RGBA pixels, as latentkit writes PNGs: x * 127.5 + 128, clamped, truncated.
function toImageData(img, channels, r) {
  const out = new ImageData(r, r), plane = r * r;
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < 3; ch++) {
      const v = img[(channels === 1 ? 0 : ch) * plane + p] * 127.5 + 128;
      out.data[p * 4 + ch] = Math.min(255, Math.max(0, Math.floor(v)));
    }
    out.data[p * 4 + 3] = 255;
  }
  return out;
}

// The page: widgets edit the state; the newest state is drawn, older ones are dropped.
class Page {
  constructor(backend, state) {
    this.backend = backend;
    this.state = state;
    this.canvas = document.getElementById('image');
    this.busy = false;
    this.again = false;
    this.frames = 0;
  }
  $(id) { return document.getElementById(id); }
  async start() {
    const info = await this.backend.init();
    this.info = info;
    this.canvas.width = this.canvas.height = info.resolution;
    document.body.dataset.backend = info.name;
    if (info.name !== 'server') for (const e of document.querySelectorAll('.server-only')) e.classList.add('hidden');
    this.fillSelect('model', info.models, info.model);
    if (!this.state.directionFile && info.directionFiles.length) this.state.directionFile = info.directionFiles[0];
    this.fillSelect('direction-file', info.directionFiles, this.state.directionFile);
    await this.loadDirections();
    this.bind();
    this.request();
  }
  fillSelect(id, names, current) {
    const s = this.$(id);
    s.innerHTML = '';
    for (const n of names) s.add(new Option(n, n, false, n === current));
  }
  async loadDirections() {
    const box = this.$('sliders');
    box.innerHTML = '';
    this.directionList = await this.backend.directions(this.state.directionFile);
    this.$('directions-box').classList.toggle('hidden', this.directionList.length === 0);
    for (const d of this.directionList) {
      const label = document.createElement('label');
      const v = this.state.strengths[d.name] || 0;
      label.innerHTML = `<span></span> <input type="range" step="0.05"> <span class="value"></span>`;
      label.children[0].textContent = d.name;
      Object.assign(label.children[1], {min: d.min, max: d.max, value: v, name: d.name});
      label.children[1].dataset.direction = d.name;
      label.children[2].textContent = v;
      label.children[1].addEventListener('input', (e) => {
        this.state.strengths[d.name] = Number(e.target.value);
        label.children[2].textContent = e.target.value;
        this.request();
      });
      box.appendChild(label);
    }
  }
  bind() {
    const seed = this.$('seed'), psi = this.$('psi');
    seed.value = Math.round(this.state.x);
    psi.value = this.state.psi;
    this.$('psi-value').textContent = this.state.psi;
    seed.addEventListener('input', () => { this.state.x = Math.max(0, Math.floor(Number(seed.value) || 0)); this.state.y = 0; this.request(); });
    psi.addEventListener('input', () => { this.state.psi = Number(psi.value); this.$('psi-value').textContent = psi.value; this.request(); });
    this.bindSettings();
    this.$('random').addEventListener('click', () => { this.state.x = Math.floor(Math.random() * 2 ** 31); this.state.y = 0; seed.value = this.state.x; this.request(); });
    this.$('play').addEventListener('click', () => this.togglePlay());
    this.$('model').addEventListener('change', (e) => { this.state.model = e.target.value; location.search = this.state.toURL(); });
    this.$('direction-file').addEventListener('change', async (e) => {
      this.state.directionFile = e.target.value;
      this.state.strengths = {};
      await this.loadDirections();
      this.request();
    });
    this.bindDrag();
    if (this.backend instanceof ServerBackend) new Jobs(this.backend, this).bind();
  }
  // cutoff, noise and style mixing.
  bindSettings() {
    const st = this.state, cutoff = this.$('cutoff'), noise = this.$('noise'), mix = this.$('mix'), layers = this.$('mix-layers');
    cutoff.value = st.cutoff;
    noise.value = st.noise;
    mix.value = st.mix;
    layers.value = st.mixLayers;
    cutoff.addEventListener('input', () => { st.cutoff = Math.floor(Number(cutoff.value)); if (!(st.cutoff >= 0)) st.cutoff = -1; this.request(); });
    noise.addEventListener('change', () => { st.noise = noise.value; this.request(); });
    mix.addEventListener('input', () => { st.mix = Math.floor(Number(mix.value)); if (!(st.mix >= 0)) st.mix = -1; this.request(); });
    layers.addEventListener('change', () => { st.mixLayers = layers.value; this.request(); });
  }
  bindDrag() {
    let last = null;
    this.canvas.addEventListener('pointerdown', (e) => { last = [e.clientX, e.clientY]; this.canvas.setPointerCapture(e.pointerId); });
    this.canvas.addEventListener('pointerup', () => { last = null; });
    this.canvas.addEventListener('pointermove', (e) => {
      if (!last) return;
      this.state.x = Math.max(0, this.state.x + (e.clientX - last[0]) / 100);
      this.state.y = Math.max(0, this.state.y + (e.clientY - last[1]) / 100);
      last = [e.clientX, e.clientY];
      this.$('seed').value = Math.round(this.state.x);
      this.request();
    });
  }
  togglePlay() {
    if (this.playing) { this.playing = false; return; }
    this.playing = true;
    const from = Math.floor(this.state.x), t0 = performance.now();
    const step = () => {
      if (!this.playing) return;
      const t = ((performance.now() - t0) / 2000) % 4;  // four seeds, two seconds each, then back to the first
      this.state.x = t < 3 ? from + t : from + 3 * (4 - t);
      this.state.y = 0;
      this.request();
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }
  // Draws the newest state; while one render runs, only the latest request waits.
  async request() {
    history.replaceState(null, '', this.state.toURL());
    if (this.busy) { this.again = true; return; }
    this.busy = true;
    try {
      do {
        this.again = false;
        const out = await this.backend.render(this.state);
        if (!out) continue;
        const ctx = this.canvas.getContext('2d');
        if (out.bitmap) ctx.drawImage(out.bitmap, 0, 0);
        else ctx.putImageData(out.imageData, 0, 0);
        this.frames++;
        document.body.dataset.frames = String(this.frames);
        this.$('status').textContent = `${this.info.name === 'server' ? 'server' : this.backend.backend}: ${out.ms.toFixed(1)} ms per image`;
        this.$('error').textContent = '';
      } while (this.again);
    } catch (e) {
      this.$('error').textContent = e.message;
    } finally {
      this.busy = false;
    }
  }
}

// The server's projection and morph export.
class Jobs {
  constructor(backend, page) { this.backend = backend; this.page = page; }
  $(id) { return document.getElementById(id); }
  bind() {
    this.$('project').addEventListener('click', () => this.project().catch((e) => { this.$('project-status').textContent = e.message; }));
    this.$('cancel-project').addEventListener('click', () => this.backend.json('api/project/cancel', {method: 'POST'}));
    this.$('morph').addEventListener('click', () => this.morph().catch((e) => { this.$('morph-status').textContent = e.message; }));
    for (const kind of ['pca', 'sefa'])
      this.$('compute-' + kind).addEventListener('click', () => this.compute(kind).catch((e) => { this.$('error').textContent = e.message; }));
  }
  // New directions from the model (PCA or closed-form), offered as a new direction file.
  async compute(kind) {
    const q = new URLSearchParams({kind, components: '8'});
    if (this.page.state.model) q.set('model', this.page.state.model);
    this.$('status').textContent = `computing ${kind} directions...`;
    const r = await this.backend.json('api/directions/compute?' + q, {method: 'POST', body: ''});
    const info = await this.backend.json('api/models' + (this.page.state.model ? '?model=' + encodeURIComponent(this.page.state.model) : ''));
    this.page.fillSelect('direction-file', info.directions, r.file);
    this.page.state.directionFile = r.file;
    this.page.state.strengths = {};
    await this.page.loadDirections();
    this.page.request();
  }
  withToken(path) { return this.page.state.token ? `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(this.page.state.token)}` : path; }
  async project() {
    const file = this.$('photo').files[0];
    if (!file) throw new Error('choose a photo first');
    const form = new FormData();
    form.append('photo', file);
    const q = new URLSearchParams({steps: this.$('steps').value});
    if (this.page.state.model) q.set('model', this.page.state.model);
    await this.backend.json('api/project?' + q, {method: 'POST', body: form});
    this.$('project-latent').classList.add('hidden');
    let version = -1;
    for (;;) {
      const s = await this.backend.json('api/project');
      this.$('project-status').textContent = s.error || `step ${s.step} of ${s.steps}, loss ${s.loss.toFixed(4)}${s.done ? ' (done)' : ''}`;
      document.body.dataset.projectStep = String(s.step);
      if (s.version !== version) {
        version = s.version;
        this.$('project-target').src = this.withToken(`api/project/image?which=target&v=${version}`);
        if (s.step > 0) this.$('project-current').src = this.withToken(`api/project/image?which=current&v=${version}`);
      }
      if (!s.running) {
        if (s.done) { this.$('project-latent').href = this.withToken('api/project/latent'); this.$('project-latent').classList.remove('hidden'); }
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  async morph() {
    const q = new URLSearchParams({seeds: this.$('morph-seeds').value, frames: this.$('morph-frames').value, psi: String(this.page.state.psi)});
    if (this.page.state.model) q.set('model', this.page.state.model);
    await this.backend.json('api/morph?' + q, {method: 'POST', body: ''});
    this.$('morph-video').classList.add('hidden');
    for (;;) {
      const s = await this.backend.json('api/morph');
      this.$('morph-status').textContent = s.error || `frame ${s.frame} of ${s.frames}${s.done ? ' (done)' : ''}`;
      if (!s.running) {
        if (s.done) { this.$('morph-video').href = this.withToken('api/morph/video'); this.$('morph-video').classList.remove('hidden'); }
        return;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

async function main() {
  const state = new State(new URLSearchParams(location.search));
  const config = await fetch('latentkit-page.json').then((r) => r.json());
  if (config.title) document.title = document.getElementById('title').textContent = config.title;
  const backend = config.mode === 'onnx' ? new OnnxBackend(config) : new ServerBackend(state);
  window.latentkitPage = new Page(backend, state);
  try {
    await window.latentkitPage.start();
    document.body.dataset.ready = '1';
  } catch (e) {
    document.getElementById('error').textContent = e.message;
    document.body.dataset.ready = 'error';
  }
}

if (typeof document !== 'undefined') main();
if (typeof module !== 'undefined') module.exports = {NumpyRandomState, seedZ, blendSeeds};
