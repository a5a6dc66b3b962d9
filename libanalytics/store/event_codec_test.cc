// Tests of the event record and block encodings (event_codec.h): round trip
// of every field, and damaged bytes are DataLoss, never a crash.
#include "libanalytics/store/event_codec.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace analytics {
namespace {

Event Sample(int64_t seq, int i) {
  Event e;
  e.seq = seq;
  e.site_id = 3;
  e.ts_ms = 1790812840500 + i;
  e.name = i % 2 ? "pageview" : "Signup";
  e.hostname = "example.com";
  e.page = "/p/" + std::to_string(i);
  if (i % 3 == 0) e.props = {{"plan", "pro"}, {"k", std::string(300, 'x')}};
  e.visitor_id = ~static_cast<uint64_t>(i);
  e.session_id = 99 + i;
  e.session_start_ms = -5 - i;
  e.visit.entry_page = "/";
  e.visit.country = "DE";
  e.visit.locale = "de-DE";
  e.first_in_session = i % 2;
  e.first_page = true;
  e.s_pageviews = i;
  e.s_events = i + 1;
  e.s_bounce = i % 5 == 0;
  e.s_duration_ms = 1000 * i;
  e.s_exit_page = "/x";
  e.d_bounce = -1;
  e.d_duration_ms = -7;
  e.imported = i % 4 == 0;
  return e;
}

TEST(EventCodecTest, BlockRoundTripsEveryField) {
  std::vector<Event> events;
  for (int i = 0; i < 50; ++i) events.push_back(Sample(100 + 3 * i, i));
  std::vector<const Event*> ptrs;
  for (const Event& e : events) ptrs.push_back(&e);
  std::string bytes;
  EncodeEventBlock(ptrs, 100, &bytes);
  std::vector<Event> got;
  ASSERT_TRUE(DecodeEventBlock(bytes, 100, 7, &got).ok());
  ASSERT_EQ(got.size(), events.size());
  for (size_t i = 0; i < got.size(); ++i) {
    Event want = events[i];
    want.worker = 7;
    EXPECT_EQ(got[i].seq, want.seq);
    EXPECT_EQ(got[i].worker, 7);
    EXPECT_EQ(got[i].props, want.props);
    EXPECT_EQ(got[i].visit, want.visit);
    std::string a, b;
    EncodeEvent(got[i], &a);
    EncodeEvent(want, &b);
    EXPECT_EQ(a, b) << i;
  }
}

TEST(EventCodecTest, DamagedBlocksAreDataLossNotCrashes) {
  std::vector<Event> events;
  for (int i = 0; i < 8; ++i) events.push_back(Sample(10 + i, i));
  std::vector<const Event*> ptrs;
  for (const Event& e : events) ptrs.push_back(&e);
  std::string bytes;
  EncodeEventBlock(ptrs, 10, &bytes);
  // Every proper prefix is incomplete.
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<Event> got;
    absl::Status st = DecodeEventBlock(bytes.substr(0, n), 10, 0, &got);
    EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << n;
    EXPECT_LT(got.size(), events.size());
  }
  // Random byte changes: any status, but no crash and no out-of-range read
  // (the ASan build checks the latter).
  std::mt19937 rng(1);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bad = bytes;
    for (int k = 0; k < 3; ++k)
      bad[rng() % bad.size()] = static_cast<char>(rng());
    std::vector<Event> got;
    (void)DecodeEventBlock(bad, 10, 0, &got);
  }
  std::string extra = bytes + "z";
  std::vector<Event> got;
  EXPECT_EQ(DecodeEventBlock(extra, 10, 0, &got).code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace analytics
