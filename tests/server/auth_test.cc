// Bearer-token authorization: the tokens file and its errors, the
// constant-time compare, scopes and model prefixes, and the codes a call
// gets (server/auth.h).

#include "server/auth.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/server_context.h"
#include "grpcpp/test/server_context_test_spouse.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace pstore {
namespace {

using ::pstore::testing::StatusIs;
using ::pstore::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kReaderToken[] = "reader-token-0123456789";
constexpr char kWriterToken[] = "writer-token-0123456789";
constexpr char kAdminToken[] = "admin-token-01234567890";

// A tokens file with a reader limited to models "llama-" and "mistral", a
// writer of every model and an admin.
std::string ThreeTokens() {
  return absl::StrCat(
      R"({"tokens": [)", R"({"name": "loader", "token": ")", kReaderToken,
      R"(", "scopes": ["read"], "models": ["llama-", "mistral"]},)",
      R"({"name": "trainer", "token": ")", kWriterToken,
      R"(", "scopes": ["write", "read"]},)", R"({"name": "ops", "token": ")",
      kAdminToken, R"(", "scopes": ["admin"]}]})");
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// A server context whose call presents `authorization` (none if empty).
class Call {
 public:
  explicit Call(const std::string& authorization) : spouse_(&context_) {
    if (!authorization.empty()) {
      spouse_.AddClientMetadata("authorization", authorization);
    }
  }
  const grpc::ServerContext& context() const { return context_; }

 private:
  grpc::ServerContext context_;
  grpc::testing::ServerContextTestSpouse spouse_;
};

std::string Bearer(const std::string& token) {
  return absl::StrCat("Bearer ", token);
}

TEST(ParseTokensTest, ReadsNamesScopesAndModelPrefixes) {
  ASSERT_OK_AND_ASSIGN(std::vector<TokenGrant> grants,
                       ParseTokens(ThreeTokens()));
  ASSERT_EQ(grants.size(), 3u);
  EXPECT_EQ(grants[0].name, "loader");
  EXPECT_EQ(grants[0].token, kReaderToken);
  EXPECT_TRUE(grants[0].read);
  EXPECT_FALSE(grants[0].write);
  EXPECT_FALSE(grants[0].admin);
  EXPECT_THAT(grants[0].model_prefixes,
              ::testing::ElementsAre("llama-", "mistral"));
  EXPECT_TRUE(grants[1].read && grants[1].write && !grants[1].admin);
  EXPECT_TRUE(grants[1].model_prefixes.empty());
  EXPECT_TRUE(grants[2].admin && !grants[2].read && !grants[2].write);
  ASSERT_OK_AND_ASSIGN(std::vector<TokenGrant> none,
                       ParseTokens(R"({"tokens": []})"));
  EXPECT_TRUE(none.empty());
}

TEST(ParseTokensTest, RefusesBadFilesNamingTheProblem) {
  const std::string good = R"("token": "0123456789abcdef", "scopes": ["read"])";
  struct Case {
    std::string json;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "not a JSON object"},
      {"{not json", "not a JSON object"},
      {"[]", "not a JSON object"},
      {"{}", "no \"tokens\" array"},
      {R"({"tokens": {}})", "no \"tokens\" array"},
      {R"({"tokens": [7]})", "token #1 is not an object"},
      {absl::StrCat(R"({"tokens": [{)", good, "}]}"),
       "token #1 has no \"name\""},
      {absl::StrCat(R"({"tokens": [{"name": "", )", good, "}]}"),
       "token #1 has no \"name\""},
      {R"({"tokens": [{"name": "a", "scopes": ["read"]}]})",
       "token 'a' needs a \"token\" of at least 16 characters"},
      {R"({"tokens": [{"name": "a", "token": "0123456789abcde",
           "scopes": ["read"]}]})",
       "token 'a' needs a \"token\" of at least 16 characters"},
      {R"({"tokens": [{"name": "a", "token": "0123456789abcdef"}]})",
       "token 'a' needs \"scopes\""},
      {R"({"tokens": [{"name": "a", "token": "0123456789abcdef",
           "scopes": []}]})",
       "token 'a' needs \"scopes\""},
      {R"({"tokens": [{"name": "a", "token": "0123456789abcdef",
           "scopes": ["read", "delete"]}]})",
       "token 'a' has scope 'delete': want read, write, admin or peer"},
      {absl::StrCat(R"({"tokens": [{"name": "a", )", good,
                    R"(, "models": "llama"}]})"),
       "token 'a': \"models\" is not a list"},
      {absl::StrCat(R"({"tokens": [{"name": "a", )", good,
                    R"(, "models": ["llama", ""]}]})"),
       "token 'a' has an empty model prefix"},
      {absl::StrCat(R"({"tokens": [{"name": "a", )", good,
                    R"(}, {"name": "a", )",
                    R"("token": "fedcba9876543210", "scopes": ["read"]}]})"),
       "token 'a' is named twice"},
      {absl::StrCat(R"({"tokens": [{"name": "a", )", good,
                    R"(}, {"name": "b", )", good, "}]}"),
       "token 'b' repeats the token of 'a'"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(
        ParseTokens(c.json),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.json;
  }
}

TEST(ConstantTimeEqualsTest, EqualOnlyForTheSameBytes) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("secret-token", "secret-token"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", "secret-tokeN"));
  EXPECT_FALSE(ConstantTimeEquals("Secret-token", "secret-token"));
  // A prefix, or the same bytes followed by a NUL, is not equal.
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret-token"));
  EXPECT_FALSE(ConstantTimeEquals("secret-token", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_FALSE(ConstantTimeEquals(absl::string_view("ab\0", 3), "ab"));
}

TEST(TokenGrantTest, ScopesAllowTheirCallsAndAdminAllowsAll) {
  TokenGrant reader{
      .name = "r", .token = "t", .read = true, .model_prefixes = {}};
  EXPECT_TRUE(reader.Allows(Scope::kRead, "any"));
  EXPECT_FALSE(reader.Allows(Scope::kWrite, "any"));
  EXPECT_FALSE(reader.Allows(Scope::kAdmin, "any"));
  TokenGrant writer{
      .name = "w", .token = "t", .write = true, .model_prefixes = {}};
  EXPECT_FALSE(writer.Allows(Scope::kRead, "any"));
  EXPECT_TRUE(writer.Allows(Scope::kWrite, "any"));
  EXPECT_FALSE(writer.Allows(Scope::kAdmin, "any"));
  TokenGrant admin{
      .name = "a", .token = "t", .admin = true, .model_prefixes = {}};
  for (Scope scope : {Scope::kRead, Scope::kWrite, Scope::kAdmin}) {
    EXPECT_TRUE(admin.Allows(scope, "any"));
    // No model restriction: calls about every model are allowed too.
    EXPECT_TRUE(admin.Allows(scope, ""));
  }
}

// The node-to-node block reads: a grant of scope peer only, never implied
// by admin, and never with model prefixes (a block serves every model).
TEST(TokenGrantTest, PeerScopeIsItsOwnAndCoversEveryModel) {
  TokenGrant node{
      .name = "n", .token = "t", .peer = true, .model_prefixes = {}};
  EXPECT_TRUE(node.Allows(Scope::kPeer, ""));
  for (Scope scope : {Scope::kRead, Scope::kWrite, Scope::kAdmin}) {
    EXPECT_FALSE(node.Allows(scope, "any"));
  }
  TokenGrant admin{
      .name = "a", .token = "t", .admin = true, .model_prefixes = {}};
  EXPECT_FALSE(admin.Allows(Scope::kPeer, ""));
  TokenGrant limited{
      .name = "l", .token = "t", .peer = true, .model_prefixes = {"llama-"}};
  EXPECT_FALSE(limited.Allows(Scope::kPeer, ""));
  ASSERT_OK_AND_ASSIGN(std::vector<TokenGrant> grants,
                       ParseTokens(R"({"tokens": [{"name": "nodes",
                     "token": "0123456789abcdef", "scopes": ["peer"]}]})"));
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_TRUE(grants[0].peer && !grants[0].read && !grants[0].admin);
}

TEST(TokenGrantTest, ModelPrefixesLimitTheModelsAndRefuseEveryModelCalls) {
  TokenGrant grant{.name = "r",
                   .token = "t",
                   .read = true,
                   .admin = true,
                   .model_prefixes = {"llama-", "mistral"}};
  EXPECT_TRUE(grant.Allows(Scope::kRead, "llama-7b"));
  EXPECT_TRUE(grant.Allows(Scope::kAdmin, "mistral"));
  EXPECT_TRUE(grant.Allows(Scope::kRead, "mistral-large"));
  EXPECT_FALSE(grant.Allows(Scope::kRead, "llama"));  // Shorter than "llama-".
  EXPECT_FALSE(grant.Allows(Scope::kRead, "gpt2"));
  EXPECT_FALSE(grant.Allows(Scope::kRead, "my-llama-7b"));
  // Calls that touch every model (drop-cache) need an unrestricted token.
  EXPECT_FALSE(grant.Allows(Scope::kAdmin, ""));
}

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Sub("tokens.json");
    WriteFile(path_, ThreeTokens());
  }

  TempDir dir_;
  std::string path_;
};

TEST_F(AuthorizerTest, NoOrUnknownTokenIsUnauthenticated) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Authorizer> auth,
                       Authorizer::Load(path_));
  EXPECT_EQ(auth->size(), 3u);
  for (const std::string& authorization :
       {std::string(), std::string("Bearer "), Bearer("not-a-known-token-x"),
        Bearer(std::string(kReaderToken) + "x"),
        absl::StrCat("Basic ", kReaderToken), std::string(kReaderToken)}) {
    Call call(authorization);
    EXPECT_THAT(auth->Check(call.context(), Scope::kRead, "llama-7b"),
                StatusIs(absl::StatusCode::kUnauthenticated))
        << authorization;
    EXPECT_EQ(auth->GrantOf(call.context()), nullptr) << authorization;
  }
}

TEST_F(AuthorizerTest, KnownTokenWithoutTheScopeOrModelIsPermissionDenied) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Authorizer> auth,
                       Authorizer::Load(path_));
  Call reader(Bearer(kReaderToken));
  EXPECT_OK(auth->Check(reader.context(), Scope::kRead, "llama-7b"));
  EXPECT_THAT(auth->Check(reader.context(), Scope::kWrite, "llama-7b"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("token 'loader' does not grant write on model "
                                 "'llama-7b'")));
  EXPECT_THAT(auth->Check(reader.context(), Scope::kRead, "gpt2"),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(auth->Check(reader.context(), Scope::kRead, ""),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("on every model")));
  ASSERT_NE(auth->GrantOf(reader.context()), nullptr);
  EXPECT_EQ(auth->GrantOf(reader.context())->name, "loader");

  Call writer(Bearer(kWriterToken));
  EXPECT_OK(auth->Check(writer.context(), Scope::kWrite, "gpt2"));
  EXPECT_OK(auth->Check(writer.context(), Scope::kRead, ""));
  EXPECT_THAT(auth->Check(writer.context(), Scope::kAdmin, "gpt2"),
              StatusIs(absl::StatusCode::kPermissionDenied));

  Call admin(Bearer(kAdminToken));
  EXPECT_OK(auth->Check(admin.context(), Scope::kAdmin, ""));
  EXPECT_OK(auth->Check(admin.context(), Scope::kWrite, "gpt2"));
}

TEST_F(AuthorizerTest, ReloadSwapsTheTokensAndKeepsThemOnABadFile) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Authorizer> auth,
                       Authorizer::Load(path_));
  Call reader(Bearer(kReaderToken));
  Call newcomer(Bearer("newcomer-token-0123456"));
  WriteFile(path_, R"({"tokens": [{"name": "new", "token":
                       "newcomer-token-0123456", "scopes": ["read"]}]})");
  ASSERT_OK(auth->Reload());
  EXPECT_EQ(auth->size(), 1u);
  EXPECT_OK(auth->Check(newcomer.context(), Scope::kRead, "gpt2"));
  EXPECT_THAT(auth->Check(reader.context(), Scope::kRead, "llama-7b"),
              StatusIs(absl::StatusCode::kUnauthenticated));

  WriteFile(path_, "{not json");
  EXPECT_THAT(auth->Reload(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path_)));
  ASSERT_EQ(unlink(path_.c_str()), 0);
  EXPECT_THAT(auth->Reload(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(auth->size(), 1u);
  EXPECT_OK(auth->Check(newcomer.context(), Scope::kRead, "gpt2"));
}

TEST_F(AuthorizerTest, LoadGivesTheCodeOfWhatIsWrongWithTheFile) {
  EXPECT_THAT(Authorizer::Load(dir_.Sub("missing.json")).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("tokens file")));
  WriteFile(path_, R"({"tokens": [{"name": "x", "token": "short"}]})");
  EXPECT_THAT(Authorizer::Load(path_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Returns the code Authorizer::Load gives for `path` in a process that
// cannot read it: this one if it is not root, else a child that gives up
// root (root reads any file).
absl::StatusCode LoadCodeWithoutReadPermission(const std::string& path) {
  if (geteuid() != 0) return Authorizer::Load(path).status().code();
  pid_t child = fork();
  if (child == 0) {
    // nobody: no capabilities once every uid is non-zero.
    if (setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0) {
      _exit(100);
    }
    _exit(static_cast<int>(Authorizer::Load(path).status().code()));
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
      WEXITSTATUS(status) == 100) {
    return absl::StatusCode::kUnknown;
  }
  return static_cast<absl::StatusCode>(WEXITSTATUS(status));
}

TEST_F(AuthorizerTest, AnUnreadableTokensFileIsPermissionDenied) {
  ASSERT_EQ(chmod(path_.c_str(), 0), 0);
  EXPECT_EQ(LoadCodeWithoutReadPermission(path_),
            absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace pstore
