// Minimal URL splitting and query-parameter lookup for the hot path.
//
// Hand-written: libcurl's URL API allocates per call and normalizes more than
// we need; analytics only needs host, path and a few query parameters.
#ifndef ANALYTICS_ENRICH_URL_H_
#define ANALYTICS_ENRICH_URL_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace analytics {

struct UrlParts {
  std::string_view scheme;  // "https", "" when absent
  std::string_view host;    // lower-case not guaranteed; no port, no userinfo
  std::string_view path;    // "/" when empty
  std::string_view query;   // without '?', may be empty
};

// Splits "https://user@Host:8080/p/a?x=1#f". Accepts URLs without a scheme
// ("example.com/a") and bare paths ("/a?x"). Never fails; garbage gives
// empty parts.
UrlParts SplitUrl(std::string_view url);

// SplitUrl(url), with NormalizeHost of its host into *host and
// NormalizePath of its path into *path (both assigned over their capacity):
// the common shape of a page URL in one pass.
UrlParts SplitUrlNormalized(std::string_view url, std::string* host,
                            std::string* path);

// Value of the first `key` in a query string, percent- and '+'-decoded.
std::optional<std::string> QueryParam(std::string_view query,
                                      std::string_view key);

// QueryParam of several keys (at most 8) in one pass over the query: for
// each i, found[i] = QueryParam(query, keys[i]).has_value() and, when found,
// *values[i] = its value (assigned over its capacity; left alone otherwise).
void QueryParams(std::string_view query, std::span<const std::string_view> keys,
                 std::span<std::string* const> values, std::span<bool> found);

// Lower-cases ASCII and strips a leading "www." and a trailing ".".
std::string NormalizeHost(std::string_view host);
// The same into *out (overwritten; its capacity is reused).
void NormalizeHost(std::string_view host, std::string* out);

// Percent-decodes a path and removes a trailing '/' (except for "/" itself).
std::string NormalizePath(std::string_view path);
// The same into *out (overwritten; its capacity is reused).
void NormalizePath(std::string_view path, std::string* out);

}  // namespace analytics

#endif  // ANALYTICS_ENRICH_URL_H_
