// NGD_STAGE(ctx, stage<T>, args...) runs a stage of src/stage_signatures.inc on the context's
// backend: a plain switch over the three backends, written once here instead of at every call site.
#pragma once

#include "ngd/context.hpp"
#include "stages.hpp"

#define NGD_STAGE(ctx, stage, ...)                                              \
    ((ctx).backend() == ::ngd::Backend::cuda  ? ::ngd::cuda::stage(__VA_ARGS__) \
     : (ctx).backend() == ::ngd::Backend::cpu ? ::ngd::cpu::stage(__VA_ARGS__)  \
                                              : ::ngd::reference::stage(__VA_ARGS__))
