// Run-time checks of x86 instruction-set extensions the SIMD kernels need
// beyond what __builtin_cpu_supports names on every compiler we build with
// (clang before 16 does not know "f16c").
//
// Pure functions; thread-safe.

#ifndef PSTORE_CODEC_INTERNAL_CPU_FEATURES_H_
#define PSTORE_CODEC_INTERNAL_CPU_FEATURES_H_

#include <cpuid.h>

namespace pstore::codec_internal {

// Returns true if the CPU has the F16C half-precision conversions (CPUID
// leaf 1, ECX bit 29). They use the AVX register state, which the callers
// check the OS saves through __builtin_cpu_supports("avx2").
inline bool CpuHasF16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}

}  // namespace pstore::codec_internal

#endif  // PSTORE_CODEC_INTERNAL_CPU_FEATURES_H_
