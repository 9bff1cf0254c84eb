// Whether the test binary (and so the pstored it starts, from the same
// build) runs under AddressSanitizer (scripts/test-sanitizers.sh).

#ifndef PSTORE_TESTS_TESTING_SANITIZERS_H_
#define PSTORE_TESTS_TESTING_SANITIZERS_H_

namespace pstore::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_SANITIZERS_H_
