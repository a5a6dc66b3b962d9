// The scanning primitives of ingest's one-pass JSON fast paths (the canonical
// parser in canonical.cc, Plausible's in trackers.cc): whitespace, literals,
// strings without escapes and short numbers, read from a copy of the text
// followed by kPadding NUL bytes (PaddedCopy), so that the 16-byte loads and
// fixed-size compares need no bounds checks: the NUL after the text stops
// every scan (it is no JSON token, and a control character inside a string).
//
// Hand-written rather than RapidJSON's reader: for the one common shape of
// an event body, its callbacks, number and string handling cost about twice
// as much. Each fast path answers only for that shape and leaves anything
// else (escapes, exponents, long numbers, malformed text) to RapidJSON.
#ifndef ANALYTICS_INGEST_JSON_SCAN_INTERNAL_H_
#define ANALYTICS_INGEST_JSON_SCAN_INTERNAL_H_

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace analytics::json_scan {

inline constexpr size_t kPadding = 64;

// `text` followed by kPadding NUL bytes: on the stack for ordinary bodies.
class PaddedCopy {
 public:
  explicit PaddedCopy(std::string_view text) {
    if (text.size() > sizeof(stack_) - kPadding) {
      heap_.reset(new char[text.size() + kPadding]);
      data_ = heap_.get();
    }
    std::memcpy(data_, text.data(), text.size());
    std::memset(data_ + text.size(), 0, kPadding);
  }
  PaddedCopy(const PaddedCopy&) = delete;
  PaddedCopy& operator=(const PaddedCopy&) = delete;
  const char* data() const { return data_; }

 private:
  alignas(16) char stack_[2048];
  std::unique_ptr<char[]> heap_;
  char* data_ = stack_;
};

// A cursor over [text, text + size) followed by kPadding NUL bytes.
class PaddedScanner {
 public:
  PaddedScanner(const char* text, size_t size) : p_(text), end_(text + size) {}

  // No string String() gave had a byte >= 0x80 (so every one is valid
  // UTF-8).
  bool ascii() const { return (seen_ & 0x80) == 0; }

 protected:
  static bool IsWs(char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
  }
  void SkipWs() {
    while (IsWs(*p_)) ++p_;
  }
  // Skips whitespace, then eats `c` if it is next.
  bool Eat(char c) {
    if (*p_ != c) {  // (compact JSON: no whitespace, the one test)
      if (!IsWs(*p_)) return false;
      SkipWs();
      if (*p_ != c) return false;
    }
    ++p_;
    return true;
  }
  // Only whitespace is left.
  bool AtEnd() {
    SkipWs();
    return p_ == end_;
  }

  // (The padding makes the compare safe near the end.)
  template <size_t N>
  bool Literal(const char (&word)[N]) {
    if (std::memcmp(p_, word, N - 1) != 0) return false;
    p_ += N - 1;
    return true;
  }

  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }
  // A byte RapidJSON's number grammar can continue with.
  static bool IsNumberByte(char c) {
    return IsDigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' ||
           c == 'E';
  }

  // Appends the run of digits at p to *digits (wrapping past 2^64: the
  // callers reject more than 15 digits); returns its end. Eight bytes at a
  // time (SWAR, as in simdjson and fast_float: no library exposes it), a
  // timestamp's 13 digits in three steps instead of 13.
  static const char* Digits(const char* p, uint64_t* digits) {
    static constexpr uint64_t kPow10[] = {
        1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
    constexpr uint64_t kOnes = 0x0101010101010101;
    uint64_t v = *digits;
    while (true) {
      uint64_t w;
      std::memcpy(&w, p, 8);  // (the padding makes it safe near the end)
      // A byte is a digit when its high nibble is 3 and adding 6 keeps it
      // so (a carry out of a byte >= 0xFA only reaches later bytes, after
      // that non-digit).
      const uint64_t not_digit =
          ((w & (0xF0 * kOnes)) ^ (0x30 * kOnes)) |
          (((w + 0x06 * kOnes) & (0xF0 * kOnes)) ^ (0x30 * kOnes));
      const int n = not_digit == 0 ? 8 : __builtin_ctzll(not_digit) / 8;
      if (n == 0) break;
      // The n digits' values in the top n bytes (the first one most
      // significant), then pairs, quads and the eight combined.
      uint64_t d = (w - 0x30 * kOnes) << (8 * (8 - n));
      d = (d * 10 + (d >> 8)) & 0x00FF00FF00FF00FF;
      d = (d * 100 + (d >> 16)) & 0x0000FFFF0000FFFF;
      d = (d * 10000 + (d >> 32)) & 0xFFFFFFFF;
      v = v * kPow10[n] + d;
      p += n;
      if (n < 8) break;
    }
    *digits = v;
    return p;
  }

  // A number -?(0|[1-9][0-9]*)(\.[0-9]+)? with at most 15 digits in all, as
  // RapidJSON (default flags) makes it: an integer is *i (RapidJSON's
  // Int/Uint/Int64 of a value that fits int64); with a fraction, RapidJSON
  // accumulates every digit into an integer below 2^53 and divides it by the
  // exact power of ten: the same one correctly rounded division as here.
  // kNone (p_ unmoved) for any other number token or text.
  enum class NumberKind : uint8_t { kNone, kInt64, kDouble };
  NumberKind ShortNumber(int64_t* i, double* d) {
    static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3, 1e4,  1e5,
                                        1e6,  1e7,  1e8,  1e9, 1e10, 1e11,
                                        1e12, 1e13, 1e14, 1e15};
    const char* p = p_;
    const bool minus = *p == '-';
    if (minus) ++p;
    if (!IsDigit(*p) || (*p == '0' && IsDigit(p[1]))) return NumberKind::kNone;
    uint64_t digits = 0;
    const char* const int_start = p;
    p = Digits(p, &digits);
    int count = static_cast<int>(p - int_start);
    int frac = 0;
    if (*p == '.') {
      const char* const frac_start = ++p;
      p = Digits(p, &digits);
      frac = static_cast<int>(p - frac_start);
      if (frac == 0) return NumberKind::kNone;  // "1."
    }
    // (Overflowed digits are not used: more than 15 are kNone.)
    if (IsNumberByte(*p) || count + frac > 15) return NumberKind::kNone;
    p_ = p;
    if (frac == 0) {
      const int64_t v = static_cast<int64_t>(digits);
      *i = minus ? -v : v;
      return NumberKind::kInt64;
    }
    const double v = static_cast<double>(digits) / kPow10[frac];
    *d = minus ? -v : v;
    return NumberKind::kDouble;
  }

  // The rest of a string after its opening quote, through the closing one.
  // No escapes, control characters or NUL (RapidJSON would unescape or
  // reject them); bytes >= 0x80 are kept as they are, as RapidJSON does, and
  // make ascii() false.
  bool String(std::string_view* out) {
    const char* const start = p_;
#if defined(__SSE2__)
    // One signed compare finds the control bytes and the bytes >= 0x80
    // together: an ASCII string (nearly all) stops only at its end, and
    // the first byte >= 0x80 hands the rest to StringAfterNonAscii().
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    const char* p = p_;  // (a local: p_ is not stored every block)
    while (true) {
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i stop = _mm_or_si128(
          _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
          _mm_cmplt_epi8(x, space));
      const unsigned stop_mask = static_cast<unsigned>(_mm_movemask_epi8(stop));
      if (stop_mask != 0) {
        p += __builtin_ctz(stop_mask);
        break;
      }
      p += 16;
    }
    p_ = p;
    if (static_cast<signed char>(*p) < 0)
      return StringAfterNonAscii(start, out);
#else
    while (true) {
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"' || c == '\\' || c < 0x20) break;
      seen_ |= c;
      ++p_;
    }
#endif
    if (*p_ != '"') return false;
    *out = std::string_view(start, static_cast<size_t>(p_ - start));
    ++p_;
    return true;
  }

#if defined(__SSE2__)
  // String() from a byte >= 0x80 at p_ on (out of line: most strings are
  // ASCII): only '"', '\\' and control bytes stop the scan.
  __attribute__((noinline)) bool StringAfterNonAscii(const char* start,
                                                     std::string_view* out) {
    seen_ = 0x80;
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i control = _mm_set1_epi8(0x1F);
    while (true) {
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_));
      const __m128i stop = _mm_or_si128(
          _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
          _mm_cmpeq_epi8(_mm_max_epu8(x, control), control));
      const unsigned stop_mask = static_cast<unsigned>(_mm_movemask_epi8(stop));
      if (stop_mask != 0) {
        p_ += __builtin_ctz(stop_mask);
        break;
      }
      p_ += 16;
    }
    if (*p_ != '"') return false;
    *out = std::string_view(start, static_cast<size_t>(p_ - start));
    ++p_;
    return true;
  }
#endif

  const char* p_;
  const char* const end_;
  unsigned seen_ = 0;  // bit 7: a string had a byte >= 0x80
};

}  // namespace analytics::json_scan

#endif  // ANALYTICS_INGEST_JSON_SCAN_INTERNAL_H_
