#include "server/metrics.h"

#include <sstream>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"
#include "server/service.h"

namespace pstore {
namespace {

// Block reads: from a DRAM lookup (~100 ns) to a slow disk (seconds).
const prometheus::Histogram::BucketBoundaries kBlockReadBuckets = {
    1e-6,  5e-6,  25e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3,
    10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0,  2.5,    5.0};

// RPCs: from a unary call (microseconds) to a whole-model pull (minutes).
const prometheus::Histogram::BucketBoundaries kRpcBuckets = {
    100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3,
    250e-3, 500e-3, 1.0,    2.5,  5.0,    10.0, 30.0,  60.0,  300.0, 900.0};

// Returns the metric label of tier number `t`.
std::string TierLabel(int t) {
  return std::string(TierKindName(static_cast<TierKind>(t)));
}

prometheus::MetricFamily Family(std::string name, std::string help,
                                prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddSample(prometheus::MetricFamily& family, double value,
               std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  if (family.type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
}

}  // namespace

// Reads the store's and service's counters at scrape time.
class ServerMetrics::StoreCollector : public prometheus::Collectable {
 public:
  explicit StoreCollector(std::string version)
      : version_(std::move(version)), started_(absl::Now()) {}

  void Attach(const TieredStore* store, const ParamStoreService* service) {
    absl::MutexLock lock(&mu_);
    store_ = store;
    service_ = service;
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> families;
    auto gauge = [&](std::string name, std::string help) {
      families.push_back(
          Family(std::move(name), std::move(help), MetricType::Gauge));
      return &families.back();
    };
    auto counter = [&](std::string name, std::string help) {
      families.push_back(
          Family(std::move(name), std::move(help), MetricType::Counter));
      return &families.back();
    };
    AddSample(*gauge("pstore_build_info", "pstored's version, as a label."), 1,
              {{"version", version_}});
    AddSample(*gauge("pstore_start_time_seconds", "Unix time pstored started."),
              absl::ToDoubleSeconds(started_ - absl::UnixEpoch()));

    absl::MutexLock lock(&mu_);
    if (store_ == nullptr) return families;
    StoreStats stats = store_->Stats();
    const TierStats* tiers[] = {&stats.dram, &stats.nvme, &stats.cold};
    bool enabled[] = {true, stats.nvme_enabled, true};
    struct PerTier {
      const char* name;
      const char* help;
      bool is_counter;
      uint64_t TierStats::*field;
    };
    const PerTier per_tier[] = {
        {"pstore_tier_capacity_bytes",
         "Bytes the tier may hold (0: unbounded).", false,
         &TierStats::capacity_bytes},
        {"pstore_tier_used_bytes", "Bytes the tier holds now.", false,
         &TierStats::used_bytes},
        {"pstore_tier_blocks", "Blocks the tier holds now (cold: estimate).",
         false, &TierStats::blocks},
        {"pstore_tier_hits_total", "Tier reads that found the block.", true,
         &TierStats::hits},
        {"pstore_tier_misses_total", "Tier reads that did not find the block.",
         true, &TierStats::misses},
        {"pstore_tier_evictions_total",
         "Blocks dropped to make room (NVMe: by region reclaim).", true,
         &TierStats::evictions},
        {"pstore_tier_read_bytes_total", "Bytes of blocks the tier returned.",
         true, &TierStats::read_bytes},
        {"pstore_tier_written_bytes_total",
         "Bytes of blocks written to the tier.", true, &TierStats::write_bytes},
        {"pstore_tier_checksum_failures_total",
         "Blocks read from the tier that failed their XXH3-128 check.", true,
         &TierStats::checksum_failures},
        {"pstore_tier_io_errors_total", "I/O errors of the tier's device.",
         true, &TierStats::io_errors},
    };
    for (const PerTier& metric : per_tier) {
      prometheus::MetricFamily* family = metric.is_counter
                                             ? counter(metric.name, metric.help)
                                             : gauge(metric.name, metric.help);
      for (int t = 0; t < kNumTierKinds; ++t) {
        if (!enabled[t]) continue;
        AddSample(*family, static_cast<double>(tiers[t]->*metric.field),
                  {{"tier", TierLabel(t)}});
      }
    }
    prometheus::MetricFamily* served = counter(
        "pstore_tier_reads_served_total",
        "Block reads served to clients, by the tier that had the block.");
    for (int t = 0; t < kNumTierKinds; ++t) {
      AddSample(*served, static_cast<double>(stats.reads_from[t]),
                {{"tier", TierLabel(t)}});
    }
    AddSample(*gauge("pstore_nvme_enabled", "1 if the NVMe tier is on."),
              stats.nvme_enabled ? 1 : 0);
    AddSample(*gauge("pstore_nvme_io_uring",
                     "1 if the NVMe tier uses io_uring, 0 on pread/pwrite."),
              stats.io_uring ? 1 : 0);
    AddSample(*counter("pstore_nvme_reclaimed_regions_total",
                       "NVMe regions recycled, oldest first."),
              static_cast<double>(stats.nvme.reclaimed_regions));
    AddSample(*counter("pstore_spills_total",
                       "Blocks evicted from DRAM and written to NVMe."),
              static_cast<double>(stats.spills));
    AddSample(*counter("pstore_spills_dropped_total",
                       "Evicted blocks not spilled (queue full)."),
              static_cast<double>(stats.spills_dropped));
    AddSample(*counter("pstore_spill_failures_total",
                       "Spills the NVMe tier refused (disk full, I/O error)."),
              static_cast<double>(stats.spill_failures));
    AddSample(
        *counter("pstore_dedup_blocks_total",
                 "Put blocks found already stored (after a byte compare)."),
        static_cast<double>(stats.dedup_blocks));
    AddSample(*counter("pstore_collected_blocks_total",
                       "Blocks erased when their last reference went."),
              static_cast<double>(stats.collected_blocks));
    AddSample(*counter("pstore_coalesced_reads_total",
                       "Readers that joined a disk read in flight."),
              static_cast<double>(stats.coalesced_reads));
    AddSample(*counter("pstore_blocks_encoded_total",
                       "Derived blocks (conversions, quantizations) computed."),
              static_cast<double>(stats.blocks_encoded));
    AddSample(*counter("pstore_encoded_hits_total",
                       "Derived blocks found cached in DRAM."),
              static_cast<double>(stats.encoded_hits));
    if (stats.peers.enabled) {
      const PeerStats& peers = stats.peers;
      AddSample(*gauge("pstore_peer_ring_nodes",
                       "Nodes on the ring of block owners, this one "
                       "included."),
                static_cast<double>(peers.ring_nodes));
      prometheus::MetricFamily* blocks =
          counter("pstore_fetched_blocks_total",
                  "Blocks read from below NVMe, by source: from their owner "
                  "node (peer), or from the durable tier by this node "
                  "(durable: for its clients, for other nodes, hedges).");
      AddSample(*blocks, static_cast<double>(peers.peer_blocks),
                {{"source", "peer"}});
      AddSample(*blocks, static_cast<double>(stats.cold.hits),
                {{"source", "durable"}});
      prometheus::MetricFamily* bytes = counter(
          "pstore_fetched_bytes_total", "Bytes of those blocks, by source.");
      AddSample(*bytes, static_cast<double>(peers.peer_bytes),
                {{"source", "peer"}});
      AddSample(*bytes, static_cast<double>(stats.cold.read_bytes),
                {{"source", "durable"}});
      AddSample(*counter("pstore_peer_errors_total",
                         "Owner nodes that answered an error, or none in "
                         "time; the durable tier was read instead."),
                static_cast<double>(peers.peer_errors));
      AddSample(*counter("pstore_peer_bad_blocks_total",
                         "Owners' answers that failed the XXH3-128 check; "
                         "the durable tier was read instead."),
                static_cast<double>(peers.peer_bad_blocks));
      AddSample(*counter("pstore_peer_hedges_total",
                         "Durable reads started because the owner was slow "
                         "past the hedging deadline."),
                static_cast<double>(peers.hedges));
      AddSample(*counter("pstore_peer_hedge_wins_total",
                         "Hedged durable reads that answered first."),
                static_cast<double>(peers.hedge_wins));
    }
    AddSample(*counter("pstore_peer_served_blocks_total",
                       "Blocks this node served to other nodes."),
              static_cast<double>(stats.peers.served_blocks));
    AddSample(
        *counter("pstore_peer_served_bytes_total", "Bytes of those blocks."),
        static_cast<double>(stats.peers.served_bytes));
    AddSample(*gauge("pstore_pinned_bytes", "Bytes pinned in DRAM."),
              static_cast<double>(stats.pinned_bytes));
    AddSample(*gauge("pstore_pin_budget_bytes", "Bytes pins may hold."),
              static_cast<double>(stats.pin_budget_bytes));
    if (service_ != nullptr) {
      const StreamCounters& streams = service_->stream_counters();
      const PutCounters& puts = service_->put_counters();
      prometheus::MetricFamily* in_flight =
          gauge("pstore_streams_in_flight", "Streaming calls in flight.");
      AddSample(*in_flight, static_cast<double>(streams.streams_in_flight),
                {{"kind", "read"}});
      AddSample(*in_flight, static_cast<double>(puts.streams_in_flight),
                {{"kind", "put"}});
      AddSample(*gauge("pstore_calls_in_flight",
                       "Calls of every kind that use the store now."),
                static_cast<double>(service_->gate().in_flight()));
      AddSample(*counter("pstore_sent_bytes_total",
                         "Tensor bytes sent in read streams."),
                static_cast<double>(streams.bytes_sent));
      AddSample(*counter("pstore_sent_chunks_total",
                         "Chunks (messages) sent in read streams."),
                static_cast<double>(streams.chunks_sent));
      AddSample(*counter("pstore_received_bytes_total",
                         "Tensor bytes received by puts."),
                static_cast<double>(puts.bytes_received));
    }
    return families;
  }

 private:
  const std::string version_;
  const absl::Time started_;
  mutable absl::Mutex mu_;
  const TieredStore* store_ ABSL_GUARDED_BY(mu_) = nullptr;
  const ParamStoreService* service_ ABSL_GUARDED_BY(mu_) = nullptr;
};

ServerMetrics::ServerMetrics(std::string version)
    : registry_(std::make_shared<prometheus::Registry>()),
      collector_(std::make_shared<StoreCollector>(std::move(version))) {
  block_reads_ = &prometheus::BuildHistogram()
                      .Name("pstore_block_read_seconds")
                      .Help(
                          "Time to serve a block read, by the tier that "
                          "served it (DRAM: the lookup).")
                      .Register(*registry_);
  for (int t = 0; t < kNumTierKinds; ++t) {
    block_read_by_tier_[t] =
        &block_reads_->Add({{"tier", TierLabel(t)}}, kBlockReadBuckets);
  }
  rpcs_ = &prometheus::BuildCounter()
               .Name("pstore_rpc_requests_total")
               .Help("Finished RPCs by method and status code.")
               .Register(*registry_);
  rpc_durations_ = &prometheus::BuildHistogram()
                        .Name("pstore_rpc_duration_seconds")
                        .Help("Duration of finished RPCs by method.")
                        .Register(*registry_);
  draining_ = &prometheus::BuildGauge()
                   .Name("pstore_draining")
                   .Help("1 while pstored drains before exiting.")
                   .Register(*registry_)
                   .Add({});
}

ServerMetrics::~ServerMetrics() = default;

void ServerMetrics::Attach(const TieredStore* store,
                           const ParamStoreService* service) {
  collector_->Attach(store, service);
}

void ServerMetrics::Detach() { collector_->Attach(nullptr, nullptr); }

void ServerMetrics::ObserveBlockRead(TierKind tier, absl::Duration latency) {
  block_read_by_tier_[static_cast<int>(tier)]->Observe(
      absl::ToDoubleSeconds(latency));
}

void ServerMetrics::ObserveRpc(absl::string_view method, grpc::StatusCode code,
                               absl::Duration elapsed) {
  std::string name(method);
  rpcs_
      ->Add({{"method", name},
             {"code",
              absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}})
      .Increment();
  rpc_durations_->Add({{"method", name}}, kRpcBuckets)
      .Observe(absl::ToDoubleSeconds(elapsed));
}

void ServerMetrics::SetDraining(bool draining) {
  draining_->Set(draining ? 1 : 0);
}

std::string ServerMetrics::Render() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  std::vector<prometheus::MetricFamily> store = collector_->Collect();
  families.insert(families.end(), std::make_move_iterator(store.begin()),
                  std::make_move_iterator(store.end()));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace pstore
