// TF32 rounding on the host: the one helper with which the reference and cpu backends emulate the
// operands of TF32 tensor-core products (FactorArithmetic::tf32). TF32 keeps float's 8-bit exponent
// and 10 of its 23 explicit mantissa bits, so a product of two TF32 numbers is exact in float.
#pragma once

#include <cstdint>
#include <cstring>

namespace ngd::detail {

/// x rounded to the nearest TF32 value (10 explicit mantissa bits), ties to even; NaN and Inf
/// unchanged; values that round beyond float's range become Inf, as any float rounding does.
/// (Hardware may round differently, e.g. ties away from zero: the CUDA tests compare with
/// tolerances, not bits.)
inline float round_to_tf32(float x) {
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u) return x;  // NaN, Inf
    // Add half an ulp of TF32 (0x1000 in the 13 dropped bits), less one when the kept lsb is 0
    // (ties to even), then drop the 13 bits; a carry into the exponent is the correct rounding up.
    const std::uint32_t lsb = (bits >> 13) & 1u;
    bits += 0x0fffu + lsb;
    bits &= 0xffffe000u;
    std::memcpy(&x, &bits, sizeof x);
    return x;
}

}  // namespace ngd::detail
