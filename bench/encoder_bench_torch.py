#!/usr/bin/python3
"""PyTorch side of bench/encoder_bench: encoder throughput of the reference XLM-R forward pass
(scripts/make_fixture_model.py, eager attention as transformers' XLMRobertaModel) on CPU.

  encoder_bench_torch.py --model DIR --length L --batch B --threads T --reps R

Prints one JSON line: {"seconds": best wall time of one forward pass, "peak_rss_kib": VmHWM}.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from make_fixture_model import reference_forward  # noqa: E402


def peak_rss_kib():
    """VmHWM of this process image (ru_maxrss would include the forking parent's pages)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--length", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    sd = torch.load(os.path.join(args.model, "pytorch_model.bin"))
    g = torch.Generator().manual_seed(42)
    ids = torch.randint(4, cfg["vocab_size"] - 1, (args.batch, args.length), generator=g)
    ids[:, 0], ids[:, -1] = 0, 2
    mask = torch.ones_like(ids)
    best = float("inf")
    with torch.inference_mode():
        for i in range(args.warmup + args.reps):
            t0 = time.perf_counter()
            reference_forward(sd, cfg, ids, mask)
            dt = time.perf_counter() - t0
            if i >= args.warmup:
                best = min(best, dt)
    print(json.dumps({"seconds": best, "peak_rss_kib": peak_rss_kib()}))


if __name__ == "__main__":
    main()
