// The VisitAttrs members in their canonical order (entry_page .. locale):
// the order of the stores' columns and encodings and of the sessionizer's
// packed visit. Shared so that the lists cannot drift apart.
#ifndef ANALYTICS_CORE_VISIT_FIELDS_H_
#define ANALYTICS_CORE_VISIT_FIELDS_H_

#include <string>

#include "analytics/event.h"

namespace analytics {

inline constexpr std::string VisitAttrs::*kVisitFields[] = {
    &VisitAttrs::entry_page,      &VisitAttrs::source,
    &VisitAttrs::referrer,        &VisitAttrs::utm_source,
    &VisitAttrs::utm_medium,      &VisitAttrs::utm_campaign,
    &VisitAttrs::utm_term,        &VisitAttrs::utm_content,
    &VisitAttrs::country,         &VisitAttrs::browser,
    &VisitAttrs::browser_version, &VisitAttrs::os,
    &VisitAttrs::os_version,      &VisitAttrs::device,
    &VisitAttrs::screen,          &VisitAttrs::locale,
};

}  // namespace analytics

#endif  // ANALYTICS_CORE_VISIT_FIELDS_H_
