// POST /v1/embeddings through the official OpenAI Node client against a running `clipkit serve`:
// texts and an image data URL, with the client's default encoding (it asks for base64 and decodes),
// "float" and "base64", each compared with `clipkit embed`'s rows; and errors as the client sees them.
//   node openai_test.mjs BASE_URL API_KEY TEXTS_NPY IMAGE_NPY IMAGE_FILE TEXT...
import fs from "node:fs";
import assert from "node:assert/strict";
import OpenAI from "openai";

const [baseURL, apiKey, textsNpy, imageNpy, imageFile, ...texts] = process.argv.slice(2);

// A float32 [N, D] .npy (format 1.0/2.0, little-endian, C order).
function readNpy(path) {
  const b = fs.readFileSync(path);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  const header = b.subarray(major === 1 ? 10 : 12, start).toString("latin1");
  assert.match(header, /'descr': '<f4'/);
  const [n, d] = header.match(/'shape': \((\d+), (\d+)\)/).slice(1).map(Number);
  const data = new Float32Array(b.buffer.slice(b.byteOffset + start, b.byteOffset + start + n * d * 4));
  return Array.from({ length: n }, (_, i) => data.subarray(i * d, (i + 1) * d));
}

const refs = [...readNpy(textsNpy), ...readNpy(imageNpy)];
assert.equal(refs.length, texts.length + 1);
const dataUrl = "data:image/jpeg;base64," + fs.readFileSync(imageFile).toString("base64");
const input = [...texts, dataUrl];

function compare(what, got, want) {
  assert.equal(got.length, want.length, `${what}: ${got.length} values, want ${want.length}`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert.ok(worst <= 1e-5, `${what}: max abs diff ${worst} vs clipkit embed`);
  return worst;
}

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
let checked = 0;
for (const encoding_format of [undefined, "float", "base64"]) {
  const r = await client.embeddings.create({ model: "tiny-clip", input, ...(encoding_format ? { encoding_format } : {}) });
  assert.equal(r.object, "list");
  assert.equal(r.model, "tiny-clip");
  assert.equal(r.data.length, input.length);
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens, JSON.stringify(r.usage));
  for (const [i, e] of r.data.entries()) {
    assert.equal(e.object, "embedding");
    assert.equal(e.index, i);
    let v = e.embedding;
    if (encoding_format === "base64") {
      assert.equal(typeof v, "string");
      const buf = Buffer.from(v, "base64");
      v = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    }
    const worst = compare(`${encoding_format ?? "default"} input ${i}`, v, refs[i]);
    console.log(`${encoding_format ?? "default (base64 decoded by the client)"} input ${i}: max abs diff ${worst.toExponential(2)}`);
    checked++;
  }
}
// one string in, one embedding out
const one = await client.embeddings.create({ model: "tiny-clip", input: texts[0] });
assert.equal(one.data.length, 1);
compare("single string", one.data[0].embedding, refs[0]);

// errors arrive as the client's typed errors with OpenAI's error fields
async function expectError(args, Type, status, param, says, c = client) {
  try {
    await c.embeddings.create(args);
  } catch (e) {
    assert.ok(e instanceof Type, `${JSON.stringify(args).slice(0, 80)}: ${e.constructor.name}, want ${Type.name}`);
    assert.equal(e.status, status);
    assert.equal(e.param ?? null, param);
    assert.ok(e.message.includes(says), e.message);
    assert.equal(e.type, status === 401 ? "authentication_error" : "invalid_request_error");
    return;
  }
  assert.fail(`${JSON.stringify(args).slice(0, 80)} succeeded`);
}
await expectError({ model: "m", input: [1, 2, 3] }, OpenAI.BadRequestError, 400, "input", "list of strings");
await expectError({ model: "m", input: [] }, OpenAI.BadRequestError, 400, "input", "empty");
await expectError({ model: "m", input: "x", encoding_format: "int8" }, OpenAI.BadRequestError, 400, "encoding_format", "base64");
await expectError({ model: "m", input: "data:image/png;base64,aGVsbG8=" }, OpenAI.BadRequestError, 400, "input", "cannot read the image");
await expectError({ model: "m", input: "x" }, OpenAI.AuthenticationError, 401, null, "API key",
                  new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 }));
console.log(`OK: ${checked} embeddings through the OpenAI client match clipkit embed; errors typed`);
