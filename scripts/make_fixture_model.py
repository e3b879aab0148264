#!/usr/bin/python3
"""Fixture and benchmark checkpoints for m3vdb's BGE-M3 encoder (run by hand, not in CI).

Needs Debian's python3-torch and python3-sentencepiece (no transformers, no safetensors: the
reference model and the safetensors writer are written here in plain torch / python).

  scripts/make_fixture_model.py fixture [--out tests/embedder/fixtures]
      Trains a small sentencepiece *unigram* model on text found on this machine
      (/usr/share/common-licenses, /usr/share/doc) plus a multilingual paragraph, writes a
      small random-weight XLM-R checkpoint in exactly the BGE-M3 release layout
      (config.json, pytorch_model.bin, model.safetensors, colbert_linear.pt fp32,
      sparse_linear.pt fp16, sentencepiece.bpe.model) under OUT/tiny/, and the PyTorch
      reference outputs (token ids, dense, sparse, ColBERT) for a set of texts in
      OUT/reference.json.

  scripts/make_fixture_model.py bench --out DIR
      BGE-M3-shaped random weights (24 layers, hidden 1024, 16 heads, FFN 4096, 8194
      positions, vocab 250002) in the same layout, for bench/encoder_bench (not committed).

The reference forward pass (`reference_forward`) follows transformers' XLMRobertaModel:
post-LayerNorm encoder, exact erf GELU, additive attention mask (1-mask)*finfo.min, RoBERTa
position ids (cumsum of non-pad mask + padding_idx), and the heads of FlagEmbedding's
M3 model (SPECS.md section 1.3).
"""
import argparse
import collections
import glob
import gzip
import json
import math
import os
import struct
import sys

import sentencepiece as spm
import torch

PAD, BOS, EOS, UNK = 1, 0, 2, 3

MULTILINGUAL = """
Crème brûlée à la française: naïve façade, déjà vu, coöperate, Übergrößenträger, Straße, Ærøskøbing.
El niño comió piñata en el año pasado; ¿dónde está la estación? ¡Qué maravilla!
Português: ação, coração, não, informação. Język polski: zażółć gęślą jaźń. Čeština: příliš žluťoučký kůň.
Русский язык: Съешь же ещё этих мягких французских булок, да выпей чаю. Ελληνικά: Καλημέρα κόσμε.
北京是中华人民共和国的首都。中文信息检索系统使用向量数据库。我们的模型支持多语言文本。
東京は日本の首都です。日本語の文章を検索します。ひらがなとカタカナと漢字。
서울은 대한민국의 수도입니다. 한국어 문장을 검색합니다.
Emoji: 😀 😂 🍕 🚀 ❤️ 👍 🎉 🔥 ✨ 🌍 — people love 🍕 and 🚀 and 😀.
العربية: مرحبا بالعالم. हिन्दी: नमस्ते दुनिया। ไทย: สวัสดีชาวโลก
"""

TEXTS = [
    ("ascii", "What is BGE M3? It is an embedding model for dense, sparse and multi-vector retrieval."),
    ("accented", "Crème brûlée à la française — naïve façade, Übergrößenträger und Straße."),
    ("cjk", "北京是中华人民共和国的首都。東京は日本の首都です。서울은 대한민국의 수도입니다."),
    ("emoji", "I love 🍕 and 🚀 rockets! 😀🎉"),
    ("unknown_chars", "Runes ᚠᛇᚻ᛫ᛒᛦᚦ and hieroglyph 𓀀 plus ⟁ ⧫ are rare."),
    ("empty", ""),
    ("whitespace", "  multiple   spaces\tand\nnew lines  "),
    ("punctuation", "Version 3.14.159 (c) 2024; e-mail: someone@example.org, 50% off!"),
    ("repeated", "the the the license license license software software"),
]


def long_text():
    words = ("This program is free software; you can redistribute it and/or modify it under the "
             "terms of the GNU General Public License as published by the Free Software Foundation, "
             "either version 3 of the License, or any later version. ").split()
    return " ".join(words * 6)


# ---------------------------------------------------------------------------------------------
# Tokenizer: sentencepiece unigram + the fairseq id mapping of XLMRobertaTokenizer.

def collect_corpus(path):
    chunks = []
    for f in sorted(glob.glob("/usr/share/common-licenses/*")):
        if os.path.isfile(f):
            with open(f, encoding="utf-8", errors="ignore") as fh:
                chunks.append(fh.read())
    for f in sorted(glob.glob("/usr/share/doc/*/copyright"))[:400]:
        with open(f, encoding="utf-8", errors="ignore") as fh:
            chunks.append(fh.read()[:20000])
    for f in sorted(glob.glob("/usr/share/doc/*/changelog.Debian.gz"))[:100]:
        with gzip.open(f, "rt", encoding="utf-8", errors="ignore") as fh:
            chunks.append(fh.read()[:20000])
    chunks.extend([MULTILINGUAL] * 30)
    with open(path, "w", encoding="utf-8") as out:
        for c in chunks:
            for line in c.splitlines():
                line = line.strip()
                if line:
                    out.write(line + "\n")


def train_spm(workdir, vocab_size):
    corpus = os.path.join(workdir, "corpus.txt")
    collect_corpus(corpus)
    prefix = os.path.join(workdir, "spm")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, vocab_size=vocab_size, model_type="unigram",
        character_coverage=0.9995, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        input_sentence_size=200000, shuffle_input_sentence=True, minloglevel=2)
    return prefix + ".model"


def fairseq_ids(sp, text, max_length):
    """XLMRobertaTokenizer: <s> + pieces (spm id + 1, spm unk -> 3) + </s>, content truncated."""
    pieces = sp.encode(text, out_type=int)
    ids = [UNK if p == 0 else p + 1 for p in pieces]
    ids = ids[: max_length - 2]
    return [BOS] + ids + [EOS]


# ---------------------------------------------------------------------------------------------
# Random XLM-R state dict in the XLMRobertaModel key layout.

def make_state_dict(cfg, seed, std):
    g = torch.Generator().manual_seed(seed)
    h, f = cfg["hidden_size"], cfg["intermediate_size"]

    def w(*shape, scale=std):
        return torch.randn(*shape, generator=g) * scale

    def ln(prefix, sd):
        sd[prefix + ".weight"] = 1.0 + w(h, scale=0.1)
        sd[prefix + ".bias"] = w(h, scale=0.1)

    sd = collections.OrderedDict()
    sd["embeddings.position_ids"] = torch.arange(cfg["max_position_embeddings"]).unsqueeze(0)
    sd["embeddings.word_embeddings.weight"] = w(cfg["vocab_size"], h, scale=0.5)
    sd["embeddings.position_embeddings.weight"] = w(cfg["max_position_embeddings"], h, scale=0.5)
    sd["embeddings.token_type_embeddings.weight"] = w(cfg["type_vocab_size"], h, scale=0.5)
    ln("embeddings.LayerNorm", sd)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            sd[p + f"attention.self.{name}.weight"] = w(h, h)
            sd[p + f"attention.self.{name}.bias"] = w(h)
        sd[p + "attention.output.dense.weight"] = w(h, h)
        sd[p + "attention.output.dense.bias"] = w(h)
        ln(p + "attention.output.LayerNorm", sd)
        sd[p + "intermediate.dense.weight"] = w(f, h)
        sd[p + "intermediate.dense.bias"] = w(f)
        sd[p + "output.dense.weight"] = w(h, f)
        sd[p + "output.dense.bias"] = w(h)
        ln(p + "output.LayerNorm", sd)
    sd["pooler.dense.weight"] = w(h, h)
    sd["pooler.dense.bias"] = w(h)
    return sd


def make_heads(cfg, seed, std):
    g = torch.Generator().manual_seed(seed + 1)
    h = cfg["hidden_size"]
    colbert = collections.OrderedDict(
        weight=torch.randn(h, h, generator=g) * std, bias=torch.randn(h, generator=g) * std)
    sparse = collections.OrderedDict(
        weight=(torch.randn(1, h, generator=g) * 0.3).half(),
        bias=(torch.randn(1, generator=g) * 0.1 + 0.2).half())
    return colbert, sparse


def save_safetensors(sd, path):
    """Minimal safetensors writer: u64 header length, JSON header, raw little-endian data."""
    dtypes = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64", torch.bfloat16: "BF16"}
    header, blobs, offset = {}, [], 0
    for name, t in sd.items():
        data = t.contiguous().numpy().tobytes() if t.dtype != torch.bfloat16 else \
            t.contiguous().view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def write_release(out, cfg, sd, colbert, sparse, spm_model):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    torch.save(sd, os.path.join(out, "pytorch_model.bin"))
    torch.save(colbert, os.path.join(out, "colbert_linear.pt"))
    torch.save(sparse, os.path.join(out, "sparse_linear.pt"))
    if spm_model:
        with open(spm_model, "rb") as src, open(os.path.join(out, "sentencepiece.bpe.model"), "wb") as dst:
            dst.write(src.read())


def make_config(vocab_size, layers, hidden, heads, ffn, positions):
    return {
        "architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta",
        "attention_probs_dropout_prob": 0.1, "hidden_dropout_prob": 0.1, "hidden_act": "gelu",
        "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD,
        "hidden_size": hidden, "intermediate_size": ffn, "num_attention_heads": heads,
        "num_hidden_layers": layers, "max_position_embeddings": positions,
        "type_vocab_size": 1, "vocab_size": vocab_size, "layer_norm_eps": 1e-05,
        "initializer_range": 0.02, "position_embedding_type": "absolute",
        "torch_dtype": "float32", "use_cache": True,
    }


# ---------------------------------------------------------------------------------------------
# Reference forward pass (transformers XLMRobertaModel, eager attention) and the M3 heads.

def reference_forward(sd, cfg, ids, mask):
    """ids, mask: [B, L] int64. Returns last_hidden_state [B, L, H] (float32)."""
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = h // nh
    eps = cfg["layer_norm_eps"]
    lin = torch.nn.functional.linear
    norm = torch.nn.functional.layer_norm
    g = lambda k: sd[k].float()  # noqa: E731
    pid = torch.cumsum(mask, dim=1) * mask + PAD
    x = g("embeddings.word_embeddings.weight")[ids] + g("embeddings.position_embeddings.weight")[pid] \
        + g("embeddings.token_type_embeddings.weight")[0]
    x = norm(x, (h,), g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"), eps)
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    b, n = ids.shape
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def heads(t):
            return t.view(b, n, nh, hd).permute(0, 2, 1, 3)

        q = heads(lin(x, g(p + "attention.self.query.weight"), g(p + "attention.self.query.bias")))
        k = heads(lin(x, g(p + "attention.self.key.weight"), g(p + "attention.self.key.bias")))
        v = heads(lin(x, g(p + "attention.self.value.weight"), g(p + "attention.self.value.bias")))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd) + ext
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).reshape(b, n, h)
        a = lin(ctx, g(p + "attention.output.dense.weight"), g(p + "attention.output.dense.bias"))
        x = norm(a + x, (h,), g(p + "attention.output.LayerNorm.weight"),
                 g(p + "attention.output.LayerNorm.bias"), eps)
        f = torch.nn.functional.gelu(lin(x, g(p + "intermediate.dense.weight"), g(p + "intermediate.dense.bias")))
        f = lin(f, g(p + "output.dense.weight"), g(p + "output.dense.bias"))
        x = norm(f + x, (h,), g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias"), eps)
    return x


def m3_heads(hidden, ids, colbert, sparse):
    """FlagEmbedding M3: dense = normalized CLS; sparse = relu(linear) max per id without
    specials; ColBERT = normalized linear(H[1:]) for tokens 1..n-1."""
    n = len(ids)
    dense = torch.nn.functional.normalize(hidden[0], dim=-1)
    w = torch.relu(torch.nn.functional.linear(hidden[:n], sparse["weight"].float(), sparse["bias"].float()))
    lex = {}
    for weight, tid in zip(w[:, 0].tolist(), ids):
        if tid in (BOS, PAD, EOS, UNK) or weight <= 0:
            continue
        if tid not in lex or weight > lex[tid]:
            lex[tid] = weight
    col = torch.nn.functional.linear(hidden[1:n], colbert["weight"].float(), colbert["bias"].float())
    col = torch.nn.functional.normalize(col, dim=-1)
    return dense, lex, col


def calibrate_sparse_bias(sd, cfg, sparse, id_lists):
    """Random weights give hidden states with a large common component; shift the sparse bias
    so that about half of the token weights are positive and the sparse output is not empty."""
    with torch.no_grad():
        proj = []
        for ids in id_lists:
            t = torch.tensor([ids])
            hidden = reference_forward(sd, cfg, t, torch.ones_like(t))[0]
            proj.append(torch.nn.functional.linear(hidden, sparse["weight"].float())[:, 0])
        sparse["bias"] = (-torch.cat(proj).median()).reshape(1).half()


def encode_reference(sd, cfg, colbert, sparse, id_lists):
    """Pads the batch like transformers (pad id 1, mask 0) and runs the reference."""
    n = max(len(x) for x in id_lists)
    ids = torch.full((len(id_lists), n), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, x in enumerate(id_lists):
        ids[r, : len(x)] = torch.tensor(x)
        mask[r, : len(x)] = 1
    with torch.no_grad():
        hidden = reference_forward(sd, cfg, ids, mask)
        return [m3_heads(hidden[r], x, colbert, sparse) for r, x in enumerate(id_lists)]


# ---------------------------------------------------------------------------------------------

def cmd_fixture(args):
    torch.manual_seed(0)
    out = args.out
    workdir = os.path.join(out, ".work")
    os.makedirs(workdir, exist_ok=True)
    model_path = train_spm(workdir, args.vocab)
    sp = spm.SentencePieceProcessor(model_file=model_path)
    cfg = make_config(sp.get_piece_size() + 2, layers=2, hidden=64, heads=4, ffn=128, positions=130)
    sd = make_state_dict(cfg, seed=1234, std=0.15)
    colbert, sparse = make_heads(cfg, seed=1234, std=0.15)
    tiny = os.path.join(out, "tiny")
    write_release(tiny, cfg, sd, colbert, sparse, model_path)
    save_safetensors(sd, os.path.join(tiny, "model.safetensors"))

    max_len = cfg["max_position_embeddings"] - 2
    cases = [(name, text, max_len) for name, text in TEXTS]
    cases.append(("over_long", long_text(), max_len))
    cases.append(("max_length_16", TEXTS[0][1], 16))
    ref = {"max_length_default": max_len, "cases": []}
    id_lists = [fairseq_ids(sp, text, ml) for _, text, ml in cases]
    calibrate_sparse_bias(sd, cfg, sparse, id_lists)
    torch.save(sparse, os.path.join(tiny, "sparse_linear.pt"))
    results = encode_reference(sd, cfg, colbert, sparse, id_lists)
    for (name, text, ml), ids, (dense, lex, col) in zip(cases, id_lists, results):
        ref["cases"].append({
            "name": name, "text": text, "max_length": ml, "tokens": ids,
            "dense": [round(v, 7) for v in dense.tolist()],
            "sparse": {str(k): round(v, 7) for k, v in sorted(lex.items())},
            "colbert": [[round(v, 7) for v in row] for row in col.tolist()],
        })
    with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, separators=(",", ":"))
    for f in glob.glob(os.path.join(workdir, "*")):
        os.remove(f)
    os.rmdir(workdir)
    print(f"vocab {cfg['vocab_size']}, {len(cases)} reference cases in {out}")


def cmd_bench(args):
    cfg = make_config(250002, layers=24, hidden=1024, heads=16, ffn=4096, positions=8194)
    sd = make_state_dict(cfg, seed=7, std=0.02)
    colbert, sparse = make_heads(cfg, seed=7, std=0.02)
    spm_model = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "embedder",
                             "fixtures", "tiny", "sentencepiece.bpe.model")
    write_release(args.out, cfg, sd, colbert, sparse, spm_model)
    print(f"BGE-M3-shaped random checkpoint in {args.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    fx = sub.add_parser("fixture")
    fx.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                  "tests", "embedder", "fixtures"))
    fx.add_argument("--vocab", type=int, default=1500)
    bn = sub.add_parser("bench")
    bn.add_argument("--out", required=True)
    args = ap.parse_args()
    {"fixture": cmd_fixture, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
