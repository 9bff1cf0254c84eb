// Results of one pstore-bench run and the three ways they leave it: a
// markdown report (tables of median, min and max per figure with the peer
// beside it and the ratio pstore/peer, the targets, the tier-isolation
// proof), a JSON file with every raw sample, and a PNG drawn by gnuplot
// (latency CDFs per tier, throughput bars per tier against its peers).
//
// A throughput figure is a Series: one sample per repetition. A latency
// figure is a LatencySeries: every request's latency of every run; its
// percentiles are computed per run, and the report gives their median,
// min and max over the runs.
//
// Thread-compatible.

#ifndef PSTORE_BENCH_RESULTS_H_
#define PSTORE_BENCH_RESULTS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pstore::bench {

struct Summary {
  double median = 0;
  double min = 0;
  double max = 0;
  size_t count = 0;
};

// Returns the median (mean of the middle two for an even count), min and
// max of `values`; all zero for none.
Summary Summarize(std::span<const double> values);

// Returns the `q`-quantile (0 <= q <= 1) of `sorted` by nearest rank: the
// smallest value with at least q of the values at or below it.
double Quantile(std::span<const double> sorted, double q);

// A throughput figure: one sample per repetition.
struct Series {
  std::string id;        // Unique, e.g. "get_dram/pstore".
  std::string workload;  // "get_dram", "pull", ...
  std::string config;    // What was read, e.g. "16 x 64 MiB tensors".
  std::string system;    // "pstore", "grpc-ceiling", "nginx", ...
  std::string unit;      // "MB/s" (1e6 bytes/s) or "Mparams/s".
  std::string method;    // How the system was driven, one line.
  std::string panel;     // Bar chart panel: "put", "dram", "nvme", "cold",
                         // "pull"; empty for none.
  std::vector<double> samples;
  std::string bar_label;  // Label under its bar; default: system.
  // Minor page faults per GiB moved, one figure per repetition (see
  // FaultMeter): of the process(es) serving the bytes and of the process
  // reading them; empty when not measured (no serving process for fio and
  // the in-process peers).
  std::vector<double> server_faults;
  std::vector<double> client_faults;
  std::string server_process;  // "pstored", "nginx (master + worker)", ...
  std::string client_process;  // "pstore-bench", "pstore-cli", "fio", ...
  Summary summary() const { return Summarize(samples); }
};

// A latency figure: the latency of every request of every run, in
// microseconds.
struct LatencySeries {
  std::string id;
  std::string tier;  // "dram", "nvme", "cold"
  uint64_t bytes = 0;
  int outstanding = 1;
  std::string system;
  std::string method;
  std::vector<std::vector<double>> runs;
  // Requests per run, when `runs` holds fewer points than requests (fio
  // reports percentiles, not samples); 0: the size of each run.
  uint64_t requests = 0;
  // Returns the `q`-quantile of each run.
  std::vector<double> PerRun(double q) const;
};

// Returns a throughput figure with no samples yet.
Series MakeSeries(std::string id, std::string workload, std::string config,
                  std::string system, std::string unit, std::string method,
                  std::string panel);

// Returns a latency figure with no runs yet.
LatencySeries MakeLatencySeries(std::string id, std::string tier,
                                uint64_t bytes, int outstanding,
                                std::string system, std::string method);

// pstore's figure `pstore_id` against the peer's `peer_id`, ratio
// pstore/peer of the medians.
struct Comparison {
  std::string pstore_id;
  std::string peer_id;
};

// One of the target lines: a ratio measured in this run and its goal.
struct Target {
  std::string name;
  std::string detail;  // Which figures the ratio divides.
  std::optional<double> ratio;
  bool at_least = true;  // The ratio must be >= goal (else <= goal).
  double goal = 1.0;
  std::string missing;  // Why the ratio could not be measured.
};

struct Machine {
  std::string cpus;
  std::string cpu_model;
  std::string memory;
  std::string kernel;
  std::string disk;
  std::string date;
};

class Results {
 public:
  // Adds a figure; returns its id.
  const std::string& Add(Series series);
  LatencySeries& AddLatency(LatencySeries series);
  void Compare(const std::string& pstore_id, const std::string& peer_id);
  void AddTarget(Target target) { targets_.push_back(std::move(target)); }
  // A line of the tier-isolation section; `ok` false marks a mismatch.
  void AddIsolation(const std::string& line, bool ok);
  // A line of the notes section (skipped peers, caveats, failures).
  void AddNote(const std::string& line) { notes_.push_back(line); }
  void set_machine(Machine machine) { machine_ = std::move(machine); }
  void set_settings(std::vector<std::pair<std::string, std::string>> s) {
    settings_ = std::move(s);
  }
  void set_elapsed(absl::Duration elapsed) { elapsed_ = elapsed; }

  // Returns the figure with `id`, or null.
  const Series* Find(const std::string& id) const;
  const LatencySeries* FindLatency(const std::string& id) const;

  // Returns the markdown report.
  std::string Markdown() const;
  // Returns the JSON document with every raw sample.
  std::string Json() const;
  // Writes the gnuplot data files and script next to `png` ("x.png" ->
  // "x.gnuplot", "x.*.dat") and returns the script's path.
  absl::StatusOr<std::string> WriteGnuplot(const std::string& png) const;

  const std::vector<Series>& series() const { return series_; }
  const std::vector<LatencySeries>& latency() const { return latency_; }

 private:
  std::vector<Series> series_;
  std::vector<LatencySeries> latency_;
  std::vector<Comparison> comparisons_;
  std::vector<Target> targets_;
  std::vector<std::pair<std::string, bool>> isolation_;
  std::vector<std::string> notes_;
  std::vector<std::pair<std::string, std::string>> settings_;
  Machine machine_;
  absl::Duration elapsed_;
};

// Returns "64KiB", "4MiB", "1.5GiB": the size in the largest binary unit
// that keeps it whole or one decimal.
std::string ShortBytes(uint64_t bytes);

}  // namespace pstore::bench

#endif  // PSTORE_BENCH_RESULTS_H_
