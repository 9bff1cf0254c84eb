// Checks, with Hugging Face's GGUF reader (npm @huggingface/gguf), that two
// GGUF files hold the same tensors (names, ggml types, dims; in any order)
// and the same metadata (every key of the first, with its type and value,
// in the second; general.alignment may differ, as a writer chooses it).
//
// Usage: PSTORE_NPM_PREFIX=DIR node gguf_same.mjs FIRST.gguf SECOND.gguf
// Exits 0 if they match, 1 (saying what differs) if not.

import assert from "node:assert/strict";
import { createRequire } from "node:module";

const prefix = process.env.PSTORE_NPM_PREFIX;
const [first, second] = process.argv.slice(2);
if (!prefix || !first || !second) {
  console.error("usage: PSTORE_NPM_PREFIX=DIR node gguf_same.mjs FIRST SECOND");
  process.exit(2);
}
const require = createRequire(`${prefix}/`);
const { gguf } = require("@huggingface/gguf");

async function read(path) {
  const { typedMetadata, tensorInfos } = await gguf(path, {
    allowLocalFile: true,
    typedMetadata: true,
  });
  const tensors = new Map();
  for (const info of tensorInfos) {
    tensors.set(info.name, { type: info.dtype, dims: info.shape.map(Number) });
  }
  return { metadata: typedMetadata, tensors };
}

try {
  const a = await read(first);
  const b = await read(second);
  assert.deepEqual([...b.tensors.keys()].sort(), [...a.tensors.keys()].sort(), "tensor names");
  for (const [name, tensor] of a.tensors) {
    assert.deepEqual(b.tensors.get(name), tensor, `tensor ${name}`);
  }
  let keys = 0;
  for (const [key, entry] of Object.entries(a.metadata)) {
    if (["version", "tensor_count", "kv_count", "general.alignment"].includes(key)) continue;
    assert.ok(key in b.metadata, `metadata ${key} is missing`);
    assert.deepEqual(b.metadata[key], entry, `metadata ${key}`);
    ++keys;
  }
  console.log(`same: ${a.tensors.size} tensors, ${keys} metadata keys`);
} catch (error) {
  console.error(`differ: ${error.message}`);
  process.exit(1);
}
