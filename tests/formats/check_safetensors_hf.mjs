// Parses local safetensors files with Hugging Face's own header parser,
// parseSafetensorsMetadata from npm @huggingface/hub, and checks them.
//
// Usage: PSTORE_NPM_PREFIX=DIR node check_safetensors_hf.mjs FILE...
//
// parseSafetensorsMetadata reads from the Hub over HTTP with range requests;
// its `fetch` option lets us answer those requests from local files, so the
// check runs offline (only installing the package needs the network).
//
// For every file: the header must parse, the tensors must tile the data
// section (sorted by begin, each starting where the previous ends, byte
// lengths matching dtype and shape) and the header length must be a multiple
// of 8. Where FILE's NAME.expected.json exists (written by
// check_safetensors_hf.cc), the parsed header must equal its "header", the
// keys must come in its "key_order", and every tensor's bytes must follow
// its "fill" pattern. Exits 0 if every file passes, 1 otherwise.

import assert from "node:assert/strict";
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename } from "node:path";

const prefix = process.env.PSTORE_NPM_PREFIX;
if (!prefix) {
  console.error("PSTORE_NPM_PREFIX is not set");
  process.exit(2);
}
const require = createRequire(`${prefix}/`);
const { parseSafetensorsMetadata } = require("@huggingface/hub");
const hubVersion = JSON.parse(
  readFileSync(`${prefix}/node_modules/@huggingface/hub/package.json`, "utf8"),
).version;

const DTYPE_SIZES = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

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

// A fetch that serves `path` for any URL ending in `/<its basename>`,
// honouring "Range: bytes=a-b" as a Hub file server does.
function localFetch(path, log) {
  const name = basename(path);
  return async (input, init = {}) => {
    const url = new URL(typeof input === "string" ? input : input.url ?? input.href);
    log.push(`${init.method ?? "GET"} ${url.pathname}`);
    if (decodeURIComponent(url.pathname.split("/").pop()) !== name) {
      return new Response("not found", { status: 404, headers: { "X-Error-Code": "EntryNotFound" } });
    }
    const size = statSync(path).size;
    const common = { ETag: '"pstore-local"', "Content-Type": "application/octet-stream" };
    const range = new Headers(init.headers ?? {}).get("range");
    if (range) {
      const match = /^bytes=(\d+)-(\d*)$/.exec(range);
      assert.ok(match, `unexpected Range header ${range}`);
      const start = Number(match[1]);
      const end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
      const body = readRange(path, start, end + 1 - start);
      return new Response(body, {
        status: 206,
        headers: { ...common, "Content-Range": `bytes ${start}-${end}/${size}`, "Content-Length": String(body.length) },
      });
    }
    return new Response(readFileSync(path), { status: 200, headers: { ...common, "Content-Length": String(size) } });
  };
}

async function check(path) {
  const log = [];
  const result = await parseSafetensorsMetadata({
    repo: "pstore/local-check",
    path: basename(path),
    hubUrl: "http://pstore-local.invalid",
    fetch: localFetch(path, log),
  });
  assert.equal(result.sharded, false);
  const header = result.header;

  const size = statSync(path).size;
  const headerLength = Number(readRange(path, 0, 8).readBigUInt64LE(0));
  assert.equal(headerLength % 8, 0, "header length is not a multiple of 8");
  const dataOffset = 8 + headerLength;
  const dataSize = size - dataOffset;

  const tensors = Object.entries(header).filter(([name]) => name !== "__metadata__");
  tensors.sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1]);
  let covered = 0;
  for (const [name, info] of tensors) {
    const size = DTYPE_SIZES[info.dtype];
    assert.ok(size !== undefined, `${name}: unknown dtype ${info.dtype}`);
    const elements = info.shape.reduce((a, b) => a * b, 1);
    const [begin, end] = info.data_offsets;
    assert.equal(begin, covered, `${name}: begins at ${begin}, want ${covered}`);
    assert.equal(end - begin, elements * size, `${name}: byte length`);
    covered = end;
  }
  assert.equal(covered, dataSize, "tensors do not fill the data section");

  const expectedPath = path.replace(/\.safetensors$/, ".expected.json");
  let detail = "structure only";
  if (existsSync(expectedPath)) {
    const expected = JSON.parse(readFileSync(expectedPath, "utf8"));
    assert.deepEqual(header, expected.header);
    assert.deepEqual(Object.keys(header), expected.key_order, "key order");
    for (const [name, seed] of Object.entries(expected.fill)) {
      const [begin, end] = header[name].data_offsets;
      const bytes = readRange(path, dataOffset + begin, end - begin);
      for (let k = 0; k < bytes.length; ++k) {
        if (bytes[k] !== (seed * 13 + k * 31) % 251) {
          assert.fail(`${name}: byte ${k} is ${bytes[k]}`);
        }
      }
    }
    detail = "header, key order and bytes as expected";
  }
  const metadata = header.__metadata__ ? Object.keys(header.__metadata__).length : 0;
  console.log(`ok ${path}: ${tensors.length} tensors, ${metadata} metadata keys, ${detail} (${log.length} requests)`);
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node check_safetensors_hf.mjs FILE...");
  process.exit(2);
}
console.log(`@huggingface/hub ${hubVersion}`);
let failed = 0;
for (const file of files) {
  try {
    await check(file);
  } catch (error) {
    ++failed;
    console.log(`FAIL ${file}: ${error?.stack ?? error}`);
  }
}
process.exit(failed === 0 ? 0 : 1);
