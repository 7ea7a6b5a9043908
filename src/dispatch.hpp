// NGD_STAGE(ctx, stage<T>, args...) runs a stage of src/stage_signatures.inc on the context's
// backend: a plain switch over the three backends, written once here instead of at every call site.
// A stage that returns a value hands a device result to the host, so the call is counted in the
// context's host_syncs() (one synchronisation on CUDA); the *_into stages write their results into
// a StatusBlock instead (status_block.hpp) and are not.
#pragma once

#include <type_traits>
#include <utility>

#include "ngd/context.hpp"
#include "stages.hpp"

namespace ngd::detail {

template <class Call>
decltype(auto) run_stage(Context& ctx, Call&& call) {
    if constexpr (std::is_void_v<decltype(call())>) {
        call();
    } else {
        ctx.note_host_sync();
        return call();
    }
}

}  // namespace ngd::detail

#define NGD_STAGE(ctx, stage, ...)                                                              \
    ::ngd::detail::run_stage((ctx), [&]() -> decltype(auto) {                                   \
        return (ctx).backend() == ::ngd::Backend::cuda  ? ::ngd::cuda::stage(__VA_ARGS__)       \
               : (ctx).backend() == ::ngd::Backend::cpu ? ::ngd::cpu::stage(__VA_ARGS__)        \
                                                        : ::ngd::reference::stage(__VA_ARGS__); \
    })
