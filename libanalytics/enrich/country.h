// Country of a visitor: MaxMind DB lookup, else a CDN header, else the
// browser's time zone.
//
// Owns: the libmaxminddb handle and the time zone -> country table, read from
// tzdata's zone1970.tab (first country code listed for the zone) plus the
// backward-compatible aliases in tzdata's `backward` file when present.
#ifndef ANALYTICS_ENRICH_COUNTRY_H_
#define ANALYTICS_ENRICH_COUNTRY_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "libanalytics/enrich/string_util.h"

struct MMDB_s;

namespace analytics {

namespace enrich_internal {
// The time zone table's hash (FastHash: absl's string hash is an
// out-of-line call on the hot path; the keys are tzdata's, fixed) and
// equality, both taking std::string_view for lookups without a copy.
struct TzHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return FastHash(s); }
};
struct TzEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const {
    return a == b;
  }
};
using TzMap = absl::flat_hash_map<std::string, std::string, TzHash, TzEq>;

// The time zone table again, for Resolve's lookup per event: open addressing
// over a power-of-two array (FastHash of the name) with the country code in
// the slot (written over a two-letter string in place). Hand-written: the
// flat_hash_map lookup (FastHash over the whole name, a group probe, a
// memcmp call, a string copy) was ~170 instructions per event.
class TzTable {
 public:
  void Build(const TzMap& map);
  // The country of `tz` (no whitespace stripping), or nullptr.
  const char* Find(std::string_view tz) const;

 private:
  struct Slot {
    std::string zone;  // "" = empty slot
    char code[2];
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};
}  // namespace enrich_internal

class CountryResolver {
 public:
  // `mmdb_path` may be empty (no database). `zoneinfo_dir` defaults to
  // /usr/share/zoneinfo. Errors: the mmdb file cannot be opened.
  static absl::StatusOr<std::unique_ptr<CountryResolver>> Create(
      const std::string& mmdb_path,
      const std::string& zoneinfo_dir = "/usr/share/zoneinfo");
  ~CountryResolver();

  // ISO 3166-1 alpha-2 upper case, or "". Order: mmdb(ip) if a database is
  // loaded and has the IP; else `cdn_header` if it is two letters (not "XX"
  // or "T1"); else the time zone's country. Thread-safe.
  std::string Resolve(std::string_view ip, std::string_view cdn_header,
                      std::string_view timezone) const;
  // The same into *out (assigned over its capacity; the enricher's hot path).
  void Resolve(std::string_view ip, std::string_view cdn_header,
               std::string_view timezone, std::string* out) const;

  std::string FromTimezone(std::string_view tz) const;
  bool has_database() const { return mmdb_ != nullptr; }

 private:
  CountryResolver() = default;
  MMDB_s* mmdb_ = nullptr;
  enrich_internal::TzMap tz_to_country_;
  enrich_internal::TzTable tz_table_;  // tz_to_country_'s two-letter codes
};

}  // namespace analytics

#endif  // ANALYTICS_ENRICH_COUNTRY_H_
