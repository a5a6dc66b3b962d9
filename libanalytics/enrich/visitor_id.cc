#include "libanalytics/enrich/visitor_id.h"

#include <sys/random.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace analytics {
namespace {

inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline uint64_t Load64Le(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
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

// Streaming SipHash-2-4 so VisitorId needs no temporary buffer.
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

}  // namespace

uint64_t SipHash24(std::string_view key, std::string_view data) {
  SipHasher h(key);
  h.Update(data);
  return h.Finish();
}

uint64_t VisitorId(std::string_view salt16, int64_t site_id,
                   std::string_view ip, std::string_view user_agent) {
  // Site id as decimal ASCII, then NUL separators: the fields are text and
  // cannot contain NUL, so the encoding is unambiguous.
  const absl::AlphaNum digits(site_id);  // Formats into an inline buffer.
  SipHasher h(salt16);
  h.Update(std::string_view(digits.data(), digits.size()));
  h.Update(std::string_view("\0", 1));
  h.Update(ip);
  h.Update(std::string_view("\0", 1));
  h.Update(user_agent);
  return h.Finish();
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
