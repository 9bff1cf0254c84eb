// ServerMetrics: what pstored exposes to Prometheus. Latencies are recorded
// as they happen (block reads by tier, RPCs by method); everything the store
// and service already count (tier usage, hits, spills, bytes sent...) is
// read at scrape time by a collector, so the hot paths carry no extra
// counters. Names follow Prometheus conventions: the pstore_ prefix, _total
// for counters, _bytes and _seconds units.
//
// Built on prometheus-cpp's core library (registry, histograms, text
// format). Thread-safe.

#ifndef PSTORE_SERVER_METRICS_H_
#define PSTORE_SERVER_METRICS_H_

#include <array>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "storage/tiered_store.h"

namespace pstore {

class ParamStoreService;

class ServerMetrics {
 public:
  // `version` goes into pstore_build_info.
  explicit ServerMetrics(std::string version);
  ~ServerMetrics();

  // Starts reporting the counters of `store` and `service` (not owned; both
  // must outlive the metrics or be detached first).
  void Attach(const TieredStore* store, const ParamStoreService* service);
  void Detach();

  // Records a block read served by `tier` that took `latency`.
  void ObserveBlockRead(TierKind tier, absl::Duration latency);

  // Records a finished RPC.
  void ObserveRpc(absl::string_view method, grpc::StatusCode code,
                  absl::Duration elapsed);

  // Sets whether the server is draining (pstore_draining).
  void SetDraining(bool draining);

  // Returns every metric in the Prometheus text exposition format.
  std::string Render() const;

 private:
  class StoreCollector;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<StoreCollector> collector_;
  prometheus::Family<prometheus::Histogram>* block_reads_;
  std::array<prometheus::Histogram*, 3> block_read_by_tier_;
  prometheus::Family<prometheus::Counter>* rpcs_;
  prometheus::Family<prometheus::Histogram>* rpc_durations_;
  prometheus::Gauge* draining_;
};

}  // namespace pstore

#endif  // PSTORE_SERVER_METRICS_H_
