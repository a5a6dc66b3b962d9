// Signed session cookies (see session.h).
#include "server/dashboard/session.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "libanalytics/core/secrets.h"

namespace analytics::server {
namespace {

absl::string_view AV(std::string_view s) { return {s.data(), s.size()}; }

std::string Mac(std::string_view secret, std::string_view payload,
                std::string_view binding) {
  std::string msg = absl::StrCat(AV(payload), "\n", AV(binding));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), md,
       &len);
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(md), len));
}

}  // namespace

std::string SignSession(std::string_view secret, const SessionClaims& claims,
                        std::string_view binding) {
  std::string payload =
      absl::StrCat("v1.", claims.admin ? "a" : "k", ".",
                   claims.admin ? 0 : claims.key_id, ".", claims.expires_s);
  return absl::StrCat(payload, ".", Mac(secret, payload, binding));
}

absl::StatusOr<SessionClaims> ParseSession(std::string_view cookie) {
  auto bad = [] {
    return absl::InvalidArgumentError("session: malformed cookie");
  };
  if (cookie.size() > 256) return bad();
  std::vector<absl::string_view> parts = absl::StrSplit(AV(cookie), '.');
  if (parts.size() != 5 || parts[0] != "v1" || parts[4].empty()) return bad();
  SessionClaims c;
  if (parts[1] == "a") {
    c.admin = true;
    if (parts[2] != "0") return bad();
  } else if (parts[1] == "k") {
    if (!absl::SimpleAtoi(parts[2], &c.key_id) || c.key_id <= 0) return bad();
  } else {
    return bad();
  }
  if (!absl::SimpleAtoi(parts[3], &c.expires_s) || c.expires_s <= 0) {
    return bad();
  }
  // Canonical form only: the payload must be what SignSession writes.
  std::string canonical =
      absl::StrCat("v1.", parts[1], ".", c.key_id, ".", c.expires_s);
  if (canonical !=
      absl::StrCat(parts[0], ".", parts[1], ".", parts[2], ".", parts[3])) {
    return bad();
  }
  return c;
}

absl::StatusOr<SessionClaims> VerifySession(std::string_view secret,
                                            std::string_view cookie,
                                            std::string_view binding,
                                            absl::Time now) {
  absl::StatusOr<SessionClaims> c = ParseSession(cookie);
  if (!c.ok()) {
    return absl::UnauthenticatedError("session: invalid cookie, log in again");
  }
  if (secret.empty()) {
    return absl::UnauthenticatedError("session: no signing key");
  }
  size_t dot = cookie.rfind('.');
  std::string_view payload = cookie.substr(0, dot);
  std::string_view sig = cookie.substr(dot + 1);
  if (!ConstantTimeEqual(sig, Mac(secret, payload, binding))) {
    return absl::UnauthenticatedError("session: invalid cookie, log in again");
  }
  if (absl::FromUnixSeconds(c->expires_s) <= now) {
    return absl::UnauthenticatedError("session: expired, log in again");
  }
  return c;
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()),
                 static_cast<int>(bytes)) != 1) {
    abort();  // no entropy: nothing safe to do
  }
  return absl::BytesToHexString(raw);
}

std::string Sha256Hex(std::string_view data) {
  return analytics::Sha256Hex(data);
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  return analytics::ConstantTimeEqual(a, b);
}

std::string CookieValue(std::string_view header, std::string_view name) {
  for (absl::string_view item : absl::StrSplit(AV(header), ';')) {
    item = absl::StripAsciiWhitespace(item);
    size_t eq = item.find('=');
    if (eq == absl::string_view::npos) continue;
    if (item.substr(0, eq) == AV(name)) return std::string(item.substr(eq + 1));
  }
  return "";
}

}  // namespace analytics::server
