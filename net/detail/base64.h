// Base64 (RFC 4648, standard alphabet, padded) and the "dense_b64" float encoding: the bytes of
// little-endian IEEE-754 float32 values, base64-encoded.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "m3vdb/status.h"

namespace m3vdb::net::detail {

std::string EncodeBase64(std::span<const unsigned char> bytes);
// InvalidArgument when `text` is not padded base64 (length a multiple of 4, alphabet A-Z a-z 0-9 + /).
Result<std::string> DecodeBase64(std::string_view text);

// `values` as little-endian float32 bytes, base64-encoded.
std::string EncodeFloatsBase64(std::span<const float> values);
// The inverse; InvalidArgument when the bytes are not base64 or not a multiple of 4.
Result<std::vector<float>> DecodeFloatsBase64(std::string_view text);

}  // namespace m3vdb::net::detail
