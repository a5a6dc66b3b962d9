// Dimensions: the named properties a query can break down and filter by, and
// how each is read from a stored Event.
//
// Owns: the list of dimensions, their kind, and the rule for which ones are
// kept in rollups. Shared by rollup/ (which writes cells per dimension value)
// and query/ (which reads cells or scans events), so that both paths agree by
// construction.
#ifndef ANALYTICS_CORE_DIMENSIONS_H_
#define ANALYTICS_CORE_DIMENSIONS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "analytics/event.h"

namespace analytics {

enum class DimKind : uint8_t {
  kTotal,    // "" : the whole site
  kEvent,    // differs per event of a session: event:page, event:name
  kProp,     // event:props:<key>; events without the key have no value
  kSession,  // fixed at the session's first event: visit:source, ...
  kExit,     // visit:exit_page: known only when the session ends
};

enum class DimId : uint8_t {
  kTotal = 0,
  kPage,
  kName,
  kEntryPage,
  kSource,
  kReferrer,
  kUtmSource,
  kUtmMedium,
  kUtmCampaign,
  kUtmTerm,
  kUtmContent,
  kCountry,
  kBrowser,
  kBrowserVersion,
  kOs,
  kOsVersion,
  kDevice,
  kScreen,
  kLocale,
  kHostname,
  kExitPage,
  kProp,
};

// Dimensions kept in rollups, in cell order (kTotal first; props added per
// key).
inline constexpr DimId kRollupDims[] = {
    DimId::kTotal,     DimId::kPage,           DimId::kName,
    DimId::kEntryPage, DimId::kSource,         DimId::kReferrer,
    DimId::kUtmSource, DimId::kUtmMedium,      DimId::kUtmCampaign,
    DimId::kUtmTerm,   DimId::kUtmContent,     DimId::kCountry,
    DimId::kBrowser,   DimId::kBrowserVersion, DimId::kOs,
    DimId::kOsVersion, DimId::kDevice,         DimId::kScreen,
    DimId::kLocale};

struct Dimension {
  DimId id = DimId::kTotal;
  DimKind kind = DimKind::kTotal;
  std::string name;      // "event:page", "visit:source", "event:props:plan"
  std::string prop_key;  // for kProp
};

// Parses "event:page", "visit:source", "event:props:plan", ... ("" is the
// total). std::nullopt for unknown names. Time dimensions are not handled
// here (see query/).
std::optional<Dimension> ParseDimension(std::string_view name);

// The canonical name of a non-prop dimension, e.g. DimId::kSource ->
// "visit:source".
std::string_view DimName(DimId id);
DimKind KindOf(DimId id);

// The dimension's raw value on an event ("" when empty). For kProp: the
// prop's value, or nullopt when the event lacks the key. For kExit: the
// event's s_exit_page (callers that need the session's final exit page
// substitute it).
std::optional<std::string_view> RawValue(const Event& e, const Dimension& d);
std::string_view RawValue(const Event& e, DimId id);

// What users see for a raw value: "" source/referrer -> "Direct / None".
std::string_view DisplayValue(DimId id, std::string_view raw);

}  // namespace analytics

#endif  // ANALYTICS_CORE_DIMENSIONS_H_
