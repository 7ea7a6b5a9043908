// The deferred stages (stage_signatures.inc, "Deferred results") of the cpu backend: its own
// stages followed by a store, written once for both host backends in src/deferred_host.inc.
#include <cmath>
#include <cstdint>

#include "stages.hpp"
#include "step_guard.hpp"

namespace ngd::cpu {
#include "deferred_host.inc"
}  // namespace ngd::cpu
