// Dashboard sessions: the signed cookie that carries a login across requests
// and across workers without shared memory, plus the small crypto helpers the
// dashboard needs (random tokens, SHA-256, constant-time comparison).
//
// A session cookie is
//   v1.<kind>.<key_id>.<expires_unix_s>.<signature>
// kind "a" (admin token, key_id 0) or "k" (site API key); signature =
// base64url(HMAC-SHA256(secret, payload + "\n" + binding)), where payload is
// everything before the last dot and binding is the stored SHA-256 of the
// credential the user logged in with (the admin token's or the API key's).
// So a session ends when it expires, when the admin token is replaced, and
// (checked by the caller) when the key is revoked. The secret is one random
// value per store (Store meta), shared by every worker.
//
// Pure functions (OpenSSL only): no I/O, thread-safe.
#ifndef ANALYTICS_SERVER_DASHBOARD_SESSION_H_
#define ANALYTICS_SERVER_DASHBOARD_SESSION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace analytics::server {

struct SessionClaims {
  bool admin = false;
  int64_t key_id = 0;     // the API key, when !admin
  int64_t expires_s = 0;  // unix seconds
};

// The cookie value for `claims`. REQUIRES: secret is not empty.
std::string SignSession(std::string_view secret, const SessionClaims& claims,
                        std::string_view binding);

// Reads the claims without checking the signature (to find out which
// binding to load). InvalidArgument for a malformed value.
absl::StatusOr<SessionClaims> ParseSession(std::string_view cookie);

// The claims when the signature matches (secret, binding) and the session
// has not expired at `now`; Unauthenticated otherwise.
absl::StatusOr<SessionClaims> VerifySession(std::string_view secret,
                                            std::string_view cookie,
                                            std::string_view binding,
                                            absl::Time now);

// `bytes` random bytes from the OS CSPRNG (OpenSSL), as lower-case hex.
std::string RandomHex(size_t bytes);
// SHA-256 of data, lower-case hex.
std::string Sha256Hex(std::string_view data);
bool ConstantTimeEqual(std::string_view a, std::string_view b);

// The value of cookie `name` in a Cookie request header ("" when absent).
std::string CookieValue(std::string_view header, std::string_view name);

}  // namespace analytics::server

#endif  // ANALYTICS_SERVER_DASHBOARD_SESSION_H_
