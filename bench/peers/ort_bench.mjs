#!/usr/bin/env node
// Times ONNX Runtime (onnxruntime-node, CPU) on a CLIP tower exported by export_onnx.py; prints
// one JSON object.
//
//   node ort_bench.mjs MODEL.onnx [--part vision|text] [--batch-size 32] [--image-size 224]
//                      [--seq-len 20] [--threads 2] [--warmup 2] [--iters 3] [--precision fp32]
//   node ort_bench.mjs MODEL.onnx --part vision|text --check REFERENCE.safetensors
// (--precision only labels the result: int8 for a model made by quantize_onnx.py)
//
// Inputs are the same as torch_bench.py's: random pixel values, or synthetic captions of
// seq-len-8..seq-len tokens padded to the longest of the batch (clip_config.bench_captions; the
// token values differ, which changes no timing). --check instead runs the reference's stored
// inputs and compares the embeddings with its float64 `image_embeds` / `text_embeds` (tiny-clip:
// max abs error <= 3e-6).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import process from 'node:process';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');
const ortVersion = require('onnxruntime-node/package.json').version;

function parseArgs(argv) {
  const opts = { part: 'vision', precision: 'fp32', batchSize: 32, imageSize: 224, seqLen: 20, threads: 2, warmup: 2, iters: 3 };
  const names = {
    '--part': 'part', '--batch-size': 'batchSize', '--image-size': 'imageSize', '--seq-len': 'seqLen', '--threads': 'threads',
    '--warmup': 'warmup', '--iters': 'iters', '--check': 'check', '--precision': 'precision',
  };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const key = names[argv[i]];
    if (!key) { rest.push(argv[i]); continue; }
    if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
    const v = argv[++i];
    opts[key] = ['part', 'check', 'precision'].includes(key) ? v : Number.parseInt(v, 10);
    if (typeof opts[key] === 'number' && !(opts[key] >= 0)) throw new Error(`${argv[i - 1]}: bad number ${v}`);
  }
  if (rest.length !== 1 || rest[0].startsWith('--')) {
    throw new Error('usage: node ort_bench.mjs MODEL.onnx [--part vision|text] [--batch-size N] ...');
  }
  if (!['vision', 'text'].includes(opts.part)) throw new Error(`--part: ${opts.part} is not vision or text`);
  opts.model = rest[0];
  return opts;
}

// Deterministic pseudo-random numbers (the values do not matter for timing).
function lcg(seed) {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296; };
}

function benchCaptions(n, maxLen, eos = 49407n, bos = 49406n) {
  const lengths = Array.from({ length: n }, (_, i) => Math.max(3, maxLen - (i % 9)));
  const L = Math.max(...lengths);
  const ids = new BigInt64Array(n * L).fill(eos);
  const mask = new BigInt64Array(n * L);
  const rnd = lcg(0);
  lengths.forEach((len, r) => {
    ids[r * L] = bos;
    for (let j = 1; j < len - 1; j++) ids[r * L + j] = BigInt(256 + Math.floor(rnd() * 49000));
    for (let j = 0; j < len; j++) mask[r * L + j] = 1n;
  });
  return {
    input_ids: new ort.Tensor('int64', ids, [n, L]),
    attention_mask: new ort.Tensor('int64', mask, [n, L]),
    seqLen: L,
  };
}

function randomPixels(n, size) {
  const data = new Float32Array(n * 3 * size * size);
  const rnd = lcg(1);
  for (let i = 0; i < data.length; i++) data[i] = 2 * rnd() - 1;
  return { pixel_values: new ort.Tensor('float32', data, [n, 3, size, size]) };
}

// Minimal safetensors reader: { name: { dtype, shape, data (typed array) } }.
function readSafetensors(path) {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  const base = 8 + headerLen;
  const types = { F32: Float32Array, F64: Float64Array, I64: BigInt64Array, I32: Int32Array };
  const out = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__' || !types[info.dtype]) continue;
    const [b, e] = info.data_offsets;
    const bytes = buf.subarray(base + b, base + e);
    const copy = new Uint8Array(bytes); // aligned copy
    out[name] = { dtype: info.dtype, shape: info.shape, data: new types[info.dtype](copy.buffer) };
  }
  return out;
}

async function check(session, opts) {
  const ref = readSafetensors(opts.check);
  let feeds, want;
  if (opts.part === 'vision') {
    const p = ref.pixel_values;
    feeds = { pixel_values: new ort.Tensor('float32', p.data, p.shape) };
    want = ref.image_embeds;
  } else {
    feeds = {
      input_ids: new ort.Tensor('int64', ref.input_ids.data, ref.input_ids.shape),
      attention_mask: new ort.Tensor('int64', ref.attention_mask.data, ref.attention_mask.shape),
    };
    want = ref.text_embeds;
  }
  const out = Object.values(await session.run(feeds))[0];
  let maxErr = 0;
  for (let i = 0; i < want.data.length; i++) maxErr = Math.max(maxErr, Math.abs(out.data[i] - want.data[i]));
  const ok = out.data.length === want.data.length && maxErr <= 3e-6;
  console.log(JSON.stringify({ engine: 'onnxruntime', part: opts.part, check: opts.check, max_abs_err: maxErr, ok }));
  return ok ? 0 : 1;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(opts.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  if (opts.check) return check(session, opts);

  const n = opts.batchSize;
  const feeds = opts.part === 'vision' ? randomPixels(n, opts.imageSize) : benchCaptions(n, opts.seqLen);
  const seqLen = feeds.seqLen;
  delete feeds.seqLen;
  let out;
  for (let i = 0; i < opts.warmup; i++) out = await session.run(feeds);
  const times = [];
  for (let i = 0; i < opts.iters; i++) {
    const t = process.hrtime.bigint();
    out = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  const emb = Object.values(out)[0];
  if (!emb.data.every(Number.isFinite)) throw new Error(`${opts.model}: non-finite embeddings`);
  const sorted = [...times].sort((a, b) => a - b);
  const med = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]
    : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  const res = {
    engine: 'onnxruntime', version: ortVersion, part: opts.part, precision: opts.precision, batch_size: n,
    threads: opts.threads, [opts.part === 'vision' ? 'images_per_s' : 'texts_per_s']: n / med,
    seconds_per_batch: times.map((x) => Math.round(x * 1e4) / 1e4), embed_dim: emb.dims[1],
  };
  if (seqLen !== undefined) res.seq_len = seqLen;
  console.log(JSON.stringify(res));
  return 0;
}

main().then((rc) => { process.exitCode = rc; }, (err) => {
  console.error(`ort_bench: ${err.message}`);
  process.exitCode = 1;
});
