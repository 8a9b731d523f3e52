// SPDX-License-Identifier: Apache-2.0
#include <confab/core/metrics.h>

#include <charconv>
#include <cmath>

namespace confab::core {
namespace {

std::string renderLabels(const Labels& labels) {
  if (labels.empty()) {
    return {};
  }
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i) {
      out += ',';
    }
    out += labels[i].first;
    out += "=\"";
    for (char c : labels[i].second) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

// Inserts `le` into an already-rendered label set.
std::string withLe(const std::string& labels, const std::string& le) {
  if (labels.empty()) {
    return "{le=\"" + le + "\"}";
  }
  return labels.substr(0, labels.size() - 1) + ",le=\"" + le + "\"}";
}

}  // namespace

void Metrics::describe(std::string name, Type type, std::string help, std::vector<double> buckets) {
  std::lock_guard lock(mu_);
  auto& f = families_[std::move(name)];
  f.type = type;
  f.help = std::move(help);
  f.buckets = std::move(buckets);
}

Metrics::Series* Metrics::find(std::string_view name, const Labels& labels) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    return nullptr;  // undeclared families are ignored rather than invented
  }
  auto& s = it->second.series[renderLabels(labels)];
  if (it->second.type == Type::Histogram && s.counts.empty()) {
    s.counts.assign(it->second.buckets.size(), 0);
  }
  return &s;
}

void Metrics::increment(std::string_view name, const Labels& labels, double by) {
  std::lock_guard lock(mu_);
  if (auto* s = find(name, labels)) {
    s->value += by;
  }
}

void Metrics::add(std::string_view name, const Labels& labels, double delta) {
  increment(name, labels, delta);
}

void Metrics::set(std::string_view name, const Labels& labels, double value) {
  std::lock_guard lock(mu_);
  if (auto* s = find(name, labels)) {
    s->value = value;
  }
}

void Metrics::observe(std::string_view name, const Labels& labels, double value) {
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) {
    return;
  }
  auto* s = find(name, labels);
  const auto& buckets = it->second.buckets;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    if (value <= buckets[i]) {
      ++s->counts[i];
      break;
    }
  }
  s->value += value;
  ++s->count;
}

std::string Metrics::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    static constexpr const char* kTypes[] = {"counter", "gauge", "histogram"};
    out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + kTypes[static_cast<int>(f.type)] + "\n";
    for (const auto& [labels, s] : f.series) {
      if (f.type != Type::Histogram) {
        out += name + labels + " " + number(s.value) + "\n";
        continue;
      }
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < f.buckets.size(); ++i) {
        cumulative += s.counts[i];
        out += name + "_bucket" + withLe(labels, number(f.buckets[i])) + " " +
               std::to_string(cumulative) + "\n";
      }
      out += name + "_bucket" + withLe(labels, "+Inf") + " " + std::to_string(s.count) + "\n";
      out += name + "_sum" + labels + " " + number(s.value) + "\n";
      out += name + "_count" + labels + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace confab::core
