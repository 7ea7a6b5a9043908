// The words a step's stages write instead of handing scalars to the host one at a time (the *_into
// stages of stage_signatures.inc): NaN/Inf counts and info codes that must read 0 ("faults"), and
// values (the loss, dots, norms). The host reads the whole block once, at the end of the step: on
// CUDA, one host synchronisation instead of one per scalar (docs/performance.md, "One host
// synchronisation").
#pragma once

#include <vector>

#include "ngd/context.hpp"
#include "ngd/matrix.hpp"

namespace ngd::detail {

class StatusBlock {
  public:
    static constexpr int kCapacity = 64;

    /// kCapacity words in the context's memory space, zeroed (no synchronisation).
    explicit StatusBlock(Context& ctx);

    /// A new word that must read 0 for the step to stand (a count of bad entries, an info code).
    double* fault();
    /// A new word for a value; at(index) is its address, (*this)[index] its value after read().
    int value();
    /// `count` consecutive new value words; returns the first index.
    int values(int count);
    double* at(int index);

    /// Reads every word back to the host: the one synchronisation.
    void read();
    /// After read(): every fault word reads 0 (a NaN word counts as a fault).
    bool clean() const;
    double operator[](int index) const { return host_[index]; }

  private:
    int take(int count);

    Context& ctx_;
    Matrix<double> words_;
    int used_ = 0;
    std::vector<int> faults_;
    std::vector<double> host_;
};

}  // namespace ngd::detail
