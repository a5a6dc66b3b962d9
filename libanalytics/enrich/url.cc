#include "libanalytics/enrich/url.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/strings/ascii.h"
#include "libanalytics/core/utf8.h"
#include "libanalytics/enrich/string_util.h"
namespace analytics {
namespace {

// Character classes of SplitUrl's scan.
constexpr uint8_t kScheme = 1;  // may appear in a scheme: alnum + - .
constexpr uint8_t kAlpha = 2;   // may start a scheme
constexpr uint8_t kSpace = 4;   // ASCII whitespace (absl::ascii_isspace)
constexpr std::array<uint8_t, 256> kCharClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    if (alpha || digit || c == '+' || c == '-' || c == '.') t[c] |= kScheme;
    if (alpha) t[c] |= kAlpha;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
        c == '\r') {
      t[c] |= kSpace;
    }
  }
  return t;
}();
inline uint8_t CharClass(char c) {
  return kCharClass[static_cast<unsigned char>(c)];
}

// The first character of [p, e) equal to c1 or c2, or e; [lo, e) must be
// readable (lo <= p). SSE2 compares 16 characters at a time, and a last
// partial block as the 16 characters ending at e when they lie in [lo, e):
// SplitUrl runs on every event, and a byte loop costs 5-7 instructions a
// character.
//
// FindFirst is the general form: the first character of [p, e) for which
// `block(at)` (a 16-bit mask over the 16 characters at `at`, SSE2 only) or
// `one(c)` (the same test on one character) holds.
template <typename Block, typename One>
inline const char* FindFirst(const char* lo, const char* p, const char* e,
                             Block block, One one) {
#if defined(__SSE2__)
  for (; e - p >= 16; p += 16) {
    if (const unsigned m = block(p); m != 0) return p + __builtin_ctz(m);
  }
  if (p < e && e - lo >= 16) {
    const char* s = e - 16;  // s < p: ignore the matches before p
    const unsigned m = block(s) & (0xFFFFu << (p - s));
    return m != 0 ? s + __builtin_ctz(m) : e;
  }
#else
  (void)lo;
  (void)block;
#endif
  while (p < e && !one(*p)) ++p;
  return p;
}

#if defined(__SSE2__)
inline __m128i Load16(const char* at) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
}
inline unsigned Mask(__m128i m) {
  return static_cast<unsigned>(_mm_movemask_epi8(m));
}
// Bytes of x in [a, a + n] (unsigned).
inline __m128i InRange(__m128i x, char a, char n) {
  const __m128i t = _mm_sub_epi8(x, _mm_set1_epi8(a));
  return _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(n)), t);
}
#else
struct NoBlock {
  unsigned operator()(const char*) const { return 0; }
};
#endif

inline const char* FindEither(const char* lo, const char* p, const char* e,
                              char c1, char c2) {
  auto one = [=](char c) { return c == c1 || c == c2; };
#if defined(__SSE2__)
  const __m128i v1 = _mm_set1_epi8(c1);
  const __m128i v2 = _mm_set1_epi8(c2);
  auto block = [&](const char* at) {
    const __m128i x = Load16(at);
    return Mask(_mm_or_si128(_mm_cmpeq_epi8(x, v1), _mm_cmpeq_epi8(x, v2)));
  };
  return FindFirst(lo, p, e, block, one);
#else
  return FindFirst(lo, p, e, NoBlock(), one);
#endif
}

// A character of a host that NormalizeHost leaves as it is: a-z 0-9 . -
inline bool IsPlainHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

// The first character of [p, e) that is no IsPlainHostChar, or e.
inline const char* SkipPlainHost(const char* lo, const char* p, const char* e) {
  auto one = [](char c) { return !IsPlainHostChar(c); };
#if defined(__SSE2__)
  auto block = [](const char* at) {
    const __m128i x = Load16(at);
    const __m128i ok =
        _mm_or_si128(_mm_or_si128(InRange(x, 'a', 25), InRange(x, '0', 9)),
                     InRange(x, '-', 1));  // '-' and '.'
    return Mask(ok) ^ 0xFFFFu;
  };
  return FindFirst(lo, p, e, block, one);
#else
  return FindFirst(lo, p, e, NoBlock(), one);
#endif
}

// The first '?', '#' or '%' of [p, e), or e.
inline const char* FindPathEnd(const char* lo, const char* p, const char* e) {
  auto one = [](char c) { return c == '?' || c == '#' || c == '%'; };
#if defined(__SSE2__)
  auto block = [](const char* at) {
    const __m128i x = Load16(at);
    return Mask(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('?')),
                                  _mm_cmpeq_epi8(x, _mm_set1_epi8('#'))),
                     _mm_cmpeq_epi8(x, _mm_set1_epi8('%'))));
  };
  return FindFirst(lo, p, e, block, one);
#else
  return FindFirst(lo, p, e, NoBlock(), one);
#endif
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Appends `in` to `out`, decoding valid %XX escapes (invalid ones are kept
// verbatim) and, if `plus_is_space`, '+' as ' '.
void AppendDecoded(std::string_view in, bool plus_is_space, std::string* out) {
  out->reserve(out->size() + in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%' && i + 2 < in.size()) {
      const int hi = HexValue(in[i + 1]);
      const int lo = HexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out->push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out->push_back(plus_is_space && c == '+' ? ' ' : c);
  }
}

// AppendDecoded, unless the decoded text would not be valid UTF-8 (e.g.
// "/a%FF"): then `in` is appended as sent. Every dimension value built from
// a URL thus stays valid UTF-8 and every JSON answer that carries it parses
// (found by fuzz/referrer_fuzzer).
void AppendDecodedUtf8(std::string_view in, bool plus_is_space,
                       std::string* out) {
  const size_t start = out->size();
  AppendDecoded(in, plus_is_space, out);
  if (!ValidUtf8(std::string_view(*out).substr(start))) {
    out->resize(start);
    out->append(in);
  }
}

bool NeedsDecoding(std::string_view s, bool plus_is_space) {
  for (char c : s) {
    if (c == '%' || (plus_is_space && c == '+')) return true;
  }
  return false;
}

}  // namespace

UrlParts SplitUrl(std::string_view url) {
  // One forward scan with table lookups (no std::string_view searches: each
  // find is a libc call or a per-character loop of its own, and this runs on
  // every event). The reference form is ReferenceSplitUrl in url_test.cc.
  UrlParts parts;
  parts.path = "/";
  const char* const lo = url.data();  // [lo, e) is readable throughout
  const char* b = lo;
  const char* e = b + url.size();
  while (b < e && (CharClass(*b) & kSpace)) ++b;
  while (e > b && (CharClass(e[-1]) & kSpace)) --e;
  e = FindEither(lo, b, e, '#', '#');  // drop the fragment
  if (b == e) return parts;

  const char* p = b;
  bool has_authority = false;
  // A scheme is [alpha][alnum+-.]* followed by "://"; ':' is no scheme
  // character, so the first "://" can only follow the scheme's characters.
  if (CharClass(*b) & kAlpha) {
    const char* s = b + 1;
    while (s < e && (CharClass(*s) & kScheme)) ++s;
    if (e - s >= 3 && s[0] == ':' && s[1] == '/' && s[2] == '/') {
      parts.scheme = std::string_view(b, static_cast<size_t>(s - b));
      p = s + 3;
      has_authority = true;
    }
  }
  if (!has_authority) {
    if (e - p >= 2 && p[0] == '/' && p[1] == '/') {
      p += 2;  // Protocol-relative "//host/path".
      has_authority = true;
    } else if (*p != '/' && *p != '?') {
      has_authority = true;  // "example.com/a".
    }
  }

  if (has_authority) {
    const char* a = p;
    p = FindEither(lo, p, e, '/', '?');
    // Most authorities are a bare host: one scan finds neither '@' nor ':'.
    const char* special = FindEither(lo, a, p, '@', ':');
    if (special < p) {
      for (const char* c = p; c > special; --c) {
        if (c[-1] == '@') {  // the last '@' ends the userinfo
          a = c;
          break;
        }
      }
    }
    const size_t len = static_cast<size_t>(p - a);
    if (len > 0 && *a == '[') {
      const char* close = FindEither(lo, a, p, ']', ']');
      parts.host =
          close == p ? std::string_view()
                     : std::string_view(a, static_cast<size_t>(close - a + 1));
    } else {
      const char* colon =
          special < a ? FindEither(lo, a, p, ':', ':') : special;
      parts.host = std::string_view(a, static_cast<size_t>(colon - a));
    }
  }

  const char* q = FindEither(lo, p, e, '?', '?');
  if (q > p) parts.path = std::string_view(p, static_cast<size_t>(q - p));
  if (q < e)
    parts.query = std::string_view(q + 1, static_cast<size_t>(e - q - 1));
  return parts;
}

UrlParts SplitUrlNormalized(std::string_view url, std::string* host,
                            std::string* path) {
  // The common shape in one pass, with what SplitUrl, NormalizeHost and
  // NormalizePath would do to it done here: "http[s]://" + a host of
  // a-z 0-9 . - + ["/" path without '%'] + ["?" query], no '#', nothing
  // to strip at the end. Anything else takes the three calls (the
  // reference; SplitUrlNormalizedTest compares the two).
  const char* const lo = url.data();
  const char* const e = lo + url.size();
  const char* p = nullptr;
  if (url.size() >= 8 && static_cast<unsigned char>(e[-1]) > ' ') {
    if (std::memcmp(lo, "https://", 8) == 0) {
      p = lo + 8;
    } else if (std::memcmp(lo, "http://", 7) == 0) {
      p = lo + 7;
    }
  }
  if (p != nullptr) {
    const char* h_end = SkipPlainHost(lo, p, e);
    const char* q = h_end;  // the path's end
    if (h_end > p && (h_end == e || *h_end == '/' || *h_end == '?')) {
      if (h_end < e && *h_end == '/') q = FindPathEnd(lo, h_end, e);
      if (q == e || (*q == '?' && FindEither(lo, q, e, '#', '#') == e)) {
        UrlParts parts;
        parts.scheme = std::string_view(lo, static_cast<size_t>(p - 3 - lo));
        parts.host = std::string_view(p, static_cast<size_t>(h_end - p));
        if (q > h_end) {
          parts.path = std::string_view(h_end, static_cast<size_t>(q - h_end));
        } else {
          parts.path = "/";
        }
        if (q < e) {
          parts.query = std::string_view(q + 1, static_cast<size_t>(e - q - 1));
        }
        // NormalizeHost of a host already in lower case.
        std::string_view h = parts.host;
        while (!h.empty() && h.back() == '.') h.remove_suffix(1);
        if (h.size() > 4 && std::memcmp(h.data(), "www.", 4) == 0) {
          h.remove_prefix(4);
        }
        enrich_internal::AssignShort(host, h);
        // NormalizePath of a path without escapes.
        std::string_view pv = parts.path;
        while (pv.size() > 1 && pv.back() == '/') pv.remove_suffix(1);
        enrich_internal::AssignShort(path, pv);
        return parts;
      }
    }
  }
  const UrlParts parts = SplitUrl(url);
  NormalizeHost(parts.host, host);
  NormalizePath(parts.path, path);
  return parts;
}

std::optional<std::string> QueryParam(std::string_view query,
                                      std::string_view key) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view()
                                          : query.substr(amp + 1);
    size_t eq = pair.find('=');
    std::string_view k = pair.substr(0, eq);
    bool match = k == key;
    if (!match && NeedsDecoding(k, /*plus_is_space=*/true)) {
      std::string decoded;
      AppendDecoded(k, /*plus_is_space=*/true, &decoded);
      match = decoded == key;
    }
    if (!match) continue;
    std::string value;
    if (eq != std::string_view::npos) {
      AppendDecodedUtf8(pair.substr(eq + 1), /*plus_is_space=*/true, &value);
    }
    return value;
  }
  return std::nullopt;
}

void QueryParams(std::string_view query, std::span<const std::string_view> keys,
                 std::span<std::string* const> values, std::span<bool> found) {
  const size_t n = keys.size();
  std::fill(found.begin(), found.end(), false);
  size_t left = n;
  std::string decoded;
  // The pairs in QueryParam's order: the first pair of a key wins.
  while (!query.empty() && left > 0) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view()
                                          : query.substr(amp + 1);
    size_t eq = pair.find('=');
    const std::string_view k = pair.substr(0, eq);
    const bool encoded = NeedsDecoding(k, /*plus_is_space=*/true);
    if (encoded) {
      decoded.clear();
      AppendDecoded(k, /*plus_is_space=*/true, &decoded);
    }
    // Each key on its own, as QueryParam matches it (as sent, or decoded).
    for (size_t i = 0; i < n; ++i) {
      if (found[i] || (k != keys[i] && (!encoded || decoded != keys[i]))) {
        continue;
      }
      found[i] = true;
      --left;
      values[i]->clear();
      if (eq != std::string_view::npos) {
        AppendDecodedUtf8(pair.substr(eq + 1), /*plus_is_space=*/true,
                          values[i]);
      }
    }
  }
}

std::string NormalizeHost(std::string_view host) {
  std::string out;
  NormalizeHost(host, &out);
  return out;
}

void NormalizeHost(std::string_view host, std::string* out) {
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.size() > 4 && absl::ascii_tolower(host[0]) == 'w' &&
      absl::ascii_tolower(host[1]) == 'w' &&
      absl::ascii_tolower(host[2]) == 'w' && host[3] == '.') {
    host.remove_prefix(4);
  }
  // Lower-cased in the copy's loop (absl::AsciiStrToLower is an out-of-line
  // call and a second pass).
  out->resize(host.size());
  char* d = out->data();
  for (size_t i = 0; i < host.size(); ++i) d[i] = absl::ascii_tolower(host[i]);
}

std::string NormalizePath(std::string_view path) {
  std::string out;
  NormalizePath(path, &out);
  return out;
}

void NormalizePath(std::string_view path, std::string* out) {
  out->clear();
  if (NeedsDecoding(path, /*plus_is_space=*/false)) {
    AppendDecodedUtf8(path, /*plus_is_space=*/false, out);
  } else {
    out->assign(path);
  }
  while (out->size() > 1 && out->back() == '/') out->pop_back();
  if (out->empty()) out->assign("/");
}

}  // namespace analytics
