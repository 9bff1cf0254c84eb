// GrpcPeerClient without a peer to talk to: what it refuses to send, and
// that an unreachable node is an error, not a hang.

#include "server/peer_client.h"

#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace pstore {
namespace {

using ::pstore::testing::StatusIs;

// Reads block `id` of the node at `address` and waits (at most 30 s).
absl::StatusOr<BlockRef> ReadFrom(PeerClient& client,
                                  const std::string& address) {
  absl::Notification answered;
  absl::StatusOr<BlockRef> answer = absl::InternalError("no answer");
  client.ReadBlock(address, BlockId(), absl::Seconds(10),
                   [&](absl::StatusOr<PeerBlock> result) {
                     if (result.ok()) {
                       answer = std::move(result->block);
                     } else {
                       answer = result.status();
                     }
                     answered.Notify();
                   });
  if (!answered.WaitForNotificationWithTimeout(absl::Seconds(30))) {
    return absl::DeadlineExceededError("the callback never ran");
  }
  return answer;
}

TEST(GrpcPeerClientTest, ThePeerTokenNeverGoesInPlaintextToAnotherMachine) {
  GrpcPeerClientOptions options;
  options.token = "node-0123456789abcdef";
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<GrpcPeerClient> client,
                       GrpcPeerClient::Create(options));
  // Not a loopback address: refused before any connection is made.
  EXPECT_THAT(ReadFrom(*client, "192.0.2.1:7070"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // Loopback, nothing listening (port 1 is never a pstored): the call is
  // made and fails to connect.
  EXPECT_THAT(ReadFrom(*client, "127.0.0.1:1"),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(GrpcPeerClientTest, ACertificateNeedsItsKeyAndTheNodesCa) {
  GrpcPeerClientOptions options;
  options.tls_cert_file = "/nonexistent/cert.pem";
  EXPECT_THAT(GrpcPeerClient::Create(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options.tls_key_file = "/nonexistent/key.pem";
  EXPECT_THAT(GrpcPeerClient::Create(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options.tls_ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(GrpcPeerClient::Create(options),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace pstore
