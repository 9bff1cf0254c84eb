// Whole models as people keep them, over pstore::Client: a model directory
// (safetensors shards, their index, config, tokenizer, any other file)
// imported as one revision and pulled back as the same directory, and pulls
// into files or directories that resume where an earlier one stopped.
//
// A revision imported from a directory holds three kinds of entry
// (v1::EntryKind): the tensors of every shard; each shard's header (its
// first bytes: the 8-byte length and the JSON header exactly as they were,
// with the shard's __metadata__ and layout) named by the shard's path; and
// every other file, named by its path. A pull writes each shard as its
// header then its tensors at the offsets the header gives, so a raw pull
// gives back every file byte for byte.
//
// Resume: a pull checks what its output files (FILE.tmp left by a pull that
// stopped, or FILE from an earlier one) already hold against the stored
// blocks' XXH3-128 ids and fetches only the blocks that are missing or
// wrong. Bytes sent raw (every raw pull; files, integer tensors and
// tensors an encoding does not apply to in any pull) are checked by block;
// bytes converted on the server (f16, bf16, f32) cannot be, and are fetched
// again. Every file is written as NAME.tmp, synced, and renamed over NAME
// once all of the pull is in place, so a reader never sees a half-written
// file; a pull that fails or is killed leaves its NAME.tmp files for the
// next one.
//
// Thread safety: each call is independent; the Client may be shared.

#ifndef PSTORE_CLIENT_MODEL_DIR_H_
#define PSTORE_CLIENT_MODEL_DIR_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/pstore_client.h"
#include "pstore/v1/pstore.pb.h"

namespace pstore {

struct ImportOptions {
  // Publish the revision once everything is in. Default: false.
  bool publish = false;
  // Puts in flight at once. Default: 4.
  int jobs = 4;
  // Called with the bytes stored so far and the total, from the put
  // threads; calls are serialized. Optional.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct ImportResult {
  v1::Revision revision;  // As created (published if asked).
  int shards = 0;
  int tensors = 0;
  int files = 0;       // Files other than shards (the index among them).
  uint64_t bytes = 0;  // Of every file of the directory.
  // Paths left out: a .git directory, NAME.tmp files (a pull that stopped
  // left them).
  std::vector<std::string> skipped;
};

// Imports model directory `dir` as new revision `revision` ("MODEL@REV"):
// every *.safetensors file under it as a shard (its tensors, and its header
// as a shard header), every other regular file as a file, named by its path
// relative to `dir` with '/' between parts (a symbolic link by its own
// name); a .git directory and NAME.tmp files are left out.
// Each *.safetensors.index.json is checked before anything is stored: every
// tensor its weight_map names must be in the shard it names, which must
// exist, and every tensor of the shards it names must be in it. Returns
// what was stored. InvalidArgument, storing nothing, for an index that
// fails those checks, a shard that is not valid safetensors, a tensor in
// two shards, a tensor whose name is also a file's, or an entry that is
// neither a regular file nor a directory; AlreadyExists if the revision
// exists; the codes of the puts else (a failed put leaves the revision
// open with what was stored). Files and headers are put before tensors.
absl::StatusOr<ImportResult> ImportDirectory(Client& client,
                                             const std::string& dir,
                                             absl::string_view revision,
                                             const ImportOptions& options = {});

// Imports GGUF file `path` as new revision `revision`: F32, F16, BF16 (and
// F64, I8, I16, I32, I64) tensors as tensors of those dtypes and their
// shapes; Q8_0 and Q4_0 tensors as their blocks (U8, one dimension); the
// file's header (metadata with its types, each tensor's ggml type, dims
// and offset) as a shard header entry named by the file's name; every
// metadata value but arrays as the revision's metadata (strings as they
// are, numbers in decimal, booleans as true or false). A pull of the
// revision to a .gguf file writes that metadata and those types back;
// into a directory, the file as it was. InvalidArgument, storing nothing,
// for a tensor of any other type (named in the message).
absl::StatusOr<ImportResult> ImportGguf(Client& client, const std::string& path,
                                        absl::string_view revision,
                                        const ImportOptions& options = {});

// Imports safetensors file `path` as new revision `revision`: its tensors,
// with the file's __metadata__ as the revision's metadata (the header
// itself is not kept: a pull lays the file out again as the safetensors
// crate does). InvalidArgument, storing nothing, for a file that is not
// valid safetensors; AlreadyExists if the revision exists; the codes of the
// puts else.
absl::StatusOr<ImportResult> ImportSafetensors(
    Client& client, const std::string& path, absl::string_view revision,
    const ImportOptions& options = {});

// Imports `path` as new revision `revision`: as ImportDirectory for a
// directory, ImportGguf for a file whose name ends in ".gguf", else as
// ImportSafetensors. What pstore-cli import and the Python package call.
absl::StatusOr<ImportResult> ImportPath(Client& client, const std::string& path,
                                        absl::string_view revision,
                                        const ImportOptions& options = {});

struct PullToOptions {
  // "raw", "f32", "f16" or "bf16"; a .gguf file also takes "q8_0" and
  // "q4_0". Default: "raw".
  std::string encoding = "raw";
  // Parallel streams. Default: 4.
  int streams = 4;
  // Called with the bytes in place so far (reused ones first) and the
  // total; calls are serialized. Optional.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct PullToResult {
  v1::Revision revision;  // The manifest, revision resolved.
  int files = 0;          // Files written or found complete.
  uint64_t bytes = 0;     // Of every file.
  // Bytes found in place and good (by block), and bytes received.
  uint64_t reused_bytes = 0;
  uint64_t fetched_bytes = 0;
};

// Pulls revision `name` ("MODEL" for the latest, or "MODEL@REV") into
// directory `dir` (created if missing), resuming from what is there: each
// shard byte-identical to the one imported (in a raw pull), each file, and,
// for a revision of tensors only, model.safetensors. With an encoding each
// shard is written anew with the tensors as sent (its header says so) and
// each index's total_size matches. Files of `dir` that the revision lacks
// are left alone. InvalidArgument for q8_0/q4_0 (safetensors has no such
// type) and for a revision whose tensors and files clash in name;
// DataLoss for bytes that fail a check; the client's codes else.
absl::StatusOr<PullToResult> PullToDirectory(Client& client,
                                             absl::string_view name,
                                             const std::string& dir,
                                             const PullToOptions& options = {});

// Pulls the tensors of revision `name` into one file at `path`: GGUF for a
// path ending in ".gguf", else safetensors (the revision's metadata as its
// __metadata__), resuming from what `path`.tmp or `path` holds. Files and
// shard headers of the revision are left out. InvalidArgument if the file
// type cannot hold what the pull sends.
absl::StatusOr<PullToResult> PullToFile(Client& client, absl::string_view name,
                                        const std::string& path,
                                        const PullToOptions& options = {});

// Returns whether a pull of `revision` into `path` goes into a directory
// (PullToDirectory) rather than a file (PullToFile): a path that is a
// directory or ends in '/', or, for a revision imported from a directory,
// a path that does not exist and does not end in ".safetensors" or
// ".gguf". What pstore-cli pull and the Python package decide by.
bool IsPullDirectory(const std::string& path, const v1::Revision& revision);

// Returns whether revision `revision` holds files or shard headers (it was
// imported from a directory).
bool HoldsModelDirectory(const v1::Revision& revision);

}  // namespace pstore

#endif  // PSTORE_CLIENT_MODEL_DIR_H_
