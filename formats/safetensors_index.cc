#include "formats/safetensors_index.h"

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace pstore {
namespace {

using Json = nlohmann::json;

// Reads the index from SAX events: weight_map's keys and values as they
// come (so a repeated key is seen, not overwritten), and
// metadata.total_size. Everything else is skipped.
class IndexReader final : public nlohmann::json_sax<Json> {
 public:
  SafetensorsIndex& index() { return index_; }
  const std::string& error() const { return error_; }
  bool saw_weight_map() const { return saw_weight_map_; }

  bool null() override { return Value("null"); }
  bool boolean(bool) override { return Value("a boolean"); }
  bool number_integer(number_integer_t value) override {
    if (InTotalSize() && value >= 0) {
      index_.total_size = static_cast<uint64_t>(value);
    }
    return Value("a number");
  }
  bool number_unsigned(number_unsigned_t value) override {
    if (InTotalSize()) index_.total_size = value;
    return Value("a number");
  }
  bool number_float(number_float_t, const string_t&) override {
    return Value("a number");
  }
  bool string(string_t& value) override {
    if (InWeightMap()) {
      index_.weight_map[keys_.back()] = std::move(value);
      return true;
    }
    return Value("a string");
  }
  bool binary(binary_t&) override {
    error_ = "the index holds a binary value";
    return false;
  }
  bool start_object(std::size_t) override {
    if (InWeightMap()) return Value("an object");
    if (depth_ == 1 && keys_.back() == "weight_map") saw_weight_map_ = true;
    return Open();
  }
  bool key(string_t& key) override {
    if (depth_ == 2 && keys_[0] == "weight_map") {
      if (index_.weight_map.contains(key)) {
        error_ = absl::StrCat("the index's weight_map names tensor \"", key,
                              "\" twice");
        return false;
      }
    }
    keys_.back() = std::move(key);
    return true;
  }
  bool end_object() override {
    --depth_;
    keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (InWeightMap()) return Value("an array");
    return Open();
  }
  bool end_array() override { return end_object(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    error_ = absl::StrCat("the index is not valid JSON (at byte ", position,
                          "): ", e.what());
    return false;
  }

 private:
  static constexpr int kMaxDepth = 64;

  // Enters an object or array.
  bool Open() {
    ++depth_;
    keys_.emplace_back();
    if (depth_ > kMaxDepth) {
      error_ = "the index nests too deep";
      return false;
    }
    return true;
  }
  bool InWeightMap() const { return depth_ == 2 && keys_[0] == "weight_map"; }
  bool InTotalSize() const {
    return depth_ == 2 && keys_[0] == "metadata" && keys_[1] == "total_size";
  }
  // A scalar or container that is not a weight_map entry: fine anywhere
  // but in weight_map.
  bool Value(absl::string_view what) {
    if (!InWeightMap()) return true;
    error_ = absl::StrCat("the index's weight_map maps \"", keys_.back(),
                          "\" to ", what, ", not a shard's file name");
    return false;
  }

  SafetensorsIndex index_;
  std::string error_;
  int depth_ = 0;
  // The key being read at each open level (empty in arrays).
  std::vector<std::string> keys_;
  bool saw_weight_map_ = false;
};

}  // namespace

bool IsSafetensorsIndexName(absl::string_view name) {
  return absl::EndsWith(name, ".safetensors.index.json");
}

absl::StatusOr<SafetensorsIndex> ParseSafetensorsIndex(absl::string_view json) {
  if (json.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("the index holds a NUL byte");
  }
  IndexReader reader;
  if (!Json::sax_parse(json.data(), json.data() + json.size(), &reader)) {
    return absl::InvalidArgumentError(reader.error());
  }
  if (!reader.saw_weight_map()) {
    return absl::InvalidArgumentError(
        "the index has no \"weight_map\" object at its top level");
  }
  return std::move(reader.index());
}

absl::StatusOr<std::string> SetSafetensorsIndexTotalSize(absl::string_view json,
                                                         uint64_t total_size) {
  Json parsed = Json::parse(json.begin(), json.end(), nullptr,
                            /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return absl::InvalidArgumentError("the index is not a JSON object");
  }
  parsed["metadata"]["total_size"] = total_size;
  return parsed.dump(2) + "\n";
}

}  // namespace pstore
