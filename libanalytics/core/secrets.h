// core/secrets: small helpers for handling secrets (tokens, API keys, session
// bindings) shared by the engine and the dashboard. Owns: SHA-256 hex digests
// and constant-time comparison (both via OpenSSL).
#ifndef LIBANALYTICS_CORE_SECRETS_H_
#define LIBANALYTICS_CORE_SECRETS_H_

#include <string>
#include <string_view>

namespace analytics {

// SHA-256 of `data`, as 64 lowercase hex characters.
std::string Sha256Hex(std::string_view data);

// a == b, in time that depends only on the sizes (not on where they differ).
bool ConstantTimeEqual(std::string_view a, std::string_view b);

}  // namespace analytics

#endif  // LIBANALYTICS_CORE_SECRETS_H_
