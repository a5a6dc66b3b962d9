// The real clock.
#include "analytics/clock.h"

namespace analytics {
namespace {
class RealClockImpl : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
};
}  // namespace

Clock* RealClock() {
  static Clock* clock = new RealClockImpl();
  return clock;
}

}  // namespace analytics
