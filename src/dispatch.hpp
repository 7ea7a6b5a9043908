// NGD_STAGE(ctx, stage<T>, args...) runs a stage of src/stage_signatures.inc on the context's
// backend: a plain two-way choice, written once here instead of a switch at every call site.
#pragma once

#include "ngd/context.hpp"
#include "stages.hpp"

#define NGD_STAGE(ctx, stage, ...)                                             \
    ((ctx).backend() == ::ngd::Backend::cuda ? ::ngd::cuda::stage(__VA_ARGS__) \
                                             : ::ngd::reference::stage(__VA_ARGS__))
