#include "embedder/detail/model.h"

#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "embedder/detail/checkpoint_files.h"

namespace m3vdb::embedder {
namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// Looks tensors up in one file (with an optional "roberta." prefix), checks shapes, and
// returns float32 pointers (in place when possible, converted otherwise).
class TensorSource {
 public:
  TensorSource(ModelWeights& model, TensorFile& file) : model_(model), file_(file) {}

  Result<const float*> Get(const std::string& key, std::vector<int64_t> shape) {
    auto it = file_.tensors.find(key);
    if (it == file_.tensors.end()) it = file_.tensors.find("roberta." + key);
    const std::string& path = file_.file->path();
    if (it == file_.tensors.end()) return Status::InvalidArgument(path + ": missing tensor '" + key + "'");
    const TensorRef& t = it->second;
    if (t.shape != shape)
      return Status::InvalidArgument(path + ": tensor '" + key + "' has shape " + ShapeString(t.shape) +
                                     ", expected " + ShapeString(shape));
    if (t.dtype == DType::kF32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0)
      return reinterpret_cast<const float*>(t.data);
    auto buf = std::make_unique<float[]>(t.numel());
    M3VDB_RETURN_IF_ERROR(ToFloat(t, path + ": tensor '" + key + "'", buf.get()));
    model_.converted.push_back(std::move(buf));
    return model_.converted.back().get();
  }

  Result<Linear> GetLinear(const std::string& prefix, int out, int in) {
    Linear l{nullptr, nullptr, out, in};
    std::string dot = prefix.empty() ? "" : prefix + ".";
    M3VDB_ASSIGN_OR_RETURN(l.w, Get(dot + "weight", {out, in}));
    M3VDB_ASSIGN_OR_RETURN(l.b, Get(dot + "bias", {out}));
    return l;
  }

  Result<LayerNormWeights> GetLayerNorm(const std::string& prefix, int hidden) {
    LayerNormWeights ln;
    M3VDB_ASSIGN_OR_RETURN(ln.gamma, Get(prefix + ".weight", {hidden}));
    M3VDB_ASSIGN_OR_RETURN(ln.beta, Get(prefix + ".bias", {hidden}));
    return ln;
  }

 private:
  ModelWeights& model_;
  TensorFile& file_;
};

Status LoadEncoder(ModelWeights& m, TensorFile& file) {
  const ModelConfig& c = m.config;
  TensorSource src(m, file);
  M3VDB_ASSIGN_OR_RETURN(m.word, src.Get("embeddings.word_embeddings.weight", {c.vocab, c.hidden}));
  M3VDB_ASSIGN_OR_RETURN(m.position, src.Get("embeddings.position_embeddings.weight", {c.positions, c.hidden}));
  M3VDB_ASSIGN_OR_RETURN(m.token_type, src.Get("embeddings.token_type_embeddings.weight", {c.type_vocab, c.hidden}));
  M3VDB_ASSIGN_OR_RETURN(m.embed_ln, src.GetLayerNorm("embeddings.LayerNorm", c.hidden));
  for (int i = 0; i < c.layers; ++i) {
    std::string p = "encoder.layer." + std::to_string(i) + ".";
    LayerWeights l;
    M3VDB_ASSIGN_OR_RETURN(l.q, src.GetLinear(p + "attention.self.query", c.hidden, c.hidden));
    M3VDB_ASSIGN_OR_RETURN(l.k, src.GetLinear(p + "attention.self.key", c.hidden, c.hidden));
    M3VDB_ASSIGN_OR_RETURN(l.v, src.GetLinear(p + "attention.self.value", c.hidden, c.hidden));
    M3VDB_ASSIGN_OR_RETURN(l.attn_out, src.GetLinear(p + "attention.output.dense", c.hidden, c.hidden));
    M3VDB_ASSIGN_OR_RETURN(l.attn_ln, src.GetLayerNorm(p + "attention.output.LayerNorm", c.hidden));
    M3VDB_ASSIGN_OR_RETURN(l.ffn_in, src.GetLinear(p + "intermediate.dense", c.ffn, c.hidden));
    M3VDB_ASSIGN_OR_RETURN(l.ffn_out, src.GetLinear(p + "output.dense", c.hidden, c.ffn));
    M3VDB_ASSIGN_OR_RETURN(l.ffn_ln, src.GetLayerNorm(p + "output.LayerNorm", c.hidden));
    m.layers.push_back(l);
  }
  return Status::OK();
}

Result<TensorFile> OpenHead(const std::string& dir, const std::string& name, const char* what) {
  std::string path = dir + "/" + name;
  auto file = ReadTorchFile(path);
  if (!file.ok() && file.status().code() == StatusCode::kNotFound)
    return Status::NotFound(path + ": the " + what +
                            " head file is missing (refusing to run with a random head)");
  return file;
}

}  // namespace

Result<ModelConfig> ReadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption(path + ": not a JSON object");
  ModelConfig c;
  struct Field { const char* key; int* out; int min; };
  const Field fields[] = {{"hidden_size", &c.hidden, 1},           {"num_hidden_layers", &c.layers, 1},
                          {"num_attention_heads", &c.heads, 1},    {"intermediate_size", &c.ffn, 1},
                          {"max_position_embeddings", &c.positions, 3}, {"vocab_size", &c.vocab, 5},
                          {"type_vocab_size", &c.type_vocab, 1}};
  for (const auto& f : fields) {
    if (!j.contains(f.key) || !j[f.key].is_number_integer())
      return Status::InvalidArgument(path + ": missing or non-integer key '" + f.key + "'");
    int64_t v = j[f.key].get<int64_t>();
    if (v < f.min || v > (1 << 24))
      return Status::InvalidArgument(path + ": key '" + f.key + "' out of range: " + std::to_string(v));
    *f.out = static_cast<int>(v);
  }
  if (c.hidden % c.heads != 0)
    return Status::InvalidArgument(path + ": hidden_size is not a multiple of num_attention_heads");
  if (j.contains("layer_norm_eps")) {
    if (!j["layer_norm_eps"].is_number()) return Status::InvalidArgument(path + ": key 'layer_norm_eps' is not a number");
    c.eps = j["layer_norm_eps"].get<float>();
  }
  if (j.contains("hidden_act") && j["hidden_act"] != "gelu")
    return Status::InvalidArgument(path + ": key 'hidden_act' must be \"gelu\" (exact erf GELU)");
  if (j.contains("position_embedding_type") && j["position_embedding_type"] != "absolute")
    return Status::InvalidArgument(path + ": key 'position_embedding_type' must be \"absolute\"");
  if (j.contains("pad_token_id") && j["pad_token_id"] != 1)
    return Status::InvalidArgument(path + ": key 'pad_token_id' must be 1 (XLM-R)");
  return c;
}

Result<std::unique_ptr<ModelWeights>> LoadModel(const std::string& dir, const std::string& weights_file) {
  auto m = std::make_unique<ModelWeights>();
  M3VDB_ASSIGN_OR_RETURN(m->config, ReadConfig(dir + "/config.json"));
  std::string name = weights_file;
  if (name.empty()) {
    if (Exists(dir + "/model.safetensors")) name = "model.safetensors";
    else if (Exists(dir + "/pytorch_model.bin")) name = "pytorch_model.bin";
    else return Status::NotFound(dir + ": no model weights (neither model.safetensors nor pytorch_model.bin)");
  }
  m->weights_path = dir + "/" + name;
  bool safetensors = name.size() >= 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0;
  M3VDB_ASSIGN_OR_RETURN(TensorFile weights,
                         safetensors ? ReadSafetensors(m->weights_path) : ReadTorchFile(m->weights_path));
  m->files.push_back(std::move(weights));
  M3VDB_RETURN_IF_ERROR(LoadEncoder(*m, m->files.back()));

  const int h = m->config.hidden;
  M3VDB_ASSIGN_OR_RETURN(TensorFile colbert, OpenHead(dir, "colbert_linear.pt", "ColBERT"));
  m->files.push_back(std::move(colbert));
  {
    TensorFile& f = m->files.back();
    auto it = f.tensors.find("weight");
    if (it == f.tensors.end()) return Status::InvalidArgument(f.file->path() + ": missing tensor 'weight'");
    if (it->second.shape.size() != 2 || it->second.shape[1] != h || it->second.shape[0] < 1)
      return Status::InvalidArgument(f.file->path() + ": tensor 'weight' has shape " +
                                     ShapeString(it->second.shape) + ", expected [dim," + std::to_string(h) + "]");
    TensorSource src(*m, f);
    M3VDB_ASSIGN_OR_RETURN(m->colbert, src.GetLinear("", static_cast<int>(it->second.shape[0]), h));
  }
  M3VDB_ASSIGN_OR_RETURN(TensorFile sparse, OpenHead(dir, "sparse_linear.pt", "sparse"));
  m->files.push_back(std::move(sparse));
  {
    TensorSource src(*m, m->files.back());
    M3VDB_ASSIGN_OR_RETURN(m->sparse, src.GetLinear("", 1, h));
  }
  return m;
}

}  // namespace m3vdb::embedder
