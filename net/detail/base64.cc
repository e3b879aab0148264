#include "net/detail/base64.h"

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

namespace m3vdb::net::detail {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return table;
}
constexpr std::array<int8_t, 256> kDecode = MakeDecodeTable();

uint32_t ToLittleEndian(uint32_t v) { return std::endian::native == std::endian::little ? v : __builtin_bswap32(v); }

}  // namespace

std::string EncodeBase64(std::span<const unsigned char> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (rest == 2 ? uint32_t{bytes[i + 1]} << 8 : 0);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> DecodeBase64(std::string_view text) {
  if (text.size() % 4 != 0)
    return Status::InvalidArgument("base64 text has " + std::to_string(text.size()) +
                                   " characters, not a multiple of 4");
  size_t padding = 0;
  if (!text.empty() && text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  std::string out(text.size() / 4 * 3, '\0');
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  char* o = out.data();
  for (size_t i = 0; i < text.size(); i += 4, o += 3) {
    int8_t d[4] = {kDecode[in[i]], kDecode[in[i + 1]], kDecode[in[i + 2]], kDecode[in[i + 3]]};
    if ((d[0] | d[1] | d[2] | d[3]) < 0) {  // an invalid character, or the padding of the last group
      for (size_t j = 0; j < 4; ++j) {
        if (d[j] >= 0) continue;
        if (in[i + j] == '=' && i + 4 == text.size() && j >= 4 - padding) {
          d[j] = 0;
          continue;
        }
        return Status::InvalidArgument("base64 text has an invalid character at position " + std::to_string(i + j));
      }
    }
    const uint32_t v = (uint32_t(d[0]) << 18) | (uint32_t(d[1]) << 12) | (uint32_t(d[2]) << 6) | uint32_t(d[3]);
    o[0] = static_cast<char>(v >> 16);
    o[1] = static_cast<char>((v >> 8) & 0xff);
    o[2] = static_cast<char>(v & 0xff);
  }
  out.resize(out.size() - padding);
  return out;
}

std::string EncodeFloatsBase64(std::span<const float> values) {
  std::string bytes(values.size() * 4, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const uint32_t le = ToLittleEndian(std::bit_cast<uint32_t>(values[i]));
    std::memcpy(bytes.data() + 4 * i, &le, 4);
  }
  return EncodeBase64({reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()});
}

Result<std::vector<float>> DecodeFloatsBase64(std::string_view text) {
  M3VDB_ASSIGN_OR_RETURN(std::string bytes, DecodeBase64(text));
  if (bytes.size() % 4 != 0)
    return Status::InvalidArgument("base64 data has " + std::to_string(bytes.size()) +
                                   " bytes, not a multiple of 4 (float32 values)");
  std::vector<float> values(bytes.size() / 4);
  if constexpr (std::endian::native == std::endian::little) {
    if (!values.empty()) std::memcpy(values.data(), bytes.data(), bytes.size());
    return values;
  }
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t le;
    std::memcpy(&le, bytes.data() + 4 * i, 4);
    values[i] = std::bit_cast<float>(ToLittleEndian(le));
  }
  return values;
}

}  // namespace m3vdb::net::detail
