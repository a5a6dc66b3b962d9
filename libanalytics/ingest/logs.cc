// Access-log import (see logs.h).
//
// Speed matters here: an import is millions of lines, and the engine behind
// it (enrichment, sessions, SQLite) is the budget we want to spend time on.
// So the line parsers are hand-written std::string_view scanners (memchr,
// fixed-width date fields, no regex, no allocation per line: unescaped fields
// go to one reused scratch string), the reader hands out views into a 1 MiB
// buffer filled by zlib's gzread (which also reads plain files), and events
// are built into a reused batch of EventInputs.
#include "libanalytics/ingest/logs.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "analytics/engine.h"
#include "analytics/event.h"
#include "analytics/store.h"
#include "libanalytics/core/strings.h"
#include "libanalytics/ingest/canonical_internal.h"

namespace analytics {
namespace {

constexpr size_t kReadBuffer = 1 << 20;
constexpr int kDetectLines = 20;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

int Digits2(const char* p) { return (p[0] - '0') * 10 + (p[1] - '0'); }

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return !s.empty();
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

int MonthFromAbbrev(const char* p) {
  const char a = Lower(p[0]), b = Lower(p[1]), c = Lower(p[2]);
  switch (a) {
    case 'j':
      if (b == 'a' && c == 'n') return 1;
      if (b == 'u' && c == 'n') return 6;
      if (b == 'u' && c == 'l') return 7;
      return 0;
    case 'f':
      return b == 'e' && c == 'b' ? 2 : 0;
    case 'm':
      if (b == 'a' && c == 'r') return 3;
      if (b == 'a' && c == 'y') return 5;
      return 0;
    case 'a':
      if (b == 'p' && c == 'r') return 4;
      if (b == 'u' && c == 'g') return 8;
      return 0;
    case 's':
      return b == 'e' && c == 'p' ? 9 : 0;
    case 'o':
      return b == 'c' && c == 't' ? 10 : 0;
    case 'n':
      return b == 'o' && c == 'v' ? 11 : 0;
    case 'd':
      return b == 'e' && c == 'c' ? 12 : 0;
  }
  return 0;
}

// "10/Oct/2000:13:55:36 -0700" (exactly 26 characters).
bool ParseClfTime(std::string_view s, absl::Time* out) {
  if (s.size() != 26) return false;
  const char* p = s.data();
  if (p[2] != '/' || p[6] != '/' || p[11] != ':' || p[14] != ':' ||
      p[17] != ':' || p[20] != ' ' || (p[21] != '+' && p[21] != '-')) {
    return false;
  }
  static constexpr int kDigitAt[] = {0,  1,  7,  8,  9,  10, 12, 13,
                                     15, 16, 18, 19, 22, 23, 24, 25};
  for (int i : kDigitAt) {
    if (!IsDigit(p[i])) return false;
  }
  const int day = Digits2(p);
  const int month = MonthFromAbbrev(p + 3);
  const int year = Digits2(p + 7) * 100 + Digits2(p + 9);
  const int hour = Digits2(p + 12), minute = Digits2(p + 15),
            second = Digits2(p + 18);
  const int off_h = Digits2(p + 22), off_m = Digits2(p + 24);
  if (month == 0 || day < 1 || hour > 23 || minute > 59 || second > 60 ||
      off_h > 23 || off_m > 59) {
    return false;
  }
  static constexpr int kMonthDays[] = {31, 29, 31, 30, 31, 30,
                                       31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > kMonthDays[month - 1] || (month == 2 && day == 29 && !leap)) {
    return false;
  }
  int64_t secs = DaysFromCivil(year, month, day) * 86400 + hour * 3600 +
                 minute * 60 + second;
  const int64_t off = off_h * 3600 + off_m * 60;
  secs += p[21] == '+' ? -off : off;
  *out = absl::FromUnixSeconds(secs);
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = Lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Appends `raw` to *scratch with Apache (\" \\) and nginx (\xHH) escapes
// undone; \xHH of non-ASCII bytes stay as written (keeps the text valid
// UTF-8). Returns a view of the appended text. *scratch has enough capacity
// reserved by the caller, so earlier views stay valid.
std::string_view Unescape(std::string_view raw, std::string* scratch) {
  const size_t start = scratch->size();
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\\' && i + 1 < raw.size()) {
      const char n = raw[i + 1];
      if (n == '"' || n == '\\') {
        scratch->push_back(n);
        ++i;
        continue;
      }
      if (n == 'x' && i + 3 < raw.size()) {
        const int hi = HexValue(raw[i + 2]), lo = HexValue(raw[i + 3]);
        if (hi >= 0 && lo >= 0 && hi < 8) {
          scratch->push_back(static_cast<char>(hi * 16 + lo));
          i += 3;
          continue;
        }
      }
    }
    scratch->push_back(c);
  }
  return std::string_view(scratch->data() + start, scratch->size() - start);
}

// The first '"' or '\\' in [p, end), or end. SSE2 (x86-64's baseline) scans
// 16 bytes a step: the quoted fields (user agent, referrer, request) are most
// of a line, and one pass for both bytes replaces two memchr calls.
const char* FindQuoteOrBackslash(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  auto matches = [&](const char* at) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    return static_cast<unsigned>(_mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash))));
  };
  if (end - p >= 16) {
    for (; end - p >= 16; p += 16) {
      if (const unsigned m = matches(p); m != 0) {
        return p + __builtin_ctz(m);
      }
    }
    if (p == end) return end;
    // The rest: the last 16 bytes, less those already scanned.
    const unsigned m = matches(end - 16) >> (16 - (end - p));
    return m != 0 ? p + __builtin_ctz(m) : end;
  }
#endif
  for (; p < end; ++p) {
    if (*p == '"' || *p == '\\') return p;
  }
  return end;
}

// Reads a quoted field starting at line[*pos] == '"'. Sets *pos past the
// closing quote. A quote preceded by an odd number of backslashes is escaped.
bool Quoted(std::string_view line, size_t* pos, std::string_view* raw,
            bool* escaped) {
  if (*pos >= line.size() || line[*pos] != '"') return false;
  const size_t open = *pos + 1;
  // Fast path: a field without a backslash ends at its first quote.
  const char* end = line.data() + line.size();
  const char* first = FindQuoteOrBackslash(line.data() + open, end);
  if (first == end) return false;
  if (*first == '"') {
    const size_t at = first - line.data();
    *raw = line.substr(open, at - open);
    *pos = at + 1;
    *escaped = false;
    return true;
  }
  size_t i = open;
  *escaped = false;
  while (true) {
    const void* q = std::memchr(line.data() + i, '"', line.size() - i);
    if (q == nullptr) return false;
    const size_t at = static_cast<const char*>(q) - line.data();
    size_t bs = 0;
    while (at - bs > open && line[at - bs - 1] == '\\') ++bs;
    if (bs % 2 == 0) {
      *raw = line.substr(open, at - open);
      *pos = at + 1;
      if (!*escaped) {
        *escaped = std::memchr(raw->data(), '\\', raw->size()) != nullptr;
      }
      return true;
    }
    *escaped = true;
    i = at + 1;
  }
}

std::string_view Field(std::string_view raw, bool escaped,
                       std::string* scratch) {
  if (raw == "-") return {};
  return escaped ? Unescape(raw, scratch) : raw;
}

bool Fail(std::string_view* error, std::string_view why) {
  if (error != nullptr) *error = why;
  return false;
}

// Apache/nginx common and combined:
//   %h %l %u [%t] "%r" %>s %b ["%{Referer}i" "%{User-Agent}i" …]
bool ParseClf(std::string_view line, bool combined, LogRecord* out,
              std::string* scratch, std::string_view* error) {
  scratch->clear();
  scratch->reserve(line.size());
  const size_t sp = line.find(' ');
  if (sp == 0 || sp == std::string_view::npos) {
    return Fail(error, "no client address");
  }
  out->ip = line.substr(0, sp);
  if (out->ip.size() > 2 && out->ip.front() == '[' && out->ip.back() == ']') {
    out->ip = out->ip.substr(1, out->ip.size() - 2);
  }
  // %l and %u (which may hold spaces) up to " [" (line.find(" [", sp)
  // without its memchr call per space).
  size_t lb = std::string_view::npos;
  for (size_t from = sp + 1; from < line.size();) {
    const void* b = std::memchr(line.data() + from, '[', line.size() - from);
    if (b == nullptr) break;
    const size_t at = static_cast<const char*>(b) - line.data();
    if (line[at - 1] == ' ') {
      lb = at - 1;
      break;
    }
    from = at + 1;
  }
  if (lb == std::string_view::npos) return Fail(error, "no [time]");
  const size_t t0 = lb + 2;
  if (t0 + 27 > line.size() || line[t0 + 26] != ']') {
    return Fail(error, "bad time");
  }
  if (!ParseClfTime(line.substr(t0, 26), &out->ts)) {
    return Fail(error, "bad time");
  }
  size_t pos = t0 + 27;
  if (pos + 1 >= line.size() || line[pos] != ' ') {
    return Fail(error, "truncated after time");
  }
  ++pos;
  std::string_view request;
  bool escaped;
  if (!Quoted(line, &pos, &request, &escaped)) {
    return Fail(error, "bad request field");
  }
  if (escaped) request = Unescape(request, scratch);
  out->method = {};
  out->target = {};
  if (const size_t s1 = request.find(' '); s1 != std::string_view::npos) {
    out->method = request.substr(0, s1);
    std::string_view rest = request.substr(s1 + 1);
    const size_t s2 = rest.rfind(' ');
    if (s2 != std::string_view::npos && rest.size() - s2 - 1 >= 5 &&
        rest[s2 + 1] == 'H' && rest[s2 + 2] == 'T' && rest[s2 + 3] == 'T' &&
        rest[s2 + 4] == 'P' && rest[s2 + 5] == '/') {
      rest = rest.substr(0, s2);
    }
    out->target = rest;
  }
  // Status and size.
  if (pos + 4 > line.size() || line[pos] != ' ' || !IsDigit(line[pos + 1]) ||
      !IsDigit(line[pos + 2]) || !IsDigit(line[pos + 3])) {
    return Fail(error, "bad status");
  }
  out->status = (line[pos + 1] - '0') * 100 + Digits2(line.data() + pos + 2);
  pos += 4;
  if (pos >= line.size() || line[pos] != ' ') return Fail(error, "no size");
  ++pos;
  size_t size_end = line.find(' ', pos);
  if (size_end == std::string_view::npos) size_end = line.size();
  const std::string_view size = line.substr(pos, size_end - pos);
  if (size != "-" && !AllDigits(size)) return Fail(error, "bad size");
  pos = size_end;
  out->host = {};
  out->referrer = {};
  out->user_agent = {};
  if (!combined) return true;
  std::string_view raw;
  if (pos + 1 >= line.size() || line[pos] != ' ') {
    return Fail(error, "no referrer");
  }
  ++pos;
  if (!Quoted(line, &pos, &raw, &escaped)) return Fail(error, "bad referrer");
  out->referrer = Field(raw, escaped, scratch);
  if (pos + 1 >= line.size() || line[pos] != ' ') {
    return Fail(error, "no user agent");
  }
  ++pos;
  if (!Quoted(line, &pos, &raw, &escaped)) {
    return Fail(error, "bad user agent");
  }
  out->user_agent = Field(raw, escaped, scratch);
  return true;
}

const rapidjson::Value* Member(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

// The first value of a header (Caddy logs headers as arrays of strings);
// header names compared case-insensitively.
std::string_view Header(const rapidjson::Value* headers,
                        std::string_view name) {
  if (headers == nullptr || !headers->IsObject()) return {};
  for (auto it = headers->MemberBegin(); it != headers->MemberEnd(); ++it) {
    std::string_view key(it->name.GetString(), it->name.GetStringLength());
    if (!EqualsIgnoreCase(key, name)) continue;
    const rapidjson::Value& v = it->value;
    if (v.IsArray() && !v.Empty() && v[0].IsString()) {
      return {v[0].GetString(), v[0].GetStringLength()};
    }
    if (v.IsString()) return {v.GetString(), v.GetStringLength()};
  }
  return {};
}

std::string_view Str(const rapidjson::Value* v) {
  if (v == nullptr || !v->IsString()) return {};
  return {v->GetString(), v->GetStringLength()};
}

// Caddy's JSON access log (one object per line).
bool ParseCaddy(std::string_view line, LogRecord* out, std::string* scratch,
                std::string_view* error) {
  thread_local rapidjson::Document doc;
  doc.Parse(line.data(), line.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Fail(error, "invalid JSON");
  }
  const rapidjson::Value* req = Member(doc, "request");
  if (req == nullptr || !req->IsObject()) return Fail(error, "no request");
  const rapidjson::Value* ts = Member(doc, "ts");
  if (ts == nullptr) return Fail(error, "no ts");
  if (ts->IsNumber()) {
    const double d = ts->GetDouble();
    if (!(d > 0 && d < 1e11)) return Fail(error, "bad time");
    out->ts = absl::FromUnixMicros(static_cast<int64_t>(d * 1e6));
  } else if (ts->IsString()) {
    absl::string_view s(ts->GetString(), ts->GetStringLength());
    if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*S%Ez", s, &out->ts, nullptr) &&
        !absl::ParseTime("%Y-%m-%dT%H:%M:%E*S%z", s, &out->ts, nullptr)) {
      return Fail(error, "bad time");
    }
  } else {
    return Fail(error, "bad time");
  }
  const rapidjson::Value* status = Member(doc, "status");
  // An HTTP status is three digits, as in the text formats; anything else
  // (negative, 0, 1e9) is a damaged line, not a request to filter by range.
  if (status == nullptr || !status->IsInt() || status->GetInt() < 100 ||
      status->GetInt() > 999) {
    return Fail(error, "bad status");
  }
  out->status = status->GetInt();
  const rapidjson::Value* headers = Member(*req, "headers");
  std::string_view ip = Str(Member(*req, "client_ip"));
  if (ip.empty()) ip = Str(Member(*req, "remote_ip"));
  const std::string_view method = Str(Member(*req, "method"));
  const std::string_view host = Str(Member(*req, "host"));
  const std::string_view uri = Str(Member(*req, "uri"));
  const std::string_view ref = Header(headers, "Referer");
  const std::string_view ua = Header(headers, "User-Agent");
  // Copy out of the document (reused by the next line).
  scratch->clear();
  scratch->reserve(ip.size() + method.size() + host.size() + uri.size() +
                   ref.size() + ua.size());
  auto keep = [&](std::string_view s) {
    const size_t at = scratch->size();
    scratch->append(s);
    return std::string_view(scratch->data() + at, s.size());
  };
  out->ip = keep(ip);
  out->method = keep(method);
  out->host = keep(host);
  out->target = keep(uri);
  out->referrer = keep(ref);
  out->user_agent = keep(ua);
  return true;
}

// The path of a request target: absolute-form "http://h/p" -> "/p".
std::string_view TargetPath(std::string_view target, std::string_view* host) {
  *host = {};
  // Origin-form ("/p"), nearly every line: no scheme to look for.
  if (!target.empty() && target.front() == '/') return target;
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() > scheme.size() &&
        EqualsIgnoreCase(target.substr(0, scheme.size()), scheme)) {
      std::string_view rest = target.substr(scheme.size());
      const size_t slash = rest.find_first_of("/?");
      *host = rest.substr(0, slash);
      if (slash == std::string_view::npos) return "/";
      if (rest[slash] == '?') return target.substr(0, 0);  // "http://h?q"
      return rest.substr(slash);
    }
  }
  return target;
}

std::string_view StripPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') return host;  // IPv6 literal
  const size_t colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

// The logged host when it is the site or a subdomain of it.
bool HostIsSite(std::string_view host, std::string_view site) {
  if (EqualsIgnoreCase(host, site)) return true;
  return host.size() > site.size() + 1 &&
         host[host.size() - site.size() - 1] == '.' &&
         EqualsIgnoreCase(host.substr(host.size() - site.size()), site);
}

constexpr std::string_view kAssetExtensions[] = {
    "css",        "js",   "mjs",  "png", "jpg",  "jpeg", "gif",  "svg",
    "ico",        "webp", "avif", "bmp", "tif",  "tiff", "woff", "woff2",
    "ttf",        "otf",  "eot",  "map", "txt",  "xml",  "json", "pdf",
    "zip",        "gz",   "tgz",  "bz2", "xz",   "7z",   "rar",  "tar",
    "mp4",        "webm", "mp3",  "ogg", "wav",  "flac", "m4a",  "mov",
    "avi",        "wasm", "csv",  "rss", "atom", "apk",  "dmg",  "exe",
    "iso",        "doc",  "docx", "xls", "xlsx", "ppt",  "pptx", "swf",
    "webmanifest"};

}  // namespace

std::optional<LogFormat> LogFormatFromName(std::string_view name) {
  if (name == "combined" || name == "nginx") return LogFormat::kCombined;
  if (name == "common") return LogFormat::kCommon;
  if (name == "caddy-json" || name == "caddy") return LogFormat::kCaddyJson;
  if (name == "auto") return LogFormat::kAuto;
  return std::nullopt;
}

std::string_view LogFormatName(LogFormat format) {
  switch (format) {
    case LogFormat::kCombined:
      return "combined";
    case LogFormat::kCommon:
      return "common";
    case LogFormat::kCaddyJson:
      return "caddy-json";
    case LogFormat::kAuto:
      return "auto";
  }
  return "auto";
}

bool ParseLogLine(LogFormat format, std::string_view line, LogRecord* out,
                  std::string* scratch, std::string_view* error) {
  switch (format) {
    case LogFormat::kCombined:
      return ParseClf(line, /*combined=*/true, out, scratch, error);
    case LogFormat::kCommon:
      return ParseClf(line, /*combined=*/false, out, scratch, error);
    case LogFormat::kCaddyJson:
      return ParseCaddy(line, out, scratch, error);
    case LogFormat::kAuto:
      break;
  }
  return Fail(error, "format not decided");
}

std::optional<LogFormat> DetectLogFormat(
    const std::vector<std::string_view>& lines) {
  int seen = 0, json = 0, combined = 0, common = 0;
  LogRecord r;
  std::string scratch;
  for (std::string_view line : lines) {
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      line.remove_prefix(1);
    }
    if (line.empty()) continue;
    if (++seen > kDetectLines) break;
    if (line.front() == '{') {
      json += ParseCaddy(line, &r, &scratch, nullptr);
      continue;
    }
    if (ParseClf(line, true, &r, &scratch, nullptr)) {
      ++combined;
    } else if (ParseClf(line, false, &r, &scratch, nullptr)) {
      ++common;
    }
  }
  const int best = std::max({json, combined, common});
  if (best == 0) return std::nullopt;
  if (json == best) return LogFormat::kCaddyJson;
  if (combined == best) return LogFormat::kCombined;
  return LogFormat::kCommon;
}

std::optional<std::pair<int, int>> ParseStatusRange(std::string_view s) {
  auto num = [](std::string_view d, int* out) {
    if (d.size() != 3 || !AllDigits(d)) return false;
    *out = (d[0] - '0') * 100 + Digits2(d.data() + 1);
    return true;
  };
  int lo, hi;
  const size_t dash = s.find('-');
  if (dash == std::string_view::npos) {
    if (!num(s, &lo)) return std::nullopt;
    return std::make_pair(lo, lo);
  }
  if (!num(s.substr(0, dash), &lo) || !num(s.substr(dash + 1), &hi) ||
      lo > hi) {
    return std::nullopt;
  }
  return std::make_pair(lo, hi);
}

bool IsAssetPath(std::string_view path) {
  // One pass each way instead of find_first_of("?#") (a memchr call per
  // character) and two rfinds: the end of the path, then its extension.
  size_t end = 0;
  while (end < path.size() && path[end] != '?' && path[end] != '#') ++end;
  // The extension: after the last '.' of the last segment, 1..11 bytes.
  constexpr size_t kMaxExt = 11;
  size_t dot = end;
  while (dot > 0) {
    const char c = path[dot - 1];
    if (c == '.') break;
    if (c == '/' || end - dot >= kMaxExt) return false;
    --dot;
  }
  if (dot == 0 || dot == end) return false;  // no '.', or nothing after it
  char ext[kMaxExt];
  const size_t n = end - dot;
  for (size_t i = 0; i < n; ++i) ext[i] = Lower(path[dot + i]);
  const std::string_view lower(ext, n);
  for (std::string_view a : kAssetExtensions) {
    if (a == lower) return true;
  }
  return false;
}

std::string_view SkipReason(const LogRecord& r, const LogFilter& filter,
                            std::string_view site) {
  if (r.method != "GET") return "method";
  if (r.status < filter.status_min || r.status > filter.status_max) {
    return "status";
  }
  std::string_view abs_host;
  const std::string_view path = TargetPath(r.target, &abs_host);
  if (path.empty() || path.front() != '/') return "target";
  if (!filter.include_assets && IsAssetPath(path)) return "asset";
  std::string_view host = !r.host.empty() ? r.host : abs_host;
  if (!host.empty() && !HostIsSite(StripPort(host), site)) return "host";
  return {};
}

void ToEventInput(const LogRecord& r, std::string_view site, EventInput* ev) {
  std::string_view abs_host;
  std::string_view path = TargetPath(r.target, &abs_host);
  std::string_view host = !r.host.empty() ? r.host : abs_host;
  host = StripPort(host);
  if (host.empty() || !HostIsSite(host, site)) host = site;
  canonical_internal::ResetEventInput(ev);
  ev->props.clear();
  ev->site.assign(site);
  ev->url.assign("https://");
  ev->url.append(host);
  if (ev->url.size() + path.size() > kMaxUrlBytes) {
    path = path.substr(0, path.find('?'));  // keep the page, drop the query
    if (ev->url.size() + path.size() > kMaxUrlBytes) {
      path = path.substr(0, kMaxUrlBytes - ev->url.size());
    }
  }
  ev->url.append(path);
  std::string_view ref = r.referrer;
  if (ref.size() > kMaxUrlBytes) ref = ref.substr(0, ref.find('?'));
  if (ref.size() > kMaxUrlBytes) ref = {};
  ev->referrer.assign(ref);
  ev->ts = r.ts;
  ev->ip.assign(r.ip);
  ev->user_agent.assign(r.user_agent);
  ev->imported = true;
}

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// ----------------------------------------------------------------- reader ---

absl::StatusOr<std::unique_ptr<LogReader>> LogReader::Open(
    const std::string& path, size_t max_line) {
  std::unique_ptr<LogReader> r(new LogReader());
  r->max_line_ = std::min(max_line, kReadBuffer / 2);
  int fd;
  if (path == "-") {
    r->stdin_ = true;
    fd = dup(STDIN_FILENO);
  } else {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    r->file_size_ = st.st_size;
  } else if (!r->stdin_ && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", path, ": is a directory"));
  }
  gzFile gz = gzdopen(fd, "rb");
  if (gz == nullptr) {
    close(fd);
    return absl::InternalError(absl::StrCat("cannot read ", path));
  }
  gzbuffer(gz, 256 * 1024);
  r->gz_ = gz;
  r->buf_.resize(kReadBuffer);
  return r;
}

LogReader::~LogReader() {
  if (gz_ != nullptr) gzclose(static_cast<gzFile>(gz_));
}

int64_t LogReader::raw_offset() const {
  return gz_ ? static_cast<int64_t>(gzoffset(static_cast<gzFile>(gz_))) : 0;
}

bool LogReader::Fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buf_.size()) return true;  // full: caller handles long lines
  const int n = gzread(static_cast<gzFile>(gz_), buf_.data() + end_,
                       static_cast<unsigned>(buf_.size() - end_));
  if (n < 0) {
    int err = 0;
    const char* msg = gzerror(static_cast<gzFile>(gz_), &err);
    status_ = absl::DataLossError(
        absl::StrCat("read error: ",
                     err == Z_ERRNO ? std::strerror(errno) : std::string(msg)));
    eof_ = true;
    return false;
  }
  if (n == 0) {
    eof_ = true;
    return false;
  }
  end_ += static_cast<size_t>(n);
  return true;
}

bool LogReader::Next(Line* line) {
  bool too_long = false;
  long_.clear();
  size_t scanned = begin_;  // bytes before this are known newline-free
  while (true) {
    const char* start = buf_.data() + begin_;
    const void* nl = std::memchr(buf_.data() + scanned, '\n', end_ - scanned);
    if (nl != nullptr) {
      const size_t len = static_cast<const char*>(nl) - start;
      offset_ += static_cast<int64_t>(len) + 1;
      begin_ += len + 1;
      if (!too_long && len > max_line_) {
        long_.assign(start, max_line_);
        too_long = true;
      }
      if (too_long) {
        line->text = long_;
      } else {
        line->text = std::string_view(start, len);
        if (!line->text.empty() && line->text.back() == '\r') {
          line->text.remove_suffix(1);
        }
      }
      line->terminated = true;
      line->too_long = too_long;
      return true;
    }
    if (end_ - begin_ > max_line_) {
      // Keep a prefix, drop the rest of the line as it streams by.
      if (!too_long) long_.assign(start, max_line_);
      too_long = true;
      offset_ += static_cast<int64_t>(end_ - begin_);
      begin_ = end_ = 0;
    }
    scanned = end_ - begin_;
    if (!Fill()) {
      const size_t len = end_ - begin_;
      if (len == 0 && !too_long) return false;
      offset_ += static_cast<int64_t>(len);
      if (too_long) {
        line->text = long_;
      } else {
        line->text = std::string_view(buf_.data() + begin_, len);
      }
      begin_ = end_ = 0;
      line->terminated = false;
      line->too_long = too_long;
      return true;
    }
    scanned += begin_;  // Fill() moved the data to the front (begin_ = 0)
  }
}

absl::Status LogReader::Seek(int64_t offset) {
  if (stdin_) return absl::FailedPreconditionError("cannot seek stdin");
  if (gzseek(static_cast<gzFile>(gz_), static_cast<z_off_t>(offset), SEEK_SET) <
      0) {
    int err = 0;
    return absl::DataLossError(
        absl::StrCat("seek: ", gzerror(static_cast<gzFile>(gz_), &err)));
  }
  begin_ = end_ = 0;
  eof_ = false;
  offset_ = offset;
  return absl::OkStatus();
}

// --------------------------------------------------------------- importer ---

namespace {

struct Progress {
  int64_t offset = 0;
  int64_t lines = 0;
};

std::string EncodeProgress(const Progress& p) {
  return absl::StrCat("v1 ", p.offset, " ", p.lines);
}

bool DecodeProgress(std::string_view s, Progress* p) {
  long long off, lines;
  std::string text(s);
  if (std::sscanf(text.c_str(), "v1 %lld %lld", &off, &lines) != 2) {
    return false;
  }
  if (off < 0 || lines < 0) return false;
  p->offset = off;
  p->lines = lines;
  return true;
}

void Note(std::vector<std::pair<int64_t, std::string>>* shown, size_t max,
          int64_t line, std::string_view why) {
  if (shown->size() < max) shown->emplace_back(line, std::string(why));
}

}  // namespace

absl::StatusOr<FileImport> ImportLog(Engine& engine, LogReader& reader,
                                     const ImportOptions& options,
                                     ImportTotals* totals) {
  FileImport result;
  ImportTotals& t = *totals;
  // Peek at the first lines: the file identity and the format.
  struct Peeked {
    std::string text;
    int64_t end_offset;
    bool terminated, too_long;
  };
  std::vector<Peeked> peeked;
  LogReader::Line line;
  int non_empty = 0;
  std::string first;
  bool have_first = false;
  while (non_empty < kDetectLines && reader.Next(&line)) {
    peeked.push_back({std::string(line.text), reader.offset(), line.terminated,
                      line.too_long});
    if (line.text.find_first_not_of(" \t") != std::string_view::npos) {
      if (!have_first) {
        first = line.text;
        have_first = true;
      }
      ++non_empty;
    }
  }
  if (!reader.status().ok()) return reader.status();
  if (!have_first) {  // empty (or blank) input
    result.end_offset = reader.offset();
    result.end_line = static_cast<int64_t>(peeked.size());
    t.lines += static_cast<int64_t>(peeked.size());
    return result;
  }
  result.format = options.format;
  if (result.format == LogFormat::kAuto) {
    std::vector<std::string_view> views;
    for (const Peeked& p : peeked) views.push_back(p.text);
    std::optional<LogFormat> f = DetectLogFormat(views);
    if (!f) {
      return absl::InvalidArgumentError(
          "cannot detect the log format from the first lines (use --format)");
    }
    result.format = *f;
  }

  Store* store = engine.store();
  std::string meta_key;
  Progress done;
  if (!reader.is_stdin()) {
    result.file_id = absl::StrFormat("%016x", Fnv1a64(first));
    meta_key = absl::StrCat("import:", options.site, ":", result.file_id);
    absl::StatusOr<std::optional<std::string>> saved = store->GetMeta(meta_key);
    if (!saved.ok()) return saved.status();
    if (saved->has_value() && !DecodeProgress(**saved, &done)) done = {};
  }
  result.resumed_at_line = done.lines;
  if (done.lines > 0) t.skipped["duplicate"] += done.lines;

  size_t next_peeked = 0;
  if (done.offset > 0) {
    // Lines up to done.offset were imported by an earlier run.
    while (next_peeked < peeked.size() &&
           peeked[next_peeked].end_offset <= done.offset) {
      ++next_peeked;
    }
    if (next_peeked == peeked.size()) {
      absl::Status s = reader.Seek(done.offset);
      if (!s.ok()) return s;
    }
  }

  std::vector<EventInput> batch(options.batch_size);
  std::vector<int64_t> batch_lines(options.batch_size);
  size_t n = 0;
  LogRecord rec;
  std::string scratch;
  int64_t line_no = done.lines;
  int64_t since_progress = 0;

  // Batches are pipelined: Engine::SubmitBatch returns once a batch is
  // enriched and sessionized, so that the next one is read and prepared
  // while the engine commits it. At most options.in_flight batches are left
  // unfinished; they are settled strictly in order, and the resume point
  // (meta) only advances past a batch once it is durable.
  struct InFlight {
    Progress upto;
    std::vector<int64_t> lines;  // line number of each event of the batch
    absl::Mutex mu;
    std::optional<absl::StatusOr<BatchResult>> result ABSL_GUARDED_BY(mu);
  };
  std::deque<std::shared_ptr<InFlight>> in_flight;
  bool failed = false;
  // Waits for the oldest batch in flight and accounts for it.
  auto settle_one = [&]() -> absl::Status {
    std::shared_ptr<InFlight> f = std::move(in_flight.front());
    in_flight.pop_front();
    absl::StatusOr<BatchResult> r = absl::UnknownError("");
    {
      absl::MutexLock l(&f->mu);
      f->mu.Await(absl::Condition(
          +[](std::optional<absl::StatusOr<BatchResult>>* res) {
            return res->has_value();
          },
          &f->result));
      r = *std::move(*f->result);
    }
    // After a failed batch nothing later counts or moves the resume point
    // (it would skip the failed batch's lines on the next run).
    if (failed) return absl::OkStatus();
    if (!r.ok()) {
      failed = true;
      return r.status();
    }
    t.imported += r->accepted;
    for (const auto& [reason, c] : r->dropped) t.skipped[reason] += c;
    for (const auto& [index, status] : r->rejected) {
      ++t.rejected;
      Note(&t.rejected_shown, options.max_shown,
           index < f->lines.size() ? f->lines[index] : 0, SV(status.message()));
    }
    if (!meta_key.empty() &&
        (f->upto.offset != done.offset || f->upto.lines != done.lines)) {
      absl::Status s = store->PutMeta(meta_key, EncodeProgress(f->upto));
      if (!s.ok()) {
        failed = true;
        return s;
      }
    }
    done = f->upto;
    return absl::OkStatus();
  };
  // Waits for every batch in flight; the first error wins.
  auto settle_all = [&]() -> absl::Status {
    absl::Status first;
    while (!in_flight.empty()) {
      absl::Status s = settle_one();
      if (first.ok()) first = s;
    }
    return first;
  };

  // Submits the batch read so far (resume point `upto`); with `wait`, also
  // waits until everything submitted is durable.
  auto commit = [&](const Progress& upto, bool wait = false) -> absl::Status {
    if (options.dry_run) {
      t.imported += static_cast<int64_t>(n);
      n = 0;
      done = upto;
      if (options.progress) options.progress(t.lines, reader.raw_offset());
      return absl::OkStatus();
    }
    auto f = std::make_shared<InFlight>();
    f->upto = upto;
    f->lines.assign(batch_lines.begin(), batch_lines.begin() + n);
    absl::Status s = engine.SubmitBatch(absl::MakeConstSpan(batch.data(), n),
                                        [f](absl::StatusOr<BatchResult> r) {
                                          absl::MutexLock l(&f->mu);
                                          f->result = std::move(r);
                                        });
    n = 0;
    if (!s.ok()) {
      failed = true;       // nothing of this batch was queued; the resume point
      (void)settle_all();  // stays before it
      return s;
    }
    in_flight.push_back(std::move(f));
    while (in_flight.size() > (wait ? 0 : options.in_flight)) {
      s = settle_one();
      if (!s.ok()) {
        (void)settle_all();
        return s;
      }
    }
    if (options.progress) options.progress(t.lines, reader.raw_offset());
    return absl::OkStatus();
  };

  Progress pos = done;
  auto handle = [&](std::string_view text, int64_t end_offset, bool terminated,
                    bool too_long) -> bool {
    ++line_no;
    ++t.lines;
    if (too_long) {
      ++t.malformed;
      Note(&t.malformed_shown, options.max_shown, line_no, "line too long");
    } else if (text.find_first_not_of(" \t") == std::string_view::npos) {
      // blank
    } else {
      std::string_view why;
      if (!ParseLogLine(result.format, text, &rec, &scratch, &why)) {
        if (!terminated && !reader.is_stdin()) {
          // Probably a line still being written: leave it for the next run.
          --line_no;
          --t.lines;
          result.partial_last_line = true;
          return false;
        }
        ++t.malformed;
        Note(&t.malformed_shown, options.max_shown, line_no, why);
      } else if (std::string_view reason =
                     SkipReason(rec, options.filter, options.site);
                 !reason.empty()) {
        ++t.skipped[std::string(reason)];
      } else {
        ToEventInput(rec, options.site, &batch[n]);
        batch_lines[n] = line_no;
        ++n;
      }
    }
    pos = {end_offset, line_no};
    return true;
  };

  absl::Status status;
  for (; next_peeked < peeked.size(); ++next_peeked) {
    const Peeked& p = peeked[next_peeked];
    if (!handle(p.text, p.end_offset, p.terminated, p.too_long)) break;
    if (n == options.batch_size) {
      status = commit(pos);
      if (!status.ok()) return status;
    }
  }
  peeked.clear();
  if (!result.partial_last_line) {
    while (reader.Next(&line)) {
      if (!handle(line.text, reader.offset(), line.terminated, line.too_long)) {
        break;
      }
      if (n == options.batch_size || ++since_progress == 65536) {
        since_progress = 0;
        status = commit(pos);
        if (!status.ok()) return status;
      }
    }
    if (!reader.status().ok()) {
      absl::Status s = commit(pos, /*wait=*/true);  // keep what was read
      if (!s.ok()) return s;
      return reader.status();
    }
  }
  status = commit(pos, /*wait=*/true);
  if (!status.ok()) return status;
  result.end_offset = done.offset;
  result.end_line = done.lines;
  return result;
}

}  // namespace analytics
