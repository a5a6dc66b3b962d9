#include "libanalytics/enrich/visitor_id.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

// The test's own XXH3 (header-only, as in visitor_id.cc) for the reference.
#define XXH_INLINE_ALL
#include <xxhash.h>  // NOLINT(build/include_order)

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

// The documented scheme written the slow, obvious way: the message as one
// string, its XXH3-128 digest as 16 bytes (low64 then high64, little-endian),
// SipHash24 of those bytes.
uint64_t ReferenceVisitorId(std::string_view salt, int64_t site_id,
                            std::string_view ip, std::string_view ua) {
  std::string msg = std::to_string(site_id);
  msg.push_back('\0');
  msg.append(ip);
  msg.push_back('\0');
  msg.append(ua);
  const XXH128_hash_t d = XXH3_128bits(msg.data(), msg.size());
  std::string bytes;
  for (uint64_t word : {d.low64, d.high64}) {
    for (int i = 0; i < 8; ++i)
      bytes.push_back(static_cast<char>(word >> (8 * i)));
  }
  return SipHash24(salt, bytes);
}

std::string RandomBytes(std::mt19937_64& rng, size_t n, bool allow_nul) {
  std::string s(n, '\0');
  for (char& c : s) {
    c = static_cast<char>(allow_nul ? rng() % 256 : 1 + rng() % 255);
  }
  return s;
}

struct Input {
  std::string salt, prev;
  int64_t site;
  std::string ip, ua;
};

// Random inputs: any site id, NUL-free IPs (the encoding's one
// precondition, see visitor_id.h), user agents of any bytes (NULs included)
// and lengths up to 3 KiB, past the 1 KiB stack buffer.
std::vector<Input> RandomInputs(int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Input> out;
  for (int i = 0; i < count; ++i) {
    Input in;
    in.salt = RandomBytes(rng, 16, true);
    in.prev = RandomBytes(rng, 16, true);
    switch (rng() % 3) {
      case 0:
        in.site = static_cast<int64_t>(rng());
        break;
      case 1:
        in.site = static_cast<int64_t>(rng() % 1000);
        break;
      default:
        in.site = -static_cast<int64_t>(rng() % 1000);
        break;
    }
    in.ip = RandomBytes(rng, rng() % 40, false);
    const size_t ua_len = rng() % 4 == 0 ? rng() % 3072 : rng() % 300;
    in.ua = RandomBytes(rng, ua_len, true);
    out.push_back(std::move(in));
  }
  // The longest site ids (20 characters).
  for (int64_t site : {std::numeric_limits<int64_t>::min(),
                       std::numeric_limits<int64_t>::max()}) {
    out.push_back({Bytes(16), std::string(16, 'q'), site, "::1", "UA"});
  }
  // Every message length around the stack buffer's size (1024 bytes).
  for (size_t len = 1000; len < 1040; ++len) {
    Input in{Bytes(16), std::string(16, 'p'), 7, "203.0.113.9", ""};
    in.ua.assign(len - 2 - 1 - in.ip.size(), 'u');  // message = len bytes
    out.push_back(std::move(in));
  }
  return out;
}

TEST(VisitorIdTest, MatchesReferenceOnRandomInputs) {
  for (const Input& in : RandomInputs(3000, 1)) {
    EXPECT_EQ(VisitorId(in.salt, in.site, in.ip, in.ua),
              ReferenceVisitorId(in.salt, in.site, in.ip, in.ua))
        << in.site << " " << in.ip.size() << " " << in.ua.size();
  }
}

TEST(VisitorIdTest, KnownAnswers) {
  // Pinned so that any change of the scheme or its encoding fails here:
  // such a change changes every visitor id (see visitor_id.h).
  const std::string salt = Bytes(16);
  EXPECT_EQ(VisitorId(salt, 12, "10.0.0.1", "Mozilla/5.0"),
            0xa089a920b0e0a16fULL);
  EXPECT_EQ(VisitorId(salt, 12, "10.0.0.1", std::string(2000, 'u')),
            0xcb0d5918c4998651ULL);
}

TEST(VisitorIdTest, VisitorIdsMatchesVisitorIdOnRandomInputs) {
  for (const Input& in : RandomInputs(3000, 2)) {
    uint64_t id = 0, prev_id = 0;
    VisitorIds(in.salt, in.prev, in.site, in.ip, in.ua, &id, &prev_id);
    EXPECT_EQ(id, VisitorId(in.salt, in.site, in.ip, in.ua)) << in.ua.size();
    EXPECT_EQ(prev_id, VisitorId(in.prev, in.site, in.ip, in.ua))
        << in.ua.size();
  }
}

TEST(VisitorIdTest, DifferentInputsGiveDifferentIds) {
  // Distinct (site, ip, ua) triples, and each under a second salt: 64-bit
  // ids of a few thousand inputs collide with probability ~1e-12.
  absl::flat_hash_set<uint64_t> ids;
  size_t n = 0;
  const std::string other_salt(16, 's');
  for (const Input& in : RandomInputs(2000, 3)) {
    uint64_t id = 0, prev_id = 0;
    VisitorIds(in.salt, in.prev, in.site, in.ip, in.ua, &id, &prev_id);
    // One field changed at a time: site, ip, ua, salt.
    ids.insert(id);
    ids.insert(prev_id);
    ids.insert(VisitorId(in.salt, in.site ^ 1, in.ip, in.ua));
    ids.insert(VisitorId(in.salt, in.site, in.ip + "1", in.ua));
    ids.insert(VisitorId(in.salt, in.site, in.ip, in.ua + "x"));
    ids.insert(VisitorId(other_salt, in.site, in.ip, in.ua));
    n += 6;
  }
  // RandomInputs' fixed tail repeats one (site, ip) with UAs of distinct
  // lengths, so all its triples are distinct as well.
  EXPECT_EQ(ids.size(), n);
}

TEST(VisitorIdTest, FieldBoundariesMatter) {
  // The message is site NUL ip NUL ua: with no NUL in the site id (decimal)
  // or the IP, moving a boundary always changes the message, so the id.
  const std::string salt = Bytes(16);
  EXPECT_NE(VisitorId(salt, 1, "1.2.3.4", "5UA"),
            VisitorId(salt, 1, "1.2.3.45", "UA"));
  EXPECT_NE(VisitorId(salt, 12, "3.4", "x"), VisitorId(salt, 1, "23.4", "x"));
  EXPECT_NE(VisitorId(salt, 1, "1.2.3.4", "x"),
            VisitorId(salt, 1, std::string("1.2.3.4\0x", 9), ""));
  EXPECT_NE(VisitorId(salt, 1, "1.2.3.4", std::string("\0x", 2)),
            VisitorId(salt, 1, "1.2.3.4", "x"));
  // Every split of one NUL-free text into (ip, ua), user agents with NULs.
  std::mt19937_64 rng(4);
  for (int round = 0; round < 200; ++round) {
    const std::string text = RandomBytes(rng, 1 + rng() % 40, false) +
                             RandomBytes(rng, rng() % 20, true);
    const int64_t site = static_cast<int64_t>(rng() % 100);
    absl::flat_hash_set<uint64_t> ids;
    size_t splits = 0;
    for (size_t k = 0; k <= text.size(); ++k) {
      const std::string ip = text.substr(0, k);
      if (ip.find('\0') != std::string::npos) break;
      ids.insert(VisitorId(salt, site, ip, text.substr(k)));
      ++splits;
    }
    EXPECT_EQ(ids.size(), splits) << round;
  }
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
