// The io_uring engine. One ring; any thread prepares and submits under mu_
// (so the submission queue has one writer at a time), and one completion
// thread reaps completions, resubmits the remainder of short or interrupted
// transfers, runs callbacks and submits queued I/O as slots free. At most
// queue_depth I/Os are in the kernel; the rest wait in pending_, so a caller
// of ReadAsync never blocks on a full ring.
//
// When io_uring_submit fails for good, the I/Os whose entries the kernel did
// not take, and those waiting behind them, complete with its error on the
// thread that submitted. Their entries become NOPs whose completions are
// ignored: they stay in the submission queue (liburing has published them to
// the kernel) and go with the next submission, so they must not start the
// I/O their callers were told had failed. When io_uring_wait_cqe keeps failing,
// the completion thread waits a little longer before each retry, up to
// kMaxWaitBackoff, and logs the first failure and the recovery of each streak.

#include <liburing.h>
#include <pthread.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/config.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"
#include "storage/nvme/device.h"
#include "storage/nvme/internal/region_files.h"
#include "util/status.h"

#ifdef ABSL_HAVE_THREAD_SANITIZER
#include <sanitizer/tsan_interface.h>
#endif

namespace pstore::nvme_internal {
namespace {

// user_data of the NOP that tells the completion thread to stop.
constexpr uint64_t kShutdownTag = ~uint64_t{0};

// user_data of an entry whose I/O failed before the kernel took it: its
// completion is ignored.
constexpr uint64_t kIgnoredTag = ~uint64_t{0} - 1;

// Resubmissions of one I/O that failed with EAGAIN or EINTR before giving
// up, and attempts of io_uring_submit that fail the same way.
constexpr int kMaxRetries = 100;

// Most completions reaped per wake-up.
constexpr unsigned kReapBatch = 64;

// Largest queue depth accepted; the kernel caps rings at 32768 entries.
constexpr uint32_t kMaxQueueDepth = 4096;

// Wait after the first failure of io_uring_wait_cqe in a row, doubled after
// each further one up to the maximum.
constexpr absl::Duration kMinWaitBackoff = absl::Milliseconds(1);
constexpr absl::Duration kMaxWaitBackoff = absl::Milliseconds(100);

// One read or write from submission to its last completion.
struct Op {
  bool write = false;
  uint32_t region = 0;
  uint64_t offset = 0;        // Of the next byte to transfer.
  std::vector<iovec> iovecs;  // The bytes still to transfer.
  int retries = 0;
  IoCallback done;
};

// A callback to run, outside mu_, with its outcome.
using Completion = std::pair<IoCallback, absl::Status>;

// Runs and clears `completions`.
void RunCompletions(std::vector<Completion>& completions) {
  for (auto& [done, status] : completions) std::move(done)(std::move(status));
  completions.clear();
}

// The kernel takes an entry at io_uring_submit and posts its completion
// after that, so whatever the submitting thread wrote to an Op happens
// before the completion thread reads the completion that names it.
// ThreadSanitizer cannot see that order through the rings shared with the
// kernel, so under TSan handing an Op to the kernel releases it and taking
// it back acquires it; other builds compile these to nothing.
void HandToKernel([[maybe_unused]] Op* op) {
#ifdef ABSL_HAVE_THREAD_SANITIZER
  __tsan_release(op);
#endif
}
void TakeFromKernel([[maybe_unused]] Op* op) {
#ifdef ABSL_HAVE_THREAD_SANITIZER
  __tsan_acquire(op);
#endif
}

class IoUringDevice final : public Device {
 public:
  explicit IoUringDevice(const DeviceOptions& options)
      : Device(options.num_regions, options.region_bytes),
        queue_depth_(
            std::clamp<uint32_t>(options.queue_depth, 1, kMaxQueueDepth)),
        faults_(options.io_uring_faults) {}

  ~IoUringDevice() override {
    if (!ring_ready_) return;
    if (completion_thread_.joinable()) {
      absl::MutexLock lock(&mu_);
      auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return in_flight_ == 0 && pending_.empty();
      };
      mu_.Await(absl::Condition(&idle));
      // Nothing is in flight, so the submission queue has room.
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, kShutdownTag);
      std::vector<Completion> failed;
      SubmitLocked(failed);  // Fails no I/O: none is left.
    }
    if (completion_thread_.joinable()) completion_thread_.join();
    io_uring_queue_exit(&ring_);
  }

  // Sets up the ring. The errno status of io_uring_queue_init on failure.
  absl::Status InitRing() {
    int ret = io_uring_queue_init(queue_depth_, &ring_, 0);
    if (ret < 0) return ErrnoToStatus(-ret, "io_uring_queue_init");
    ring_ready_ = true;
    return absl::OkStatus();
  }

  // Takes the region files, registers them with the ring where the kernel
  // allows it, and starts the completion thread.
  void Start(RegionFiles files) {
    files_ = std::move(files);
    const std::vector<int>& fds = files_.fds();
    // Fixed files save a file-table lookup per I/O; plain descriptors work
    // as well, so a refusal only costs that.
    registered_files_ =
        io_uring_register_files(&ring_, fds.data(),
                                static_cast<unsigned>(fds.size())) == 0;
    completion_thread_ = std::thread([this] { CompletionLoop(); });
    pthread_setname_np(completion_thread_.native_handle(), "nvme-uring");
  }

  bool uses_io_uring() const override { return true; }

 protected:
  void ReadImpl(std::vector<DeviceRead> reads) override {
    std::vector<Op*> ops;
    ops.reserve(reads.size());
    for (DeviceRead& read : reads) {
      auto* op = new Op;
      op->region = read.region;
      op->offset = read.offset;
      op->iovecs.push_back(iovec{read.dest.data(), read.dest.size()});
      op->done = std::move(read.done);
      ops.push_back(op);
    }
    Enqueue(ops);
  }

  absl::Status WriteImpl(
      uint32_t region, uint64_t offset,
      std::span<const std::span<const uint8_t>> spans) override {
    absl::Notification finished;
    absl::Status result;
    auto* op = new Op;
    op->write = true;
    op->region = region;
    op->offset = offset;
    op->iovecs = ToIovecs(spans);
    op->done = [&](absl::Status status) {
      result = std::move(status);
      finished.Notify();
    };
    Op* ops[] = {op};
    Enqueue(ops);
    finished.WaitForNotification();
    return result;
  }

  absl::Status SyncImpl() override { return files_.SyncAll(); }

 private:
  // Queues `ops` behind those already waiting and submits what fits. Runs
  // the callbacks of ops whose submission failed.
  void Enqueue(std::span<Op* const> ops) {
    std::vector<Completion> failed;
    {
      absl::MutexLock lock(&mu_);
      pending_.insert(pending_.end(), ops.begin(), ops.end());
      SubmitPendingLocked(failed);
    }
    RunCompletions(failed);
  }

  // Moves waiting ops into the ring while slots are free, then submits them
  // with one system call. Appends to `failed` the ops whose submission
  // failed, for the caller to run once it has released mu_.
  void SubmitPendingLocked(std::vector<Completion>& failed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (!pending_.empty() && in_flight_ < queue_depth_) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) break;  // Unsubmitted entries fill the queue.
      Op* op = pending_.front();
      pending_.pop_front();
      Prepare(sqe, op);
      ++in_flight_;
    }
    if (io_uring_sq_ready(&ring_) > 0) SubmitLocked(failed);
  }

  void Prepare(io_uring_sqe* sqe, Op* op) {
    int fd = registered_files_ ? static_cast<int>(op->region)
                               : files_.fd(op->region);
    unsigned count =
        static_cast<unsigned>(std::min<size_t>(op->iovecs.size(), IOV_MAX));
    if (op->write) {
      io_uring_prep_writev(sqe, fd, op->iovecs.data(), count, op->offset);
    } else {
      io_uring_prep_readv(sqe, fd, op->iovecs.data(), count, op->offset);
    }
    if (registered_files_) io_uring_sqe_set_flags(sqe, IOSQE_FIXED_FILE);
    io_uring_sqe_set_data64(sqe, reinterpret_cast<uint64_t>(op));
    HandToKernel(op);
  }

  // Hands prepared entries to the kernel. Entries it did not take after a
  // short submission stay in the queue and go with the next one (the
  // completion thread submits after every batch it reaps). If the
  // submission fails for good, appends to `failed`, with its error, the ops
  // of the entries it did not take, whose entries it neutralizes, and the
  // ops waiting in pending_: they would fail the same way, and with
  // nothing in flight no completion would come to submit them.
  void SubmitLocked(std::vector<Completion>& failed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int ret = 0;
    for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
      ret = faults_.before_submit ? faults_.before_submit() : 0;
      if (ret == 0) ret = io_uring_submit(&ring_);
      if (ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) break;
    }
    if (ret >= 0) return;
    absl::Status error = ErrnoToStatus(-ret, "io_uring_submit");
    int failed_ops = FailUnsubmittedLocked(error, failed);
    for (Op* op : pending_) {
      failed.emplace_back(std::move(op->done), Annotate(error, Describe(*op)));
      delete op;
      ++failed_ops;
    }
    pending_.clear();
    spdlog::error("event=io_uring_submit_failed ios_failed={} status=\"{}\"",
                  failed_ops, error.ToString());
  }

  // Appends to `failed`, with `error`, the op of every entry the kernel has
  // not taken, and turns those entries into NOPs whose completions are
  // ignored. Returns the number of ops failed.
  int FailUnsubmittedLocked(const absl::Status& error,
                            std::vector<Completion>& failed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // Without SQPOLL the kernel moves the head only inside io_uring_enter,
    // which has returned: the entries from head to tail are ours to edit.
    const unsigned head = io_uring_smp_load_acquire(ring_.sq.khead);
    int count = 0;
    for (unsigned i = head; i != ring_.sq.sqe_tail; ++i) {
      io_uring_sqe* sqe = &ring_.sq.sqes[i & ring_.sq.ring_mask];
      const uint64_t tag = sqe->user_data;
      if (tag == kShutdownTag || tag == kIgnoredTag) continue;
      Op* op = reinterpret_cast<Op*>(tag);
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, kIgnoredTag);
      --in_flight_;
      failed.emplace_back(std::move(op->done), Annotate(error, Describe(*op)));
      delete op;
      ++count;
    }
    return count;
  }

  // Waits for a completion as io_uring_wait_cqe does, unless a fault says
  // otherwise.
  int WaitCqe(io_uring_cqe** cqe) {
    int ret = faults_.before_wait ? faults_.before_wait() : 0;
    if (ret != 0) return ret;
    return io_uring_wait_cqe(&ring_, cqe);
  }

  // Returns "io_uring read <dir>/region-000003.dat at 8192" for messages.
  std::string Describe(const Op& op) const {
    return absl::StrCat(op.write ? "io_uring write " : "io_uring read ",
                        files_.path(op.region), " at ", op.offset);
  }

  void CompletionLoop() {
    std::vector<Completion> finished;
    std::vector<Op*> again;
    io_uring_cqe* cqes[kReapBatch];
    bool stop = false;
    // Failures of io_uring_wait_cqe in a row, and the wait before the next
    // attempt.
    int wait_failures = 0;
    absl::Duration backoff = kMinWaitBackoff;
    while (!stop) {
      io_uring_cqe* first = nullptr;
      int ret = WaitCqe(&first);
      if (ret == -EINTR) continue;  // A signal: wait again.
      if (ret < 0) {
        if (wait_failures++ == 0) {
          spdlog::error(
              "event=io_uring_wait_failed action=\"retrying with backoff\" "
              "status=\"{}\"",
              ErrnoToStatus(-ret, "io_uring_wait_cqe").ToString());
        }
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, kMaxWaitBackoff);
        continue;
      }
      if (wait_failures > 0) {
        spdlog::info("event=io_uring_wait_recovered failures={}",
                     wait_failures);
        wait_failures = 0;
        backoff = kMinWaitBackoff;
      }
      unsigned reaped = io_uring_peek_batch_cqe(&ring_, cqes, kReapBatch);
      uint32_t freed = 0;
      for (unsigned i = 0; i < reaped; ++i) {
        uint64_t tag = io_uring_cqe_get_data64(cqes[i]);
        int res = cqes[i]->res;
        if (tag == kShutdownTag) {
          stop = true;
          continue;
        }
        if (tag == kIgnoredTag) continue;
        ++freed;
        Op* op = reinterpret_cast<Op*>(tag);
        TakeFromKernel(op);
        absl::Status status = Advance(*op, res);
        if (status.ok() && !op->iovecs.empty()) {
          again.push_back(op);  // Short or interrupted: resubmit the rest.
          continue;
        }
        finished.emplace_back(std::move(op->done), std::move(status));
        delete op;
      }
      io_uring_cq_advance(&ring_, reaped);
      {
        absl::MutexLock lock(&mu_);
        in_flight_ -= freed;
        // Resumed transfers go first: they are the oldest.
        pending_.insert(pending_.begin(), again.begin(), again.end());
        SubmitPendingLocked(finished);
      }
      again.clear();
      RunCompletions(finished);
    }
  }

  // Applies completion result `res` to `op`: OK with op.iovecs empty when
  // the transfer is done, OK with bytes left to resubmit, or an error.
  absl::Status Advance(Op& op, int res) {
    if (res == -EAGAIN || res == -EINTR) {
      if (++op.retries < kMaxRetries) return absl::OkStatus();
      return ErrnoToStatus(-res, Describe(op));
    }
    if (res < 0) return ErrnoToStatus(-res, Describe(op));
    if (res == 0) {
      if (op.write) {
        return ErrnoToStatus(EIO, absl::StrCat(Describe(op), " wrote nothing"));
      }
      return absl::DataLossError(
          absl::StrCat(Describe(op), ": the file ends there"));
    }
    op.offset += static_cast<uint64_t>(res);
    AdvanceIovecs(op.iovecs, static_cast<size_t>(res));
    return absl::OkStatus();
  }

  const uint32_t queue_depth_;
  const IoUringFaults faults_;
  io_uring ring_{};
  bool ring_ready_ = false;
  bool registered_files_ = false;
  RegionFiles files_;

  absl::Mutex mu_;
  uint32_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<Op*> pending_ ABSL_GUARDED_BY(mu_);

  std::thread completion_thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Device>> MakeIoUringDevice(
    RegionFiles& files, const DeviceOptions& options) {
  auto device = std::make_unique<IoUringDevice>(options);
  PSTORE_RETURN_IF_ERROR(device->InitRing());
  device->Start(std::move(files));
  return device;
}

}  // namespace pstore::nvme_internal
