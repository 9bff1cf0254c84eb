#include "server/flags.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/uds_listener.h"
#include "util/status.h"
#include "util/units.h"

namespace pstore {
namespace {

// Parses a size flag's text into `*out`, naming the flag on error.
absl::Status ParseSizeFlag(const std::string& flag, const std::string& text,
                           uint64_t* out) {
  absl::StatusOr<uint64_t> size = ParseByteSize(text);
  if (!size.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", size.status().message()));
  }
  *out = *size;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DaemonConfig> ParseDaemonFlags(int argc,
                                              const char* const* argv) {
  DaemonConfig config;
  std::string data_dir = "./pstore-data";
  std::string nvme_dir, cold_dir;
  std::string dram_bytes = "1GiB", nvme_bytes = "4GiB", block_bytes = "4MiB";
  std::string pin_budget_bytes = "0", readahead_bytes = "32MiB";
  std::string readahead_budget_bytes = "0", max_tensor_bytes = "1TiB";
  std::string max_message_bytes = "32MiB";
  std::string cold_min_free_bytes = "256MiB";
  std::string uds_mode = "0660", uds_allowed_uids, uds_allowed_gids;
  int max_read_streams = 128, max_put_streams = 16;
  int max_streams_per_connection = 64;
  double drain_seconds = 30;
  bool io_uring = true;
  bool sync_commits = true;
  int worker_threads = 8;
  std::string backend = "rocksdb";
  RadosOptions rados;
  double rados_connect_seconds = 10, rados_op_seconds = 30;
  double rados_gc_grace_seconds = 3600, gc_interval_seconds = 3600;
  double peer_heartbeat_seconds = 2, peer_timeout_seconds = 10;
  PeerOptions& peers = config.server.store.peers;
  double peer_hedge_seconds = 1, peer_read_timeout_seconds = 10;

  CLI::App app("pstored: a tiered parameter store for ML weights", "pstored");
  // A flag given twice takes the last value, so wrappers can override.
  app.option_defaults()->always_capture_default()->multi_option_policy(
      CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--listen", config.server.listen,
                 "host:port of the gRPC service (port 0: any free port)");
  app.add_option("--data_dir", data_dir,
                 "holds nvme/ and cold/ unless --nvme_dir/--cold_dir say "
                 "otherwise");
  app.add_option("--nvme_dir", nvme_dir,
                 "NVMe tier region files (default DATA_DIR/nvme)");
  app.add_option("--cold_dir", cold_dir,
                 "cold tier RocksDB, the durable copy (default DATA_DIR/cold)");
  app.add_option("--backend", backend,
                 "where the durable copy lives: rocksdb (under --cold_dir, "
                 "this machine only) or rados (a Ceph pool shared by many "
                 "pstored nodes)")
      ->check(CLI::IsMember({"rocksdb", "rados"}));
  app.add_option("--ceph_conf", rados.ceph_conf,
                 "rados: path of the ceph.conf naming the monitors and the "
                 "keyring");
  app.add_option("--rados_pool", rados.pool,
                 "rados: the pool (replicated: the catalog needs omap)");
  app.add_option("--rados_user", rados.user,
                 "rados: the cephx id (admin: client.admin)");
  app.add_option("--rados_namespace", rados.name_space,
                 "rados: namespace in the pool, so several stores can "
                 "share it (empty: the default namespace)");
  app.add_option("--rados_connect_timeout_seconds", rados_connect_seconds,
                 "rados: start-up gives up (exit 2) when the monitors or "
                 "the pool's OSDs do not answer within this")
      ->check(CLI::PositiveNumber);
  app.add_option("--rados_op_timeout_seconds", rados_op_seconds,
                 "rados: an operation the cluster does not answer within "
                 "this fails UNAVAILABLE")
      ->check(CLI::PositiveNumber);
  app.add_option("--rados_gc_grace_seconds", rados_gc_grace_seconds,
                 "rados: a block no revision names is removed only when no "
                 "put wrote or reused it for this long; a put must finish "
                 "within half of it (far above the clock skew of the nodes)")
      ->check(CLI::PositiveNumber);
  app.add_option("--peer_heartbeat_seconds", peer_heartbeat_seconds,
                 "rados: how often a node renews its membership and re-reads "
                 "the other nodes' (pstore-cli status lists them)")
      ->check(CLI::PositiveNumber);
  app.add_option("--peer_timeout_seconds", peer_timeout_seconds,
                 "rados: a node whose heartbeat has not changed for this "
                 "long is no longer a member")
      ->check(CLI::PositiveNumber);
  app.add_option("--peers", peers.enabled,
                 "rados: a block missing here is asked of its owner on the "
                 "ring of nodes before the pool is read");
  app.add_option("--peer_ring_size", peers.virtual_nodes,
                 "rados: points of each node on the ring of block owners")
      ->check(CLI::Range(1, 4096));
  app.add_option("--peer_hedge_seconds", peer_hedge_seconds,
                 "rados: an owner that has not answered within this is "
                 "hedged: the pool is read too, and the first good answer "
                 "wins")
      ->check(CLI::PositiveNumber);
  app.add_option("--peer_read_timeout_seconds", peer_read_timeout_seconds,
                 "rados: the longest a call to an owner may run")
      ->check(CLI::PositiveNumber);
  app.add_option("--peer_token_file", config.server.peer_token_file,
                 "rados, with --tokens_file: a file holding this node's "
                 "token of scope peer, sent only to the other nodes");
  app.add_option("--peer_tls_ca_file", config.server.peer_tls_ca_file,
                 "rados, with TLS: the CA that signs the other nodes' "
                 "certificates (default: --tls_client_ca)");
  app.add_flag("--fault_corrupt_peer_replies",
               config.server.fault_corrupt_peer_replies,
               "a test fault: flip one byte of every block served to "
               "another node");
  app.add_option("--advertise_address", config.advertise_address,
                 "rados: HOST:PORT the other nodes reach this one at "
                 "(default: --listen's host, or this machine's name for a "
                 "wildcard host, and the port bound)");
  app.add_option("--gc_interval_seconds", gc_interval_seconds,
                 "rados: how often a garbage collection runs (on one node "
                 "at a time); 0: only on `pstore-cli gc`")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--dram_bytes", dram_bytes, "DRAM tier budget");
  app.add_option("--pin_budget_bytes", pin_budget_bytes,
                 "bytes pins may hold (0: 3/4 of --dram_bytes)");
  app.add_option("--nvme_bytes", nvme_bytes,
                 "disk the NVMe tier may use (0 disables the tier)");
  app.add_option("--block_bytes", block_bytes,
                 "block size, a multiple of 4KiB in [64KiB, 256MiB]");
  app.add_option("--readahead_bytes", readahead_bytes,
                 "bytes each read stream reads ahead of the network");
  app.add_option("--readahead_budget_bytes", readahead_budget_bytes,
                 "bytes all read streams together read ahead (0: a quarter "
                 "of --dram_bytes, between 32MiB and 256MiB)");
  app.add_option("--cold_min_free_bytes", cold_min_free_bytes,
                 "free space kept on the cold disk; puts past it get "
                 "RESOURCE_EXHAUSTED");
  app.add_option("--max_tensor_bytes", max_tensor_bytes,
                 "largest tensor a put may store");
  app.add_option("--max_message_bytes", max_message_bytes,
                 "largest message a client may send");
  app.add_option(
         "--max_read_streams", max_read_streams,
         "reads served at once (GetTensor/PullModel streams, ReadTensor calls)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--max_put_streams", max_put_streams,
                 "PutTensor streams served at once")
      ->check(CLI::Range(1, 100000));
  app.add_option("--max_streams_per_connection", max_streams_per_connection,
                 "concurrent calls one client connection may have open")
      ->check(CLI::Range(1, 100000));
  app.add_option("--drain_seconds", drain_seconds,
                 "on SIGTERM/SIGINT, time calls in flight get to finish")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--io_uring", io_uring,
                 "use io_uring for the NVMe tier (false: pread/pwrite)");
  app.add_option("--sync_commits", sync_commits,
                 "sync every put and publish to disk before acknowledging");
  app.add_option("--worker_threads", worker_threads,
                 "threads running store calls for RPCs")
      ->check(CLI::Range(1, 256));
  app.add_option(
      "--tls_cert", config.server.tls_cert_file,
      "PEM certificate chain: TLS on the gRPC port (with --tls_key)");
  app.add_option("--tls_key", config.server.tls_key_file,
                 "PEM private key of --tls_cert");
  app.add_option("--tls_client_ca", config.server.tls_client_ca_file,
                 "PEM CA: require client certificates it signed (mutual TLS)");
  app.add_option("--tokens_file", config.server.tokens_file,
                 "JSON bearer tokens with scopes read/write/admin and model "
                 "prefixes; reloaded on SIGHUP");
  app.add_option("--metrics_listen", config.server.metrics_listen,
                 "host:port of the HTTP listener for /metrics, /healthz and "
                 "/readyz (port 0: any free port; off or empty: off)");
  app.add_option("--uds_path", config.server.uds.path,
                 "also serve on this Unix domain socket file, for clients "
                 "on this host (unix:PATH); its directory must exist "
                 "(default: off)");
  app.add_option("--uds_mode", uds_mode,
                 "octal file mode of the --uds_path socket: who may connect");
  app.add_option("--uds_allowed_uids", uds_allowed_uids,
                 "comma-separated uids allowed on the socket (SO_PEERCRED); "
                 "with --uds_allowed_gids, a peer matching either is served "
                 "(default: any)");
  app.add_option("--uds_allowed_gids", uds_allowed_gids,
                 "comma-separated gids allowed on the socket (the peer's "
                 "primary group)");
  app.add_option("--port_file", config.port_file,
                 "once serving, write the gRPC port and then the metrics "
                 "port to this file, one per line");
  app.add_option("--log_level", config.log_level,
                 "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember(
          {"trace", "debug", "info", "warn", "error", "critical", "off"}));

  // CLI11 reads `--metrics_listen=` (empty) as a missing value and would
  // take the next argument as the address: spell it `off`.
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--metrics_listen=" ||
        (args[i] == "--metrics_listen" &&
         (i + 1 == args.size() || args[i + 1].empty() ||
          args[i + 1].rfind("--", 0) == 0))) {
      if (args[i] == "--metrics_listen" && i + 1 < args.size() &&
          args[i + 1].empty()) {
        args.erase(args.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      }
      args[i] = "--metrics_listen=off";
    }
  }
  // The same for an empty --rados_namespace= (a manifest's empty variable):
  // it means the default namespace, which is the flag's default.
  std::erase(args, std::string("--rados_namespace="));
  std::vector<const char*> rewritten;
  for (const std::string& arg : args) rewritten.push_back(arg.c_str());

  try {
    app.parse(static_cast<int>(rewritten.size()), rewritten.data());
  } catch (const CLI::CallForHelp&) {
    return absl::CancelledError(app.help());
  } catch (const CLI::ParseError& error) {
    return absl::InvalidArgumentError(error.what());
  }

  if (config.server.metrics_listen == "off") {
    config.server.metrics_listen.clear();
  }
  {
    uint32_t mode = 0;
    if (uds_mode.empty() || uds_mode.size() > 4 ||
        uds_mode.find_first_not_of("01234567") != std::string::npos ||
        (mode = static_cast<uint32_t>(std::stoul(uds_mode, nullptr, 8))) >
            0777) {
      return absl::InvalidArgumentError(
          absl::StrCat("--uds_mode: '", uds_mode,
                       "' is not an octal file mode (e.g. 0660)"));
    }
    config.server.uds.mode = mode;
    PSTORE_ASSIGN_OR_RETURN(
        std::vector<uint32_t> uids,
        ParseIdList(uds_allowed_uids, "--uds_allowed_uids"));
    PSTORE_ASSIGN_OR_RETURN(
        std::vector<uint32_t> gids,
        ParseIdList(uds_allowed_gids, "--uds_allowed_gids"));
    config.server.uds.allowed_uids.assign(uids.begin(), uids.end());
    config.server.uds.allowed_gids.assign(gids.begin(), gids.end());
  }

  TieredStoreOptions& store = config.server.store;
  uint64_t nvme = 0;
  uint64_t readahead = 0;
  uint64_t readahead_budget = 0;
  uint64_t max_message = 0;
  for (auto [flag, text, out] :
       std::vector<std::tuple<std::string, std::string, uint64_t*>>{
           {"dram_bytes", dram_bytes, &store.dram_bytes},
           {"pin_budget_bytes", pin_budget_bytes, &store.pin_budget_bytes},
           {"nvme_bytes", nvme_bytes, &nvme},
           {"block_bytes", block_bytes, &store.block_bytes},
           {"readahead_bytes", readahead_bytes, &readahead},
           {"readahead_budget_bytes", readahead_budget_bytes,
            &readahead_budget},
           {"max_tensor_bytes", max_tensor_bytes, &store.max_tensor_bytes},
           {"cold_min_free_bytes", cold_min_free_bytes,
            &store.cold_min_free_bytes},
           {"max_message_bytes", max_message_bytes, &max_message},
       }) {
    absl::Status status = ParseSizeFlag(flag, text, out);
    if (!status.ok()) return status;
  }
  store.cold_dir = cold_dir.empty() ? data_dir + "/cold" : cold_dir;
  if (backend == "rados") {
    if (rados.ceph_conf.empty() || rados.pool.empty()) {
      return absl::InvalidArgumentError(
          "--backend=rados needs --ceph_conf and --rados_pool");
    }
    rados.connect_timeout = absl::Seconds(rados_connect_seconds);
    rados.op_timeout = absl::Seconds(rados_op_seconds);
    rados.gc_grace = absl::Seconds(rados_gc_grace_seconds);
    rados.heartbeat_period = absl::Seconds(peer_heartbeat_seconds);
    rados.peer_timeout = absl::Seconds(peer_timeout_seconds);
    if (rados.peer_timeout < 2 * rados.heartbeat_period) {
      return absl::InvalidArgumentError(
          "--peer_timeout_seconds must be at least twice "
          "--peer_heartbeat_seconds");
    }
    store.gc_interval = absl::Seconds(gc_interval_seconds);
    peers.hedge_after = absl::Seconds(peer_hedge_seconds);
    peers.read_timeout = absl::Seconds(peer_read_timeout_seconds);
    if (peers.read_timeout < peers.hedge_after) {
      return absl::InvalidArgumentError(
          "--peer_read_timeout_seconds must be at least "
          "--peer_hedge_seconds");
    }
    store.rados = rados;
    store.cold_dir.clear();
  }
  if (nvme > 0) {
    store.nvme_dir = nvme_dir.empty() ? data_dir + "/nvme" : nvme_dir;
    store.nvme_bytes = nvme;
  }
  store.use_io_uring = io_uring;
  store.sync_commits = sync_commits;
  config.server.service.readahead_bytes = readahead;
  // Read-ahead buffers are memory outside the DRAM budget; by default they
  // follow it.
  config.server.service.readahead_budget_bytes =
      readahead_budget > 0
          ? readahead_budget
          : std::clamp<uint64_t>(store.dram_bytes / 4, uint64_t{32} << 20,
                                 uint64_t{256} << 20);
  config.server.service.max_read_streams = max_read_streams;
  config.server.service.max_put_streams = max_put_streams;
  config.server.max_streams_per_connection = max_streams_per_connection;
  if (max_message < (1 << 20) || max_message > (uint64_t{1} << 30)) {
    return absl::InvalidArgumentError(
        "--max_message_bytes must be between 1MiB and 1GiB");
  }
  config.server.max_receive_message_bytes = static_cast<int>(max_message);
  config.server.service.worker_threads = worker_threads;
  config.drain = absl::Seconds(drain_seconds);
  return config;
}

std::string DescribeConfig(const DaemonConfig& config) {
  const TieredStoreOptions& store = config.server.store;
  return absl::StrCat(
      "listen=", config.server.listen, " metrics_listen=",
      config.server.metrics_listen.empty() ? "(off)"
                                           : config.server.metrics_listen,
      store.rados.has_value()
          ? absl::StrCat(" backend=rados ceph_conf=", store.rados->ceph_conf,
                         " rados_pool=", store.rados->pool,
                         " rados_user=", store.rados->user, " rados_namespace=",
                         store.rados->name_space.empty()
                             ? "(default)"
                             : store.rados->name_space,
                         " peers=", store.peers.enabled ? "on" : "off",
                         " peer_ring_size=", store.peers.virtual_nodes,
                         " peer_hedge_seconds=",
                         absl::ToDoubleSeconds(store.peers.hedge_after))
          : absl::StrCat(" backend=rocksdb cold_dir=", store.cold_dir),
      " nvme_dir=", store.nvme_dir.empty() ? "(disabled)" : store.nvme_dir,
      " dram_bytes=", FormatBytes(store.dram_bytes), " pin_budget_bytes=",
      FormatBytes(PinBudgetBytes(store.dram_bytes, store.pin_budget_bytes)),
      " nvme_bytes=",
      store.nvme_dir.empty() ? "0" : FormatBytes(store.nvme_bytes),
      " block_bytes=", FormatBytes(store.block_bytes),
      " readahead_bytes=", FormatBytes(config.server.service.readahead_bytes),
      " readahead_budget_bytes=",
      FormatBytes(config.server.service.readahead_budget_bytes),
      " io_uring=", store.use_io_uring ? "true" : "false",
      " sync_commits=", store.sync_commits ? "true" : "false",
      " drain_seconds=", absl::ToDoubleSeconds(config.drain),
      " worker_threads=", config.server.service.worker_threads,
      " tls=", config.server.tls_cert_file.empty() ? "off" : "on",
      " client_certs=",
      config.server.tls_client_ca_file.empty() ? "off" : "required",
      " tokens=", config.server.tokens_file.empty() ? "off" : "on",
      " uds_path=",
      config.server.uds.path.empty() ? "(off)" : config.server.uds.path,
      " log_level=", config.log_level);
}

std::string AdvertiseAddress(const std::string& configured,
                             const std::string& listen, int port) {
  if (!configured.empty()) return configured;
  if (absl::StartsWith(listen, "unix")) return listen;
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
    char name[256] = {};
    host = gethostname(name, sizeof(name) - 1) == 0 ? name : "localhost";
  }
  return absl::StrCat(host, ":", port);
}

bool IsLocalOnlyAddress(absl::string_view listen) {
  // A Unix domain socket has no host part (its path may hold colons).
  if (absl::StartsWith(listen, "unix:") ||
      absl::StartsWith(listen, "unix-abstract:")) {
    return true;
  }
  absl::string_view host = listen.substr(0, listen.rfind(':'));
  return host == "localhost" || host == "[::1]" || host == "::1" ||
         absl::StartsWith(host, "127.");
}

}  // namespace pstore
