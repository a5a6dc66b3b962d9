// Dimension table: names, kinds and per-event values.
#include "libanalytics/core/dimensions.h"

#include "absl/strings/match.h"
#include "libanalytics/core/strings.h"

namespace analytics {
namespace {

struct Entry {
  DimId id;
  DimKind kind;
  std::string_view name;
};

constexpr Entry kEntries[] = {
    {DimId::kTotal, DimKind::kTotal, ""},
    {DimId::kPage, DimKind::kEvent, "event:page"},
    {DimId::kName, DimKind::kEvent, "event:name"},
    {DimId::kEntryPage, DimKind::kSession, "visit:entry_page"},
    {DimId::kSource, DimKind::kSession, "visit:source"},
    {DimId::kReferrer, DimKind::kSession, "visit:referrer"},
    {DimId::kUtmSource, DimKind::kSession, "visit:utm_source"},
    {DimId::kUtmMedium, DimKind::kSession, "visit:utm_medium"},
    {DimId::kUtmCampaign, DimKind::kSession, "visit:utm_campaign"},
    {DimId::kUtmTerm, DimKind::kSession, "visit:utm_term"},
    {DimId::kUtmContent, DimKind::kSession, "visit:utm_content"},
    {DimId::kCountry, DimKind::kSession, "visit:country"},
    {DimId::kBrowser, DimKind::kSession, "visit:browser"},
    {DimId::kBrowserVersion, DimKind::kSession, "visit:browser_version"},
    {DimId::kOs, DimKind::kSession, "visit:os"},
    {DimId::kOsVersion, DimKind::kSession, "visit:os_version"},
    {DimId::kDevice, DimKind::kSession, "visit:device"},
    {DimId::kScreen, DimKind::kSession, "visit:screen"},
    {DimId::kLocale, DimKind::kSession, "visit:locale"},
    {DimId::kHostname, DimKind::kEvent, "event:hostname"},
    {DimId::kExitPage, DimKind::kExit, "visit:exit_page"},
    {DimId::kProp, DimKind::kProp, "event:props:"},
};

}  // namespace

std::optional<Dimension> ParseDimension(std::string_view name) {
  if (absl::StartsWith(AV(name), "event:props:")) {
    std::string_view key = name.substr(12);
    if (key.empty()) return std::nullopt;
    return Dimension{DimId::kProp, DimKind::kProp, std::string(name),
                     std::string(key)};
  }
  for (const Entry& e : kEntries) {
    if (e.id != DimId::kProp && e.name == name) {
      return Dimension{e.id, e.kind, std::string(e.name), ""};
    }
  }
  // Plausible's alias: visit:country_name is not supported; no others.
  return std::nullopt;
}

std::string_view DimName(DimId id) {
  return kEntries[static_cast<int>(id)].name;
}

DimKind KindOf(DimId id) { return kEntries[static_cast<int>(id)].kind; }

std::string_view RawValue(const Event& e, DimId id) {
  const VisitAttrs& v = e.visit;
  switch (id) {
    case DimId::kTotal:
      return {};
    case DimId::kPage:
      return e.page;
    case DimId::kName:
      return e.name;
    case DimId::kEntryPage:
      return v.entry_page;
    case DimId::kSource:
      return v.source;
    case DimId::kReferrer:
      return v.referrer;
    case DimId::kUtmSource:
      return v.utm_source;
    case DimId::kUtmMedium:
      return v.utm_medium;
    case DimId::kUtmCampaign:
      return v.utm_campaign;
    case DimId::kUtmTerm:
      return v.utm_term;
    case DimId::kUtmContent:
      return v.utm_content;
    case DimId::kCountry:
      return v.country;
    case DimId::kBrowser:
      return v.browser;
    case DimId::kBrowserVersion:
      return v.browser_version;
    case DimId::kOs:
      return v.os;
    case DimId::kOsVersion:
      return v.os_version;
    case DimId::kDevice:
      return v.device;
    case DimId::kScreen:
      return v.screen;
    case DimId::kLocale:
      return v.locale;
    case DimId::kHostname:
      return e.hostname;
    case DimId::kExitPage:
      return e.s_exit_page;
    case DimId::kProp:
      return {};
  }
  return {};
}

std::optional<std::string_view> RawValue(const Event& e, const Dimension& d) {
  if (d.id == DimId::kProp) {
    for (const auto& [k, v] : e.props) {
      if (k == d.prop_key) return std::string_view(v);
    }
    return std::nullopt;
  }
  return RawValue(e, d.id);
}

std::string_view DisplayValue(DimId id, std::string_view raw) {
  if (raw.empty() && (id == DimId::kSource || id == DimId::kReferrer)) {
    return "Direct / None";
  }
  return raw;
}

}  // namespace analytics
