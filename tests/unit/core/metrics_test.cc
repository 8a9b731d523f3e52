// SPDX-License-Identifier: Apache-2.0
#include <confab/core/metrics.h>
#include <confab/core/random.h>

#include <gtest/gtest.h>

#include <set>

namespace confab::core {
namespace {

TEST(Metrics, RendersCountersGaugesAndCumulativeHistograms) {
  Metrics m;
  m.describe("req_total", Metrics::Type::Counter, "Requests.");
  m.describe("open", Metrics::Type::Gauge, "Open.");
  m.describe("lat", Metrics::Type::Histogram, "Latency.", {0.1, 1});
  m.increment("req_total", {{"route", "/a"}, {"status", "200"}});
  m.increment("req_total", {{"route", "/a"}, {"status", "200"}});
  m.add("open", {}, 3);
  m.add("open", {}, -1);
  m.observe("lat", {}, 0.05);
  m.observe("lat", {}, 0.5);
  m.observe("lat", {}, 5);
  m.increment("undeclared");  // ignored, never invented
  auto text = m.render();
  EXPECT_NE(text.find("# TYPE req_total counter\nreq_total{route=\"/a\",status=\"200\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("open 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_bucket{le=\"1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_count 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_sum 5.55\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("undeclared"), std::string::npos);
}

TEST(Metrics, EscapesLabelValues) {
  Metrics m;
  m.describe("x", Metrics::Type::Counter, "X.");
  m.increment("x", {{"v", "a\"b\\c\nd"}});
  EXPECT_NE(m.render().find(R"(x{v="a\"b\\c\nd"} 1)"), std::string::npos) << m.render();
}

TEST(Random, HexAndUniformStayInRange) {
  auto& r = CsprngRandom::instance();
  auto h = r.hex(8);
  EXPECT_EQ(h.size(), 16u);
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 2000; ++i) {
    auto v = r.uniform(10);
    ASSERT_LT(v, 10u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_NE(r.hex(16), r.hex(16));
}

}  // namespace
}  // namespace confab::core
