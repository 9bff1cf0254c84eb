#!/usr/bin/env python3
"""Writes a model directory as Hugging Face's save_pretrained lays one out.

Usage: make_model_dir.py DIR TOTAL_MIB [SHARDS]

DIR gets SHARDS (default 4) safetensors shards of BF16 weights holding
TOTAL_MIB MiB in all (random bytes), model.safetensors.index.json,
config.json, generation_config.json, tokenizer.json, tokenizer_config.json
and special_tokens_map.json. For the bench of directory import and pull
(bench/README.md); needs only the standard library.
"""

import json
import os
import struct
import sys


def write_shard(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    for name, shape in tensors:
        size = 2
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "BF16", "shape": shape,
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for name, shape in tensors:
            size = 2
            for dim in shape:
                size *= dim
            while size > 0:
                piece = min(size, 16 << 20)
                out.write(os.urandom(piece))
                size -= piece
    return offset


def main():
    target, total_mib = sys.argv[1], int(sys.argv[2])
    shards = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    os.makedirs(target, exist_ok=True)
    hidden = 2048
    # Per layer: 4 attention weights and 3 MLP weights of hidden^2 BF16
    # each, plus a norm.
    layer_bytes = 7 * hidden * hidden * 2
    layers = max(1, (total_mib << 20) // layer_bytes)
    names = []
    for layer in range(layers):
        prefix = f"model.layers.{layer}."
        for part in ("self_attn.q_proj", "self_attn.k_proj",
                     "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                     "mlp.up_proj", "mlp.down_proj"):
            names.append((prefix + part + ".weight", [hidden, hidden]))
        names.append((prefix + "input_layernorm.weight", [hidden]))
    per_shard = (len(names) + shards - 1) // shards
    weight_map = {}
    total = 0
    for index in range(shards):
        part = names[index * per_shard:(index + 1) * per_shard]
        file = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        total += write_shard(os.path.join(target, file), part, {"format": "pt"})
        for name, _ in part:
            weight_map[name] = file
    with open(os.path.join(target, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total},
                   "weight_map": dict(sorted(weight_map.items()))}, f,
                  indent=2)
        f.write("\n")
    small = {
        "config.json": {"architectures": ["LlamaForCausalLM"],
                        "hidden_size": hidden, "num_hidden_layers": layers,
                        "torch_dtype": "bfloat16"},
        "generation_config.json": {"do_sample": True, "temperature": 0.6},
        "tokenizer_config.json": {"model_max_length": 131072},
        "special_tokens_map.json": {"bos_token": "<s>", "eos_token": "</s>"},
        "tokenizer.json": {"version": "1.0",
                           "model": {"vocab": {f"t{i}": i
                                               for i in range(20000)}}},
    }
    for name, value in small.items():
        with open(os.path.join(target, name), "w") as f:
            json.dump(value, f, indent=2)


if __name__ == "__main__":
    main()
