// Test helpers shared by the tests that compare whole events (stores,
// enricher, engine): every field of Event and VisitAttrs, one EXPECT each so
// a failure names the field. Header-only; include from tests only (gtest).
#ifndef ANALYTICS_CORE_EVENT_TESTING_H_
#define ANALYTICS_CORE_EVENT_TESTING_H_

#include <iterator>

#include "analytics/event.h"
#include "gtest/gtest.h"
#include "libanalytics/core/visit_fields.h"

namespace analytics::testing {

inline void ExpectSameVisit(const VisitAttrs& got, const VisitAttrs& want) {
  for (size_t i = 0; i < std::size(kVisitFields); ++i) {
    EXPECT_EQ(got.*kVisitFields[i], want.*kVisitFields[i])
        << "VisitAttrs field " << i << " of kVisitFields (entry_page = 0)";
  }
  EXPECT_TRUE(got == want);
}

// Every field of Event. A field added to Event must be added here, hence
// the size check.
#if defined(__GLIBCXX__) && defined(__x86_64__)
static_assert(sizeof(Event) == 760,
              "Event changed: compare the new field in ExpectSameEvent");
#endif
inline void ExpectSameEvent(const Event& got, const Event& want) {
  EXPECT_EQ(got.seq, want.seq);
  EXPECT_EQ(got.site_id, want.site_id);
  EXPECT_EQ(got.ts_ms, want.ts_ms);
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.hostname, want.hostname);
  EXPECT_EQ(got.page, want.page);
  EXPECT_EQ(got.props, want.props);
  EXPECT_EQ(got.visitor_id, want.visitor_id);
  EXPECT_EQ(got.session_id, want.session_id);
  EXPECT_EQ(got.session_start_ms, want.session_start_ms);
  ExpectSameVisit(got.visit, want.visit);
  EXPECT_EQ(got.first_in_session, want.first_in_session);
  EXPECT_EQ(got.first_page, want.first_page);
  EXPECT_EQ(got.first_name, want.first_name);
  EXPECT_EQ(got.s_pageviews, want.s_pageviews);
  EXPECT_EQ(got.s_events, want.s_events);
  EXPECT_EQ(got.s_bounce, want.s_bounce);
  EXPECT_EQ(got.s_duration_ms, want.s_duration_ms);
  EXPECT_EQ(got.s_exit_page, want.s_exit_page);
  EXPECT_EQ(got.d_bounce, want.d_bounce);
  EXPECT_EQ(got.d_duration_ms, want.d_duration_ms);
  EXPECT_EQ(got.imported, want.imported);
  EXPECT_EQ(got.worker, want.worker);
}

}  // namespace analytics::testing

#endif  // ANALYTICS_CORE_EVENT_TESTING_H_
