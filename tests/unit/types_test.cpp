// f16/bf16 conversions: round to nearest even, exactly as the hardware converts.
#include "mtile/types.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace mtile;

TEST(Types, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties go to even (1.0).
  EXPECT_EQ(bf16_bits_to_f32(f32_to_bf16_bits(1.0f + 0x1p-8f)), 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1.0078125 (odd) and 1.015625 (even): goes up.
  EXPECT_EQ(bf16_bits_to_f32(f32_to_bf16_bits(1.0f + 3 * 0x1p-8f)), 1.015625f);
  EXPECT_EQ(bf16_bits_to_f32(f32_to_bf16_bits(1.0f + 0x1p-8f + 0x1p-20f)), 1.0078125f);
  EXPECT_TRUE(std::isnan(bf16_bits_to_f32(f32_to_bf16_bits(NAN))));
}

TEST(Types, F16RoundsToNearestEvenAndSaturatesToInf) {
  EXPECT_EQ(f16_bits_to_f32(f32_to_f16_bits(1.0f + 0x1p-11f)), 1.0f);                // tie to even
  EXPECT_EQ(f16_bits_to_f32(f32_to_f16_bits(1.0f + 3 * 0x1p-11f)), 1.0f + 0x1p-9f);  // tie to even (up)
  EXPECT_EQ(f16_bits_to_f32(f32_to_f16_bits(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(f16_bits_to_f32(f32_to_f16_bits(65520.0f))));
  EXPECT_EQ(f16_bits_to_f32(f32_to_f16_bits(0x1p-24f)), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(f16_bits_to_f32(f32_to_f16_bits(0x1p-26f)), 0.0f);      // below half of it
  EXPECT_EQ(f32_to_f16_bits(-2.0f), 0xc000);
}

TEST(Types, F16RoundTripOfEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t bits = static_cast<uint16_t>(h);
    float f = f16_bits_to_f32(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16_bits(f), bits) << "f16 bits " << h;
  }
}
