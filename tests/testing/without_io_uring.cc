// without_io_uring: runs a command in a process where io_uring_setup fails
// with EPERM, as it does in containers whose seccomp profile refuses
// io_uring (Docker's default since 25.0, many Kubernetes runtimes).
//
//   without_io_uring PROGRAM [ARG...]
//
// Sets no_new_privs, installs a seccomp filter that answers io_uring_setup
// with EPERM and allows every other system call, checks that io_uring_setup
// is now refused, and execs PROGRAM. Exits 125 if it cannot set this up,
// 126 if PROGRAM cannot be run; otherwise the exit status is PROGRAM's.

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace {

#if defined(__x86_64__)
constexpr unsigned kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "without_io_uring: unknown architecture"
#endif

// Installs the filter. Returns false with errno set on failure.
bool DenyIoUringSetup() {
  struct sock_filter filter[] = {
      // A call made under another ABI (e.g. 32-bit on x86-64) would be
      // matched against the wrong numbers: refuse it outright.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog program = {
      .len = static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])),
      .filter = filter,
  };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: without_io_uring PROGRAM [ARG...]\n");
    return 125;
  }
  if (!DenyIoUringSetup()) {
    std::fprintf(stderr, "without_io_uring: cannot install the filter: %s\n",
                 std::strerror(errno));
    return 125;
  }
  io_uring_params params;
  std::memset(&params, 0, sizeof(params));
  long fd = syscall(__NR_io_uring_setup, 1, &params);
  if (fd >= 0 || errno != EPERM) {
    std::fprintf(stderr,
                 "without_io_uring: io_uring_setup still works (fd %ld, %s)\n",
                 fd, std::strerror(errno));
    return 125;
  }
  execv(argv[1], argv + 1);
  std::fprintf(stderr, "without_io_uring: cannot run %s: %s\n", argv[1],
               std::strerror(errno));
  return 126;
}
