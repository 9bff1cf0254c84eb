// A one-line progress bar on stderr (bytes, rate, ETA), drawn only when
// stderr is a terminal and at most ten times a second.
//
// Thread-safe: Update may be called from several threads.

#ifndef PSTORE_CLIENT_PROGRESS_H_
#define PSTORE_CLIENT_PROGRESS_H_

#include <cstdint>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pstore {

class ProgressBar {
 public:
  // `label` starts the line; `total` is the byte count expected.
  ProgressBar(std::string label, uint64_t total);
  // Ends the line if anything was drawn.
  ~ProgressBar();

  // Sets the bytes done so far.
  void Update(uint64_t done);
  // Adds to the bytes done.
  void Add(uint64_t bytes);

 private:
  void DrawLocked(bool final) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string label_;
  const uint64_t total_;
  const bool enabled_;
  const absl::Time start_;
  absl::Mutex mu_;
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_draw_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool drawn_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace pstore

#endif  // PSTORE_CLIENT_PROGRESS_H_
