// LZ4 compression of stored blocks (Debian's liblz4), shared by the stores'
// block formats: event blocks (event_codec.cc, format 2) and SQLite's hour
// rollup blocks (sqlite_store.cc). Owns the bounds a decoder checks before it
// allocates for untrusted stored bytes.
#ifndef ANALYTICS_STORE_LZ4_CODEC_H_
#define ANALYTICS_STORE_LZ4_CODEC_H_

#include <lz4.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace analytics::codec {

// LZ4 cannot expand more than 255 times; no block the stores write comes
// near 1 GiB.
inline constexpr uint64_t kMaxLz4Ratio = 255;
inline constexpr uint64_t kMaxLz4Raw = uint64_t{1} << 30;

// Appends the LZ4 block of `raw` (without its size: callers store it) to
// *out.
inline void AppendLz4(std::string_view raw, std::string* out) {
  const size_t at = out->size();
  const int bound = LZ4_compressBound(static_cast<int>(raw.size()));
  out->resize(at + static_cast<size_t>(bound));
  const int n = LZ4_compress_default(raw.data(), out->data() + at,
                                     static_cast<int>(raw.size()), bound);
  // Cannot fail with a bound-sized destination for blocks far below
  // LZ4_MAX_INPUT_SIZE (kMaxLz4Raw is).
  out->resize(at + static_cast<size_t>(n > 0 ? n : 0));
}

// Decompresses an LZ4 block that must expand to exactly raw_size bytes into
// *raw. False for sizes beyond the bounds above (checked first, so damaged
// sizes allocate nothing) and for damaged bytes.
inline bool DecompressLz4(std::string_view compressed, uint64_t raw_size,
                          std::string* raw) {
  if (raw_size > kMaxLz4Raw ||
      raw_size > kMaxLz4Ratio * compressed.size() + 16) {
    return false;
  }
  raw->resize(raw_size);
  const int got = LZ4_decompress_safe(compressed.data(), raw->data(),
                                      static_cast<int>(compressed.size()),
                                      static_cast<int>(raw_size));
  return got >= 0 && static_cast<uint64_t>(got) == raw_size;
}

}  // namespace analytics::codec

#endif  // ANALYTICS_STORE_LZ4_CODEC_H_
