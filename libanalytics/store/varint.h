// Varint byte encodings shared by the stored formats of event_codec.h and
// rollup_codec.h: unsigned LEB128 varints, zigzag for signed values, strings
// as varint length + bytes, and a bounds-checked reader of them.
#ifndef ANALYTICS_STORE_VARINT_H_
#define ANALYTICS_STORE_VARINT_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace analytics::codec {

inline void PutVar(std::string* out, uint64_t v) {
  if (v < 0x80) {  // most values: one byte
    out->push_back(static_cast<char>(v));
    return;
  }
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}
inline void PutSigned(std::string* out, int64_t v) {
  PutVar(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}
// 8 bytes, little-endian: for hashes, whose varints would take 9-10 bytes.
inline void PutFixed64(std::string* out, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (8 * i));
  out->append(buf, 8);
}
inline void PutStr(std::string* out, std::string_view s) {
  PutVar(out, s.size());
  out->append(s.data(), s.size());
}

// Reads the encodings above from a byte string; every method returns false
// (and reads nothing more) at the end of the input or on a malformed value.
class Reader {
 public:
  Reader() = default;
  explicit Reader(std::string_view in) : in_(in) {}
  bool Var(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return false;
      uint8_t b = static_cast<uint8_t>(in_[pos_++]);
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  template <typename T>
  bool Signed(T* v) {
    uint64_t u;
    if (!Var(&u)) return false;
    *v = static_cast<T>(static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1)));
    return true;
  }
  bool Str(std::string* s) {
    std::string_view v;
    if (!View(&v)) return false;
    s->assign(v.data(), v.size());
    return true;
  }
  bool View(std::string_view* s) {
    uint64_t n;
    if (!Var(&n) || n > in_.size() - pos_) return false;
    *s = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // The next n bytes, unread (false if fewer are left).
  bool Skip(uint64_t n, std::string_view* skipped) {
    if (n > in_.size() - pos_) return false;
    *skipped = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Fixed64(uint64_t* v) {
    if (in_.size() - pos_ < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) {
      *v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i]))
            << (8 * i);
    }
    pos_ += 8;
    return true;
  }
  bool Byte(uint8_t* b) {
    if (pos_ >= in_.size()) return false;
    *b = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  // The unread bytes, which count as read from then on.
  std::string_view Rest() {
    std::string_view rest = in_.substr(pos_);
    pos_ = in_.size();
    return rest;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace analytics::codec

#endif  // ANALYTICS_STORE_VARINT_H_
