// Subcommands of the `m3vdb` tool. Each registers its flags on the CLI11 app and runs when
// chosen; they return the process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace m3vdb::tools {

using Runner = std::function<int()>;

// `m3vdb bench fashion-mnist`: ingest the Fashion-MNIST training set into a database, answer
// the 10,000 test queries, print recall@10 against brute force and queries/s.
Runner AddBenchCommand(CLI::App& app);
// `m3vdb embed --model DIR`: JSON lines with "text" on stdin, one JSON line of BGE-M3 outputs
// (tokens, dense, sparse, colbert) per input on stdout.
Runner AddEmbedCommand(CLI::App& app);
// `m3vdb info`: version, build options and the GPU probe.
Runner AddInfoCommand(CLI::App& app);
// `m3vdb serve`: the HTTP API over a database directory, configured by YAML and/or flags.
Runner AddServeCommand(CLI::App& app);
// `m3vdb quantize`: train IVF-PQ codebooks (Distill-VQ or --baseline k-means) on a vector file
// and write a FAISS index file.
Runner AddQuantizeCommand(CLI::App& app);

// `m3vdb build`: a corpus (JSONL or .npy/.fvecs) into a database directory, resumable.
Runner AddBuildCommand(CLI::App& app);
// `m3vdb search DIR`: queries from a vector file against a database directory.
Runner AddSearchCommand(CLI::App& app);
// `m3vdb inspect DIR`: collections, counts, index state and sizes.
Runner AddInspectCommand(CLI::App& app);
// `m3vdb snapshot DIR --to DIR2` (a directory no process holds) or `m3vdb snapshot --url
// http://HOST:PORT --name NAME` (asks a running server): a consistent RocksDB checkpoint.
Runner AddSnapshotCommand(CLI::App& app);

}  // namespace m3vdb::tools
