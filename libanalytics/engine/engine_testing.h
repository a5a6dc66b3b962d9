// Test-only hooks into the engine (not part of the public API).
#ifndef ANALYTICS_ENGINE_ENGINE_TESTING_H_
#define ANALYTICS_ENGINE_ENGINE_TESTING_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "analytics/engine.h"
#include "analytics/store.h"

namespace analytics {

// Stops `engine` as a crash would: committed events stay in the store, but
// pending rollups are neither folded nor checkpointed, and its leases are not
// released (they expire). Later calls fail with FailedPrecondition.
void AbandonEngineForTest(Engine* engine);

// Runs the leader's orphan adoption now (see engine.cc), returning how many
// workers' events were adopted. 0 with a local coordinator.
absl::StatusOr<int> AdoptOrphansForTest(Engine* engine);

// Engines opened from now on use wrap(the store their URL names) instead of
// that store, e.g. a ForwardingStore (store/forwarding_store.h) that injects
// faults. An empty function restores the default. Set it while no Open runs.
using StoreWrapper =
    std::function<std::unique_ptr<Store>(std::unique_ptr<Store>)>;
void SetStoreWrapperForTest(StoreWrapper wrap);

// Engines opened from now on recycle folded event vectors (the default: see
// engine.cc, EngineImpl::TakeSpare) or, with false, build every Event afresh.
void SetEventRecyclingForTest(bool enabled);

// How many events `engine` has enriched into a recycled Event so far.
int64_t RecycledEventsForTest(Engine* engine);

}  // namespace analytics

#endif  // ANALYTICS_ENGINE_ENGINE_TESTING_H_
