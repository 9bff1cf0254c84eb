// Bearer-token authorization of pstored's calls.
//
// Tokens come from a JSON file (--tokens_file), reloaded on SIGHUP:
//
//   {"tokens": [
//     {"name": "loader", "token": "<at least 16 characters>",
//      "scopes": ["read"], "models": ["llama-", "mistral"]},
//     {"name": "ops", "token": "...", "scopes": ["admin"]}]}
//
// Scopes: `read` (get, pull, stat, list, revisions, status), `write` (put,
// delete, create, publish), `admin` (pin, unpin, prefetch, drop-cache,
// verify; and read and write), `peer` (the node-to-node block reads of a
// store many nodes share, pstore.v1.PeerStore: only for the nodes' own
// token, never implied by another scope, and only without `models`).
// `models`, when present, restricts a token to
// models whose names start with one of the prefixes; calls that touch every
// model (drop-cache) need a token without that restriction.
//
// A call presents "authorization: Bearer <token>". No token, or an unknown
// one: UNAUTHENTICATED. A known token without the scope or the model:
// PERMISSION_DENIED. Tokens are compared in constant time and never logged;
// logs name the token by its "name".
//
// Thread-safe: Reload swaps the token table atomically.

#ifndef PSTORE_SERVER_AUTH_H_
#define PSTORE_SERVER_AUTH_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"

namespace pstore {

enum class Scope { kRead, kWrite, kAdmin, kPeer };

// One configured token.
struct TokenGrant {
  std::string name;
  std::string token;
  bool read = false;
  bool write = false;
  bool admin = false;
  bool peer = false;
  std::vector<std::string> model_prefixes;  // Empty: every model.

  // Returns true if the grant allows `scope` on `model` ("" for calls that
  // touch every model).
  bool Allows(Scope scope, absl::string_view model) const;
};

// Parses the JSON token file text. InvalidArgument naming the problem (a
// missing field, an unknown scope, a token shorter than 16 characters, a
// repeated name or token).
absl::StatusOr<std::vector<TokenGrant>> ParseTokens(absl::string_view json);

// Returns true if `a` equals `b`, in time that depends only on the lengths.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

class Authorizer {
 public:
  // Loads `path`. Codes: those of reading the file, as ErrnoToStatus maps
  // them (NotFound if it is missing, PermissionDenied if it may not be
  // read); InvalidArgument for its content (see ParseTokens).
  static absl::StatusOr<std::unique_ptr<Authorizer>> Load(std::string path);

  // Reads the file again, with the codes of Load; on error keeps the
  // current tokens.
  absl::Status Reload();

  // Returns OK if the call's bearer token grants `scope` on `model` (""
  // for calls not about one model); UNAUTHENTICATED or PERMISSION_DENIED
  // otherwise.
  absl::Status Check(const grpc::ServerContextBase& context, Scope scope,
                     absl::string_view model) const;

  // Returns the grant of the call's token, or null (no or unknown token).
  std::shared_ptr<const TokenGrant> GrantOf(
      const grpc::ServerContextBase& context) const;

  size_t size() const;

 private:
  explicit Authorizer(std::string path) : path_(std::move(path)) {}

  const std::string path_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<const TokenGrant>> grants_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pstore

#endif  // PSTORE_SERVER_AUTH_H_
