#include "bench/results.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace pstore::bench {
namespace {

// Formats a figure in `unit` with precision suited to its size.
std::string Figure(double value) {
  if (!std::isfinite(value)) return "-";
  double magnitude = std::fabs(value);
  if (magnitude >= 100) return absl::StrFormat("%.0f", value);
  if (magnitude >= 10) return absl::StrFormat("%.1f", value);
  if (magnitude >= 1) return absl::StrFormat("%.2f", value);
  return absl::StrFormat("%.3f", value);
}

std::string WithRange(const Summary& s) {
  return absl::StrCat(Figure(s.median), " (", Figure(s.min), "–", Figure(s.max),
                      ")");
}

// Returns "server / client": the medians of a figure's minor faults per
// GiB, "-" for one not measured.
std::string Faults(const Series& series) {
  auto median = [](const std::vector<double>& values) -> std::string {
    if (values.empty()) return "-";
    return absl::StrFormat("%.0f", Summarize(values).median);
  };
  return absl::StrCat(median(series.server_faults), " / ",
                      median(series.client_faults));
}

// Returns the JSON of a fault figure: the process, every sample, median,
// min and max.
nlohmann::json FaultsJson(const std::string& process,
                          const std::vector<double>& samples) {
  Summary summary = Summarize(samples);
  return {{"process", process},
          {"samples", samples},
          {"median", summary.median},
          {"min", summary.min},
          {"max", summary.max}};
}

std::string Ratio(double ratio) {
  if (!std::isfinite(ratio)) return "-";
  return absl::StrFormat("%.2f", ratio);
}

const char* kPercentileNames[] = {"p50", "p90", "p99", "p99.9", "max"};
const double kPercentiles[] = {0.5, 0.9, 0.99, 0.999, 1.0};

// Returns the median (min–max) over runs of quantile `q`.
Summary LatencySummary(const LatencySeries& series, double q) {
  std::vector<double> per_run = series.PerRun(q);
  return Summarize(per_run);
}

std::string EscapeGnuplot(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// Returns `text` with line breaks turned into spaces, for a list item.
std::string OneLine(absl::string_view text) {
  std::string line(absl::StripAsciiWhitespace(text));
  std::replace(line.begin(), line.end(), '\n', ' ');
  return line;
}

std::string TierTitle(const std::string& tier) {
  if (tier == "dram") return "DRAM tier";
  if (tier == "nvme") return "NVMe tier";
  if (tier == "cold") return "cold tier";
  if (tier == "pull") return "whole-model pull";
  if (tier == "put") return "put";
  if (tier == "python") return "Python load";
  return tier;
}

}  // namespace

Summary Summarize(std::span<const double> values) {
  Summary summary;
  summary.count = values.size();
  if (values.empty()) return summary;
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  size_t n = sorted.size();
  summary.median =
      n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  summary.min = sorted.front();
  summary.max = sorted.back();
  return summary;
}

double Quantile(std::span<const double> sorted, double q) {
  if (sorted.empty()) return 0;
  if (q >= 1) return sorted.back();
  size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  if (rank == 0) rank = 1;
  return sorted[rank - 1];
}

Series MakeSeries(std::string id, std::string workload, std::string config,
                  std::string system, std::string unit, std::string method,
                  std::string panel) {
  Series series;
  series.id = std::move(id);
  series.workload = std::move(workload);
  series.config = std::move(config);
  series.system = std::move(system);
  series.unit = std::move(unit);
  series.method = std::move(method);
  series.panel = std::move(panel);
  return series;
}

LatencySeries MakeLatencySeries(std::string id, std::string tier,
                                uint64_t bytes, int outstanding,
                                std::string system, std::string method) {
  LatencySeries series;
  series.id = std::move(id);
  series.tier = std::move(tier);
  series.bytes = bytes;
  series.outstanding = outstanding;
  series.system = std::move(system);
  series.method = std::move(method);
  return series;
}

std::vector<double> LatencySeries::PerRun(double q) const {
  std::vector<double> values;
  for (const std::vector<double>& run : runs) {
    std::vector<double> sorted = run;
    std::sort(sorted.begin(), sorted.end());
    values.push_back(Quantile(sorted, q));
  }
  return values;
}

std::string ShortBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  if (value == std::floor(value)) {
    return absl::StrFormat("%.0f %s", value, units[unit]);
  }
  return absl::StrFormat("%.2f %s", value, units[unit]);
}

const std::string& Results::Add(Series series) {
  series_.push_back(std::move(series));
  return series_.back().id;
}

LatencySeries& Results::AddLatency(LatencySeries series) {
  latency_.push_back(std::move(series));
  return latency_.back();
}

void Results::Compare(const std::string& pstore_id,
                      const std::string& peer_id) {
  comparisons_.push_back(Comparison{pstore_id, peer_id});
}

void Results::AddIsolation(const std::string& line, bool ok) {
  isolation_.emplace_back(line, ok);
}

const Series* Results::Find(const std::string& id) const {
  for (const Series& series : series_) {
    if (series.id == id) return &series;
  }
  return nullptr;
}

const LatencySeries* Results::FindLatency(const std::string& id) const {
  for (const LatencySeries& series : latency_) {
    if (series.id == id) return &series;
  }
  return nullptr;
}

std::string Results::Markdown() const {
  std::string out = "# pstore-bench report\n\n";
  absl::StrAppend(&out, "Machine: ", machine_.cpus, " CPUs (",
                  machine_.cpu_model, "), ", machine_.memory, " RAM, kernel ",
                  machine_.kernel, "; disk: ", machine_.disk, ".  \n");
  absl::StrAppend(&out, "Run: ", machine_.date, ", ",
                  absl::FormatDuration(absl::Trunc(elapsed_, absl::Seconds(1))),
                  ".  \n");
  std::vector<std::string> settings;
  for (const auto& [key, value] : settings_) {
    settings.push_back(absl::StrCat(key, "=", value));
  }
  absl::StrAppend(&out, "Settings: `", absl::StrJoin(settings, " "), "`\n\n");

  // Throughput.
  if (!series_.empty()) {
    out +=
        "## Throughput\n\nMB/s = 1e6 bytes/s, GB/s = 1e9 bytes/s. Each "
        "figure: median (min–max) over the repetitions; pstore and its peers "
        "ran alternately in the same repetitions, on the same bytes. Ratio: "
        "pstore/peer of the medians (above 1: pstore faster). Faults/GiB: "
        "minor page faults per GiB (2^30 bytes) moved in the timed runs, "
        "median over the repetitions, of the serving process / of the "
        "reading process (which ones: see how each figure was measured); "
        "'-': none, or not measured. They do not depend on how dear a fault "
        "is on this machine.\n\n"
        "| workload | what | pstore | faults/GiB | peer | peer figure | "
        "peer faults/GiB | pstore/peer |\n"
        "|---|---|---|---|---|---|---|---|\n";
    std::set<std::string> shown;
    for (const Series& series : series_) {
      if (series.system != "pstore") continue;
      std::vector<const Series*> peers;
      for (const Comparison& comparison : comparisons_) {
        if (comparison.pstore_id != series.id) continue;
        if (const Series* peer = Find(comparison.peer_id)) {
          peers.push_back(peer);
        }
      }
      std::string figure =
          absl::StrCat(WithRange(series.summary()), " ", series.unit);
      std::string what = absl::StrCat(series.config);
      if (peers.empty()) {
        absl::StrAppend(&out, "| ", series.workload, " | ", what, " | ", figure,
                        " | ", Faults(series), " | - | - | - | - |\n");
      }
      for (size_t i = 0; i < peers.size(); ++i) {
        const Series* peer = peers[i];
        double ratio = series.summary().median / peer->summary().median;
        std::string peer_name = peer->system;
        if (peer->config != series.config) {
          absl::StrAppend(&peer_name, " (", peer->config, ")");
        }
        absl::StrAppend(&out, "| ", i == 0 ? series.workload : "", " | ",
                        i == 0 ? what : "", " | ", i == 0 ? figure : "", " | ",
                        i == 0 ? Faults(series) : "", " | ", peer_name, " | ",
                        WithRange(peer->summary()), " ", peer->unit, " | ",
                        Faults(*peer), " | ", Ratio(ratio), " |\n");
        shown.insert(peer->id);
      }
    }
    // Peers no pstore figure was compared with (e.g. a workload failed).
    for (const Series& series : series_) {
      if (series.system == "pstore" || shown.count(series.id) > 0) continue;
      absl::StrAppend(&out, "| ", series.workload, " | ", series.config,
                      " | - | - | ", series.system, " | ",
                      WithRange(series.summary()), " ", series.unit, " | ",
                      Faults(series), " | - |\n");
    }
    out += "\n";
  }

  // Latency.
  if (!latency_.empty()) {
    out +=
        "## Latency\n\nMicroseconds per request, from the call to the last "
        "byte in the caller's buffer. Percentiles are computed per run; "
        "each cell is their median (min–max) over the runs. Ratios: "
        "pstore/peer of the medians (below 1: pstore faster).\n\n"
        "| tier | size | outstanding | system | requests/run | p50 | p90 | "
        "p99 | p99.9 | max | p50 ratio | p99 ratio |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const LatencySeries& series : latency_) {
      if (series.system != "pstore") continue;
      std::vector<const LatencySeries*> rows = {&series};
      for (const Comparison& comparison : comparisons_) {
        if (comparison.pstore_id != series.id) continue;
        if (const LatencySeries* peer = FindLatency(comparison.peer_id)) {
          rows.push_back(peer);
        }
      }
      for (const LatencySeries* row : rows) {
        uint64_t requests = row->requests;
        if (requests == 0 && !row->runs.empty()) {
          requests = row->runs.front().size();
        }
        absl::StrAppend(&out, "| ", row->tier, " | ", ShortBytes(row->bytes),
                        " | ", row->outstanding, " | ", row->system, " | ",
                        requests);
        for (double q : kPercentiles) {
          absl::StrAppend(&out, " | ", WithRange(LatencySummary(*row, q)));
        }
        if (row == &series) {
          out += " | | |\n";
        } else {
          double p50 = LatencySummary(series, 0.5).median /
                       LatencySummary(*row, 0.5).median;
          double p99 = LatencySummary(series, 0.99).median /
                       LatencySummary(*row, 0.99).median;
          absl::StrAppend(&out, " | ", Ratio(p50), " | ", Ratio(p99), " |\n");
        }
      }
    }
    out += "\n";
  }

  // Targets.
  if (!targets_.empty()) {
    out +=
        "## Targets\n\nRatios pstore/peer measured in this run (nothing was "
        "tuned to meet them).\n\n"
        "| target | measured | goal | result |\n|---|---|---|---|\n";
    for (const Target& target : targets_) {
      std::string goal =
          absl::StrCat(target.at_least ? "≥ " : "≤ ",
                       absl::StrFormat("%.2f", target.goal), "×");
      std::string measured = "-";
      std::string result;
      if (target.ratio.has_value()) {
        measured = absl::StrCat(absl::StrFormat("%.2f", *target.ratio), "×");
        bool met = target.at_least ? *target.ratio >= target.goal
                                   : *target.ratio <= target.goal;
        result = met ? "met" : "missed";
      } else {
        result = absl::StrCat("not measured: ", target.missing);
      }
      absl::StrAppend(&out, "| ", target.name, " (", target.detail, ") | ",
                      measured, " | ", goal, " | ", result, " |\n");
    }
    out += "\n";
  }

  if (!isolation_.empty()) {
    out +=
        "## Tier isolation\n\nBlock reads each tier served during each "
        "timed pstore run (GetServerStatus `reads_served`, after minus "
        "before).\n\n";
    for (const auto& [line, ok] : isolation_) {
      absl::StrAppend(&out, "- ", ok ? "" : "**MISMATCH** ", line, "\n");
    }
    out += "\n";
  }

  // Methods, once per (system, method).
  std::vector<std::string> methods;
  std::set<std::string> seen;
  auto add_method = [&](const std::string& workload, const std::string& system,
                        const std::string& method) {
    if (method.empty()) return;
    std::string line = absl::StrCat(workload, ", ", system, ": ", method);
    if (seen.insert(line).second) methods.push_back(line);
  };
  for (const Series& series : series_) {
    std::string method = series.method;
    if (!series.client_process.empty()) {
      absl::StrAppend(&method, "; minor faults: ",
                      series.server_process.empty()
                          ? std::string("no serving process")
                          : absl::StrCat("serving ", series.server_process),
                      ", reading ", series.client_process);
    }
    add_method(series.workload, series.system, method);
  }
  for (const LatencySeries& series : latency_) {
    add_method(absl::StrCat("latency ", series.tier), series.system,
               series.method);
  }
  if (!methods.empty()) {
    out += "## How each figure was measured\n\n";
    for (const std::string& line : methods)
      absl::StrAppend(&out, "- ", line, "\n");
    out += "\n";
  }
  if (!notes_.empty()) {
    out += "## Notes\n\n";
    for (const std::string& line : notes_) {
      absl::StrAppend(&out, "- ", OneLine(line), "\n");
    }
    out += "\n";
  }
  return out;
}

std::string Results::Json() const {
  using nlohmann::json;
  json doc;
  doc["machine"] = {
      {"cpus", machine_.cpus},     {"cpu_model", machine_.cpu_model},
      {"memory", machine_.memory}, {"kernel", machine_.kernel},
      {"disk", machine_.disk},     {"date", machine_.date}};
  json settings = json::object();
  for (const auto& [key, value] : settings_) settings[key] = value;
  doc["settings"] = settings;
  doc["elapsed_seconds"] = absl::ToDoubleSeconds(elapsed_);
  json series = json::array();
  for (const Series& s : series_) {
    Summary summary = s.summary();
    json entry = {{"id", s.id},           {"workload", s.workload},
                  {"config", s.config},   {"system", s.system},
                  {"unit", s.unit},       {"method", s.method},
                  {"samples", s.samples}, {"median", summary.median},
                  {"min", summary.min},   {"max", summary.max}};
    // Minor page faults per GiB moved, per repetition.
    if (!s.server_faults.empty()) {
      entry["server_faults_per_gib"] =
          FaultsJson(s.server_process, s.server_faults);
    }
    if (!s.client_faults.empty()) {
      entry["client_faults_per_gib"] =
          FaultsJson(s.client_process, s.client_faults);
    }
    series.push_back(entry);
  }
  doc["throughput"] = series;
  json latency = json::array();
  for (const LatencySeries& s : latency_) {
    json percentiles = json::object();
    for (size_t i = 0; i < 5; ++i) {
      Summary summary = LatencySummary(s, kPercentiles[i]);
      percentiles[kPercentileNames[i]] = {
          {"per_run", s.PerRun(kPercentiles[i])},
          {"median", summary.median},
          {"min", summary.min},
          {"max", summary.max}};
    }
    json entry = {{"id", s.id},         {"tier", s.tier},
                  {"bytes", s.bytes},   {"outstanding", s.outstanding},
                  {"system", s.system}, {"method", s.method},
                  {"unit", "us"},       {"percentiles", percentiles},
                  {"runs", s.runs}};
    if (s.requests != 0) {
      entry["requests_per_run"] = s.requests;
      entry["runs_note"] =
          "the peer reports percentiles, not samples: each run holds 1000 "
          "points placed at its p50, p90, p99, p99.9 and max";
    }
    latency.push_back(entry);
  }
  doc["latency"] = latency;
  json comparisons = json::array();
  for (const Comparison& c : comparisons_) {
    json row = {{"pstore", c.pstore_id}, {"peer", c.peer_id}};
    const Series* a = Find(c.pstore_id);
    const Series* b = Find(c.peer_id);
    if (a != nullptr && b != nullptr) {
      row["ratio_of_medians"] = a->summary().median / b->summary().median;
    }
    const LatencySeries* la = FindLatency(c.pstore_id);
    const LatencySeries* lb = FindLatency(c.peer_id);
    if (la != nullptr && lb != nullptr) {
      row["p50_ratio"] =
          LatencySummary(*la, 0.5).median / LatencySummary(*lb, 0.5).median;
      row["p99_ratio"] =
          LatencySummary(*la, 0.99).median / LatencySummary(*lb, 0.99).median;
    }
    comparisons.push_back(row);
  }
  doc["comparisons"] = comparisons;
  json targets = json::array();
  for (const Target& t : targets_) {
    json row = {{"name", t.name},
                {"detail", t.detail},
                {"goal", t.goal},
                {"at_least", t.at_least}};
    if (t.ratio.has_value()) {
      row["ratio"] = *t.ratio;
      row["met"] = t.at_least ? *t.ratio >= t.goal : *t.ratio <= t.goal;
    } else {
      row["missing"] = t.missing;
    }
    targets.push_back(row);
  }
  doc["targets"] = targets;
  json isolation = json::array();
  for (const auto& [line, ok] : isolation_) {
    isolation.push_back({{"line", line}, {"ok", ok}});
  }
  doc["isolation"] = isolation;
  doc["notes"] = notes_;
  return doc.dump(1);
}

absl::StatusOr<std::string> Results::WriteGnuplot(
    const std::string& png) const {
  std::filesystem::path png_path(png);
  std::filesystem::path stem = png_path;
  stem.replace_extension();
  std::string base = stem.string();
  auto write = [](const std::string& path,
                  const std::string& text) -> absl::Status {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    out.close();
    if (!out.good()) return absl::UnavailableError("cannot write " + path);
    return absl::OkStatus();
  };

  std::string script = absl::StrCat(
      "# Written by pstore-bench; run: gnuplot '", base, ".gnuplot'\n",
      "set terminal pngcairo size 1800,1500 font \",10\"\n", "set output '",
      png, "'\n",
      "set multiplot layout 3,3 title \"pstore-bench: latency CDFs per tier "
      "(solid: pstore, dashed/dotted: peers) and throughput against peers "
      "(bars: median, whiskers: min-max)\"\n",
      "set grid\n");
  auto empty_panel = [&](const std::string& title) {
    absl::StrAppend(&script, "set title \"", EscapeGnuplot(title),
                    "\"\nunset key\nset label 1 \"not run\" at graph 0.5,0.5 "
                    "center\nplot [0:1][0:1] 2 notitle\nunset label 1\n");
  };

  // Row 1: latency CDFs for dram, nvme, cold; then put bars.
  int file_index = 0;
  for (const std::string tier : {"dram", "nvme", "cold"}) {
    std::vector<std::string> plots;
    std::map<std::pair<uint64_t, int>, int> colors;
    for (const LatencySeries& series : latency_) {
      if (series.tier != tier) continue;
      std::vector<double> pooled;
      for (const std::vector<double>& run : series.runs) {
        pooled.insert(pooled.end(), run.begin(), run.end());
      }
      if (pooled.empty()) continue;
      std::sort(pooled.begin(), pooled.end());
      std::string data;
      size_t points = std::min<size_t>(pooled.size(), 2000);
      for (size_t i = 1; i <= points; ++i) {
        size_t rank = i * pooled.size() / points;
        absl::StrAppend(&data, pooled[rank - 1], " ",
                        static_cast<double>(rank) / pooled.size(), "\n");
      }
      std::string path = absl::StrCat(base, ".cdf", file_index++, ".dat");
      if (absl::Status s = write(path, data); !s.ok()) return s;
      auto key = std::make_pair(series.bytes, series.outstanding);
      if (colors.count(key) == 0) {
        int next = static_cast<int>(colors.size()) + 1;
        colors[key] = next;
      }
      int dash = series.system == "pstore" ? 1
                 : (series.system == "redis" || series.system == "rocksdb-mt")
                     ? 3
                     : 2;
      plots.push_back(absl::StrCat(
          "'", path, "' using 1:2 with lines lw ",
          series.system == "pstore" ? 2 : 1, " lc ", colors[key], " dt ", dash,
          " title \"", EscapeGnuplot(series.system), " ",
          ShortBytes(series.bytes), " x", series.outstanding, "\""));
    }
    std::string title = absl::StrCat(TierTitle(tier), ": latency CDF");
    if (plots.empty()) {
      empty_panel(title);
      continue;
    }
    absl::StrAppend(&script, "set title \"", title,
                    "\"\nset logscale x\nset xlabel \"latency (us)\"\n"
                    "set ylabel \"fraction of requests\"\nset yrange [0:1]\n"
                    "set key bottom right font \",7\"\nplot ",
                    absl::StrJoin(plots, ", \\\n  "),
                    "\nunset logscale x\nset autoscale y\n");
  }

  auto bars = [&](const std::string& panel) -> absl::Status {
    std::string data;
    std::string unit;
    int count = 0;
    for (const Series& series : series_) {
      if (series.panel != panel || series.samples.empty()) continue;
      Summary summary = series.summary();
      std::string label =
          series.bar_label.empty() ? series.system : series.bar_label;
      // pstore's bars blue, the peers' grey.
      absl::StrAppend(&data, "\"", EscapeGnuplot(label), "\" ", summary.median,
                      " ", summary.min, " ", summary.max, " ",
                      series.system == "pstore" ? 3174592 : 10526880, "\n");
      unit = series.unit;
      ++count;
    }
    std::string title = absl::StrCat(TierTitle(panel), ": throughput");
    if (count == 0) {
      empty_panel(title);
      return absl::OkStatus();
    }
    std::string path = absl::StrCat(base, ".bars-", panel, ".dat");
    if (absl::Status s = write(path, data); !s.ok()) return s;
    absl::StrAppend(
        &script, "set title \"", title, " (", unit,
        ")\"\nunset key\nunset xlabel\nset ylabel \"", unit,
        "\"\nset yrange [0:*]\nset style fill solid 0.6\nset boxwidth 0.6\n"
        "set xtics rotate by -30 font \",8\"\nset xrange [-0.6:",
        count - 0.4, "]\nplot '", path,
        "' using 0:2:5:xtic(1) with boxes lc rgb variable notitle, '' using "
        "0:2:3:4 "
        "with yerrorbars lc rgb \"black\" pt 0 notitle\n"
        "set autoscale x\nset autoscale y\nset xtics norotate font \",10\"\n");
    return absl::OkStatus();
  };
  for (const std::string panel :
       {"put", "dram", "nvme", "cold", "pull", "python"}) {
    if (absl::Status s = bars(panel); !s.ok()) return s;
  }
  script += "unset multiplot\n";
  std::string script_path = base + ".gnuplot";
  if (absl::Status s = write(script_path, script); !s.ok()) return s;
  return script_path;
}

}  // namespace pstore::bench
