#include "libanalytics/enrich/visitor_id.h"

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace analytics {
namespace {

std::string Bytes(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(i));
  return s;
}

TEST(SipHashTest, ReferenceVectors) {
  const std::string key = Bytes(16);
  EXPECT_EQ(SipHash24(key, ""), 0x726fdb47dd0e0e31ULL);
  EXPECT_EQ(SipHash24(key, Bytes(15)), 0xa129ca6149be45e5ULL);
  // More vectors from the reference implementation's vectors.h.
  EXPECT_EQ(SipHash24(key, Bytes(1)), 0x74f839c593dc67fdULL);
  EXPECT_EQ(SipHash24(key, Bytes(8)), 0x93f5f5799a932462ULL);
  EXPECT_EQ(SipHash24(key, Bytes(63)), 0x958a324ceb064572ULL);
}

TEST(VisitorIdTest, DeterministicAndKeyed) {
  const std::string salt = Bytes(16);
  const uint64_t a = VisitorId(salt, 1, "1.2.3.4", "UA");
  EXPECT_EQ(a, VisitorId(salt, 1, "1.2.3.4", "UA"));
  std::string other = salt;
  other[0] = 'x';
  EXPECT_NE(a, VisitorId(other, 1, "1.2.3.4", "UA"));
  EXPECT_NE(a, VisitorId(salt, 2, "1.2.3.4", "UA"));
  EXPECT_NE(a, VisitorId(salt, 1, "1.2.3.5", "UA"));
  EXPECT_NE(a, VisitorId(salt, 1, "1.2.3.4", "UB"));
  // Field boundaries matter.
  EXPECT_NE(VisitorId(salt, 1, "1.2.3.4", "5UA"),
            VisitorId(salt, 1, "1.2.3.45", "UA"));
}

TEST(VisitorIdTest, MatchesSipHashOfEncodedMessage) {
  const std::string salt = Bytes(16);
  std::string msg(
      "12\0"
      "10.0.0.1\0"
      "Mozilla/5.0",
      23);
  EXPECT_EQ(VisitorId(salt, 12, "10.0.0.1", "Mozilla/5.0"),
            SipHash24(salt, msg));
}

TEST(VisitorIdTest, VisitorIdsMatchesTwoVisitorIdCalls) {
  const std::string salt = Bytes(16);
  std::string prev = salt;
  prev[0] ^= 1;
  // Every message length modulo 8, and user agents past the one-pass
  // buffer (1024 bytes).
  for (size_t len : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 120, 1010, 1011,
                     1012, 1013, 5000}) {
    const std::string ua(len, 'u');
    uint64_t id = 0, prev_id = 0;
    VisitorIds(salt, prev, 7, "203.0.113.9", ua, &id, &prev_id);
    EXPECT_EQ(id, VisitorId(salt, 7, "203.0.113.9", ua)) << len;
    EXPECT_EQ(prev_id, VisitorId(prev, 7, "203.0.113.9", ua)) << len;
    EXPECT_NE(id, prev_id);
  }
}

TEST(NewSaltTest, SixteenRandomBytes) {
  absl::flat_hash_set<std::string> salts;
  for (int i = 0; i < 100; ++i) {
    std::string s = NewSalt();
    EXPECT_EQ(s.size(), 16u);
    salts.insert(s);
  }
  EXPECT_EQ(salts.size(), 100u);
}

}  // namespace
}  // namespace analytics
