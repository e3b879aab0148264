// Every way a release directory can be broken gives an error that names the file (and the
// key): broken copies of the fixture are made in a temporary directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/embedder/fixture.h"

namespace m3vdb::embedder {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteAll(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

class CheckpointErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("m3vdb_embedder_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const auto& f : fs::directory_iterator(testing::FixtureDir())) fs::copy(f.path(), dir_ / f.path().filename());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Opens the broken copy and checks the error's code and that its message names `needles`.
  void ExpectError(StatusCode code, std::vector<std::string> needles, std::string weights = "") {
    Options options;
    options.weights_file = weights;
    auto r = Embedder::Open(dir_.string(), options);
    ASSERT_FALSE(r.ok()) << "opened a broken checkpoint";
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    for (const auto& n : needles)
      EXPECT_NE(r.status().message().find(n), std::string::npos) << r.status().ToString() << " lacks " << n;
  }

  void EditSafetensors(const std::function<void(nlohmann::json&)>& edit) {
    std::string bytes = ReadAll(dir_ / "model.safetensors");
    uint64_t n = 0;
    for (int k = 7; k >= 0; --k) n = (n << 8) | static_cast<uint8_t>(bytes[k]);
    auto header = nlohmann::json::parse(bytes.substr(8, n));
    edit(header);
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    for (int k = 0; k < 8; ++k) out[k] = static_cast<char>((text.size() >> (8 * k)) & 0xff);
    WriteAll(dir_ / "model.safetensors", out + text + bytes.substr(8 + n));
  }

  void EditConfig(const std::function<void(nlohmann::json&)>& edit) {
    auto config = nlohmann::json::parse(ReadAll(dir_ / "config.json"));
    edit(config);
    WriteAll(dir_ / "config.json", config.dump());
  }

  fs::path dir_;
};

TEST_F(CheckpointErrorsTest, IntactCopyOpens) {
  auto r = Embedder::Open(dir_.string(), {});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

TEST_F(CheckpointErrorsTest, MissingFiles) {
  for (const char* name : {"colbert_linear.pt", "sparse_linear.pt", "sentencepiece.bpe.model", "config.json"}) {
    SetUp();
    fs::remove(dir_ / name);
    ExpectError(StatusCode::kNotFound, {name});
  }
  SetUp();
  fs::remove(dir_ / "model.safetensors");
  fs::remove(dir_ / "pytorch_model.bin");
  ExpectError(StatusCode::kNotFound, {"pytorch_model.bin", "model.safetensors"});
  SetUp();
  ExpectError(StatusCode::kNotFound, {"nope.bin"}, "nope.bin");
}

TEST_F(CheckpointErrorsTest, ConfigErrors) {
  WriteAll(dir_ / "config.json", "{not json");
  ExpectError(StatusCode::kCorruption, {"config.json"});
  SetUp();
  EditConfig([](nlohmann::json& c) { c.erase("hidden_size"); });
  ExpectError(StatusCode::kInvalidArgument, {"config.json", "hidden_size"});
  SetUp();
  EditConfig([](nlohmann::json& c) { c["hidden_act"] = "relu"; });
  ExpectError(StatusCode::kInvalidArgument, {"config.json", "hidden_act"});
}

TEST_F(CheckpointErrorsTest, WrongShapeNamesTheKey) {
  EditConfig([](nlohmann::json& c) { c["intermediate_size"] = 96; });
  for (const char* file : {"pytorch_model.bin", "model.safetensors"})
    ExpectError(StatusCode::kInvalidArgument, {file, "encoder.layer.0.intermediate.dense.weight", "[128,64]"}, file);
}

TEST_F(CheckpointErrorsTest, MissingTensorNamesTheKey) {
  EditSafetensors([](nlohmann::json& h) { h.erase("encoder.layer.1.output.LayerNorm.bias"); });
  ExpectError(StatusCode::kInvalidArgument, {"model.safetensors", "encoder.layer.1.output.LayerNorm.bias"},
              "model.safetensors");
}

TEST_F(CheckpointErrorsTest, UnknownTensorTypeNamesTheKey) {
  EditSafetensors([](nlohmann::json& h) { h["encoder.layer.0.attention.self.key.bias"]["dtype"] = "I32"; });
  ExpectError(StatusCode::kInvalidArgument, {"model.safetensors", "encoder.layer.0.attention.self.key.bias", "I32"},
              "model.safetensors");
}

TEST_F(CheckpointErrorsTest, RobertaPrefixIsAccepted) {
  EditSafetensors([](nlohmann::json& h) {
    nlohmann::json out;
    for (auto& [k, v] : h.items()) out[k == "__metadata__" ? k : "roberta." + k] = v;
    h = out;
  });
  Options options;
  options.weights_file = "model.safetensors";
  auto r = Embedder::Open(dir_.string(), options);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
}

TEST_F(CheckpointErrorsTest, MalformedFiles) {
  std::string bin = ReadAll(dir_ / "pytorch_model.bin");
  WriteAll(dir_ / "pytorch_model.bin", bin.substr(0, bin.size() / 2));
  ExpectError(StatusCode::kCorruption, {"pytorch_model.bin"}, "pytorch_model.bin");

  WriteAll(dir_ / "colbert_linear.pt", "this is not a zip file at all, just some text bytes");
  ExpectError(StatusCode::kCorruption, {"colbert_linear.pt"}, "model.safetensors");

  SetUp();
  std::string st = ReadAll(dir_ / "model.safetensors");
  st[7] = 0x7f;  // header length far beyond the file
  WriteAll(dir_ / "model.safetensors", st);
  ExpectError(StatusCode::kCorruption, {"model.safetensors"}, "model.safetensors");

  SetUp();
  WriteAll(dir_ / "model.safetensors", st.substr(0, st.size() - 100));  // data cut short
  ExpectError(StatusCode::kCorruption, {"model.safetensors"}, "model.safetensors");

  SetUp();
  WriteAll(dir_ / "sentencepiece.bpe.model", "garbage");
  ExpectError(StatusCode::kCorruption, {"sentencepiece.bpe.model"});
}

TEST_F(CheckpointErrorsTest, RestrictedUnpicklerRefusesOtherCallables) {
  std::string bin = ReadAll(dir_ / "sparse_linear.pt");
  size_t at = bin.find("OrderedDict");
  ASSERT_NE(at, std::string::npos);
  bin.replace(at, 11, "OrderedDicx");
  WriteAll(dir_ / "sparse_linear.pt", bin);
  ExpectError(StatusCode::kCorruption, {"sparse_linear.pt", "collections.OrderedDicx"});
}

TEST_F(CheckpointErrorsTest, HeadWithWrongShape) {
  fs::copy_file(dir_ / "colbert_linear.pt", dir_ / "sparse_linear.pt", fs::copy_options::overwrite_existing);
  ExpectError(StatusCode::kInvalidArgument, {"sparse_linear.pt", "'weight'", "[64,64]"});
}

TEST_F(CheckpointErrorsTest, VocabularyMismatch) {
  EditConfig([](nlohmann::json& c) { c["vocab_size"] = 100; });
  ExpectError(StatusCode::kInvalidArgument, {"embeddings.word_embeddings.weight"});
}

TEST_F(CheckpointErrorsTest, BadOptions) {
  Options o;
  o.batch_size = 0;
  EXPECT_EQ(Embedder::Open(dir_.string(), o).status().code(), StatusCode::kInvalidArgument);
  o = {};
  o.max_length = 1;
  EXPECT_EQ(Embedder::Open(dir_.string(), o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace m3vdb::embedder
