#include "status_block.hpp"

#include <string>

#include "dispatch.hpp"
#include "ngd/error.hpp"

namespace ngd::detail {

StatusBlock::StatusBlock(Context& ctx) : ctx_(ctx), words_(kCapacity, 1, ctx.memory_space()) {
    NGD_STAGE(ctx, fill<double>, ctx, kCapacity, 0.0, words_.data());
}

int StatusBlock::take(int count) {
    if (used_ + count > kCapacity) {
        // A programming error of the library, not of the caller: the block is sized for a step.
        throw Error("ngd::detail::StatusBlock: more than " + std::to_string(kCapacity) +
                    " words asked for");
    }
    const int first = used_;
    used_ += count;
    return first;
}

double* StatusBlock::fault() {
    const int index = take(1);
    faults_.push_back(index);
    return words_.data() + index;
}

int StatusBlock::value() { return take(1); }

int StatusBlock::values(int count) { return take(count); }

double* StatusBlock::at(int index) { return words_.data() + index; }

void StatusBlock::read() {
    const Matrix<double> host = to_host<double>(ctx_, words_.const_view());
    host_.assign(host.data(), host.data() + kCapacity);
}

bool StatusBlock::clean() const {
    for (int index : faults_) {
        if (!(host_[index] == 0)) return false;
    }
    return true;
}

}  // namespace ngd::detail
