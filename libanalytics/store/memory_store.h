// In-memory Store: the reference implementation of store.h for tests and
// embedding. Owns: nothing durable; all data lives in this process and is lost
// when the store is destroyed.
//
// Thread-safe: one absl::Mutex guards all state. Callbacks passed to the scan
// methods run without the lock held (the matching rows are copied first), so
// they may call back into the store.
#ifndef ANALYTICS_STORE_MEMORY_STORE_H_
#define ANALYTICS_STORE_MEMORY_STORE_H_

#include <memory>

#include "analytics/store.h"

namespace analytics {

std::unique_ptr<Store> NewMemoryStore();

}  // namespace analytics

#endif  // ANALYTICS_STORE_MEMORY_STORE_H_
