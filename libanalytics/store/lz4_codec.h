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
// *out. Each block is independent (no dictionary), so any one decodes alone.
//
// LZ4_compress_default zeroes its 16 KiB hash table on every call, which was
// a quarter of the committer's instructions for the small blocks of group
// commits (callgrind, analyticsd under load). A per-thread stream is zeroed
// once and then reset with LZ4_resetStream_fast, which invalidates the old
// table entries without touching them; compress_fast_continue on a freshly
// reset stream writes an ordinary self-contained block. (The one-call
// LZ4_compress_fast_extState_fastReset is not exported by Debian's
// liblz4.so.)
inline void AppendLz4(std::string_view raw, std::string* out) {
  thread_local LZ4_stream_t* const stream = [] {
    static_assert(sizeof(LZ4_stream_t) <= 32 * 1024);
    auto* s = new LZ4_stream_t;  // one per thread, kept for the process
    LZ4_initStream(s, sizeof(*s));
    return s;
  }();
  const size_t at = out->size();
  const int bound = LZ4_compressBound(static_cast<int>(raw.size()));
  out->resize(at + static_cast<size_t>(bound));
  LZ4_resetStream_fast(stream);
  const int n = LZ4_compress_fast_continue(stream, raw.data(), out->data() + at,
                                           static_cast<int>(raw.size()), bound,
                                           /*acceleration=*/1);
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
