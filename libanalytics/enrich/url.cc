#include "libanalytics/enrich/url.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "libanalytics/core/utf8.h"
#include "libanalytics/enrich/string_util.h"
namespace analytics {
namespace {

using enrich_internal::StartsWithIgnoreCase;
using enrich_internal::StripWhitespace;

bool IsSchemeChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '+' ||
         c == '-' || c == '.';
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
  UrlParts parts;
  parts.path = "/";

  // Trim surrounding ASCII whitespace and drop the fragment.
  url = StripWhitespace(url);
  if (size_t hash = url.find('#'); hash != std::string_view::npos) {
    url = url.substr(0, hash);
  }
  if (url.empty()) return parts;

  std::string_view rest = url;
  bool has_authority = false;
  if (size_t sep = rest.find("://"); sep != std::string_view::npos && sep > 0) {
    std::string_view scheme = rest.substr(0, sep);
    bool valid = absl::ascii_isalpha(static_cast<unsigned char>(scheme[0]));
    for (char c : scheme) valid = valid && IsSchemeChar(c);
    if (valid) {
      parts.scheme = scheme;
      rest = rest.substr(sep + 3);
      has_authority = true;
    }
  }
  if (!has_authority) {
    if (rest.size() >= 2 && rest[0] == '/' && rest[1] == '/') {
      rest = rest.substr(2);  // Protocol-relative "//host/path".
      has_authority = true;
    } else if (rest[0] != '/' && rest[0] != '?') {
      has_authority = true;  // "example.com/a".
    }
  }

  if (has_authority) {
    // rest.find_first_of("/?"), without its memchr call per character.
    size_t end = 0;
    while (end < rest.size() && rest[end] != '/' && rest[end] != '?') ++end;
    if (end == rest.size()) end = std::string_view::npos;
    std::string_view authority = rest.substr(0, end);
    rest =
        end == std::string_view::npos ? std::string_view() : rest.substr(end);
    if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
      authority = authority.substr(at + 1);
    }
    if (!authority.empty() && authority[0] == '[') {
      size_t close = authority.find(']');
      authority = close == std::string_view::npos
                      ? std::string_view()
                      : authority.substr(0, close + 1);
    } else if (size_t colon = authority.find(':');
               colon != std::string_view::npos) {
      authority = authority.substr(0, colon);
    }
    parts.host = authority;
  }

  size_t q = rest.find('?');
  std::string_view path = rest.substr(0, q);
  if (!path.empty()) parts.path = path;
  if (q != std::string_view::npos) parts.query = rest.substr(q + 1);
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

std::string NormalizeHost(std::string_view host) {
  std::string out;
  NormalizeHost(host, &out);
  return out;
}

void NormalizeHost(std::string_view host, std::string* out) {
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.size() > 4 && StartsWithIgnoreCase(host, "www.")) {
    host.remove_prefix(4);
  }
  out->assign(host);
  absl::AsciiStrToLower(out);
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
