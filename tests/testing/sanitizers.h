// Whether the test binary (and so the pstored it starts, from the same
// build) runs under AddressSanitizer (scripts/test-sanitizers.sh) or
// ThreadSanitizer (scripts/test-tsan.sh).

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

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif

// Under either, a process runs several times slower: loops that repeat a
// scenario for coverage (kill rounds, say) run fewer times.
inline constexpr bool kSanitizer = kAddressSanitizer || kThreadSanitizer;

}  // namespace pstore::testing

#endif  // PSTORE_TESTS_TESTING_SANITIZERS_H_
