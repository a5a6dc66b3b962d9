// Canonical event validation and JSON parsing (see analytics/event.h).
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "analytics/event.h"

namespace analytics {
namespace {

constexpr size_t kMaxSiteBytes = 253;
constexpr int kMaxScreenWidth = 100000;
// Accepted timestamp range: [2000-01-01T00:00:00Z, 2101-01-01T00:00:00Z).
constexpr int64_t kMinTsSeconds = 946684800;
constexpr int64_t kEndTsSeconds = 4133980800;

absl::Status Error(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(absl::string_view(field.data(), field.size()), ": ",
                   absl::string_view(what.data(), what.size())));
}

// Strict UTF-8: rejects overlong forms, surrogates and code points above
// U+10FFFF. Counts code points into *chars when valid.
bool ValidUtf8(std::string_view s, size_t* chars = nullptr) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  size_t n = 0;
  while (p < end) {
    // ASCII fast path, 8 bytes at a time.
    while (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if (w & 0x8080808080808080ULL) break;
      p += 8;
      n += 8;
    }
    if (p == end) break;
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (end - p < 2 || (p[1] & 0xC0) != 0x80) return false;
      p += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) {
        return false;
      }
      if (c == 0xE0 && p[1] < 0xA0) return false;   // overlong
      if (c == 0xED && p[1] >= 0xA0) return false;  // surrogate
      p += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
          (p[3] & 0xC0) != 0x80) {
        return false;
      }
      if (c == 0xF0 && p[1] < 0x90) return false;   // overlong
      if (c == 0xF4 && p[1] >= 0x90) return false;  // > U+10FFFF
      p += 4;
    } else {
      return false;  // continuation byte, C0/C1, F5..FF
    }
    ++n;
  }
  if (chars != nullptr) *chars = n;
  return true;
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

using Value = rapidjson::Value;

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

absl::Status ParseTs(const Value& v, std::optional<absl::Time>* out) {
  constexpr std::string_view kBad = "not a number or ISO 8601 date-time";
  if (v.IsNull()) return absl::OkStatus();
  absl::Time t;
  if (v.IsNumber()) {
    const double d = v.GetDouble();
    if (!std::isfinite(d) || d < kMinTsSeconds || d >= kEndTsSeconds) {
      return Error("ts", "out of range (years 2000..2100)");
    }
    t = absl::FromUnixMicros(std::llround(d * 1e6));
  } else if (v.IsString()) {
    const absl::string_view s(v.GetString(), v.GetStringLength());
    // Offsets: "+hh:mm" or "Z" (%Ez), "+hhmm" (%z), none (UTC).
    static constexpr const char* kFormats[] = {
        "%Y-%m-%d%ET%H:%M:%E*S%Ez", "%Y-%m-%d%ET%H:%M:%E*S%z",
        "%Y-%m-%d%ET%H:%M:%E*S",    "%Y-%m-%d%ET%H:%M%Ez",
        "%Y-%m-%d%ET%H:%M",         "%Y-%m-%d %H:%M:%E*S%Ez",
        "%Y-%m-%d %H:%M:%E*S",      "%Y-%m-%d",
    };
    // Digits must start the string: ParseTime also accepts "infinite-future"
    // and skips leading whitespace.
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
    if (!ok) return Error("ts", kBad);
    if (!InTsRange(t)) return Error("ts", "out of range (years 2000..2100)");
  } else {
    return Error("ts", kBad);
  }
  *out = t;
  return absl::OkStatus();
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

absl::Status ParseProps(const Value& v, Props* props) {
  if (v.IsNull()) return absl::OkStatus();
  if (!v.IsObject()) return Error("props", "expected an object");
  props->reserve(v.MemberCount());
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    const Value& val = it->value;
    if (val.IsNull()) continue;
    std::string key(it->name.GetString(), it->name.GetStringLength());
    std::string text;
    if (val.IsString()) {
      text.assign(val.GetString(), val.GetStringLength());
    } else if (val.IsNumber()) {
      NumberText(val, &text);
    } else if (val.IsBool()) {
      text = val.GetBool() ? "true" : "false";
    } else {
      if (!ValidUtf8(key)) return Error("props", "key is not valid UTF-8");
      return Error(PropField(key),
                   "expected a string, number or boolean, not an object or "
                   "array");
    }
    props->emplace_back(std::move(key), std::move(text));
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
      if (key == "props") return ParseProps(v, &in->props);
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

}  // namespace

absl::Status ValidateEventInput(const EventInput& in) {
  if (in.site.empty()) return Error("site", "required");
  if (in.site.size() > kMaxSiteBytes) {
    return Error("site", "longer than 253 bytes");
  }
  if (absl::Status s = CheckUtf8("site", in.site); !s.ok()) return s;

  if (in.name.empty()) return Error("name", "empty");
  size_t name_chars = 0;
  if (!ValidUtf8(in.name, &name_chars)) return Error("name", "invalid UTF-8");
  if (name_chars > kMaxNameLength) {
    return Error("name", "longer than 120 characters");
  }

  if (in.url.empty()) return Error("url", "required");
  if (in.url.size() > kMaxUrlBytes) {
    return Error("url", "longer than 2000 bytes");
  }
  if (absl::Status s = CheckUtf8("url", in.url); !s.ok()) return s;

  if (in.referrer.size() > kMaxUrlBytes) {
    return Error("referrer", "longer than 2000 bytes");
  }
  if (absl::Status s = CheckUtf8("referrer", in.referrer); !s.ok()) return s;

  if (absl::Status s = CheckUtf8("ip", in.ip); !s.ok()) return s;
  if (absl::Status s = CheckUtf8("user_agent", in.user_agent); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckUtf8("locale", in.locale); !s.ok()) return s;
  if (absl::Status s = CheckUtf8("timezone", in.timezone); !s.ok()) return s;
  if (absl::Status s = CheckUtf8("country_hint", in.country_hint); !s.ok()) {
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
    if (!ValidUtf8(key)) return Error("props", "key is not valid UTF-8");
    if (key.size() > kMaxPropKeyBytes) {
      return Error(PropField(key), "key longer than 300 bytes");
    }
    if (value.size() > kMaxPropValueBytes) {
      return Error(PropField(key), "value longer than 2000 bytes");
    }
    if (!ValidUtf8(value)) return Error(PropField(key), "invalid UTF-8");
  }
  return absl::OkStatus();
}

absl::StatusOr<EventInput> ParseEventJson(std::string_view json) {
  // Small events parse without touching the heap for the DOM.
  char value_buffer[8192];
  char parse_buffer[1024];
  rapidjson::MemoryPoolAllocator<> value_allocator(value_buffer,
                                                   sizeof(value_buffer));
  rapidjson::MemoryPoolAllocator<> parse_allocator(parse_buffer,
                                                   sizeof(parse_buffer));
  using Pool = rapidjson::MemoryPoolAllocator<>;
  rapidjson::GenericDocument<rapidjson::UTF8<>, Pool, Pool> doc(
      &value_allocator, sizeof(parse_buffer) / 2, &parse_allocator);
  doc.Parse<rapidjson::kParseDefaultFlags>(json.data(), json.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("body: invalid JSON at offset ", doc.GetErrorOffset(),
                     ": ", rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject()) return Error("body", "expected a JSON object");

  EventInput in;
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    const std::string_view key(it->name.GetString(),
                               it->name.GetStringLength());
    if (absl::Status s = ParseMember(key, it->value, &in); !s.ok()) return s;
  }
  if (absl::Status s = ValidateEventInput(in); !s.ok()) return s;
  return in;
}

}  // namespace analytics
