#!/usr/bin/env bash
# `m3vdb embed` end to end: outputs in input order that match the PyTorch reference, and a
# bad line reported with its number and a non-zero exit.
# usage: embed_cli_test.sh <m3vdb binary> <fixtures dir>
set -euo pipefail
bin=$1
fixtures=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$fixtures/reference.json" > "$tmp/in.jsonl" <<'PY'
import json, sys
ref = json.load(open(sys.argv[1]))
for c in ref["cases"]:
    if c["max_length"] == ref["max_length_default"]:
        print(json.dumps({"text": c["text"], "id": c["name"]}))
PY
"$bin" embed --model "$fixtures/tiny" --batch-size 3 --threads 2 < "$tmp/in.jsonl" > "$tmp/out.jsonl" 2> "$tmp/err.txt"
python3 - "$fixtures/reference.json" "$tmp/out.jsonl" <<'PY'
import json, sys
ref = json.load(open(sys.argv[1]))
cases = [c for c in ref["cases"] if c["max_length"] == ref["max_length_default"]]
out = [json.loads(l) for l in open(sys.argv[2])]
assert len(out) == len(cases), (len(out), len(cases))
for c, o in zip(cases, out):
    assert o["tokens"] == c["tokens"], c["name"]
    assert max(abs(a - b) for a, b in zip(o["dense"], c["dense"])) < 1e-4, c["name"]
    assert set(o["sparse"]) == set(c["sparse"]), c["name"]
    assert all(abs(o["sparse"][k] - c["sparse"][k]) < 1e-4 for k in c["sparse"]), c["name"]
    assert len(o["colbert"]) == len(c["colbert"]), c["name"]
    assert max(abs(a - b) for ra, rb in zip(o["colbert"], c["colbert"]) for a, b in zip(ra, rb)) < 1e-4, c["name"]
print("embed: %d outputs match the reference" % len(out))
PY

printf '{"text":"fine"}\n{"txt":"no text field"}\n{"text":"never reached"}\n' > "$tmp/bad.jsonl"
if "$bin" embed --model "$fixtures/tiny" < "$tmp/bad.jsonl" > "$tmp/out2.jsonl" 2> "$tmp/err2.txt"; then
  echo "bad input accepted"; exit 1
fi
grep -q "line 2" "$tmp/err2.txt" || { echo "error does not name line 2:"; cat "$tmp/err2.txt"; exit 1; }
[ "$(wc -l < "$tmp/out2.jsonl")" -eq 1 ] || { echo "expected the one good line before the error"; exit 1; }

if "$bin" embed --model "$tmp/missing" < "$tmp/in.jsonl" > /dev/null 2> "$tmp/err3.txt"; then
  echo "missing model accepted"; exit 1
fi
grep -q "config.json" "$tmp/err3.txt" || { echo "error does not name config.json"; exit 1; }
echo "embed_cli_test: ok"
