// OpenCoordinator(url) from coordinator.h. Owns: the mapping of URL schemes
// to coordinator backends.
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "analytics/coordinator.h"
#include "libanalytics/coord/local_coordinator.h"
#include "libanalytics/coord/postgres_coordinator.h"
#include "libanalytics/coord/redis_coordinator.h"
#include "libanalytics/core/strings.h"

namespace analytics {
namespace {

// A backend factory gets the whole URL and the part after "scheme://".
using CoordinatorFactory = absl::StatusOr<std::unique_ptr<Coordinator>> (*)(
    std::string_view url, std::string_view rest);

absl::StatusOr<std::unique_ptr<Coordinator>> OpenLocal(std::string_view,
                                                       std::string_view rest) {
  if (!rest.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "coordinator: local:// takes nothing after the scheme, got '", AV(rest),
        "'"));
  }
  return NewLocalCoordinator();
}

absl::StatusOr<std::unique_ptr<Coordinator>> OpenRedis(std::string_view,
                                                       std::string_view rest) {
  return OpenRedisCoordinator(rest);
}

absl::StatusOr<std::unique_ptr<Coordinator>> OpenPostgres(std::string_view url,
                                                          std::string_view) {
  return OpenPostgresCoordinator(url);
}

struct Backend {
  absl::string_view scheme;  // including "://"
  CoordinatorFactory factory;
};

constexpr Backend kBackends[] = {
    {"local://", &OpenLocal},
    {"redis://", &OpenRedis},
    {"postgres://", &OpenPostgres},
    {"postgresql://", &OpenPostgres},
};

}  // namespace

absl::StatusOr<std::unique_ptr<Coordinator>> OpenCoordinator(
    std::string_view url_in) {
  const absl::string_view url = AV(url_in);
  if (url.empty()) return NewLocalCoordinator();
  for (const Backend& b : kBackends) {
    if (absl::StartsWith(url, b.scheme)) {
      return b.factory(url_in, SV(url.substr(b.scheme.size())));
    }
  }
  // Never echo a URL that may hold a password: name the scheme only.
  absl::string_view scheme = url.substr(0, url.find("://"));
  return absl::InvalidArgumentError(absl::StrCat(
      "coordinator: unknown scheme '", scheme.substr(0, 32),
      "' in the coordinator URL; expected local://, redis://, postgres:// or "
      "postgresql://"));
}

}  // namespace analytics
