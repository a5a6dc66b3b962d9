// Tests of the event record and block encodings (event_codec.h): round trip
// of every field in both block formats, the columns format's compression,
// and damaged bytes are DataLoss, never a crash.
#include "libanalytics/store/event_codec.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libanalytics/store/lz4_codec.h"

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

using Encoder = void (*)(absl::Span<const Event* const>, int64_t, std::string*);

class EventBlockFormatTest : public testing::TestWithParam<Encoder> {};

INSTANTIATE_TEST_SUITE_P(Formats, EventBlockFormatTest,
                         testing::Values(&EncodeEventBlock,
                                         &EncodeEventBlockV1),
                         [](const auto& info) {
                           return info.param == &EncodeEventBlock
                                      ? std::string("Columns")
                                      : std::string("Records");
                         });

TEST_P(EventBlockFormatTest, BlockRoundTripsEveryField) {
  std::vector<Event> events;
  for (int i = 0; i < 50; ++i) events.push_back(Sample(100 + 3 * i, i));
  // Extremes: time going backwards, ids with the top bit set, negative and
  // large counters.
  events[7].ts_ms = 5;
  events[8].ts_ms = -1790812840500;
  events[9].visitor_id = ~uint64_t{0};
  events[9].session_id = uint64_t{1} << 63;
  events[10].s_duration_ms = int64_t{1} << 50;
  events[10].session_start_ms = events[10].ts_ms + 999;
  events[11].visit.browser = std::string(5000, 'b');
  std::vector<const Event*> ptrs;
  for (const Event& e : events) ptrs.push_back(&e);
  std::string bytes;
  GetParam()(ptrs, 100, &bytes);
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

TEST_P(EventBlockFormatTest, DamagedBlocksAreDataLossNotCrashes) {
  std::vector<Event> events;
  for (int i = 0; i < 8; ++i) events.push_back(Sample(10 + i, i));
  std::vector<const Event*> ptrs;
  for (const Event& e : events) ptrs.push_back(&e);
  std::string bytes;
  GetParam()(ptrs, 10, &bytes);
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

// Appending to a block decodes after what *out holds.
TEST(EventCodecTest, DecodeAppends) {
  std::vector<Event> events = {Sample(1, 1), Sample(2, 2)};
  std::vector<const Event*> ptrs = {&events[0], &events[1]};
  std::string bytes;
  EncodeEventBlock(ptrs, 1, &bytes);
  std::vector<Event> got(3);
  ASSERT_TRUE(DecodeEventBlock(bytes, 1, 0, &got).ok());
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[3].page, "/p/1");
  EXPECT_EQ(got[4].seq, 2);
}

// Blocks are written in the columns format, and it is much smaller than the
// records for traffic whose values repeat (a few browsers, pages,
// countries): the bytes every append writes and fsyncs. Fails if blocks are
// written uncompressed or row by row.
TEST(EventCodecTest, ColumnsFormatCompressesRepeatedValues) {
  std::vector<Event> events;
  uint64_t h = 0x9e3779b97f4a7c15;
  for (int i = 0; i < 2048; ++i) {
    Event e;
    e.seq = 1 + i;
    e.site_id = 1;
    e.ts_ms = 1790812840500 + 1700 * i;
    e.name = "pageview";
    e.hostname = "example.com";
    e.page = "/blog/post-" + std::to_string((h >> 7) % 50);
    h = h * 6364136223846793005 + 1442695040888963407;
    e.visitor_id = h;
    h = h * 6364136223846793005 + 1442695040888963407;
    e.session_id = h;
    e.session_start_ms = e.ts_ms;
    e.visit.entry_page = e.page;
    const char* browsers[] = {"Chrome", "Firefox", "Safari", "Edge"};
    const char* countries[] = {"DE", "US", "FR", "GB", "IN"};
    e.visit.browser = browsers[(h >> 20) % 4];
    e.visit.browser_version = "120";
    e.visit.os = (h >> 30) % 2 ? "Windows" : "Mac";
    e.visit.os_version = "10";
    e.visit.device = "Desktop";
    e.visit.country = countries[(h >> 40) % 5];
    e.visit.source = (h >> 50) % 3 ? "Google" : "";
    e.visit.referrer = e.visit.source.empty() ? "" : "https://www.google.com/";
    e.visit.locale = "en-US";
    e.first_in_session = true;
    e.first_page = true;
    e.first_name = true;
    e.s_pageviews = 1;
    e.s_bounce = true;
    e.s_exit_page = e.page;
    e.d_bounce = 1;
    events.push_back(std::move(e));
  }
  std::vector<const Event*> ptrs;
  for (const Event& e : events) ptrs.push_back(&e);
  std::string columns, records;
  EncodeEventBlock(ptrs, 1, &columns);
  EncodeEventBlockV1(ptrs, 1, &records);
  ASSERT_EQ(columns[0], 2);  // the format byte
  ASSERT_EQ(records[0], 1);
  // 16 bytes of ids per event do not compress.
  EXPECT_LT(columns.size(), records.size() / 3)
      << columns.size() << " vs " << records.size();
  EXPECT_LT(columns.size(), 2048u * 40) << columns.size();
  std::vector<Event> got;
  ASSERT_TRUE(DecodeEventBlock(columns, 1, 0, &got).ok());
  ASSERT_EQ(got.size(), events.size());
  for (size_t i = 0; i < got.size(); ++i) {
    std::string a, b;
    EncodeEvent(got[i], &a);
    EncodeEvent(events[i], &b);
    ASSERT_EQ(a, b) << i;
  }
}

// A columns block whose header claims more bytes than LZ4 can expand to, or
// than the data holds, is refused before anything is allocated or decoded.
TEST(EventCodecTest, ColumnsHeaderBoundsAreChecked) {
  std::vector<Event> events = {Sample(1, 1)};
  std::vector<const Event*> ptrs = {&events[0]};
  std::string bytes;
  EncodeEventBlock(ptrs, 1, &bytes);
  ASSERT_EQ(bytes[0], 2);
  ASSERT_EQ(bytes[1], 1);  // one event
  // Replace the one-or-two-byte raw size varint with 2^40.
  size_t raw_len = (static_cast<uint8_t>(bytes[2]) & 0x80) ? 2 : 1;
  std::string huge = bytes.substr(0, 2) +
                     std::string("\x80\x80\x80\x80\x80\x20", 6) +
                     bytes.substr(2 + raw_len);
  std::vector<Event> got;
  EXPECT_EQ(DecodeEventBlock(huge, 1, 0, &got).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_TRUE(got.empty());
  // More events than the columns hold.
  std::string many = bytes;
  many[1] = 0x7f;
  EXPECT_EQ(DecodeEventBlock(many, 1, 0, &got).code(),
            absl::StatusCode::kDataLoss);
  got.clear();
  // An unknown format byte.
  std::string unknown = bytes;
  unknown[0] = 3;
  EXPECT_EQ(DecodeEventBlock(unknown, 1, 0, &got).code(),
            absl::StatusCode::kDataLoss);
}

// AppendLz4 reuses one LZ4 stream per thread: every block must still be
// self-contained (no reference to the blocks compressed before it on the
// thread), so each decodes alone with the plain decoder.
TEST(EventCodecTest, Lz4BlocksAreIndependentOnOneThread) {
  std::mt19937_64 rng(7);
  std::vector<std::string> raws;
  std::vector<std::string> blocks;
  for (int i = 0; i < 200; ++i) {
    // Blocks that repeat the previous ones' bytes, which a stream carrying
    // a dictionary over would reference instead of storing.
    std::string raw = i > 0 ? raws.back().substr(0, rng() % 3000) : "";
    const size_t extra = rng() % 5000;
    for (size_t k = 0; k < extra; ++k) {
      raw.push_back(static_cast<char>('a' + rng() % (i % 2 ? 3 : 26)));
    }
    std::string block = "prefix";
    codec::AppendLz4(raw, &block);
    raws.push_back(raw);
    blocks.push_back(block.substr(6));
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    std::string got;
    ASSERT_TRUE(codec::DecompressLz4(blocks[i], raws[i].size(), &got)) << i;
    ASSERT_EQ(got, raws[i]) << i;
  }
}

}  // namespace
}  // namespace analytics
