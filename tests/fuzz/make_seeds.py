#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/seed-*).

Seeds are small, valid (or nearly valid) inputs of each format, so the fuzzers start from
inputs that reach deep into the parsers. Inputs that once crashed a target are kept next to the
seeds as crash-* files and replayed by ctest like the seeds. Run from anywhere:
    python3 tests/fuzz/make_seeds.py
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def write_regression(target, name, data):
    """An input that once broke a target (kept so ctest replays it forever)."""
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "crash-" + name), "wb") as f:
        f.write(data)


def regressions():
    # Codebooks whose table sizes wrap around 64 bits to 0: dim 2^31, nlist 2^31 - 2^8, OPQ.
    # Parse used to accept the empty payload and then allocate 2^62 floats.
    write_regression("fuzz_codebooks", "size-wraps-to-zero",
                     struct.pack("<BQIBIIIBQ", 1, 1, 1 << 31, 0, (1 << 31) - (1 << 8), 1, 8, 1, 0))
    # A safetensors shape whose element count times 4 wraps to 0 bytes: was accepted as a
    # 2^62-element tensor over an empty range.
    write_regression("fuzz_safetensors", "shape-overflow",
                     safetensors_bytes({"w": ("F32", [1 << 62, 4], b"")}))


def http(method, target, body=None, key="k", ctype="application/json"):
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost"]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    if body is not None:
        lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {len(body.encode())}")
    return "\r\n".join(lines) + "\r\n\r\n" + (body or "")


DOCS = json.dumps({"documents": [
    {"id": "a", "dense": [0.1, 0.2, 0.3, 0.4], "sparse": {"indices": [1, 5], "values": [0.5, 1.0]},
     "colbert": [[0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 0.0, 1.0]], "text": "hello", "metadata": {"lang": "en"}},
    {"id": "b", "dense": [1, 0, 0, 0]}]})
DOCS_B64 = json.dumps({"documents": [{"id": "c", "dense_b64": "AACAPwAAAEAAAEBAAACAQA=="}]})
SEARCH = json.dumps({"dense": [0.1, 0.2, 0.3, 0.4], "sparse": {"indices": [1], "values": [1.0]},
                     "colbert": [[0.1, 0.2, 0.3, 0.4]], "top_k": 3, "rerank_k": 10, "fusion": "rrf",
                     "weights": {"dense": 1, "sparse": 0.3, "colbert": 1}, "include_metadata": True,
                     "include_text": True, "include_scores": True, "nprobe": 4})
SPEC = json.dumps({"dense_dim": 4, "metric": "l2", "sparse": True, "colbert": True, "colbert_dim": 4,
                   "index": {"nlist": 4, "m": 2, "opq": False, "distill": True, "epochs": 1, "nprobe": 2,
                             "train_threshold": 0}})


def http_seeds():
    t = "fuzz_http"
    write(t, "healthz", http("GET", "/healthz", key=None))
    write(t, "metrics", http("GET", "/metrics"))
    write(t, "list", http("GET", "/collections"))
    write(t, "put", http("PUT", "/collections/new%20one", SPEC))
    write(t, "get", http("GET", "/collections/c"))
    write(t, "docs", http("POST", "/collections/c/documents", DOCS))
    write(t, "docs-b64", http("POST", "/collections/c/documents?x=1", DOCS_B64))
    write(t, "getdoc", http("GET", "/collections/c/documents/a"))
    write(t, "deldoc", http("DELETE", "/collections/c/documents/b"))
    write(t, "search", http("POST", "/collections/c/search", SEARCH))
    write(t, "delete-coll", http("DELETE", "/collections/new%20one"))
    write(t, "bad-escape", http("GET", "/collections/%zz"))
    write(t, "wrong-method", http("PATCH", "/collections/c"))
    write(t, "no-auth", http("GET", "/collections", key=None))
    write(t, "bad-type", http("POST", "/collections/c/search", SEARCH, ctype="text/plain"))
    write(t, "chunked", "POST /collections/c/search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
          "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
          f"{len(SEARCH):x}\r\n{SEARCH}\r\n0\r\n\r\n")


def json_seeds():
    t = "fuzz_json"
    write(t, "spec", "\x00" + SPEC)
    write(t, "spec-min", "\x00" + json.dumps({"dense_dim": 3}))
    write(t, "docs", "\x01" + DOCS)
    write(t, "docs-b64", "\x01" + DOCS_B64)
    write(t, "docs-text", "\x01" + json.dumps({"documents": [{"id": "t", "text": "only text"}]}))
    write(t, "search", "\x02" + SEARCH)
    write(t, "search-text", "\x02" + json.dumps({"text": "query", "top_k": 1}))
    write(t, "deep", "\x01" + '{"documents":[{"id":"x","dense":[1],"metadata":' + "[" * 70 + "]" * 70 + "}]}")


def config_seeds():
    t = "fuzz_config"
    write(t, "full", """data_dir: /var/lib/m3vdb
model_dir: /models/bge-m3
log_level: info
engine:
  sync: true
  block_cache_bytes: 256MiB
  limits:
    max_batch_documents: 20000
    max_top_k: 100
server:
  host: 0.0.0.0
  port: 8080
  api_keys: [first-key, second-key]
  compute_threads: 8
  io_threads: 2
  queue_capacity: 128
  max_body_bytes: 64MiB
""")
    write(t, "min", "data_dir: /tmp/x\n")
    write(t, "wrong-type", "server:\n  port: [1, 2]\n")
    write(t, "unknown", "server:\n  prot: 1\n")
    write(t, "anchors", "a: &x {port: 1}\nserver: *x\n")


def safetensors_bytes(tensors):
    header, blobs, off = {}, b"", 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs += data
        off += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blobs


def safetensors_seeds():
    t = "fuzz_safetensors"
    write(t, "f32", safetensors_bytes({"w": ("F32", [2, 3], struct.pack("<6f", *range(6))),
                                       "b": ("F16", [2], b"\x00\x3c\x00\x40")}))
    write(t, "bf16-i64", safetensors_bytes({"x": ("BF16", [1, 2], b"\x80\x3f\x00\x40"),
                                            "ids": ("I64", [2], struct.pack("<2q", 1, 2)),
                                            "u8": ("U8", [3], b"abc")}))
    write(t, "empty", safetensors_bytes({}))
    write(t, "scalar", safetensors_bytes({"s": ("F32", [], struct.pack("<f", 1.5))}))


def torch_seeds():
    t = "fuzz_torch"
    fixtures = os.path.join(ROOT, "tests", "embedder", "fixtures", "tiny")
    for name in ("sparse_linear.pt", "colbert_linear.pt"):
        shutil.copyfile(os.path.join(fixtures, name), os.path.join(HERE, "corpus", t, "seed-" + name))


def records_seeds():
    t = "fuzz_records"
    catalog = struct.pack("<BQIBBIIIBiiQ", 2, 7, 4, 1, 3, 4, 256, 2, 2, 4, 16, 0)
    write(t, "catalog", b"\x00" + catalog)
    write(t, "doc", b"\x01" + b"\x01" + struct.pack("<I", 5) + b"hello" + struct.pack("<I", 2) + b"{}")
    write(t, "dense", b"\x02" + b"\x01" + struct.pack("<I3f", 3, 1.0, -2.0, 0.5))
    write(t, "sparse", b"\x03" + b"\x01" + struct.pack("<I2i2f", 2, 1, 9, 0.5, 2.0))
    write(t, "colbert", b"\x04" + b"\x01" + struct.pack("<II", 2, 2) + b"\x00\x3c" * 4)
    write(t, "colbert-f", b"\x05" + b"\x01" + struct.pack("<II", 1, 3) + b"\x00\x3c" * 3)
    write(t, "code", b"\x06" + b"\x01" + struct.pack("<QI", 3, 1) + b"\x01\x02\x03\x04")
    write(t, "u64", b"\x07" + struct.pack("<Q", 42))
    write(t, "dockey", b"\x08" + b"d" + struct.pack(">QQ", 1, 2))


def codebooks_seeds():
    t = "fuzz_codebooks"
    def cb(dim, nlist, m, opq, metric):
        head = struct.pack("<BQIBIIIBQ", 1, 1, dim, metric, nlist, m, 8, 1 if opq else 0, 1234)
        floats = (dim * dim if opq else 0) + nlist * dim + 256 * dim
        return head + struct.pack(f"<{floats}f", *[(i % 7) * 0.25 for i in range(floats)])
    write(t, "ip", cb(4, 2, 2, False, 0))
    write(t, "l2-opq", cb(2, 3, 1, True, 1))


if __name__ == "__main__":
    http_seeds()
    json_seeds()
    config_seeds()
    safetensors_seeds()
    os.makedirs(os.path.join(HERE, "corpus", "fuzz_torch"), exist_ok=True)
    torch_seeds()
    records_seeds()
    codebooks_seeds()
    regressions()
