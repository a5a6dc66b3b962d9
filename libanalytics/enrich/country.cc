#include "libanalytics/enrich/country.h"

#include <maxminddb.h>

#include <cstddef>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libanalytics/enrich/string_util.h"
namespace analytics {
namespace {

using enrich_internal::SameBytes;
using enrich_internal::StripWhitespace;

using enrich_internal::TzMap;

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = std::move(ss).str();
  return true;
}

// Two ASCII letters, upper-cased, into *out (true); otherwise false and
// *out is unspecified.
bool CountryCode(std::string_view s, std::string* out) {
  s = StripWhitespace(s);
  if (s.size() != 2 || !absl::ascii_isalpha(static_cast<unsigned char>(s[0])) ||
      !absl::ascii_isalpha(static_cast<unsigned char>(s[1]))) {
    return false;
  }
  out->assign(s);
  absl::AsciiStrToUpper(out);
  return true;
}

// Two ASCII letters, upper-cased; "" otherwise.
std::string CountryCode(std::string_view s) {
  std::string code;
  if (!CountryCode(s, &code)) return "";
  return code;
}

// zone.tab ("CC<TAB>coords<TAB>Zone...") and zone1970.tab
// ("CC,CC<TAB>coords<TAB>Zone..."): first listed country, existing entries
// win.
void LoadZoneTab(const std::string& path, TzMap* map) {
  std::string text;
  if (!ReadFile(path, &text)) return;
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    std::string_view line = enrich_internal::ToStd(l);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> cols = absl::StrSplit(l, '\t');
    if (cols.size() < 3) continue;
    std::string_view codes = enrich_internal::ToStd(cols[0]);
    std::string code = CountryCode(codes.substr(0, codes.find(',')));
    std::string_view zone = StripWhitespace(enrich_internal::ToStd(cols[2]));
    if (code.empty() || zone.empty()) continue;
    map->try_emplace(std::string(zone), std::move(code));
  }
}

// Links: "L target alias" lines of tzdata.zi and "Link target alias" lines of
// the `backward` file.
void LoadLinks(const std::string& path,
               std::vector<std::pair<std::string, std::string>>* links) {
  std::string text;
  if (!ReadFile(path, &text)) return;
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    std::string_view line = enrich_internal::ToStd(l);
    if (!line.starts_with("L ") && !line.starts_with("L\t") &&
        !line.starts_with("Link")) {
      continue;
    }
    if (size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    std::vector<absl::string_view> cols =
        absl::StrSplit(enrich_internal::ToAbsl(line), absl::ByAnyChar(" \t"),
                       absl::SkipEmpty());
    if (cols.size() < 3 || (cols[0] != "L" && cols[0] != "Link")) continue;
    links->emplace_back(std::string(cols[1]), std::string(cols[2]));
  }
}

std::string LookupString(MMDB_entry_s* entry, const char* const* path) {
  MMDB_entry_data_s data;
  if (MMDB_aget_value(entry, &data, path) != MMDB_SUCCESS || !data.has_data ||
      data.type != MMDB_DATA_TYPE_UTF8_STRING) {
    return "";
  }
  return CountryCode(std::string_view(data.utf8_string, data.data_size));
}

}  // namespace

namespace enrich_internal {

void TzTable::Build(const TzMap& map) {
  size_t n = 16;
  while (n < 2 * map.size()) n *= 2;
  slots_.assign(n, Slot());
  mask_ = n - 1;
  for (const auto& [zone, code] : map) {
    // Every code in the map is two letters (CountryCode); keep to that.
    if (zone.empty() || code.size() != 2) continue;
    size_t i = FastHash(zone) & mask_;
    while (!slots_[i].zone.empty()) i = (i + 1) & mask_;
    slots_[i].zone = zone;
    std::memcpy(slots_[i].code, code.data(), 2);
  }
}

const char* TzTable::Find(std::string_view tz) const {
  if (slots_.empty()) return nullptr;
  for (size_t i = FastHash(tz) & mask_;; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if (slot.zone.empty()) return nullptr;
    if (slot.zone.size() == tz.size() &&
        SameBytes(slot.zone.data(), tz.data(), tz.size())) {
      return slot.code;
    }
  }
}

}  // namespace enrich_internal

absl::StatusOr<std::unique_ptr<CountryResolver>> CountryResolver::Create(
    const std::string& mmdb_path, const std::string& zoneinfo_dir) {
  std::unique_ptr<CountryResolver> resolver(new CountryResolver());
  if (!mmdb_path.empty()) {
    auto mmdb = std::make_unique<MMDB_s>();
    int status = MMDB_open(mmdb_path.c_str(), MMDB_MODE_MMAP, mmdb.get());
    if (status != MMDB_SUCCESS) {
      const std::string message = absl::StrCat(
          "cannot open MaxMind DB ", mmdb_path, ": ", MMDB_strerror(status));
      return status == MMDB_FILE_OPEN_ERROR
                 ? absl::NotFoundError(message)
                 : absl::InvalidArgumentError(message);
    }
    resolver->mmdb_ = mmdb.release();
  }

  if (!zoneinfo_dir.empty()) {
    TzMap& map = resolver->tz_to_country_;
    // zone.tab lists exactly one country per zone: prefer it over
    // zone1970.tab, whose zones may span several countries.
    LoadZoneTab(zoneinfo_dir + "/zone.tab", &map);
    LoadZoneTab(zoneinfo_dir + "/zone1970.tab", &map);
    std::vector<std::pair<std::string, std::string>> links;
    LoadLinks(zoneinfo_dir + "/tzdata.zi", &links);
    LoadLinks(zoneinfo_dir + "/backward", &links);
    // Links may point at other links: repeat until nothing changes.
    for (int pass = 0; pass < 4; ++pass) {
      bool changed = false;
      for (const auto& [target, alias] : links) {
        if (map.contains(alias)) continue;
        auto it = map.find(target);
        if (it == map.end()) continue;
        std::string code = it->second;
        map.emplace(alias, std::move(code));
        changed = true;
      }
      if (!changed) break;
    }
    resolver->tz_table_.Build(map);
  }
  return resolver;
}

CountryResolver::~CountryResolver() {
  if (mmdb_ != nullptr) {
    MMDB_close(mmdb_);
    delete mmdb_;
  }
}

std::string CountryResolver::Resolve(std::string_view ip,
                                     std::string_view cdn_header,
                                     std::string_view timezone) const {
  std::string code;
  Resolve(ip, cdn_header, timezone, &code);
  return code;
}

void CountryResolver::Resolve(std::string_view ip, std::string_view cdn_header,
                              std::string_view timezone,
                              std::string* out) const {
  if (mmdb_ != nullptr) ip = StripWhitespace(ip);
  if (mmdb_ != nullptr && !ip.empty() && ip.size() < 64) {
    char buf[64];
    std::memcpy(buf, ip.data(), ip.size());
    buf[ip.size()] = '\0';
    int gai_error = 0;
    int mmdb_error = MMDB_SUCCESS;
    MMDB_lookup_result_s result =
        MMDB_lookup_string(mmdb_, buf, &gai_error, &mmdb_error);
    if (gai_error == 0 && mmdb_error == MMDB_SUCCESS && result.found_entry) {
      static const char* const kCountry[] = {"country", "iso_code", nullptr};
      static const char* const kRegistered[] = {"registered_country",
                                                "iso_code", nullptr};
      // Flat schema of @ip-location-db/*-country-mmdb: {"country_code": ..}.
      static const char* const kFlat[] = {"country_code", nullptr};
      for (const char* const* path : {kCountry, kRegistered, kFlat}) {
        std::string code = LookupString(&result.entry, path);
        if (!code.empty()) {
          *out = std::move(code);
          return;
        }
      }
    }
  }
  // (CountryCode of "" is false: most events have no CDN header.)
  if (!cdn_header.empty() && CountryCode(cdn_header, out) && *out != "XX" &&
      *out != "T1") {
    return;
  }
  // The time zone's country (tz_to_country_'s, through tz_table_).
  const std::string_view tz = StripWhitespace(timezone);
  if (const char* code = tz_table_.Find(tz); code != nullptr) {
    if (out->size() == 2) {  // over the previous code, no call
      (*out)[0] = code[0];
      (*out)[1] = code[1];
    } else {
      out->assign(code, 2);
    }
    return;
  }
  out->clear();
}

std::string CountryResolver::FromTimezone(std::string_view tz) const {
  tz = StripWhitespace(tz);
  if (tz.empty()) return "";
  auto it = tz_to_country_.find(tz);
  return it == tz_to_country_.end() ? "" : it->second;
}

}  // namespace analytics
