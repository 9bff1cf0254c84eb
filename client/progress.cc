#include "client/progress.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "util/units.h"

namespace pstore {

ProgressBar::ProgressBar(std::string label, uint64_t total)
    : label_(std::move(label)),
      total_(total),
      enabled_(isatty(STDERR_FILENO) == 1),
      start_(absl::Now()) {}

ProgressBar::~ProgressBar() {
  absl::MutexLock lock(&mu_);
  if (drawn_) {
    DrawLocked(/*final=*/true);
    std::fputc('\n', stderr);
  }
}

void ProgressBar::Update(uint64_t done) {
  if (!enabled_) return;
  absl::MutexLock lock(&mu_);
  done_ = done;
  DrawLocked(/*final=*/false);
}

void ProgressBar::Add(uint64_t bytes) {
  if (!enabled_) return;
  absl::MutexLock lock(&mu_);
  done_ += bytes;
  DrawLocked(/*final=*/false);
}

void ProgressBar::DrawLocked(bool final) {
  absl::Time now = absl::Now();
  if (!final && now - last_draw_ < absl::Milliseconds(100)) return;
  last_draw_ = now;
  drawn_ = true;
  double seconds = std::max(1e-3, absl::ToDoubleSeconds(now - start_));
  double rate = done_ / seconds;
  std::string eta = "--";
  if (rate > 0 && total_ >= done_) {
    eta = absl::StrFormat("%.0fs", (total_ - done_) / rate);
  }
  int percent = total_ == 0 ? 100 : static_cast<int>(100.0 * done_ / total_);
  std::fprintf(stderr, "\r%s %3d%% %s / %s  %s/s  ETA %s\033[K", label_.c_str(),
               percent, FormatBytes(done_).c_str(), FormatBytes(total_).c_str(),
               FormatBytes(static_cast<uint64_t>(rate)).c_str(), eta.c_str());
  std::fflush(stderr);
}

}  // namespace pstore
