// SPDX-License-Identifier: Apache-2.0
#pragma once
// Metrics: a small registry of counters, gauges and histograms rendered in the Prometheus text
// exposition format (version 0.0.4). Thread-safe. Callers keep label sets bounded: a route label is
// the route's pattern, never the raw path; a status label is the numeric status.

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace confab::core {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  enum class Type { Counter, Gauge, Histogram };

  // Declares a family; must precede its first use. `buckets` only for histograms (upper bounds,
  // ascending; +Inf is implied).
  void describe(std::string name, Type type, std::string help, std::vector<double> buckets = {});

  void increment(std::string_view name, const Labels& labels = {}, double by = 1);
  void add(std::string_view name, const Labels& labels, double delta);      // gauges
  void set(std::string_view name, const Labels& labels, double value);      // gauges
  void observe(std::string_view name, const Labels& labels, double value);  // histograms

  // The whole registry in Prometheus text format.
  std::string render() const;

 private:
  struct Series {
    double value = 0;                   // counter / gauge; histogram sum
    std::vector<std::uint64_t> counts;  // histogram buckets (cumulative when rendered)
    std::uint64_t count = 0;            // histogram observations
  };
  struct Family {
    Type type = Type::Counter;
    std::string help;
    std::vector<double> buckets;
    std::map<std::string, Series> series;  // key: rendered label set `{a="b",...}`
  };
  Series* find(std::string_view name, const Labels& labels);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace confab::core
