#include "server/auth.h"

#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "util/file_io.h"
#include "util/status.h"

namespace pstore {
namespace {

constexpr size_t kMinTokenLength = 16;
constexpr absl::string_view kBearer = "Bearer ";

absl::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kRead:
      return "read";
    case Scope::kWrite:
      return "write";
    case Scope::kAdmin:
      return "admin";
    case Scope::kPeer:
      return "peer";
  }
  return "unknown";
}

// Returns the bearer token of the call, or the empty string.
std::string BearerToken(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return "";
  absl::string_view value(it->second.data(), it->second.size());
  if (!absl::StartsWith(value, kBearer)) return "";
  return std::string(value.substr(kBearer.size()));
}

}  // namespace

bool TokenGrant::Allows(Scope scope, absl::string_view model) const {
  // A peer reads any block by its id, whatever model names it: only a
  // grant of that scope itself, for every model, allows it.
  if (scope == Scope::kPeer) return peer && model_prefixes.empty();
  bool scoped = admin || (scope == Scope::kRead && read) ||
                (scope == Scope::kWrite && write);
  if (!scoped) return false;
  if (model_prefixes.empty()) return true;
  if (model.empty()) return false;
  for (const std::string& prefix : model_prefixes) {
    if (absl::StartsWith(model, prefix)) return true;
  }
  return false;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  size_t length = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < length; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

absl::StatusOr<std::vector<TokenGrant>> ParseTokens(absl::string_view text) {
  nlohmann::json json = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                              /*allow_exceptions=*/false);
  auto invalid = [](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("tokens file: ", what));
  };
  if (json.is_discarded() || !json.is_object()) {
    return invalid("not a JSON object");
  }
  auto tokens = json.find("tokens");
  if (tokens == json.end() || !tokens->is_array()) {
    return invalid("no \"tokens\" array");
  }
  std::vector<TokenGrant> grants;
  std::set<std::string> names;
  for (size_t i = 0; i < tokens->size(); ++i) {
    const nlohmann::json& entry = (*tokens)[i];
    std::string where = absl::StrCat("token #", i + 1);
    if (!entry.is_object())
      return invalid(absl::StrCat(where, " is not an object"));
    TokenGrant grant;
    auto name = entry.find("name");
    auto token = entry.find("token");
    auto scopes = entry.find("scopes");
    if (name == entry.end() || !name->is_string() ||
        name->get_ref<const std::string&>().empty()) {
      return invalid(absl::StrCat(where, " has no \"name\""));
    }
    grant.name = name->get<std::string>();
    where = absl::StrCat("token '", grant.name, "'");
    if (!names.insert(grant.name).second) {
      return invalid(absl::StrCat(where, " is named twice"));
    }
    if (token == entry.end() || !token->is_string() ||
        token->get_ref<const std::string&>().size() < kMinTokenLength) {
      return invalid(absl::StrCat(where, " needs a \"token\" of at least ",
                                  kMinTokenLength, " characters"));
    }
    grant.token = token->get<std::string>();
    if (scopes == entry.end() || !scopes->is_array() || scopes->empty()) {
      return invalid(absl::StrCat(where, " needs \"scopes\""));
    }
    for (const nlohmann::json& scope : *scopes) {
      std::string value = scope.is_string() ? scope.get<std::string>() : "";
      if (value == "read") {
        grant.read = true;
      } else if (value == "write") {
        grant.write = true;
      } else if (value == "admin") {
        grant.admin = true;
      } else if (value == "peer") {
        grant.peer = true;
      } else {
        return invalid(absl::StrCat(where, " has scope '", value,
                                    "': want read, write, admin or peer"));
      }
    }
    if (auto models = entry.find("models"); models != entry.end()) {
      if (!models->is_array()) {
        return invalid(absl::StrCat(where, ": \"models\" is not a list"));
      }
      for (const nlohmann::json& prefix : *models) {
        if (!prefix.is_string() ||
            prefix.get_ref<const std::string&>().empty()) {
          return invalid(absl::StrCat(where, " has an empty model prefix"));
        }
        grant.model_prefixes.push_back(prefix.get<std::string>());
      }
    }
    for (const TokenGrant& other : grants) {
      if (ConstantTimeEquals(other.token, grant.token)) {
        return invalid(
            absl::StrCat(where, " repeats the token of '", other.name, "'"));
      }
    }
    grants.push_back(std::move(grant));
  }
  return grants;
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::Load(std::string path) {
  std::unique_ptr<Authorizer> authorizer(new Authorizer(std::move(path)));
  absl::Status loaded = authorizer->Reload();
  if (!loaded.ok()) return loaded;
  return authorizer;
}

absl::Status Authorizer::Reload() {
  absl::StatusOr<std::string> text = ReadFileToString(path_);
  if (!text.ok()) return Annotate(text.status(), "tokens file");
  absl::StatusOr<std::vector<TokenGrant>> grants = ParseTokens(*text);
  if (!grants.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", grants.status().message()));
  }
  std::vector<std::shared_ptr<const TokenGrant>> shared;
  for (TokenGrant& grant : *grants) {
    shared.push_back(std::make_shared<const TokenGrant>(std::move(grant)));
  }
  absl::MutexLock lock(&mu_);
  grants_ = std::move(shared);
  return absl::OkStatus();
}

std::shared_ptr<const TokenGrant> Authorizer::GrantOf(
    const grpc::ServerContextBase& context) const {
  std::string presented = BearerToken(context);
  if (presented.empty()) return nullptr;
  absl::MutexLock lock(&mu_);
  std::shared_ptr<const TokenGrant> match;
  // Every token is compared, so the time does not tell which one matched.
  for (const auto& grant : grants_) {
    if (ConstantTimeEquals(presented, grant->token)) match = grant;
  }
  return match;
}

absl::Status Authorizer::Check(const grpc::ServerContextBase& context,
                               Scope scope, absl::string_view model) const {
  std::shared_ptr<const TokenGrant> grant = GrantOf(context);
  if (grant == nullptr) {
    bool presented = !BearerToken(context).empty();
    return absl::UnauthenticatedError(
        presented ? "the bearer token is not recognized"
                  : "no bearer token: pass --token or set $PSTORE_TOKEN");
  }
  if (!grant->Allows(scope, model)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "token '", grant->name, "' does not grant ", ScopeName(scope),
        model.empty() ? std::string(" on every model")
                      : absl::StrCat(" on model '", model, "'")));
  }
  return absl::OkStatus();
}

size_t Authorizer::size() const {
  absl::MutexLock lock(&mu_);
  return grants_.size();
}

}  // namespace pstore
