// OpenStore(url) from store.h. Owns: the mapping of URL schemes to store
// backends. To add a backend (postgres://, redis://), add a row to kBackends.
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "analytics/store.h"
#include "libanalytics/store/memory_store.h"
#include "libanalytics/store/postgres_store.h"
#include "libanalytics/store/redis_store.h"
#include "libanalytics/store/sqlite_store.h"

namespace analytics {
namespace {

// A backend factory gets the URL without its "scheme://" prefix.
using StoreFactory =
    absl::StatusOr<std::unique_ptr<Store>> (*)(std::string_view rest);

absl::StatusOr<std::unique_ptr<Store>> OpenMemory(std::string_view) {
  return NewMemoryStore();
}

// "sqlite:///abs/path.db" leaves "/abs/path.db" (absolute);
// "sqlite://rel/path.db" leaves "rel/path.db" (relative to the cwd).
absl::StatusOr<std::unique_ptr<Store>> OpenSqlite(std::string_view rest) {
  if (rest.empty()) {
    return absl::InvalidArgumentError(
        "store: sqlite:// URL has no database path");
  }
  return OpenSqliteStore(std::string(rest));
}

// "redis://[:password@]host:port[/db][?allow_no_aof=1]" (see redis_store.h).
absl::StatusOr<std::unique_ptr<Store>> OpenRedis(std::string_view rest) {
  return OpenRedisStore(rest);
}

// "postgres://user:pass@host:port/db?..." or "postgresql://..." (see
// postgres_store.h): the whole URL goes to libpq.
absl::StatusOr<std::unique_ptr<Store>> OpenPostgres(std::string_view rest) {
  return OpenPostgresStore("postgresql://" + std::string(rest));
}

struct Backend {
  absl::string_view scheme;  // including "://"
  StoreFactory factory;
};

constexpr Backend kBackends[] = {
    {"memory://", &OpenMemory},     {"sqlite://", &OpenSqlite},
    {"postgres://", &OpenPostgres}, {"postgresql://", &OpenPostgres},
    {"redis://", &OpenRedis},
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view url_in) {
  const absl::string_view url(url_in.data(), url_in.size());
  for (const Backend& b : kBackends) {
    if (absl::StartsWith(url, b.scheme)) {
      absl::string_view rest = url.substr(b.scheme.size());
      return b.factory(std::string_view(rest.data(), rest.size()));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "store: unknown scheme in URL '", url,
      "'; expected memory://, sqlite://, postgres:// or redis://"));
}

}  // namespace analytics
