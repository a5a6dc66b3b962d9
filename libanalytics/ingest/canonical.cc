// Canonical event validation and JSON parsing (see analytics/event.h).
// Two parsers: a one-pass fast path for the common shape (no escapes, flat
// props) that falls back, on anything else, to RapidJSON's SAX reader, which
// decides every error (canonical_internal.h; the test checks they agree).
// SSE2 string scanning and whitespace skipping for the in-situ parse below
// (x86-64 always has SSE2). Only this file uses rapidjson's in-situ stream,
// the one stream type these SIMD paths change, and its buffer is padded so
// that their aligned 16-byte loads stay inside it (as is the fast path's
// number buffer, read through a StringStream).
#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2)
#define RAPIDJSON_SSE2
#endif
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "analytics/event.h"
#include "libanalytics/core/utf8.h"
#include "libanalytics/ingest/canonical_internal.h"
#include "libanalytics/ingest/json_scan_internal.h"

namespace analytics {
namespace {

constexpr size_t kMaxSiteBytes = 253;
constexpr int kMaxScreenWidth = 100000;
// Accepted timestamp range: [2000-01-01T00:00:00Z, 2101-01-01T00:00:00Z).
constexpr int64_t kMinTsSeconds = 946684800;
constexpr int64_t kEndTsSeconds = 4133980800;

// (Out of line: the callers are the parsers' hot paths, an error is rare.)
ABSL_ATTRIBUTE_NOINLINE absl::Status Error(std::string_view field,
                                           std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(absl::string_view(field.data(), field.size()), ": ",
                   absl::string_view(what.data(), what.size())));
}

absl::Status CheckUtf8(std::string_view field, const std::string& value) {
  if (!ValidUtf8(value)) return Error(field, "invalid UTF-8");
  return absl::OkStatus();
}

// Prop keys may be long or binary; quote at most a prefix in messages.
std::string PropField(const std::string& key) {
  if (key.size() <= 64) return absl::StrCat("props.", key);
  size_t n = 64;  // cut on a character boundary
  while (n > 0 && (static_cast<unsigned char>(key[n]) & 0xC0) == 0x80) --n;
  return absl::StrCat("props.", key.substr(0, n), "...");
}

bool InTsRange(absl::Time t) {
  return t >= absl::FromUnixSeconds(kMinTsSeconds) &&
         t < absl::FromUnixSeconds(kEndTsSeconds);
}

// One JSON value as the SAX parser reports it (containers without their
// contents), with the subset of rapidjson::Value's accessors that the field
// parsers below use, and the same number classification: an integer that
// fits int64 IsInt64 (and IsUint64 when >= 0), a larger one only IsUint64,
// anything with a fraction or exponent IsDouble.
class Value {
 public:
  enum class Type : uint8_t { kNull, kBool, kNumber, kString, kObject, kArray };

  static Value Of(Type t) {
    Value v;
    v.type_ = t;
    return v;
  }
  static Value Bool(bool b) {
    Value v = Of(Type::kBool);
    v.b_ = b;
    return v;
  }
  static Value Int64(int64_t i) {
    Value v = Of(Type::kNumber);
    v.i_ = i;
    v.is_int64_ = true;
    v.is_uint64_ = i >= 0;
    return v;
  }
  static Value Uint64(uint64_t u) {
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Int64(static_cast<int64_t>(u));
    }
    Value v = Of(Type::kNumber);
    v.u_ = u;
    v.is_uint64_ = true;
    return v;
  }
  static Value Double(double d) {
    Value v = Of(Type::kNumber);
    v.d_ = d;
    v.is_double_ = true;
    return v;
  }
  static Value String(const char* s, size_t n) {
    Value v = Of(Type::kString);
    v.str_ = s;
    v.len_ = n;
    return v;
  }

  // In place (no temporary: the fast parser's values are built in the
  // caller's frame).
  void SetString(const char* s, size_t n) {
    type_ = Type::kString;
    str_ = s;
    len_ = n;
  }
  void SetBool(bool b) {
    type_ = Type::kBool;
    b_ = b;
  }

  bool IsNull() const { return type_ == Type::kNull; }
  bool IsBool() const { return type_ == Type::kBool; }
  bool IsNumber() const { return type_ == Type::kNumber; }
  bool IsString() const { return type_ == Type::kString; }
  bool IsObject() const { return type_ == Type::kObject; }
  bool IsInt64() const { return is_int64_; }
  bool IsUint64() const { return is_uint64_; }
  bool IsDouble() const { return is_double_; }
  bool GetBool() const { return b_; }
  int64_t GetInt64() const { return i_; }
  uint64_t GetUint64() const {
    return is_int64_ ? static_cast<uint64_t>(i_) : u_;
  }
  double GetDouble() const {
    if (is_double_) return d_;
    return is_int64_ ? static_cast<double>(i_) : static_cast<double>(u_);
  }
  const char* GetString() const { return str_; }
  size_t GetStringLength() const { return len_; }

 private:
  // Small (24 bytes, one member of the union live, as type_ and the is_*
  // flags say): the fast parser builds one per member.
  Type type_ = Type::kNull;
  bool is_int64_ = false, is_uint64_ = false, is_double_ = false;
  union {
    int64_t i_ = 0;
    uint64_t u_;
    double d_;
    bool b_;
    const char* str_;
  };
  size_t len_ = 0;
};

absl::Status GetString(const Value& v, std::string_view field,
                       std::string* out) {
  if (v.IsNull()) return absl::OkStatus();
  if (!v.IsString()) return Error(field, "expected a string");
  out->assign(v.GetString(), v.GetStringLength());
  return absl::OkStatus();
}

absl::Status GetBool(const Value& v, std::string_view field, bool* out) {
  if (v.IsNull()) return absl::OkStatus();
  if (!v.IsBool()) return Error(field, "expected a boolean");
  *out = v.GetBool();
  return absl::OkStatus();
}

}  // namespace

namespace canonical_internal {

// std::llround(d * 1e6) without its call: x = d * 1e6 is in [2^49, 2^52),
// where doubles are multiples of 1/8, 1/4 or 1/2, so x + 0.5 is exact (or,
// past a power of two, rounds to at most a quarter above it), and its
// truncation is x rounded half away from zero, llround's.
int64_t TsMicros(double d) {
  const double x = d * 1e6;
  return static_cast<int64_t>(x + 0.5);
}

}  // namespace canonical_internal

namespace {

constexpr std::string_view kBadTs = "not a number or ISO 8601 date-time";
constexpr std::string_view kTsRange = "out of range (years 2000..2100)";

// A string "ts" (out of line: the parsers' hot path has numbers).
ABSL_ATTRIBUTE_NOINLINE absl::Status ParseIsoTs(
    absl::string_view s, std::optional<absl::Time>* out) {
  // Offsets: "+hh:mm" or "Z" (%Ez), "+hhmm" (%z), none (UTC).
  static constexpr const char* kFormats[] = {
      "%Y-%m-%d%ET%H:%M:%E*S%Ez", "%Y-%m-%d%ET%H:%M:%E*S%z",
      "%Y-%m-%d%ET%H:%M:%E*S",    "%Y-%m-%d%ET%H:%M%Ez",
      "%Y-%m-%d%ET%H:%M",         "%Y-%m-%d %H:%M:%E*S%Ez",
      "%Y-%m-%d %H:%M:%E*S",      "%Y-%m-%d",
  };
  // Digits must start the string: ParseTime also accepts "infinite-future"
  // and skips leading whitespace.
  absl::Time t;
  bool ok = !s.empty() && s[0] >= '0' && s[0] <= '9';
  if (ok) {
    ok = false;
    for (const char* format : kFormats) {
      if (absl::ParseTime(format, s, absl::UTCTimeZone(), &t, nullptr)) {
        ok = true;
        break;
      }
    }
  }
  if (!ok) return Error("ts", kBadTs);
  if (!InTsRange(t)) return Error("ts", kTsRange);
  *out = t;
  return absl::OkStatus();
}

absl::Status ParseTs(const Value& v, std::optional<absl::Time>* out) {
  if (v.IsNull()) return absl::OkStatus();
  if (v.IsNumber()) {
    const double d = v.GetDouble();
    // (False for NaN and the infinities too.)
    if (!(d >= kMinTsSeconds && d < kEndTsSeconds)) {
      return Error("ts", kTsRange);
    }
    *out = absl::FromUnixMicros(canonical_internal::TsMicros(d));
    return absl::OkStatus();
  }
  if (v.IsString()) {
    return ParseIsoTs(absl::string_view(v.GetString(), v.GetStringLength()),
                      out);
  }
  return Error("ts", kBadTs);
}

// Appends a JSON number's text: integers as-is, doubles in the shortest form
// that round-trips (3.0 -> "3", 2.5 -> "2.5").
void NumberText(const Value& v, std::string* out) {
  char buf[64];
  std::to_chars_result r;
  if (v.IsInt64()) {
    r = std::to_chars(buf, buf + sizeof(buf), v.GetInt64());
  } else if (v.IsUint64()) {
    r = std::to_chars(buf, buf + sizeof(buf), v.GetUint64());
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), v.GetDouble());
  }
  out->assign(buf, r.ptr);
}

// The props of an EventInput being parsed: members are written over the
// entries a reused EventInput already holds (keeping their strings'
// capacity); Finish() drops the entries beyond the parsed ones.
class PropsOut {
 public:
  explicit PropsOut(Props* props) : props_(props) {}
  std::pair<std::string, std::string>& Next() {
    if (n_ == props_->size()) props_->emplace_back();
    return (*props_)[n_++];
  }
  void Finish() { props_->resize(n_); }

 private:
  Props* props_;
  size_t n_ = 0;
};

// One member of the "props" object.
absl::Status ParseProp(std::string_view key_view, const Value& val,
                       PropsOut* props) {
  if (val.IsNull()) return absl::OkStatus();
  if (!val.IsString() && !val.IsNumber() && !val.IsBool()) {
    const std::string key(key_view);
    if (!ValidUtf8(key)) return Error("props", "key is not valid UTF-8");
    return Error(PropField(key),
                 "expected a string, number or boolean, not an object or "
                 "array");
  }
  auto& [key, text] = props->Next();
  key.assign(key_view);
  if (val.IsString()) {
    text.assign(val.GetString(), val.GetStringLength());
  } else if (val.IsNumber()) {
    NumberText(val, &text);
  } else {
    text = val.GetBool() ? "true" : "false";
  }
  return absl::OkStatus();
}

absl::Status ParseScreenWidth(const Value& v, int* out) {
  if (v.IsNull()) return absl::OkStatus();
  if (!v.IsNumber()) return Error("screen_width", "expected an integer");
  double d;
  if (v.IsInt64()) {
    const int64_t i = v.GetInt64();
    if (i < 0 || i > kMaxScreenWidth) {
      return Error("screen_width", "out of range 0..100000");
    }
    *out = static_cast<int>(i);
    return absl::OkStatus();
  }
  d = v.GetDouble();  // uint64 beyond int64, or a double
  if (v.IsDouble() && d != std::floor(d)) {
    return Error("screen_width", "expected an integer");
  }
  if (!(d >= 0 && d <= kMaxScreenWidth)) {
    return Error("screen_width", "out of range 0..100000");
  }
  *out = static_cast<int>(d);
  return absl::OkStatus();
}

absl::Status ParseMember(std::string_view key, const Value& v, EventInput* in) {
  switch (key.size()) {
    case 2:
      if (key == "ts") return ParseTs(v, &in->ts);
      if (key == "ip") return GetString(v, key, &in->ip);
      break;
    case 3:
      if (key == "url") return GetString(v, key, &in->url);
      break;
    case 4:
      if (key == "site") return GetString(v, key, &in->site);
      if (key == "name") return GetString(v, key, &in->name);
      break;
    case 5:
      // An object is taken member by member (EventSax::Open).
      if (key == "props" && !v.IsNull()) {
        return Error("props", "expected an object");
      }
      break;
    case 6:
      if (key == "locale") return GetString(v, key, &in->locale);
      break;
    case 7:
      if (key == "country") {
        absl::Status s = GetString(v, key, &in->country_hint);
        if (s.ok()) s = CheckUtf8(key, in->country_hint);
        return s;
      }
      break;
    case 8:
      if (key == "referrer") return GetString(v, key, &in->referrer);
      if (key == "timezone") return GetString(v, key, &in->timezone);
      if (key == "imported") return GetBool(v, key, &in->imported);
      break;
    case 10:
      if (key == "user_agent") return GetString(v, key, &in->user_agent);
      break;
    case 11:
      if (key == "interactive") return GetBool(v, key, &in->interactive);
      break;
    case 12:
      if (key == "screen_width") return ParseScreenWidth(v, &in->screen_width);
      break;
  }
  return absl::OkStatus();  // unknown keys are ignored
}

// Streams the canonical object's members into an EventInput, in document
// order, with the field parsers above: the same checks and the same first
// error as walking a parsed DOM, without building one. Members of unknown
// keys and nested containers are skipped. Never stops the parse, so that
// malformed JSON is reported as such even after a field error.
class EventSax
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, EventSax> {
 public:
  explicit EventSax(EventInput* in) : in_(in), props_(&in->props) {}

  bool Null() { return Scalar(Value::Of(Value::Type::kNull)); }
  bool Bool(bool b) { return Scalar(Value::Bool(b)); }
  bool Int(int i) { return Scalar(Value::Int64(i)); }
  bool Uint(unsigned u) { return Scalar(Value::Int64(u)); }
  bool Int64(int64_t i) { return Scalar(Value::Int64(i)); }
  bool Uint64(uint64_t u) { return Scalar(Value::Uint64(u)); }
  bool Double(double d) { return Scalar(Value::Double(d)); }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    return Scalar(Value::String(s, n));
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (depth_ == 1) {
      key_ = std::string_view(s, n);
    } else if (depth_ == 2 && in_props_) {
      prop_key_ = std::string_view(s, n);
    }
    return true;
  }
  bool StartObject() { return Open(Value::Of(Value::Type::kObject)); }
  bool StartArray() { return Open(Value::Of(Value::Type::kArray)); }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool EndArray(rapidjson::SizeType) { return Close(); }

  static constexpr int kMaxDepth = 32;

  // Drops the entries of a reused EventInput's props beyond the parsed ones.
  void Finish() { props_.Finish(); }

  bool root_is_object() const { return root_is_object_; }
  bool too_deep() const { return too_deep_; }
  const absl::Status& status() const { return status_; }

 private:
  bool active() const { return root_is_object_ && status_.ok(); }
  bool Scalar(const Value& v) {
    if (!active()) return true;
    if (depth_ == 1) {
      status_ = ParseMember(key_, v, in_);
    } else if (depth_ == 2 && in_props_) {
      status_ = ParseProp(prop_key_, v, &props_);
    }
    return true;
  }
  bool Open(const Value& v) {
    // RapidJSON's reader recurses once per level: a 64 KiB body of '['
    // overflowed the stack of an ASan build (fuzz/canonical_fuzzer). Real
    // events nest 2 levels (props); stop far above that.
    if (depth_ >= kMaxDepth) {
      too_deep_ = true;
      return false;
    }
    if (depth_ == 0) {
      root_is_object_ = v.IsObject();
    } else if (active()) {
      if (depth_ == 1 && v.IsObject() && key_ == "props") {
        in_props_ = true;
      } else if (depth_ == 1) {
        status_ = ParseMember(key_, v, in_);
      } else if (depth_ == 2 && in_props_) {
        status_ = ParseProp(prop_key_, v, &props_);
      }
    }
    ++depth_;
    return true;
  }
  bool Close() {
    if (--depth_ == 1) in_props_ = false;
    return true;
  }

  EventInput* in_;
  PropsOut props_;
  bool too_deep_ = false;
  int depth_ = 0;
  bool root_is_object_ = false;
  bool in_props_ = false;
  std::string_view key_, prop_key_;
  absl::Status status_;
};

// Records the one number of a document parsed by ParseNumber() below.
class NumberSax
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, NumberSax> {
 public:
  bool Int(int i) { return Set(Value::Int64(i)); }
  bool Uint(unsigned u) { return Set(Value::Int64(u)); }
  bool Int64(int64_t i) { return Set(Value::Int64(i)); }
  bool Uint64(uint64_t u) { return Set(Value::Uint64(u)); }
  bool Double(double d) { return Set(Value::Double(d)); }
  bool Default() { return false; }  // anything but a number
  Value value;

 private:
  bool Set(const Value& v) {
    value = v;
    return true;
  }
};

// The fast path of ParseEventJson: one pass over the text for the shape
// nearly every event has (an object of strings without escapes, numbers,
// literals, and a flat "props" object), feeding ParseMember/ParseProp in
// document order exactly as EventSax does. Returns false on anything else
// (escapes, control characters, NUL, nesting, a BOM, malformed JSON, a field
// error): the caller then runs the full parser (which resets the EventInput
// first), which decides the result and the error. ascii(): no byte >= 0x80
// was seen (so every field is valid UTF-8).
//
// The text is read from a json_scan::PaddedCopy (ParseEventJsonFast makes
// it) with json_scan's primitives (json_scan_internal.h).
//
// Hand-written rather than RapidJSON's reader (the full parser): its SAX
// callbacks, number and string handling cost about twice as much per event
// for this one shape, which every tracked event and imported line has.
class FastEventParser : public json_scan::PaddedScanner {
 public:
  // [text, text + size) followed by json_scan::kPadding NUL bytes.
  FastEventParser(const char* text, size_t size, EventInput* in)
      : PaddedScanner(text, size), in_(in), props_(&in->props) {}

  bool Parse() {
    const bool ok = ParseObject();
    props_.Finish();
    return ok;
  }

 private:
  bool ParseObject() {
    if (!Eat('{')) return false;
    if (Eat('}')) return AtEnd();
    if (!Eat('"')) return false;
    while (true) {
      if (!Member()) return false;
      if (std::memcmp(p_, ",\"", 2) == 0) {  // (compact JSON: one compare)
        p_ += 2;
        continue;
      }
      if (!Eat(',')) break;
      if (!Eat('"')) return false;
    }
    if (*p_ != '}') return false;  // (Eat skipped the whitespace)
    ++p_;
    return AtEnd();
  }

  // One member (p_ after its key's opening quote), fed to its field as
  // ParseMember would. The usual keys are matched in place (their bytes and
  // the closing quote, one compare) and their values parsed straight into
  // their fields; any other key is scanned as a string and its value goes
  // through ParseMember.
  bool Member() {
    // The string fields' members share one StringMember (inlined once).
    std::string* field;
    switch (*p_) {
      case 'i':
        if (!KeyIs("ip")) return OtherMember();
        field = &in_->ip;
        break;
      case 'l':
        if (!KeyIs("locale")) return OtherMember();
        field = &in_->locale;
        break;
      case 'n':
        if (!KeyIs("name")) return OtherMember();
        field = &in_->name;
        break;
      case 'r':
        if (!KeyIs("referrer")) return OtherMember();
        field = &in_->referrer;
        break;
      case 's':
        if (KeyIs("site")) {
          field = &in_->site;
          break;
        }
        if (KeyIs("screen_width")) return ScreenWidthMember();
        return OtherMember();
      case 't':
        if (KeyIs("ts")) return TsMember();
        if (!KeyIs("timezone")) return OtherMember();
        field = &in_->timezone;
        break;
      case 'u':
        if (KeyIs("url")) {
          field = &in_->url;
          break;
        }
        if (!KeyIs("user_agent")) return OtherMember();
        field = &in_->user_agent;
        break;
      default:
        return OtherMember();
    }
    return StringMember(field);
  }

  // A member of any other key (p_ after its opening quote).
  ABSL_ATTRIBUTE_NOINLINE bool OtherMember() {
    std::string_view key;
    if (!String(&key) || !Colon()) return false;
    if (*p_ == '{') {
      if (key != "props") return false;
      ++p_;
      return Props();
    }
    Value v;
    return Scalar(&v) && ParseMember(key, v, in_).ok();
  }

  // Whether the key at p_ is `name` (then p_ is past its closing quote).
  // The padding makes the compare safe near the end.
  template <size_t N>
  bool KeyIs(const char (&name)[N]) {
    if (std::memcmp(p_, name, N - 1) != 0 || p_[N - 1] != '"') return false;
    p_ += N;
    return true;
  }

  // The ':' after a key and any whitespace after it.
  bool Colon() {
    if (!Eat(':')) return false;
    if (IsWs(*p_)) SkipWs();
    return true;
  }

  // The value of a string field's member (after its key): a string is
  // copied straight in; null leaves the field alone; anything else is an
  // error (ParseMember's GetString), left to the full parser.
  ABSL_ATTRIBUTE_ALWAYS_INLINE bool StringMember(std::string* field) {
    if (std::memcmp(p_, ":\"", 2) == 0) {  // (compact JSON: one compare)
      ++p_;
    } else if (!Colon()) {
      return false;
    }
    if (*p_ == '"') {
      ++p_;
      std::string_view s;
      if (!String(&s)) return false;
      // (clear + append: assign without its checks for an overlapping
      // source, which the padded copy never is.)
      field->clear();
      field->append(s.data(), s.size());
      return true;
    }
    Value v;
    return Scalar(&v) && v.IsNull();
  }

  // "ts": a plain number of seconds in range (nearly every line) straight
  // to microseconds; anything else through ParseTs.
  bool TsMember() {
    if (!Colon()) return false;
    if (!PlainTs()) {
      Value v;
      if (!Scalar(&v) || !ParseTs(v, &in_->ts).ok()) return false;
    }
    return true;
  }

  // A number [1-9][0-9]{8,9}(\.[0-9]{1,6})? (at most 15 digits, as
  // ShortNumber takes it) in [kMinTsSeconds, kEndTsSeconds): *in_->ts as
  // ParseTs makes it, and true; false (p_ unmoved) for anything else.
  //
  // ParseTs takes the double d nearest to the number's value v (the one
  // correctly rounded division ShortNumber and RapidJSON make) and rounds
  // d * 1e6 to an integer. Here that integer is v's microseconds m, exactly:
  // below 2^32 seconds |d - v| <= 2^-22 s (half an ulp), d * 1e6 < 2^52
  // rounds by at most 0.25, so d * 1e6 is within 0.49 of m. The range checks
  // agree too: with at most 6 decimals v is at least 1e-6 from either end,
  // more than d's half ulp (the test compares both parsers on random
  // timestamps with 0..9 decimals).
  bool PlainTs() {
    static constexpr int64_t kScale[] = {1000000, 100000, 10000, 1000,
                                         100,     10,     1};
    const char* p = p_;
    if (*p < '1' || *p > '9') return false;
    uint64_t digits = 0;
    p = Digits(p, &digits);
    const int count = static_cast<int>(p - p_);
    int frac = 0;
    if (*p == '.') {
      const char* const frac_start = ++p;
      p = Digits(p, &digits);
      frac = static_cast<int>(p - frac_start);
      if (frac == 0) return false;
    }
    if (count < 9 || count > 10 || frac > 6 || count + frac > 15 ||
        IsNumberByte(*p)) {
      return false;
    }
    const int64_t micros = static_cast<int64_t>(digits) * kScale[frac];
    if (micros < kMinTsSeconds * 1000000 || micros >= kEndTsSeconds * 1000000) {
      return false;
    }
    in_->ts = absl::FromUnixMicros(micros);
    p_ = p;
    return true;
  }

  // "screen_width": a plain integer in range straight in; anything else
  // through ParseScreenWidth.
  bool ScreenWidthMember() {
    if (!Colon()) return false;
    const char* p = p_;
    if (IsDigit(*p) && (*p != '0' || !IsDigit(p[1]))) {
      uint64_t v = 0;
      p = Digits(p, &v);
      if (p - p_ <= 6 && !IsNumberByte(*p) && v <= kMaxScreenWidth) {
        in_->screen_width = static_cast<int>(v);
        p_ = p;
        return true;
      }
    }
    Value v;
    return Scalar(&v) && ParseScreenWidth(v, &in_->screen_width).ok();
  }

  // The members of "props" (after its '{'), up to and including its '}'.
  bool Props() {
    if (Eat('}')) return true;
    while (true) {
      std::string_view key;
      if (!Eat('"') || !String(&key) || !Eat(':')) return false;
      if (IsWs(*p_)) SkipWs();
      Value v;
      if (!Scalar(&v) || !ParseProp(key, v, &props_).ok()) return false;
      if (Eat(',')) continue;
      return Eat('}');
    }
  }

  bool Scalar(Value* v) {
    switch (*p_) {
      case '"': {
        ++p_;
        std::string_view s;
        if (!String(&s)) return false;
        v->SetString(s.data(), s.size());
        return true;
      }
      case 't':
        v->SetBool(true);
        return Literal("true");
      case 'f':
        v->SetBool(false);
        return Literal("false");
      case 'n':
        return Literal("null");  // *v is null
      default:
        return Number(v);
    }
  }

  // A number: a short one (json_scan's ShortNumber: timestamps, screen
  // widths) without running RapidJSON's reader; anything else through it
  // (NumberSlow). An integer is Int64 (RapidJSON's Int/Uint/Int64/Uint64 of a
  // value that fits int64).
  bool Number(Value* v) {
    int64_t i;
    double d;
    switch (ShortNumber(&i, &d)) {
      case NumberKind::kInt64:
        *v = Value::Int64(i);
        return true;
      case NumberKind::kDouble:
        *v = Value::Double(d);
        return true;
      case NumberKind::kNone:
        break;
    }
    return NumberSlow(v);
  }

  // Any other number token (exponents, more digits, malformed text): the
  // longest run of number bytes, parsed by RapidJSON's reader, which makes
  // the same value as the full parser's.
  bool NumberSlow(Value* v) {
    const char* start = p_;
    while (IsNumberByte(*p_)) ++p_;
    const size_t n = static_cast<size_t>(p_ - start);
    alignas(16) char buf[80] = {};  // NUL-padded past any 16-byte load
    if (n == 0 || n >= 64) return false;
    std::memcpy(buf, start, n);
    NumberSax handler;
    rapidjson::GenericReader<rapidjson::UTF8<>, rapidjson::UTF8<>> reader;
    rapidjson::StringStream stream(buf);
    if (reader.Parse<rapidjson::kParseDefaultFlags>(stream, handler)
            .IsError()) {
      return false;
    }
    *v = handler.value;
    return true;
  }

  EventInput* const in_;
  PropsOut props_;
};

}  // namespace

namespace canonical_internal {

// Gives a reused EventInput a fresh one's values, keeping the capacity of its
// strings (cleared, or assigned the default, member by member: cheaper than
// copy-assigning a fresh EventInput) and of its props (PropsOut writes over
// their entries).
#if defined(__GLIBCXX__) && defined(__x86_64__)
static_assert(sizeof(EventInput) == 352,
              "EventInput changed: reset the new field in ResetEventInput");
#endif
void ResetEventInput(EventInput* in) {
  in->site.clear();
  in->name.assign("pageview");
  in->url.clear();
  in->referrer.clear();
  in->ts.reset();
  in->ip.clear();
  in->user_agent.clear();
  in->screen_width = 0;
  in->locale.clear();
  in->timezone.clear();
  in->country_hint.clear();
  in->interactive = true;
  in->imported = false;
}

}  // namespace canonical_internal

namespace {

// ValidateEventInput; `ascii`: every string of `in` is known to be ASCII
// (so valid UTF-8, one character per byte), and the UTF-8 checks are skipped.
absl::Status ValidateEventInputImpl(const EventInput& in, bool ascii) {
  auto check_utf8 = [ascii](std::string_view field, const std::string& value) {
    return ascii ? absl::OkStatus() : CheckUtf8(field, value);
  };
  if (in.site.empty()) return Error("site", "required");
  if (in.site.size() > kMaxSiteBytes) {
    return Error("site", "longer than 253 bytes");
  }
  if (absl::Status s = check_utf8("site", in.site); !s.ok()) return s;

  if (in.name.empty()) return Error("name", "empty");
  size_t name_chars = in.name.size();
  if (!ascii && !ValidUtf8(in.name, &name_chars)) {
    return Error("name", "invalid UTF-8");
  }
  if (name_chars > kMaxNameLength) {
    return Error("name", "longer than 120 characters");
  }

  if (in.url.empty()) return Error("url", "required");
  if (in.url.size() > kMaxUrlBytes) {
    return Error("url", "longer than 2000 bytes");
  }
  if (absl::Status s = check_utf8("url", in.url); !s.ok()) return s;

  if (in.referrer.size() > kMaxUrlBytes) {
    return Error("referrer", "longer than 2000 bytes");
  }
  if (absl::Status s = check_utf8("referrer", in.referrer); !s.ok()) return s;

  if (absl::Status s = check_utf8("ip", in.ip); !s.ok()) return s;
  if (absl::Status s = check_utf8("user_agent", in.user_agent); !s.ok()) {
    return s;
  }
  if (absl::Status s = check_utf8("locale", in.locale); !s.ok()) return s;
  if (absl::Status s = check_utf8("timezone", in.timezone); !s.ok()) return s;
  if (absl::Status s = check_utf8("country_hint", in.country_hint); !s.ok()) {
    return s;
  }

  if (in.screen_width < 0 || in.screen_width > kMaxScreenWidth) {
    return Error("screen_width", "out of range 0..100000");
  }
  if (in.ts.has_value() && !InTsRange(*in.ts)) {
    return Error("ts", "out of range (years 2000..2100)");
  }

  if (in.props.size() > kMaxProps) {
    return Error("props", "more than 30 properties");
  }
  for (const auto& [key, value] : in.props) {
    if (key.empty()) return Error("props", "empty key");
    if (!ascii && !ValidUtf8(key)) {
      return Error("props", "key is not valid UTF-8");
    }
    if (key.size() > kMaxPropKeyBytes) {
      return Error(PropField(key), "key longer than 300 bytes");
    }
    if (value.size() > kMaxPropValueBytes) {
      return Error(PropField(key), "value longer than 2000 bytes");
    }
    if (!ascii && !ValidUtf8(value)) {
      return Error(PropField(key), "invalid UTF-8");
    }
  }
  return absl::OkStatus();
}

// Whether ValidateEventInputImpl(in, true) is OK: its limits in one
// expression, for the fast parser's ASCII lines (nearly all pass; one that
// does not gets ValidateEventInputImpl's message).
bool WithinAsciiLimits(const EventInput& in) {
  // (size() - 1 wraps an empty string to the top: one compare each.)
  bool ok =
      in.site.size() - 1 < kMaxSiteBytes &&
      in.name.size() - 1 < kMaxNameLength && in.url.size() - 1 < kMaxUrlBytes &&
      in.referrer.size() <= kMaxUrlBytes &&
      static_cast<unsigned>(in.screen_width) <= kMaxScreenWidth &&
      (!in.ts.has_value() || InTsRange(*in.ts)) && in.props.size() <= kMaxProps;
  for (const auto& [key, value] : in.props) {
    ok &=
        key.size() - 1 < kMaxPropKeyBytes && value.size() <= kMaxPropValueBytes;
  }
  return ok;
}

// True when every byte of `s` is below 0x80. SSE2 ORs 16 bytes a step and
// tests the top bits once, instead of ValidUtf8's 8-byte steps with a branch
// each.
bool AllAsciiImpl(std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
#if defined(__SSE2__)
  if (n >= 16) {
    const char* end = p + n;
    __m128i acc = _mm_setzero_si128();
    for (; end - p >= 16; p += 16) {
      acc = _mm_or_si128(acc,
                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    // The last (overlapping) 16 bytes cover the tail.
    acc = _mm_or_si128(
        acc, _mm_loadu_si128(reinterpret_cast<const __m128i*>(end - 16)));
    return _mm_movemask_epi8(acc) == 0;
  }
#endif
  // Short strings: two overlapping loads (or three bytes) cover them.
  uint64_t acc = 0;
  if (n >= 8) {
    uint64_t a, b;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + n - 8, 8);
    acc = a | b;
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    acc = a | b;
  } else if (n > 0) {
    acc = static_cast<unsigned char>(p[0]) |
          static_cast<unsigned char>(p[n / 2]) |
          static_cast<unsigned char>(p[n - 1]);
  }
  return (acc & 0x8080808080808080ULL) == 0;
}

// Whether every string of `in` is ASCII (ValidateEventInputImpl's `ascii`).
bool EventInputIsAscii(const EventInput& in) {
  if (!AllAsciiImpl(in.site) || !AllAsciiImpl(in.name) ||
      !AllAsciiImpl(in.url) || !AllAsciiImpl(in.referrer) ||
      !AllAsciiImpl(in.ip) || !AllAsciiImpl(in.user_agent) ||
      !AllAsciiImpl(in.locale) || !AllAsciiImpl(in.timezone) ||
      !AllAsciiImpl(in.country_hint)) {
    return false;
  }
  for (const auto& [key, value] : in.props) {
    if (!AllAsciiImpl(key) || !AllAsciiImpl(value)) return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateEventInput(const EventInput& in) {
  // Most events are all ASCII (log imports nearly always): one cheap scan
  // then spares the per-field UTF-8 validation.
  return ValidateEventInputImpl(in, EventInputIsAscii(in));
}

absl::Status ParseEventJson(std::string_view json, EventInput* out) {
  std::optional<absl::Status> fast =
      canonical_internal::ParseEventJsonFast(json, out);
  if (fast.has_value()) return *std::move(fast);
  return canonical_internal::ParseEventJsonFull(json, out);
}

absl::StatusOr<EventInput> ParseEventJson(std::string_view json) {
  EventInput in;
  if (absl::Status s = ParseEventJson(json, &in); !s.ok()) return s;
  return in;
}

namespace canonical_internal {

absl::Status ValidateEventInput(const EventInput& in, bool ascii) {
  return ValidateEventInputImpl(in, ascii || EventInputIsAscii(in));
}

bool AllAscii(std::string_view s) { return AllAsciiImpl(s); }

std::optional<absl::Status> ParseEventJsonFast(std::string_view json,
                                               EventInput* out) {
  ResetEventInput(out);
  // The padded copy FastEventParser reads: on the stack for ordinary lines.
  const json_scan::PaddedCopy copy(json);
  FastEventParser fast(copy.data(), json.size(), out);
  if (!fast.Parse()) return std::nullopt;
  if (fast.ascii() && WithinAsciiLimits(*out)) return absl::OkStatus();
  return ValidateEventInputImpl(*out, fast.ascii());
}

std::optional<absl::StatusOr<EventInput>> ParseEventJsonFast(
    std::string_view json) {
  EventInput in;
  std::optional<absl::Status> s = ParseEventJsonFast(json, &in);
  if (!s.has_value()) return std::nullopt;
  if (!s->ok()) return *std::move(s);
  return in;
}

absl::StatusOr<EventInput> ParseEventJsonFull(std::string_view json) {
  EventInput in;
  if (absl::Status s = ParseEventJsonFull(json, &in); !s.ok()) return s;
  return in;
}

absl::Status ParseEventJsonFull(std::string_view json, EventInput* out) {
  ResetEventInput(out);
  // Like rapidjson's parse of a memory buffer, skip leading 0xEF, 0xBB and
  // 0xBF bytes (a UTF-8 byte order mark); error offsets count them.
  size_t skip = 0;
  for (unsigned char bom : {0xEF, 0xBB, 0xBF}) {
    if (skip < json.size() && static_cast<unsigned char>(json[skip]) == bom) {
      ++skip;
    }
  }
  // In-situ parse (strings are unescaped in place, no DOM) of a per-thread
  // copy, NUL-terminated (an embedded NUL ends the input, as it does for a
  // memory buffer) and padded for the SSE2 scans.
  thread_local std::string buffer;
  buffer.assign(json.data() + skip, json.size() - skip);
  buffer.append(16, '\0');
  EventSax handler(out);
  rapidjson::GenericReader<rapidjson::UTF8<>, rapidjson::UTF8<>> reader;
  rapidjson::InsituStringStream stream(buffer.data());
  const rapidjson::ParseResult parsed =
      reader.Parse<rapidjson::kParseDefaultFlags | rapidjson::kParseInsituFlag>(
          stream, handler);
  handler.Finish();
  if (buffer.capacity() > (1 << 20)) std::string().swap(buffer);
  if (handler.too_deep()) {
    return Error("body", absl::StrCat("nested deeper than ",
                                      EventSax::kMaxDepth, " levels"));
  }
  if (parsed.IsError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("body: invalid JSON at offset ", parsed.Offset() + skip,
                     ": ", rapidjson::GetParseError_En(parsed.Code())));
  }
  if (!handler.root_is_object()) {
    return Error("body", "expected a JSON object");
  }
  if (!handler.status().ok()) return handler.status();
  return ValidateEventInput(*out);
}

}  // namespace canonical_internal
}  // namespace analytics
