#include "libanalytics/enrich/visitor_id.h"

#include <sys/random.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

// Header-only use of Debian's libxxhash-dev: every XXH function is static
// inline in this translation unit (no link dependency).
#define XXH_INLINE_ALL
#include <xxhash.h>  // NOLINT(build/include_order)

namespace analytics {
namespace {

inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

// One 8-byte load (GCC does not merge the byte-wise form: 22 instructions a
// word on the hottest loop of enrichment).
inline uint64_t Load64Le(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

struct SipState {
  uint64_t v0, v1, v2, v3;

  inline void Round() {
    v0 += v1;
    v1 = Rotl(v1, 13);
    v1 ^= v0;
    v0 = Rotl(v0, 32);
    v2 += v3;
    v3 = Rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = Rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = Rotl(v1, 17);
    v1 ^= v2;
    v2 = Rotl(v2, 32);
  }

  inline void Compress(uint64_t m) {
    v3 ^= m;
    Round();
    Round();
    v0 ^= m;
  }
};

// Streaming SipHash-2-4 over any bytes (SipHash24, checked against the
// reference vectors); visitor ids use the fixed 16-byte form below.
class SipHasher {
 public:
  explicit SipHasher(std::string_view key) {
    unsigned char k[16] = {};
    std::memcpy(k, key.data(), key.size() < 16 ? key.size() : 16);
    const uint64_t k0 = Load64Le(k);
    const uint64_t k1 = Load64Le(k + 8);
    s_ = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
          k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
  }

  void Update(std::string_view data) {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    size_t n = data.size();
    total_ += n;
    if (pending_len_ > 0) {
      while (n > 0 && pending_len_ < 8) {
        pending_[pending_len_++] = *p++;
        --n;
      }
      if (pending_len_ < 8) return;
      s_.Compress(Load64Le(pending_));
      pending_len_ = 0;
    }
    for (; n >= 8; n -= 8, p += 8) s_.Compress(Load64Le(p));
    std::memcpy(pending_, p, n);
    pending_len_ = n;
  }

  uint64_t Finish() {
    uint64_t b = static_cast<uint64_t>(total_) << 56;
    for (size_t i = 0; i < pending_len_; ++i) {
      b |= static_cast<uint64_t>(pending_[i]) << (8 * i);
    }
    s_.Compress(b);
    s_.v2 ^= 0xff;
    for (int i = 0; i < 4; ++i) s_.Round();
    return s_.v0 ^ s_.v1 ^ s_.v2 ^ s_.v3;
  }

 private:
  SipState s_;
  unsigned char pending_[8] = {};
  size_t pending_len_ = 0;
  size_t total_ = 0;
};

// The state SipHasher starts from, with the key zero-padded or truncated
// to 16 bytes as there.
inline SipState SipInit(std::string_view key) {
  uint64_t k0, k1;
  if (key.size() == 16) {  // The salts: no copy.
    const auto* k = reinterpret_cast<const unsigned char*>(key.data());
    k0 = Load64Le(k);
    k1 = Load64Le(k + 8);
  } else {
    unsigned char k[16] = {};
    std::memcpy(k, key.data(), key.size() < 16 ? key.size() : 16);
    k0 = Load64Le(k);
    k1 = Load64Le(k + 8);
  }
  return SipState{k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                  k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
}

// SipHasher's Update + Finish over the 16 digest bytes (low64 then high64,
// each little-endian), without the byte buffer: two full words, then the
// length-only last block, then finalization.
inline void SipDigest(SipState* s, XXH128_hash_t d) {
  s->Compress(d.low64);
  s->Compress(d.high64);
  s->Compress(uint64_t{16} << 56);
  s->v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s->Round();
}

// XXH3-128 of the message "site id NUL ip NUL user agent" (see the header).
inline XXH128_hash_t MessageDigest(int64_t site_id, std::string_view ip,
                                   std::string_view user_agent) {
  // The site id is formatted straight into the message (std::to_chars: no
  // intermediate buffer and copy, as absl::AlphaNum would need).
  constexpr size_t kMaxDigits = 20;  // "-9223372036854775808"
  char msg[1024];
  char* p = std::to_chars(msg, msg + kMaxDigits, site_id).ptr;
  const size_t digits = static_cast<size_t>(p - msg);
  const size_t n = digits + 1 + ip.size() + 1 + user_agent.size();
  if (n > sizeof(msg)) {
    // Long user agents: the streaming API gives the one-shot digest of the
    // concatenation (xxhash.h's contract) without a heap buffer.
    XXH3_state_t state;
    XXH3_INITSTATE(&state);
    XXH3_128bits_reset(&state);
    XXH3_128bits_update(&state, msg, digits);
    XXH3_128bits_update(&state, "", 1);  // the NUL
    XXH3_128bits_update(&state, ip.data(), ip.size());
    XXH3_128bits_update(&state, "", 1);
    XXH3_128bits_update(&state, user_agent.data(), user_agent.size());
    return XXH3_128bits_digest(&state);
  }
  *p++ = 0;
  std::memcpy(p, ip.data(), ip.size());
  p += ip.size();
  *p++ = 0;
  std::memcpy(p, user_agent.data(), user_agent.size());
  return XXH3_128bits(msg, n);
}

}  // namespace

uint64_t SipHash24(std::string_view key, std::string_view data) {
  SipHasher h(key);
  h.Update(data);
  return h.Finish();
}

uint64_t VisitorId(std::string_view salt16, int64_t site_id,
                   std::string_view ip, std::string_view user_agent) {
  const XXH128_hash_t d = MessageDigest(site_id, ip, user_agent);
  SipState s = SipInit(salt16);
  SipDigest(&s, d);
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

void VisitorIds(std::string_view salt16, std::string_view prev_salt16,
                int64_t site_id, std::string_view ip,
                std::string_view user_agent, uint64_t* id, uint64_t* prev_id) {
  const XXH128_hash_t d = MessageDigest(site_id, ip, user_agent);
  // Two independent SipHash states over the same two words: nothing orders
  // one after the other, so the CPU overlaps their dependency chains.
  SipState a = SipInit(salt16);
  SipState b = SipInit(prev_salt16);
  SipDigest(&a, d);
  SipDigest(&b, d);
  *id = a.v0 ^ a.v1 ^ a.v2 ^ a.v3;
  *prev_id = b.v0 ^ b.v1 ^ b.v2 ^ b.v3;
}

std::string NewSalt() {
  std::string salt(16, '\0');
  size_t filled = 0;
  while (filled < salt.size()) {
    ssize_t n = getrandom(salt.data() + filled, salt.size() - filled, 0);
    if (n > 0) {
      filled += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      break;  // ENOSYS on ancient kernels: fall back below.
    }
  }
  if (filled < salt.size()) {
    std::random_device rd;
    for (; filled < salt.size(); ++filled) {
      salt[filled] = static_cast<char>(rd());
    }
  }
  return salt;
}

}  // namespace analytics
