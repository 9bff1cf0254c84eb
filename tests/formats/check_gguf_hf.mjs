// Checks our GGUF writer and reader against Hugging Face's GGUF code, npm
// @huggingface/gguf, in both directions.
//
// Usage: PSTORE_NPM_PREFIX=DIR node check_gguf_hf.mjs TOOL OUT_DIR [FILE...]
//
// 1. Every OUT_DIR/NAME.gguf (written by `TOOL write OUT_DIR`, see
//    check_gguf_hf.cc) is parsed by gguf() (allowLocalFile, typedMetadata)
//    and must match NAME.expected.json: version, key order, every key's type
//    and value, tensor names, ggml types (by number and by the package's
//    GGMLQuantizationType name), dims, offsets and the data section offset.
//    Independently of our code it also checks what ggml demands: the data
//    section and every offset are multiples of general.alignment, tensors
//    are packed back to back in info order each padded to the alignment,
//    the file ends after the last tensor's padding, tensor bytes follow the
//    "fill" pattern and padding bytes are zero.
// 2. Files written by the package, serializeGgufMetadata (metadata of every
//    type, versions 2 and 3) and buildGgufHeader (new metadata spliced onto
//    our "mixed" file's tensor infos, as the Hub's metadata editor does), go
//    to `TOOL read FILE` (our GgufFile), whose JSON must match what the
//    package wrote, including every tensor's bytes.
// FILEs given after OUT_DIR (fixtures written by other tools) are parsed by
// both and must agree.
//
// Exits 0 if every check passes, 1 otherwise.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, join } from "node:path";

const prefix = process.env.PSTORE_NPM_PREFIX;
if (!prefix) {
  console.error("PSTORE_NPM_PREFIX is not set");
  process.exit(2);
}
const [tool, outDir, ...fixtures] = process.argv.slice(2);
if (!tool || !outDir) {
  console.error("usage: node check_gguf_hf.mjs TOOL OUT_DIR [FILE...]");
  process.exit(2);
}
const require = createRequire(`${prefix}/`);
const { gguf, serializeGgufMetadata, buildGgufHeader, GGUFValueType, GGMLQuantizationType } =
  require("@huggingface/gguf");
const ggufVersion = JSON.parse(
  readFileSync(`${prefix}/node_modules/@huggingface/gguf/package.json`, "utf8"),
).version;

// [elements per block, bytes per block] of the types our writer writes, from
// ggml-common.h, written out here rather than taken from our code.
const BLOCKS = { 0: [1, 4], 1: [1, 2], 2: [32, 18], 8: [32, 34], 30: [1, 2] };
const INTEGER_TYPES = new Set([0, 1, 2, 3, 4, 5, 10, 11]);
const FLOAT_TYPES = new Set([6, 12]);
const HEADER_KEYS = new Set(["version", "tensor_count", "kv_count"]);

function readRange(path, start, length) {
  const buffer = Buffer.alloc(length);
  const fd = openSync(path, "r");
  try {
    let done = 0;
    while (done < length) {
      const n = readSync(fd, buffer, done, length - done, start + done);
      if (n === 0) break;
      done += n;
    }
    return buffer.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

function fnv1a64(bytes) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, "0");
}

// Returns a metadata value as our tool prints it: integers as decimal
// strings, arrays element by element.
function normalize(value, type, subType) {
  if (type === GGUFValueType.ARRAY) return value.map((element) => normalize(element, subType));
  if (INTEGER_TYPES.has(type)) return String(value);
  if (FLOAT_TYPES.has(type)) return Number(value);
  return value;
}

function padTo(value, alignment) {
  return Math.ceil(value / alignment) * alignment;
}

// Returns the byte size of a tensor our writer may write.
function byteSize(dtype, shape) {
  const block = BLOCKS[dtype];
  assert.ok(block, `dtype ${dtype} is not one our writer writes`);
  const elements = shape.reduce((a, b) => a * Number(b), 1);
  assert.equal(Number(shape[0] ?? 1) % block[0], 0, "row not a multiple of the block");
  return (elements / block[0]) * block[1];
}

// Checks one file our writer wrote against its expected.json.
async function checkOurs(path) {
  const expected = JSON.parse(readFileSync(path.replace(/\.gguf$/, ".expected.json"), "utf8"));
  const parsed = await gguf(path, { allowLocalFile: true, typedMetadata: true });
  const { metadata, typedMetadata, tensorInfos, tensorDataOffset, littleEndian } = parsed;
  assert.equal(littleEndian, true);
  assert.equal(metadata.version, 3);
  assert.equal(metadata.tensor_count, BigInt(expected.tensors.length));
  assert.equal(metadata.kv_count, BigInt(expected.key_order.length));
  const keys = Object.keys(typedMetadata).filter((key) => !HEADER_KEYS.has(key));
  assert.deepEqual(keys, expected.key_order, "key order");
  for (const key of keys) {
    const { type, value } = typedMetadata[key];
    assert.equal(type, expected.metadata[key].type, `${key}: type`);
    assert.deepEqual(value, expected.metadata[key].value, `${key}: value`);
  }
  const alignment = Number(metadata["general.alignment"]);
  assert.equal(alignment, 32);
  assert.equal(Number(tensorDataOffset), expected.data_offset, "data section offset");
  assert.equal(Number(tensorDataOffset) % alignment, 0, "data section is not aligned");

  assert.equal(tensorInfos.length, expected.tensors.length);
  let packed = 0; // Where ggml expects the next tensor.
  for (const [i, info] of tensorInfos.entries()) {
    const want = expected.tensors[i];
    assert.equal(info.name, want.name);
    assert.equal(info.dtype, want.type, `${info.name}: type`);
    assert.equal(GGMLQuantizationType[info.dtype], want.type_name, `${info.name}: type name`);
    assert.equal(info.n_dims, want.dims.length, `${info.name}: n_dims`);
    assert.deepEqual(info.shape.map(String), want.dims, `${info.name}: dims`);
    assert.equal(String(info.offset), want.offset, `${info.name}: offset`);
    assert.equal(Number(info.offset), packed, `${info.name}: not packed as ggml requires`);
    assert.equal(Number(info.offset) % alignment, 0, `${info.name}: offset not aligned`);
    const size = byteSize(info.dtype, info.shape);
    const start = Number(tensorDataOffset) + Number(info.offset);
    const bytes = readRange(path, start, padTo(size, alignment));
    const seed = expected.fill[info.name];
    for (let k = 0; k < size; ++k) {
      if (bytes[k] !== (seed * 13 + k * 31) % 251) assert.fail(`${info.name}: byte ${k} is ${bytes[k]}`);
    }
    for (let k = size; k < bytes.length; ++k) {
      if (bytes[k] !== 0) assert.fail(`${info.name}: padding byte ${k} is ${bytes[k]}`);
    }
    packed += padTo(size, alignment);
  }
  const fileSize = statSync(path).size;
  assert.equal(fileSize, Number(tensorDataOffset) + packed, "file size");
  assert.equal(fileSize, expected.file_size, "file size");
  return `${tensorInfos.length} tensors, ${keys.length} keys, layout and bytes as expected`;
}

function readWithTool(path) {
  return JSON.parse(execFileSync(tool, ["read", path], { encoding: "utf8", maxBuffer: 1 << 28 }));
}

// Checks that our reader reads `path` as the package does.
async function checkSameAsPackage(path, options = {}) {
  const ours = readWithTool(path);
  const parsed = await gguf(path, { allowLocalFile: true, typedMetadata: true });
  const { metadata, typedMetadata, tensorInfos, tensorDataOffset } = parsed;
  assert.equal(ours.version, metadata.version);
  assert.equal(ours.data_offset, Number(tensorDataOffset), "data section offset");
  const keys = Object.keys(typedMetadata).filter((key) => !HEADER_KEYS.has(key));
  assert.deepEqual(
    ours.metadata.map((pair) => pair.key),
    keys,
    "keys",
  );
  for (const pair of ours.metadata) {
    const { type, subType, value } = typedMetadata[pair.key];
    assert.equal(pair.type, type, `${pair.key}: type`);
    if (type === GGUFValueType.ARRAY) assert.equal(pair.subType, subType, `${pair.key}: element type`);
    assert.deepEqual(pair.value, normalize(value, type, subType), `${pair.key}: value`);
  }
  assert.equal(ours.tensors.length, tensorInfos.length);
  for (const [i, info] of tensorInfos.entries()) {
    const mine = ours.tensors[i];
    assert.equal(mine.name, info.name);
    assert.equal(mine.type, info.dtype, `${info.name}: type`);
    assert.deepEqual(mine.dims, info.shape.map(String), `${info.name}: dims`);
    assert.equal(mine.offset, String(info.offset), `${info.name}: offset`);
    if (options.bytesFrom) {
      // The bytes must be those of the same tensor in the original file.
      const original = options.bytesFrom;
      const want = original.tensors.find((tensor) => tensor.name === info.name);
      assert.equal(mine.fnv1a64, want.fnv1a64, `${info.name}: bytes`);
    } else if (info.dtype in BLOCKS) {
      const size = byteSize(info.dtype, info.shape);
      const bytes = readRange(path, Number(tensorDataOffset) + Number(info.offset), size);
      assert.equal(mine.fnv1a64, fnv1a64(bytes), `${info.name}: bytes`);
    }
  }
  return `${tensorInfos.length} tensors, ${keys.length} keys read alike`;
}

// Metadata of every scalar type and arrays of several, as the package's
// typed metadata.
function everyType(version) {
  const T = GGUFValueType;
  const entries = {
    "general.name": { type: T.STRING, value: "written by @huggingface/gguf ✓" },
    "general.alignment": { type: T.UINT32, value: 32 },
    "test.u8": { type: T.UINT8, value: 255 },
    "test.i8": { type: T.INT8, value: -128 },
    "test.u16": { type: T.UINT16, value: 65535 },
    "test.i16": { type: T.INT16, value: -32768 },
    "test.u32": { type: T.UINT32, value: 4294967295 },
    "test.i32": { type: T.INT32, value: -2147483648 },
    "test.f32": { type: T.FLOAT32, value: 3.140000104904175 },
    "test.bool.true": { type: T.BOOL, value: true },
    "test.bool.false": { type: T.BOOL, value: false },
    "test.string": { type: T.STRING, value: "ünïcode 日本語\n\"quoted\"" },
    "test.empty_string": { type: T.STRING, value: "" },
    "test.u64": { type: T.UINT64, value: 18446744073709551615n },
    "test.i64": { type: T.INT64, value: -9223372036854775808n },
    "test.f64": { type: T.FLOAT64, value: -1.0000000000000002 },
    "tokenizer.ggml.tokens": { type: T.ARRAY, subType: T.STRING, value: ["<s>", "</s>", "▁the", "", "✓"] },
    "tokenizer.ggml.scores": { type: T.ARRAY, subType: T.FLOAT32, value: [0, -1.5, 2.25] },
    "tokenizer.ggml.token_type": { type: T.ARRAY, subType: T.INT32, value: [1, 3, -7] },
    // No array of UINT8: 0.4.6's writer takes subType 0 for a missing one.
    "test.i8s": { type: T.ARRAY, subType: T.INT8, value: [0, -1, 127] },
    "test.u64s": { type: T.ARRAY, subType: T.UINT64, value: [0n, 18446744073709551615n] },
    "test.bools": { type: T.ARRAY, subType: T.BOOL, value: [true, false, true] },
    "test.empty_array": { type: T.ARRAY, subType: T.FLOAT64, value: [] },
  };
  return {
    version: { value: version, type: T.UINT32 },
    tensor_count: { value: 0n, type: T.UINT64 },
    kv_count: { value: BigInt(Object.keys(entries).length), type: T.UINT64 },
    ...entries,
  };
}

// Writes files with the package's writers into OUT_DIR; returns them with
// what to check them against.
async function writeWithPackage() {
  const written = [];
  for (const version of [3, 2]) {
    const path = join(outDir, `hf-every-type-v${version}.gguf`);
    writeFileSync(path, serializeGgufMetadata(everyType(version), { alignment: 32 }));
    written.push({ path });
  }
  // The Hub's metadata editor: new metadata spliced onto our tensor infos,
  // followed by our data section.
  const source = join(outDir, "mixed.gguf");
  const parsed = await gguf(source, { allowLocalFile: true, typedMetadata: true });
  const typed = { ...parsed.typedMetadata };
  const extra = everyType(3);
  for (const [key, entry] of Object.entries(extra)) {
    if (!HEADER_KEYS.has(key) && !(key in typed)) typed[key] = entry;
  }
  typed["general.name"] = { type: GGUFValueType.STRING, value: "renamed by @huggingface/gguf" };
  typed.kv_count = { value: BigInt(Object.keys(typed).length - 3), type: GGUFValueType.UINT64 };
  const header = await buildGgufHeader(new Blob([readFileSync(source)]), typed, {
    littleEndian: true,
    tensorInfoByteRange: parsed.tensorInfoByteRange,
    alignment: 32,
  });
  const data = readFileSync(source).subarray(Number(parsed.tensorDataOffset));
  const edited = join(outDir, "hf-edited-mixed.gguf");
  writeFileSync(edited, Buffer.concat([Buffer.from(await header.arrayBuffer()), data]));
  written.push({ path: edited, bytesFrom: readWithTool(source) });
  return written;
}

console.log(`@huggingface/gguf ${ggufVersion}`);
let failed = 0;
async function run(label, path, check) {
  try {
    console.log(`ok ${label} ${path}: ${await check()}`);
  } catch (error) {
    ++failed;
    console.log(`FAIL ${label} ${path}: ${error?.stack ?? error}`);
  }
}

const ours = readdirSync(outDir)
  .filter((name) => name.endsWith(".gguf"))
  .map((name) => join(outDir, name));
assert.ok(ours.length > 0, `no .gguf files in ${outDir}`);
for (const path of ours) {
  await run("hf-reads-ours", path, () => checkOurs(path));
}
let written = [];
try {
  written = await writeWithPackage();
} catch (error) {
  ++failed;
  console.log(`FAIL writing files with @huggingface/gguf: ${error?.stack ?? error}`);
}
for (const { path, bytesFrom } of written) {
  await run("ours-reads-hf", path, () => checkSameAsPackage(path, { bytesFrom }));
}
for (const path of fixtures) {
  if (!existsSync(path)) continue;
  await run("fixture", basename(path), () => checkSameAsPackage(path));
}
process.exit(failed === 0 ? 0 : 1);
