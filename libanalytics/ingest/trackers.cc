// Tracker protocol adapters (see trackers.h).
#include "libanalytics/ingest/trackers.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "analytics/event.h"
#include "libanalytics/core/strings.h"
#include "libanalytics/ingest/canonical_internal.h"
#include "libanalytics/ingest/json_scan_internal.h"
#include "libanalytics/ingest/trackers_internal.h"

namespace analytics {
namespace {

using Value = rapidjson::Value;

absl::Status Error(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(absl::string_view(field.data(), field.size()), ": ",
                   absl::string_view(what.data(), what.size())));
}

// Deepest nesting of arrays and objects accepted in a tracker body (real
// bodies have 3). Deeper values would make the recursive walks over them
// (Umami's data flattening, RapidJSON's Writer) use stack in proportion.
constexpr int kMaxJsonDepth = 32;

// True when `root` nests arrays/objects deeper than `limit` levels. Iterative,
// so that the check itself uses no stack in proportion to the depth.
bool DeeperThan(const Value& root, int limit) {
  std::vector<std::pair<const Value*, int>> todo = {{&root, 1}};
  while (!todo.empty()) {
    auto [v, depth] = todo.back();
    todo.pop_back();
    if (!v->IsObject() && !v->IsArray()) continue;
    if (depth > limit) return true;
    if (v->IsObject()) {
      for (const auto& m : v->GetObject())
        todo.push_back({&m.value, depth + 1});
    } else {
      for (const Value& e : v->GetArray()) todo.push_back({&e, depth + 1});
    }
  }
  return false;
}

// The DOM of one tracker body. A rapidjson::Document starts its value pool
// with a 64 KiB heap chunk and its parse stack with a 1 KiB one, and frees
// both, on every request (a fifth of a Plausible body's parse); here both
// start in buffers inside this object (on the caller's stack), which hold a
// usual body's DOM, and go on to the heap only past them. The same parser
// and values: only where their memory comes from differs.
using BodyDom = rapidjson::GenericDocument<rapidjson::UTF8<>,
                                           rapidjson::MemoryPoolAllocator<>,
                                           rapidjson::MemoryPoolAllocator<>>;
class BodyDocument {
 public:
  BodyDocument() = default;
  BodyDocument(const BodyDocument&) = delete;
  BodyDocument& operator=(const BodyDocument&) = delete;
  BodyDom* dom() { return &dom_; }

 private:
  static constexpr size_t kStackCapacity = 1024;  // RapidJSON's default
  alignas(8) char pool_buffer_[4096];
  // (The pool's chunk header, then the first stack.)
  alignas(8) char stack_buffer_[kStackCapacity + 64];
  rapidjson::MemoryPoolAllocator<> pool_{pool_buffer_, sizeof(pool_buffer_)};
  rapidjson::MemoryPoolAllocator<> stack_pool_{stack_buffer_,
                                               sizeof(stack_buffer_)};
  BodyDom dom_{&pool_, kStackCapacity, &stack_pool_};
};

// Parses with RapidJSON's iterative parser: its default recursive descent
// uses stack in proportion to the nesting, and a 64 KiB body of '[' overflowed
// the stack of an ASan build (found by fuzz/canonical_fuzzer).
absl::Status ParseBody(std::string_view body, BodyDom* doc) {
  doc->Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc->HasParseError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("body: invalid JSON at offset ", doc->GetErrorOffset(),
                     ": ", rapidjson::GetParseError_En(doc->GetParseError())));
  }
  if (DeeperThan(*doc, kMaxJsonDepth)) {
    return Error("body",
                 absl::StrCat("nested deeper than ", kMaxJsonDepth, " levels"));
  }
  return absl::OkStatus();
}

// The member `key` of `obj`, nullptr when absent or null. The first member
// of that name, as obj.FindMember(key) finds it; written out because
// FindMember measures the key and calls memcmp for every member of the same
// length, and a Plausible body is looked up 17 times: here the first bytes
// are compared before memcmp is called.
const Value* Member(const Value& obj, std::string_view key) {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    const Value& name = it->name;
    if (name.GetStringLength() != key.size()) continue;
    const char* s = name.GetString();
    if (!key.empty() &&
        (s[0] != key[0] || std::memcmp(s, key.data(), key.size()) != 0)) {
      continue;
    }
    return it->value.IsNull() ? nullptr : &it->value;
  }
  return nullptr;
}

// The first present alias of a member, with the alias found in *name.
const Value* MemberAlias(const Value& obj,
                         std::initializer_list<const char*> keys,
                         const char** name) {
  for (const char* key : keys) {
    if (const Value* v = Member(obj, key)) {
      *name = key;
      return v;
    }
  }
  return nullptr;
}

// Reads an optional string member; `field` names it in errors.
absl::Status OptString(const Value* v, std::string_view field,
                       std::string* out) {
  if (v == nullptr) return absl::OkStatus();
  if (!v->IsString()) return Error(field, "expected a string");
  out->assign(v->GetString(), v->GetStringLength());
  return absl::OkStatus();
}

absl::Status ReqString(const Value* v, std::string_view field,
                       std::string* out) {
  if (v == nullptr) return Error(field, "required");
  if (absl::Status s = OptString(v, field, out); !s.ok()) return s;
  if (out->empty()) return Error(field, "required");
  return absl::OkStatus();
}

absl::Status OptBool(const Value* v, std::string_view field, bool* out) {
  if (v == nullptr) return absl::OkStatus();
  if (!v->IsBool()) return Error(field, "expected a boolean");
  *out = v->GetBool();
  return absl::OkStatus();
}

// A JSON number as text: integers as-is, doubles in the shortest form that
// round-trips (3.0 -> "3", 2.5 -> "2.5").
std::string NumberText(const Value& v) {
  char buf[64];
  std::to_chars_result r;
  if (v.IsInt64()) {
    r = std::to_chars(buf, buf + sizeof(buf), v.GetInt64());
  } else if (v.IsUint64()) {
    r = std::to_chars(buf, buf + sizeof(buf), v.GetUint64());
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), v.GetDouble());
  }
  return std::string(buf, r.ptr);
}

std::string JsonText(const Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// Scalar JSON values as prop text; false for objects and arrays.
bool ScalarText(const Value& v, std::string* out) {
  if (v.IsString()) {
    out->assign(v.GetString(), v.GetStringLength());
  } else if (v.IsNumber()) {
    *out = NumberText(v);
  } else if (v.IsBool()) {
    *out = v.GetBool() ? "true" : "false";
  } else {
    return false;
  }
  return true;
}

// Cuts `s` to at most `max` bytes on a UTF-8 character boundary.
void TruncateUtf8(std::string* s, size_t max) {
  if (s->size() <= max) return;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>((*s)[n]) & 0xC0) == 0x80) --n;
  s->resize(n);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' ||
                        s.front() == '\n' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' ||
                        s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string_view StripWwwView(std::string_view host) {
  host = Trim(host);
  if (host.substr(0, 4) == "www.") host.remove_prefix(4);
  return host;
}

std::string StripWww(std::string_view host) {
  return std::string(StripWwwView(host));
}

// Parts of an absolute URL "scheme://authority/path?query#fragment"; for
// other strings only `path`, `query` and `fragment` are set.
struct UrlPieces {
  std::string_view scheme, authority, host, path, query, fragment;
  bool has_query = false, has_fragment = false;
};

UrlPieces Pieces(std::string_view url) {
  UrlPieces p;
  if (size_t hash = url.find('#'); hash != std::string_view::npos) {
    p.fragment = url.substr(hash + 1);
    p.has_fragment = true;
    url = url.substr(0, hash);
  }
  if (size_t q = url.find('?'); q != std::string_view::npos) {
    p.query = url.substr(q + 1);
    p.has_query = true;
    url = url.substr(0, q);
  }
  if (size_t sep = url.find("://"); sep != std::string_view::npos) {
    p.scheme = url.substr(0, sep);
    std::string_view rest = url.substr(sep + 3);
    size_t slash = rest.find('/');
    p.authority = rest.substr(0, slash);
    p.path = slash == std::string_view::npos ? std::string_view()
                                             : rest.substr(slash);
    std::string_view host = p.authority;
    if (size_t at = host.rfind('@'); at != std::string_view::npos) {
      host = host.substr(at + 1);
    }
    if (!host.empty() && host[0] == '[') {
      host = host.substr(0, host.find(']') + 1);
    } else if (size_t colon = host.find(':'); colon != std::string_view::npos) {
      host = host.substr(0, colon);
    }
    p.host = host;
  } else {
    p.path = url;
  }
  return p;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// Plausible's hash mode: the fragment belongs to the page. The engine's URL
// splitter drops fragments, so the '#' goes into the path percent-encoded
// ("%23"), which NormalizePath decodes back: page "/app#/settings".
std::string HashModeUrl(std::string_view url) {
  UrlPieces p = Pieces(url);
  if (!p.has_fragment || p.fragment.empty()) return std::string(url);
  std::string out;
  if (!p.scheme.empty()) {
    absl::StrAppend(&out, AV(p.scheme), "://", AV(p.authority));
  }
  out.append(p.path.empty() ? std::string_view("/") : p.path);
  out.append("%23");
  for (char c : p.fragment) {
    if (c == '?') {
      out.append("%3F");
    } else if (c == '#') {
      out.append("%23");
    } else {
      out.push_back(c);
    }
  }
  if (p.has_query) absl::StrAppend(&out, "?", AV(p.query));
  return out;
}

void AppendQueryParam(std::string* url, std::string_view key,
                      std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const size_t hash = url->find('#');
  std::string frag;
  if (hash != std::string::npos) {
    frag = url->substr(hash);
    url->resize(hash);
  }
  url->push_back(url->find('?') == std::string::npos ? '?' : '&');
  url->append(key);
  url->push_back('=');
  for (unsigned char c : value) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
        c == '~') {
      url->push_back(static_cast<char>(c));
    } else {
      url->push_back('%');
      url->push_back(kHex[c >> 4]);
      url->push_back(kHex[c & 15]);
    }
  }
  url->append(frag);
}

EventInput Base(const RequestInfo& req) {
  EventInput in;
  in.ip = req.ip;
  in.user_agent = req.user_agent;
  in.country_hint = req.country_hint;
  in.ts = req.now;
  return in;
}

absl::Status ValidateAll(const std::vector<EventInput>& events) {
  for (const EventInput& e : events) {
    if (absl::Status s = ValidateEventInput(e); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------- Plausible

// Plausible keeps scalar props, dropping "", null, lists and maps; a props
// value that is neither an object nor a JSON string of one is ignored.
void PlausibleProps(const Value& obj, Props* props) {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    std::string text;
    if (!ScalarText(it->value, &text) || text.empty()) continue;
    props->emplace_back(
        std::string(it->name.GetString(), it->name.GetStringLength()),
        std::move(text));
  }
}

// ------------------------------------------------ Plausible: the fast path

// The members of a Plausible body that the fast path reads (each alias its
// own); kOtherKey for any other.
enum PlausibleKey : uint8_t {
  kN,
  kName,
  kU,
  kUrl,
  kD,
  kDomain,
  kR,
  kReferrer,
  kH,
  kHashMode,
  kI,
  kInteractive,
  kW,
  kM,
  kMeta,
  kP,
  kProps,
  kSd,
  kE,
  kOtherKey,
};

// One scalar value (or a flat props object) as the fast path read it;
// strings point into the padded copy (no escapes: their bytes are the
// value). Only the members that `type` names are set (all are trivial: the
// parser's tables are not initialized).
struct FastValue {
  enum class Type : uint8_t { kNull, kBool, kInt64, kDouble, kString, kObject };
  Type type;
  bool b;
  uint8_t props_begin, props_end;  // kObject: its entries in props()
  int64_t i;
  double d;
  const char* str;  // kString
  size_t len;

  std::string_view s() const { return std::string_view(str, len); }

  bool IsNumber() const {
    return type == Type::kInt64 || type == Type::kDouble;
  }
  // rapidjson::Value::GetDouble() of the same number.
  double AsDouble() const {
    return type == Type::kInt64 ? static_cast<double>(i) : d;
  }
};

// NumberText() of the same number as RapidJSON's DOM holds it (an integer
// of at most 15 digits IsInt64; a fraction is a double).
std::string FastNumberText(const FastValue& v) {
  char buf[64];
  const std::to_chars_result r =
      v.type == FastValue::Type::kInt64
          ? std::to_chars(buf, buf + sizeof(buf), v.i)
          : std::to_chars(buf, buf + sizeof(buf), v.d);
  return std::string(buf, r.ptr);
}

// One pass over a Plausible body (from a json_scan::PaddedCopy) for the shape
// trackers send: an object whose members are scalars (strings without
// escapes, short numbers, literals) or, for m/meta/p/props, a flat object of
// them or one string with escapes (props as JSON text). Parse() is false on
// anything else: other escapes, control characters or NUL in strings, other
// numbers, nesting, a known key twice (the DOM's lookups would see the first
// one), a BOM, malformed JSON, more than kMaxProps props. Any other key is
// skipped, as the DOM lookups skip it.
//
// Hand-written (on json_scan's primitives, like the canonical fast path):
// RapidJSON's DOM, its member lookups and depth check cost about three times
// as much for this one shape, which every tracked page view has.
class FastPlausibleParser : public json_scan::PaddedScanner {
 public:
  static constexpr size_t kMaxProps = 32;
  struct Prop {
    const char* key_str;
    size_t key_len;
    FastValue value;

    std::string_view key() const { return std::string_view(key_str, key_len); }
  };

  // [text, text + size) followed by json_scan::kPadding NUL bytes.
  FastPlausibleParser(const char* text, size_t size)
      : PaddedScanner(text, size) {}

  bool Parse() {
    if (!Eat('{')) return false;
    if (Eat('}')) return AtEnd();
    while (true) {
      if (!Eat('"')) return false;
      const int key = Key();
      if (key < 0 || !Eat(':')) return false;
      if (IsWs(*p_)) SkipWs();
      if (!Member(static_cast<PlausibleKey>(key))) return false;
      if (Eat(',')) continue;
      if (*p_ == '}') {  // (Eat skipped the whitespace)
        ++p_;
        return AtEnd();
      }
      return false;
    }
  }

  // The value of the first of `keys` present and not null, as MemberAlias
  // finds it in the DOM (each key is in the body at most once); nullptr when
  // none is.
  const FastValue* Alias(std::initializer_list<PlausibleKey> keys) const {
    for (PlausibleKey key : keys) {
      const FastValue& v = values_[key];
      if ((present_ & (1u << key)) != 0 && v.type != FastValue::Type::kNull) {
        return &v;
      }
    }
    return nullptr;
  }
  const Prop& prop(size_t i) const { return props_[i]; }
  // A string was unescaped (its text may have bytes >= 0x80 that ascii()
  // did not see).
  bool has_escaped() const { return has_escaped_; }

 private:
  // A key (p_ after its opening quote) through its closing quote: its
  // PlausibleKey, or -1 when it is no string without escapes. The known keys
  // are matched in place (their bytes and the closing quote).
  int Key() {
    switch (*p_) {
      case 'n':
        if (KeyIs("n")) return kN;
        if (KeyIs("name")) return kName;
        break;
      case 'u':
        if (KeyIs("u")) return kU;
        if (KeyIs("url")) return kUrl;
        break;
      case 'd':
        if (KeyIs("d")) return kD;
        if (KeyIs("domain")) return kDomain;
        break;
      case 'r':
        if (KeyIs("r")) return kR;
        if (KeyIs("referrer")) return kReferrer;
        break;
      case 'h':
        if (KeyIs("h")) return kH;
        if (KeyIs("hashMode")) return kHashMode;
        break;
      case 'i':
        if (KeyIs("i")) return kI;
        if (KeyIs("interactive")) return kInteractive;
        break;
      case 'w':
        if (KeyIs("w")) return kW;
        break;
      case 'm':
        if (KeyIs("m")) return kM;
        if (KeyIs("meta")) return kMeta;
        break;
      case 'p':
        if (KeyIs("p")) return kP;
        if (KeyIs("props")) return kProps;
        break;
      case 's':
        if (KeyIs("sd")) return kSd;
        break;
      case 'e':
        if (KeyIs("e")) return kE;
        break;
    }
    std::string_view other;
    return String(&other) ? kOtherKey : -1;
  }

  // Whether the key at p_ is `name` (then p_ is past its closing quote).
  // The padding makes the compare safe near the end.
  template <size_t N>
  bool KeyIs(const char (&name)[N]) {
    if (std::memcmp(p_, name, N - 1) != 0 || p_[N - 1] != '"') return false;
    p_ += N;
    return true;
  }

  // One member's value (p_ at its first byte).
  bool Member(PlausibleKey key) {
    FastValue* v = &other_;
    if (key != kOtherKey) {
      if ((present_ & (1u << key)) != 0) return false;  // a duplicate
      present_ |= 1u << key;
      v = &values_[key];
    }
    const bool props_key =
        key == kM || key == kMeta || key == kP || key == kProps;
    if (*p_ == '{') {
      if (!props_key) return false;
      ++p_;
      return Props(v);
    }
    const char* const start = p_;
    if (Scalar(v)) return true;
    // Props as a JSON string (the tracker's "m"): escaped quotes at least.
    p_ = start;
    return props_key && *p_ == '"' && EscapedString(v);
  }

  // A string with escapes (p_ at its opening quote) through its closing
  // quote, unescaped by RapidJSON's reader as the DOM's parse unescapes it,
  // into escaped_ (one per body: a second one is left to the full parser).
  bool EscapedString(FastValue* v) {
    if (has_escaped_) return false;
    struct Handler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Handler> {
      bool String(const char* str, rapidjson::SizeType len, bool) {
        out->assign(str, len);
        return true;
      }
      bool Default() { return false; }  // (not reached: p_ is at a '"')
      std::string* out;
    } handler;
    handler.out = &escaped_;
    rapidjson::GenericReader<rapidjson::UTF8<>, rapidjson::UTF8<>> reader;
    rapidjson::StringStream stream(p_);
    if (reader.Parse<rapidjson::kParseStopWhenDoneFlag>(stream, handler)
            .IsError()) {
      return false;
    }
    has_escaped_ = true;
    p_ += stream.Tell();
    v->type = FastValue::Type::kString;
    v->str = escaped_.data();
    v->len = escaped_.size();
    return true;
  }

  // The members of a props object (after its '{'), through its '}'.
  bool Props(FastValue* v) {
    v->type = FastValue::Type::kObject;
    v->props_begin = static_cast<uint8_t>(num_props_);
    v->props_end = static_cast<uint8_t>(num_props_);
    if (Eat('}')) return true;
    while (true) {
      if (num_props_ == kMaxProps) return false;
      Prop& prop = props_[num_props_++];
      std::string_view key;
      if (!Eat('"') || !String(&key) || !Eat(':')) return false;
      prop.key_str = key.data();
      prop.key_len = key.size();
      if (IsWs(*p_)) SkipWs();
      if (!Scalar(&prop.value)) return false;
      v->props_end = static_cast<uint8_t>(num_props_);
      if (Eat(',')) continue;
      return Eat('}');
    }
  }

  bool Scalar(FastValue* v) {
    switch (*p_) {
      case '"': {
        ++p_;
        std::string_view s;
        if (!String(&s)) return false;
        v->type = FastValue::Type::kString;
        v->str = s.data();
        v->len = s.size();
        return true;
      }
      case 't':
        v->type = FastValue::Type::kBool;
        v->b = true;
        return Literal("true");
      case 'f':
        v->type = FastValue::Type::kBool;
        v->b = false;
        return Literal("false");
      case 'n':
        v->type = FastValue::Type::kNull;
        return Literal("null");
      default:
        switch (ShortNumber(&v->i, &v->d)) {
          case NumberKind::kInt64:
            v->type = FastValue::Type::kInt64;
            return true;
          case NumberKind::kDouble:
            v->type = FastValue::Type::kDouble;
            return true;
          case NumberKind::kNone:
            break;
        }
        return false;
    }
  }

  uint32_t present_ = 0;  // bit k: key k was read into values_[k]
  bool has_escaped_ = false;
  std::string escaped_;  // EscapedString()'s text
  FastValue values_[kOtherKey];
  FastValue other_;  // an unknown key's value (read and dropped)
  size_t num_props_ = 0;
  Prop props_[kMaxProps];  // (set as they are read)
};

}  // namespace

absl::StatusOr<std::vector<EventInput>> ParsePlausibleEvent(
    std::string_view body, const RequestInfo& req) {
  std::optional<std::vector<EventInput>> fast =
      trackers_internal::ParsePlausibleEventFast(body, req);
  if (fast.has_value()) return *std::move(fast);
  return trackers_internal::ParsePlausibleEventFull(body, req);
}

namespace trackers_internal {

absl::StatusOr<std::vector<EventInput>> ParsePlausibleEventFull(
    std::string_view body, const RequestInfo& req) {
  BodyDocument body_doc;
  BodyDom& doc = *body_doc.dom();
  if (absl::Status s = ParseBody(body, &doc); !s.ok()) return s;
  if (!doc.IsObject()) return Error("body", "expected a JSON object");

  EventInput in = Base(req);
  const char* key = "n";
  const Value* name_v = MemberAlias(doc, {"n", "name"}, &key);
  if (absl::Status s = ReqString(name_v, key, &in.name); !s.ok()) {
    return s;
  }
  key = "u";
  const Value* url_v = MemberAlias(doc, {"u", "url"}, &key);
  if (absl::Status s = ReqString(url_v, key, &in.url); !s.ok()) {
    return s;
  }
  if (StartsWithNoCase(in.url, "data:")) {
    return Error(key, "scheme is not allowed");
  }
  key = "r";
  const Value* ref_v = MemberAlias(doc, {"r", "referrer"}, &key);
  if (absl::Status s = OptString(ref_v, key, &in.referrer); !s.ok()) {
    return s;
  }

  // Hash mode: the tracker sends h: 1; booleans are accepted too.
  key = "h";
  if (const Value* h = MemberAlias(doc, {"h", "hashMode"}, &key)) {
    bool hash_mode = false;
    if (h->IsBool()) {
      hash_mode = h->GetBool();
    } else if (h->IsNumber()) {
      hash_mode = h->GetDouble() == 1;
    } else {
      return Error(key, "expected 1, 0 or a boolean");
    }
    if (hash_mode) in.url = HashModeUrl(in.url);
  }

  key = "i";
  const Value* interactive_v = MemberAlias(doc, {"i", "interactive"}, &key);
  if (absl::Status s = OptBool(interactive_v, key, &in.interactive); !s.ok()) {
    return s;
  }

  if (const Value* w = Member(doc, "w")) {
    if (!w->IsNumber()) return Error("w", "expected a number");
    const double d = w->GetDouble();
    if (!(d >= 0 && d <= 100000)) return Error("w", "out of range 0..100000");
    in.screen_width = static_cast<int>(d);
  }

  key = "p";
  if (const Value* p = MemberAlias(doc, {"m", "meta", "p", "props"}, &key)) {
    if (p->IsObject()) {
      PlausibleProps(*p, &in.props);
    } else if (p->IsString()) {
      rapidjson::Document inner;
      inner.Parse<rapidjson::kParseIterativeFlag>(p->GetString(),
                                                  p->GetStringLength());
      if (!inner.HasParseError() && inner.IsObject()) {
        PlausibleProps(inner, &in.props);
      }
    }
  }

  if (in.name == "engagement") {
    in.interactive = false;
    for (const char* k : {"sd", "e"}) {
      if (const Value* v = Member(doc, k)) {
        if (!v->IsNumber()) return Error(k, "expected a number");
        in.props.emplace_back(k, NumberText(*v));
      }
    }
  }

  // Domains: comma-separated, trimmed, without "www."; when absent, the
  // URL's host (as Plausible does).
  key = "d";
  std::vector<std::string> domains;
  if (const Value* d = MemberAlias(doc, {"d", "domain"}, &key)) {
    if (!d->IsString()) return Error(key, "expected a string");
    std::string_view raw(d->GetString(), d->GetStringLength());
    while (true) {
      const size_t comma = raw.find(',');
      std::string domain = StripWww(raw.substr(0, comma));
      if (!domain.empty()) domains.push_back(std::move(domain));
      if (comma == std::string_view::npos) break;
      raw.remove_prefix(comma + 1);
    }
  } else {
    std::string host = StripWww(Pieces(in.url).host);
    if (!host.empty()) domains.push_back(std::move(host));
  }
  if (domains.empty()) return Error("d", "required");

  std::vector<EventInput> out;
  out.reserve(domains.size());
  for (std::string& domain : domains) {
    EventInput& e = out.emplace_back(in);
    e.site = std::move(domain);
  }
  if (absl::Status s = ValidateAll(out); !s.ok()) return s;
  return out;
}

// The full parser's steps, in its order, on the fast parser's values: any
// error is left to the full parser (it decides the status and message), so
// only bodies that make events are answered here.
std::optional<std::vector<EventInput>> ParsePlausibleEventFast(
    std::string_view body, const RequestInfo& req) {
  using Type = FastValue::Type;
  const json_scan::PaddedCopy copy(body);
  FastPlausibleParser parser(copy.data(), body.size());
  if (!parser.Parse()) return std::nullopt;

  const FastValue* name = parser.Alias({kN, kName});
  if (name == nullptr || name->type != Type::kString || name->s().empty()) {
    return std::nullopt;
  }
  const FastValue* url = parser.Alias({kU, kUrl});
  if (url == nullptr || url->type != Type::kString || url->s().empty() ||
      StartsWithNoCase(url->s(), "data:")) {
    return std::nullopt;
  }
  const FastValue* referrer = parser.Alias({kR, kReferrer});
  if (referrer != nullptr && referrer->type != Type::kString) {
    return std::nullopt;
  }
  bool hash_mode = false;
  if (const FastValue* h = parser.Alias({kH, kHashMode})) {
    if (h->type == Type::kBool) {
      hash_mode = h->b;
    } else if (h->IsNumber()) {
      hash_mode = h->AsDouble() == 1;
    } else {
      return std::nullopt;
    }
  }
  bool interactive = true;
  if (const FastValue* i = parser.Alias({kI, kInteractive})) {
    if (i->type != Type::kBool) return std::nullopt;
    interactive = i->b;
  }
  int screen_width = 0;
  if (const FastValue* w = parser.Alias({kW})) {
    if (!w->IsNumber()) return std::nullopt;
    const double d = w->AsDouble();
    if (!(d >= 0 && d <= 100000)) return std::nullopt;
    screen_width = static_cast<int>(d);
  }
  const FastValue* props = parser.Alias({kM, kMeta, kP, kProps});
  const bool engagement = name->s() == "engagement";
  const FastValue* sd = nullptr;
  const FastValue* e = nullptr;
  if (engagement) {
    interactive = false;
    sd = parser.Alias({kSd});
    e = parser.Alias({kE});
    if ((sd != nullptr && !sd->IsNumber()) ||
        (e != nullptr && !e->IsNumber())) {
      return std::nullopt;
    }
  }
  const FastValue* domain = parser.Alias({kD, kDomain});
  if (domain != nullptr && domain->type != Type::kString) return std::nullopt;

  // The event is built in place in the returned vector (the full parser
  // copies a first EventInput into it): one allocation per string.
  std::vector<EventInput> out;
  out.reserve(1);
  EventInput& in = out.emplace_back();
  in.name.assign(name->s());
  if (hash_mode) {
    in.url = HashModeUrl(url->s());
  } else {
    in.url.assign(url->s());
  }
  if (referrer != nullptr) in.referrer.assign(referrer->s());
  in.ts = req.now;
  in.ip = req.ip;
  in.user_agent = req.user_agent;
  in.country_hint = req.country_hint;
  in.screen_width = screen_width;
  in.interactive = interactive;
  if (props != nullptr && props->type == Type::kString) {
    // A JSON string of props: parsed as the full parser parses it (the DOM
    // in stack buffers here).
    BodyDocument inner_doc;
    BodyDom& inner = *inner_doc.dom();
    inner.Parse<rapidjson::kParseIterativeFlag>(props->str, props->len);
    if (!inner.HasParseError() && inner.IsObject()) {
      PlausibleProps(inner, &in.props);
    }
  } else if (props != nullptr && props->type == Type::kObject) {
    // PlausibleProps: scalars as text, "" and null dropped.
    for (size_t k = props->props_begin; k < props->props_end; ++k) {
      const FastPlausibleParser::Prop& prop = parser.prop(k);
      switch (prop.value.type) {
        case Type::kString:
          if (prop.value.s().empty()) break;
          in.props.emplace_back(prop.key(), prop.value.s());
          break;
        case Type::kInt64:
        case Type::kDouble:
          in.props.emplace_back(prop.key(), FastNumberText(prop.value));
          break;
        case Type::kBool:
          in.props.emplace_back(prop.key(), prop.value.b ? "true" : "false");
          break;
        default:
          break;
      }
    }
  }
  if (sd != nullptr) in.props.emplace_back("sd", FastNumberText(*sd));
  if (e != nullptr) in.props.emplace_back("e", FastNumberText(*e));

  // Domains: as the full parser splits them; one event per domain.
  constexpr size_t kMaxDomains = 8;
  std::string_view domains[kMaxDomains];
  size_t num_domains = 0;
  if (domain != nullptr) {
    std::string_view raw = domain->s();
    while (true) {
      const size_t comma = raw.find(',');
      const std::string_view d = StripWwwView(raw.substr(0, comma));
      if (!d.empty()) {
        if (num_domains == kMaxDomains) return std::nullopt;
        domains[num_domains++] = d;
      }
      if (comma == std::string_view::npos) break;
      raw.remove_prefix(comma + 1);
    }
  } else {
    // (The host of the URL as the event has it, after hash mode.)
    const std::string_view host = StripWwwView(Pieces(in.url).host);
    if (!host.empty()) domains[num_domains++] = host;
  }
  if (num_domains == 0) return std::nullopt;
  in.site.assign(domains[0]);
  if (num_domains > 1) {
    out.reserve(num_domains);  // (`in` moves: use out[0] from here)
    for (size_t k = 1; k < num_domains; ++k) {
      EventInput& copy_k = out.emplace_back(out[0]);
      copy_k.site.assign(domains[k]);
    }
  }
  // (Every string of the events is ASCII when the body and the request's
  // strings are: the rest is the parser's ASCII text.)
  const bool ascii = parser.ascii() && !parser.has_escaped() &&
                     canonical_internal::AllAscii(req.ip) &&
                     canonical_internal::AllAscii(req.user_agent) &&
                     canonical_internal::AllAscii(req.country_hint);
  for (const EventInput& event : out) {
    if (!canonical_internal::ValidateEventInput(event, ascii).ok()) {
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace trackers_internal

// ------------------------------------------------------------------ Swetrix

namespace {

bool ValidPid(std::string_view pid) {
  if (pid.size() != 12) return false;
  for (char c : pid) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return true;
}

absl::Status CheckPid(const std::string& pid) {
  if (pid.empty()) return Error("pid", "required");
  if (!ValidPid(pid)) {
    return Error("pid", "must be 12 characters of [a-zA-Z0-9-]");
  }
  return absl::OkStatus();
}

// The string fields Swetrix sends with pageviews and custom events.
struct SwetrixCommon {
  std::string pid, pg, qs, lc, tz, ref, so, me, ca, te, co;
};

// url: the page path `pg` ("/" when absent) plus the query string `qs` and
// utm_* parameters rebuilt from so/me/ca/te/co, so the engine's UTM rules
// see them.
EventInput SwetrixEvent(const SwetrixCommon& c, const RequestInfo& req) {
  EventInput in = Base(req);
  in.site = c.pid;
  in.url = c.pg.empty() ? "/" : c.pg;
  if (!c.qs.empty()) {
    std::string_view qs = c.qs;
    if (qs.front() == '?') qs.remove_prefix(1);
    if (!qs.empty() && in.url.find('?') == std::string::npos) {
      absl::StrAppend(&in.url, "?", AV(qs));
    }
  }
  const std::pair<const char*, const std::string*> utm[] = {
      {"utm_source", &c.so},
      {"utm_medium", &c.me},
      {"utm_campaign", &c.ca},
      {"utm_term", &c.te},
      {"utm_content", &c.co}};
  for (const auto& [name, value] : utm) {
    if (!value->empty()) AppendQueryParam(&in.url, name, *value);
  }
  in.referrer = c.ref;
  in.locale = c.lc;
  in.timezone = c.tz;
  return in;
}

absl::Status ReadCommon(const Value& doc, SwetrixCommon* c) {
  const std::pair<const char*, std::string*> fields[] = {
      {"pid", &c->pid}, {"pg", &c->pg},   {"qs", &c->qs}, {"lc", &c->lc},
      {"tz", &c->tz},   {"ref", &c->ref}, {"so", &c->so}, {"me", &c->me},
      {"ca", &c->ca},   {"te", &c->te},   {"co", &c->co}};
  for (const auto& [name, out] : fields) {
    if (absl::Status s = OptString(Member(doc, name), name, out); !s.ok()) {
      return s;
    }
  }
  return CheckPid(c->pid);
}

// meta: an object of strings; numbers and booleans become text.
absl::Status SwetrixMeta(const Value& doc, Props* props) {
  const Value* meta = Member(doc, "meta");
  if (meta == nullptr) return absl::OkStatus();
  if (!meta->IsObject()) return Error("meta", "expected an object");
  for (auto it = meta->MemberBegin(); it != meta->MemberEnd(); ++it) {
    if (it->value.IsNull()) continue;
    std::string key(it->name.GetString(), it->name.GetStringLength());
    std::string text;
    if (!ScalarText(it->value, &text)) {
      return Error(absl::StrCat("meta.", key.substr(0, 64)),
                   "expected a string");
    }
    props->emplace_back(std::move(key), std::move(text));
  }
  return absl::OkStatus();
}

absl::Status SwetrixPerf(const Value& doc, const EventInput& pageview,
                         std::vector<EventInput>* out) {
  const Value* perf = Member(doc, "perf");
  if (perf == nullptr) return absl::OkStatus();
  if (!perf->IsObject()) return Error("perf", "expected an object");
  if (perf->MemberCount() == 0) return absl::OkStatus();  // not collected
  EventInput e = pageview;
  e.name = "perf";
  e.interactive = false;
  e.props.clear();
  for (const char* k : {"dns", "tls", "conn", "response", "render", "dom_load",
                        "page_load", "ttfb"}) {
    const Value* v = Member(*perf, k);
    if (v == nullptr) continue;
    if (!v->IsNumber()) {
      return Error(absl::StrCat("perf.", k), "expected a number");
    }
    const double ms = v->GetDouble();
    if (!std::isfinite(ms)) {
      return Error(absl::StrCat("perf.", k), "expected a number");
    }
    e.props.emplace_back(k, absl::StrCat(std::llround(ms)));
  }
  if (!e.props.empty()) out->push_back(std::move(e));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<EventInput>> SwetrixError(const Value& doc,
                                                     const RequestInfo& req) {
  SwetrixCommon c;
  for (const auto& [name, out] :
       {std::pair<const char*, std::string*>{"pid", &c.pid},
        {"pg", &c.pg},
        {"lc", &c.lc},
        {"tz", &c.tz}}) {
    if (absl::Status s = OptString(Member(doc, name), name, out); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = CheckPid(c.pid); !s.ok()) return s;
  EventInput in = SwetrixEvent(c, req);
  in.name = "error";
  in.interactive = false;
  std::string err_name;
  if (absl::Status s = ReqString(Member(doc, "name"), "name", &err_name);
      !s.ok()) {
    return s;
  }
  in.props.emplace_back("name", std::move(err_name));
  for (const char* k :
       {"message", "lineno", "colno", "filename", "stackTrace"}) {
    const Value* v = Member(doc, k);
    if (v == nullptr) continue;
    std::string text;
    if (!ScalarText(*v, &text)) {
      return Error(k, "expected a string or number");
    }
    if (text.empty()) continue;
    TruncateUtf8(&text, kMaxPropValueBytes);
    in.props.emplace_back(k, std::move(text));
  }
  if (absl::Status s = SwetrixMeta(doc, &in.props); !s.ok()) return s;
  std::vector<EventInput> out;
  out.push_back(std::move(in));
  return out;
}

}  // namespace

absl::StatusOr<std::vector<EventInput>> ParseSwetrix(SwetrixKind kind,
                                                     std::string_view body,
                                                     const RequestInfo& req) {
  BodyDocument body_doc;
  BodyDom& doc = *body_doc.dom();
  if (absl::Status s = ParseBody(body, &doc); !s.ok()) return s;
  if (!doc.IsObject()) return Error("body", "expected a JSON object");

  std::vector<EventInput> out;
  switch (kind) {
    case SwetrixKind::kHeartbeat: {
      std::string pid;
      if (absl::Status s = OptString(Member(doc, "pid"), "pid", &pid);
          !s.ok()) {
        return s;
      }
      if (absl::Status s = CheckPid(pid); !s.ok()) return s;
      EventInput in = Base(req);
      in.site = std::move(pid);
      in.name = "heartbeat";
      in.url = "/";
      in.interactive = false;
      out.push_back(std::move(in));
      break;
    }
    case SwetrixKind::kError: {
      absl::StatusOr<std::vector<EventInput>> r = SwetrixError(doc, req);
      if (!r.ok()) return r.status();
      out = std::move(*r);
      break;
    }
    case SwetrixKind::kPageview:
    case SwetrixKind::kCustom: {
      SwetrixCommon c;
      if (absl::Status s = ReadCommon(doc, &c); !s.ok()) return s;
      bool unique = false;  // accepted; deduplication is not supported
      if (absl::Status s = OptBool(Member(doc, "unique"), "unique", &unique);
          !s.ok()) {
        return s;
      }
      EventInput in = SwetrixEvent(c, req);
      if (kind == SwetrixKind::kCustom) {
        if (absl::Status s = ReqString(Member(doc, "ev"), "ev", &in.name);
            !s.ok()) {
          return s;
        }
      }
      if (absl::Status s = SwetrixMeta(doc, &in.props); !s.ok()) return s;
      out.push_back(in);
      if (kind == SwetrixKind::kPageview) {
        if (absl::Status s = SwetrixPerf(doc, in, &out); !s.ok()) return s;
      }
      break;
    }
  }
  if (absl::Status s = ValidateAll(out); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<EventInput>> ParseSwetrixNoscript(
    const std::multimap<std::string, std::string>& query,
    const RequestInfo& req) {
  SwetrixCommon c;
  const std::pair<const char*, std::string*> fields[] = {
      {"pid", &c.pid}, {"pg", &c.pg},   {"qs", &c.qs}, {"lc", &c.lc},
      {"tz", &c.tz},   {"ref", &c.ref}, {"so", &c.so}, {"me", &c.me},
      {"ca", &c.ca},   {"te", &c.te},   {"co", &c.co}};
  for (const auto& [name, out] : fields) {
    auto it = query.find(name);
    if (it != query.end()) *out = it->second;
  }
  if (absl::Status s = CheckPid(c.pid); !s.ok()) return s;
  std::vector<EventInput> out;
  out.push_back(SwetrixEvent(c, req));
  if (absl::Status s = ValidateAll(out); !s.ok()) return s;
  return out;
}

// -------------------------------------------------------------------- Umami

namespace {

// Appends the events of one {"type", "payload"} object; `prefix` is prepended
// to field names in errors ("" or "[3].").
absl::Status UmamiOne(const Value& doc, const RequestInfo& req,
                      const std::string& prefix, std::vector<EventInput>* out) {
  auto field = [&](std::string_view f) {
    return absl::StrCat(prefix, absl::string_view(f.data(), f.size()));
  };
  if (!doc.IsObject()) return Error(field("body"), "expected a JSON object");
  std::string type;
  if (absl::Status s = ReqString(Member(doc, "type"), field("type"), &type);
      !s.ok()) {
    return s;
  }
  // identify (session data), performance (web vitals) and error reports carry
  // no page or custom event: accepted and ignored.
  if (type == "identify" || type == "performance" || type == "error") {
    return absl::OkStatus();
  }
  if (type != "event") {
    return Error(field("type"), absl::StrCat("unknown value '", type, "'"));
  }
  const Value* payload = Member(doc, "payload");
  if (payload == nullptr) return Error(field("payload"), "required");
  if (!payload->IsObject()) {
    return Error(field("payload"), "expected an object");
  }
  const Value& p = *payload;

  EventInput in = Base(req);
  std::string hostname, screen, url;
  if (absl::Status s =
          ReqString(Member(p, "website"), field("payload.website"), &in.site);
      !s.ok()) {
    return s;
  }
  const std::pair<const char*, std::string*> fields[] = {
      {"hostname", &hostname},    {"screen", &screen},
      {"language", &in.locale},   {"url", &url},
      {"referrer", &in.referrer}, {"name", &in.name}};
  for (const auto& [name, dst] : fields) {
    if (absl::Status s = OptString(Member(p, name),
                                   field(absl::StrCat("payload.", name)), dst);
        !s.ok()) {
      return s;
    }
  }
  if (in.name.empty()) in.name = "pageview";
  if (url.empty()) return Error(field("payload.url"), "required");

  // url may be a path: resolve against https://<hostname>, as Umami does.
  hostname = std::string(Trim(hostname));
  if (url.find("://") == std::string::npos && !hostname.empty()) {
    in.url = absl::StrCat(
        "https://", hostname,
        url.front() == '/' || url.front() == '?' || url.front() == '#' ? ""
                                                                       : "/",
        url);
  } else {
    in.url = std::move(url);
  }
  if (!in.referrer.empty() && in.referrer.front() == '/' &&
      (in.referrer.size() < 2 || in.referrer[1] != '/') && !hostname.empty()) {
    in.referrer = absl::StrCat("https://", hostname, in.referrer);
  }

  // screen "1920x1080": the width; anything else leaves it unknown.
  {
    int width = 0;
    const char* b = screen.data();
    const char* e = b + screen.size();
    auto [ptr, ec] = std::from_chars(b, e, width);
    if (ec == std::errc() && ptr != b && ptr < e && (*ptr == 'x') &&
        width >= 0 && width <= 100000) {
      in.screen_width = width;
    }
  }

  // data: flattened one level; objects and arrays as JSON text.
  if (const Value* data = Member(p, "data")) {
    if (!data->IsObject()) {
      return Error(field("payload.data"), "expected an object");
    }
    for (auto it = data->MemberBegin(); it != data->MemberEnd(); ++it) {
      if (it->value.IsNull()) continue;
      std::string text;
      if (!ScalarText(it->value, &text)) text = JsonText(it->value);
      in.props.emplace_back(
          std::string(it->name.GetString(), it->name.GetStringLength()),
          std::move(text));
    }
  }

  if (absl::Status s = ValidateEventInput(in); !s.ok()) {
    return prefix.empty()
               ? s
               : absl::InvalidArgumentError(absl::StrCat(prefix, s.message()));
  }
  out->push_back(std::move(in));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<EventInput>> ParseUmamiSend(std::string_view body,
                                                       const RequestInfo& req) {
  BodyDocument body_doc;
  BodyDom& doc = *body_doc.dom();
  if (absl::Status s = ParseBody(body, &doc); !s.ok()) return s;
  std::vector<EventInput> out;
  if (absl::Status s = UmamiOne(doc, req, "", &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<EventInput>> ParseUmamiBatch(
    std::string_view body, const RequestInfo& req) {
  BodyDocument body_doc;
  BodyDom& doc = *body_doc.dom();
  if (absl::Status s = ParseBody(body, &doc); !s.ok()) return s;
  if (!doc.IsArray()) return Error("body", "expected a JSON array");
  std::vector<EventInput> out;
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    if (absl::Status s =
            UmamiOne(doc[i], req, absl::StrCat("[", i, "]."), &out);
        !s.ok()) {
      return s;
    }
  }
  return out;
}

}  // namespace analytics
