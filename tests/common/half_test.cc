#include "common/half.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace m3vdb {
namespace {

TEST(HalfTest, KnownValues) {
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);                  // largest finite half
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);                  // rounds to +inf
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);     // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -26)), 0x0000);     // below half of it: zero
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
}

// Every finite half converts to a float and back to the same bits.
TEST(HalfTest, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaN payloads
    EXPECT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

// Round to nearest, ties to even: the midpoint between two adjacent halves goes to the even one,
// anything past the midpoint to the nearer one.
TEST(HalfTest, RoundsToNearestEven) {
  for (uint32_t h = 0x0001; h < 0x7bff; h += 37) {
    const float lo = HalfToFloat(static_cast<uint16_t>(h)), hi = HalfToFloat(static_cast<uint16_t>(h + 1));
    const float mid = lo + (hi - lo) / 2;
    EXPECT_EQ(FloatToHalf(mid), (h % 2 == 0) ? h : h + 1) << std::hex << h;
    EXPECT_EQ(FloatToHalf(std::nextafter(mid, hi)), h + 1);
    EXPECT_EQ(FloatToHalf(std::nextafter(mid, lo)), h);
  }
}

}  // namespace
}  // namespace m3vdb
