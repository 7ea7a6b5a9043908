// cpu forward pass (mirrors src/reference/forward.cpp): per layer one GEMM z = w_l W_l a_{l-1},
// then one OpenMP pass adds the bias and evaluates act(z) and act'(z) in the same accurate forms as
// the reference (softplus via log1p, tanh' as sech^2, gelu's Phi via erfc), in double per element.
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu/blas.hpp"
#include "cpu/threads.hpp"
#include "stages.hpp"

namespace ngd::cpu {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

// act(z) -> value, act'(z) -> derivative, for one activation; the reference's formulas.
template <Activation A>
inline void evaluate(double z, double& value, double& derivative) {
    if constexpr (A == Activation::identity) {
        value = z, derivative = 1.0;
    } else if constexpr (A == Activation::relu) {
        // relu'(0) = 0, as in the reference and the CUDA backend.
        value = z > 0 ? z : 0.0, derivative = z > 0 ? 1.0 : 0.0;
    } else if constexpr (A == Activation::tanh) {
        const double sech = 1.0 / std::cosh(z);
        value = std::tanh(z), derivative = sech * sech;
    } else if constexpr (A == Activation::softplus) {
        const double e = std::exp(-std::fabs(z));
        value = (z > 0 ? z : 0.0) + std::log1p(e);
        derivative = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    } else {
        const double cdf = 0.5 * std::erfc(-z * kInvSqrt2);
        value = z * cdf, derivative = cdf + z * kInvSqrt2Pi * std::exp(-0.5 * z * z);
    }
}

// act holds z - bias term on entry (n_out x n); on return act(z) and dact = act'(z).
template <Activation A, class T>
void activate(std::int64_t n_out, std::int64_t n, const T* bias, double b_mult, T* act, T* dact) {
#pragma omp parallel for schedule(static) if (n * n_out > kParallelMinEntries)
    for (std::int64_t i = 0; i < n; ++i) {
        T* a = act + i * n_out;
        T* da = dact + i * n_out;
        for (std::int64_t r = 0; r < n_out; ++r) {
            double z = double(a[r]);
            if (bias != nullptr) z += b_mult * double(bias[r]);
            double value, derivative;
            evaluate<A>(z, value, derivative);
            a[r] = T(value);
            da[r] = T(derivative);
        }
    }
}

template <class T>
void activate(Activation act, std::int64_t n_out, std::int64_t n, const T* bias, double b_mult,
              T* a, T* da) {
    switch (act) {
        case Activation::identity:
            return activate<Activation::identity>(n_out, n, bias, b_mult, a, da);
        case Activation::relu:
            return activate<Activation::relu>(n_out, n, bias, b_mult, a, da);
        case Activation::tanh:
            return activate<Activation::tanh>(n_out, n, bias, b_mult, a, da);
        case Activation::softplus:
            return activate<Activation::softplus>(n_out, n, bias, b_mult, a, da);
        case Activation::gelu:
            return activate<Activation::gelu>(n_out, n, bias, b_mult, a, da);
    }
}

}  // namespace

template <class T>
void forward(Context& ctx, const Mlp& model, const T* theta, MatrixView<const T> x,
             MatrixView<const T> rows, ForwardState<T>& state) {
    // x: d_0 x n (any ld). act[l], dact[l]: d_{l+1} x n. outputs: k x n.
    ThreadScope threads(ctx);
    const std::int64_t n = x.cols;
    const std::int64_t n_layers = model.n_layers();
    state.act.clear();
    state.dact.clear();
    state.act.reserve(n_layers);
    state.dact.reserve(n_layers);
    for (std::int64_t l = 0; l < n_layers; ++l) {
        const Layer& layer = model.layer(l);
        const std::int64_t n_out = layer.n_out;
        const std::int64_t n_in = model.fan_in(l);
        const T* weights = theta + model.weight_offset(l);  // n_out x n_in
        const T* bias = layer.bias ? theta + model.bias_offset(l) : nullptr;
        const T* a_in = l == 0 ? x.data : state.act[l - 1].data();
        const std::int64_t ld_in = l == 0 ? x.ld : n_in;

        Matrix<T> act(n_out, n);
        Matrix<T> dact(n_out, n);
        // z = w_l W_l a_{l-1} (n_out x n), then a_l = act(z + b_mult b_l).
        if (n > 0 && n_out > 0 && n_in > 0) {
            blas::gemm(false, false, n_out, n, n_in, T(model.weight_multiplier(l)), weights, n_out,
                       a_in, ld_in, T(0), act.data(), n_out);
        }
        activate(layer.activation, n_out, n, bias, model.bias_multiplier(l), act.data(),
                 dact.data());
        state.act.push_back(std::move(act));
        state.dact.push_back(std::move(dact));
    }

    // f = output_scale a_L, or the one entry a_L[rows_i, i] per sample (matrix factorization).
    const double scale = model.output_scale();
    const Matrix<T>& last = state.act.back();
    const bool select = model.selects_output_row();
    const std::int64_t k = select ? 1 : last.rows();
    state.outputs = Matrix<T>(k, n);
    for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t c = 0; c < k; ++c) {
            const std::int64_t row = select ? static_cast<std::int64_t>(rows.data[i * rows.ld]) : c;
            state.outputs(c, i) = T(scale * double(last(row, i)));
        }
    }
}

template void forward<float>(Context&, const Mlp&, const float*, MatrixView<const float>,
                             MatrixView<const float>, ForwardState<float>&);
template void forward<double>(Context&, const Mlp&, const double*, MatrixView<const double>,
                              MatrixView<const double>, ForwardState<double>&);

}  // namespace ngd::cpu
