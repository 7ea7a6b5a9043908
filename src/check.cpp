// Argument checks shared by every public function (see check.hpp). Finiteness and label checks run
// on the context's backend (a device reduction for CUDA), so they cost one pass and one
// synchronisation.
#include "check.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "dispatch.hpp"
#include "ngd/error.hpp"
#include "status_block.hpp"

namespace ngd::detail {

std::string message(const std::string& fn, const std::string& arg, const std::string& what) {
    return fn + ": argument '" + arg + "' " + what;
}

std::string shape(std::int64_t rows, std::int64_t cols) {
    return std::to_string(rows) + " x " + std::to_string(cols);
}

std::string number(double value) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.6g", value);
    return buf;
}

namespace {
const char* space_name(MemorySpace s) { return s == MemorySpace::host ? "host" : "device"; }

// Entry `index` of a 1 x n view in the context's memory space, for a message.
template <class T>
double entry(Context& ctx, MatrixView<const T> v, std::int64_t index) {
    const MatrixView<const T> one(v.data + index * v.ld, 1, 1, v.space);
    return double(to_host<T>(ctx, one)[0]);
}
}  // namespace

template <class T>
void check_matrix(const Context& ctx, const char* fn, const char* arg, MatrixView<const T> v,
                  std::int64_t rows, std::int64_t cols, const char* what) {
    if (v.rows != rows || v.cols != cols) {
        throw InvalidArgument(message(
            fn, arg,
            "must be " + shape(rows, cols) + " (" + what + "), got " + shape(v.rows, v.cols)));
    }
    if (v.rows < 0 || v.cols < 0 || v.ld < (v.rows > 1 ? v.rows : 1)) {
        throw InvalidArgument(message(
            fn, arg,
            "has leading dimension " + std::to_string(v.ld) + " < rows " + std::to_string(v.rows)));
    }
    if (!v.empty() && v.data == nullptr) {
        throw InvalidArgument(message(fn, arg, "is " + shape(v.rows, v.cols) + " but null"));
    }
    if (!v.empty() && v.space != ctx.memory_space()) {
        throw InvalidArgument(message(fn, arg,
                                      std::string("is in ") + space_name(v.space) +
                                          " memory, but the context's backend needs " +
                                          space_name(ctx.memory_space()) + " memory"));
    }
}

template <class T>
void check_finite(Context& ctx, const char* fn, const char* arg, MatrixView<const T> v,
                  StatusBlock* defer) {
    if (v.empty()) return;
    if (defer != nullptr) {
        NGD_STAGE(ctx, count_nonfinite_into<T>, ctx, v, defer->fault());
        return;
    }
    const NonFiniteCount c = NGD_STAGE(ctx, count_nonfinite<T>, ctx, v);
    if (c.count > 0) {
        const std::int64_t r = c.first % v.rows, col = c.first / v.rows;
        throw NonFiniteInput(
            message(fn, arg,
                    "(" + shape(v.rows, v.cols) + ") holds " + std::to_string(c.count) +
                        " NaN/Inf entries, the first at (" + std::to_string(r) + ", " +
                        std::to_string(col) + ")"),
            c.count, c.first);
    }
}

void check_nonnegative(const char* fn, const char* arg, double value) {
    if (!std::isfinite(value) || value < 0) {
        throw InvalidArgument(message(fn, arg, "must be finite and >= 0, got " + number(value)));
    }
}

template <class T>
void check_theta(Context& ctx, const char* fn, const Mlp& model, MatrixView<const T> theta,
                 StatusBlock* defer) {
    check_matrix<T>(ctx, fn, "theta", theta, model.n_params(), 1, "n_params x 1");
    check_finite<T>(ctx, fn, "theta", theta, defer);
}

template <class T>
void check_inputs(Context& ctx, const char* fn, const Mlp& model, MatrixView<const T> inputs,
                  MatrixView<const T> output_rows, StatusBlock* defer, Matrix<T>* safe_rows) {
    if (inputs.cols < 1) {
        throw InvalidArgument(message(fn, "inputs",
                                      "must hold at least one sample (d x n, n >= 1), got " +
                                          shape(inputs.rows, inputs.cols)));
    }
    check_matrix<T>(ctx, fn, "inputs", inputs, model.n_inputs(), inputs.cols, "d x n");
    check_finite<T>(ctx, fn, "inputs", inputs, defer);
    if (model.selects_output_row()) {
        check_matrix<T>(ctx, fn, "output_rows", output_rows, 1, inputs.cols, "1 x n row indices");
        if (defer != nullptr) {
            *safe_rows = Matrix<T>(output_rows.rows, output_rows.cols, ctx.memory_space());
            NGD_STAGE(ctx, sanitize_indices_into<T>, ctx, output_rows, model.n_last(),
                      safe_rows->view(), defer->fault());
            return;
        }
        const std::int64_t bad =
            NGD_STAGE(ctx, first_invalid_index<T>, ctx, output_rows, model.n_last());
        if (bad >= 0) {
            throw InvalidArgument(message(fn, "output_rows",
                                          "sample " + std::to_string(bad) + " has output row " +
                                              number(entry<T>(ctx, output_rows, bad)) +
                                              ", which is not an integer row index in [0, " +
                                              std::to_string(model.n_last()) + ")"));
        }
    } else if (!output_rows.empty()) {
        throw InvalidArgument(message(fn, "output_rows",
                                      "must be empty: the model does not select output rows, got " +
                                          shape(output_rows.rows, output_rows.cols)));
    }
}

template <class T>
void check_targets(Context& ctx, const char* fn, Loss loss, std::int64_t k, std::int64_t n,
                   MatrixView<const T> targets, StatusBlock* defer, Matrix<T>* safe_labels) {
    switch (loss) {
        case Loss::squared:
            check_matrix<T>(ctx, fn, "targets", targets, k, n, "k x n for squared loss");
            check_finite<T>(ctx, fn, "targets", targets, defer);
            return;
        case Loss::logistic:
        case Loss::softmax_cross_entropy: {
            const bool logistic = loss == Loss::logistic;
            check_matrix<T>(ctx, fn, "targets", targets, 1, n,
                            logistic ? "1 x n labels 0/1" : "1 x n class indices");
            check_finite<T>(ctx, fn, "targets", targets, defer);
            const std::int64_t limit = logistic ? 2 : k;
            if (defer != nullptr) {
                *safe_labels = Matrix<T>(targets.rows, targets.cols, ctx.memory_space());
                NGD_STAGE(ctx, sanitize_indices_into<T>, ctx, targets, limit, safe_labels->view(),
                          defer->fault());
                return;
            }
            const std::int64_t bad = NGD_STAGE(ctx, first_invalid_index<T>, ctx, targets, limit);
            if (bad >= 0) {
                throw InvalidArgument(message(
                    fn, "targets",
                    "sample " + std::to_string(bad) + " has label " +
                        number(entry<T>(ctx, targets, bad)) + ", which is not an integer in [0, " +
                        std::to_string(limit) + ") for " + to_string(loss) + " loss"));
            }
            return;
        }
    }
}

template <class T>
void check_batch(Context& ctx, const char* fn, const Mlp& model, const Batch<T>& batch, Loss loss,
                 StatusBlock* defer, SafeIndices<T>* safe) {
    const std::int64_t k = model.n_outputs();
    if (loss == Loss::logistic && k != 1) {
        throw InvalidArgument(message(
            fn, "loss",
            "logistic loss needs a model with one output, the model has " + std::to_string(k)));
    }
    if (loss == Loss::softmax_cross_entropy && k < 2) {
        throw InvalidArgument(message(fn, "loss",
                                      "softmax cross-entropy needs a model with >= 2 outputs, the "
                                      "model has " +
                                          std::to_string(k)));
    }
    if (defer != nullptr && safe == nullptr) {
        throw Error(std::string(fn) + ": internal: a deferred check_batch needs SafeIndices");
    }
    check_inputs<T>(ctx, fn, model, batch.inputs, batch.output_rows, defer,
                    safe != nullptr ? &safe->rows : nullptr);
    check_targets<T>(ctx, fn, loss, k, batch.inputs.cols, batch.targets, defer,
                     safe != nullptr ? &safe->targets : nullptr);
}

#define NGD_INSTANTIATE_CHECKS(T)                                                                \
    template void check_matrix<T>(const Context&, const char*, const char*, MatrixView<const T>, \
                                  std::int64_t, std::int64_t, const char*);                      \
    template void check_finite<T>(Context&, const char*, const char*, MatrixView<const T>,       \
                                  StatusBlock*);                                                 \
    template void check_theta<T>(Context&, const char*, const Mlp&, MatrixView<const T>,         \
                                 StatusBlock*);                                                  \
    template void check_inputs<T>(Context&, const char*, const Mlp&, MatrixView<const T>,        \
                                  MatrixView<const T>, StatusBlock*, Matrix<T>*);                \
    template void check_targets<T>(Context&, const char*, Loss, std::int64_t, std::int64_t,      \
                                   MatrixView<const T>, StatusBlock*, Matrix<T>*);               \
    template void check_batch<T>(Context&, const char*, const Mlp&, const Batch<T>&, Loss,       \
                                 StatusBlock*, SafeIndices<T>*);
NGD_INSTANTIATE_CHECKS(float)
NGD_INSTANTIATE_CHECKS(double)

}  // namespace ngd::detail
