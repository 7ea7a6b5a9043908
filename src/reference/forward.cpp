// Reference forward pass: a_l = act(w_l W_l a_{l-1} + b_l) layer by layer, keeping a_l and
// act'(z_l) for the later stages. Activations and their derivatives are evaluated in double in
// forms that stay accurate at large |z| (softplus via log1p, tanh' as sech^2, gelu's Phi via erfc).
#include <cmath>
#include <cstdint>
#include <vector>

#include "stages.hpp"

namespace ngd::reference {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

struct ActivationValue {
    double value;
    double derivative;
};

// act(z) and act'(z) in double.
ActivationValue evaluate(Activation act, double z) {
    switch (act) {
        case Activation::identity:
            return {z, 1.0};
        case Activation::relu:
            // relu'(0) = 0: the subgradient the GPU backend uses too, so both agree exactly.
            return {z > 0 ? z : 0.0, z > 0 ? 1.0 : 0.0};
        case Activation::tanh: {
            // 1 - tanh^2 cancels to 0 long before sech^2 underflows; 1/cosh^2 keeps it accurate.
            const double sech = 1.0 / std::cosh(z);
            return {std::tanh(z), sech * sech};
        }
        case Activation::softplus: {
            // log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}): no overflow, no loss for z << 0.
            const double e = std::exp(-std::fabs(z));
            const double value = (z > 0 ? z : 0.0) + std::log1p(e);
            // softplus' = sigmoid(z), formed from e^{-|z|} <= 1 so it never overflows.
            const double sigmoid = z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            return {value, sigmoid};
        }
        case Activation::gelu: {
            // Phi(z) = erfc(-z/sqrt 2)/2 keeps relative accuracy in the left tail, where 1 + erf
            // cancels.
            const double cdf = 0.5 * std::erfc(-z * kInvSqrt2);
            const double pdf = kInvSqrt2Pi * std::exp(-0.5 * z * z);
            // (z Phi(z))' = Phi(z) + z phi(z).
            return {z * cdf, cdf + z * pdf};
        }
    }
    return {z, 1.0};
}

}  // namespace

template <class T>
void forward(Context& /*ctx*/, const Mlp& model, const T* theta, MatrixView<const T> x,
             MatrixView<const T> rows, ForwardState<T>& state) {
    // x: d_0 x n. act[l], dact[l]: d_{l+1} x n. outputs: k x n.
    const std::int64_t n = x.cols;
    const std::int64_t n_layers = model.n_layers();
    state.act.clear();
    state.dact.clear();
    state.act.reserve(n_layers);
    state.dact.reserve(n_layers);
    std::vector<double> z;
    for (std::int64_t l = 0; l < n_layers; ++l) {
        const Layer& layer = model.layer(l);
        const std::int64_t n_out = layer.n_out;
        const std::int64_t n_in = model.fan_in(l);
        const double w_mult = model.weight_multiplier(l);
        const double b_mult = model.bias_multiplier(l);
        const T* weights = theta + model.weight_offset(l);  // n_out x n_in, column-major
        const T* bias = layer.bias ? theta + model.bias_offset(l) : nullptr;
        // a_{l-1}: x for the first layer, else the previous layer's activations (contiguous).
        const T* a_in = l == 0 ? x.data : state.act[l - 1].data();
        const std::int64_t ld_in = l == 0 ? x.ld : n_in;

        Matrix<T> act(n_out, n);
        Matrix<T> dact(n_out, n);
        z.assign(n_out, 0.0);
        for (std::int64_t i = 0; i < n; ++i) {
            // z = W a_{l-1,i}, summed column by column of W so the inner loop is contiguous.
            for (std::int64_t r = 0; r < n_out; ++r) z[r] = 0.0;
            for (std::int64_t c = 0; c < n_in; ++c) {
                const double a = a_in[c + i * ld_in];
                const T* w_col = weights + c * n_out;
                for (std::int64_t r = 0; r < n_out; ++r) z[r] += double(w_col[r]) * a;
            }
            for (std::int64_t r = 0; r < n_out; ++r) {
                // z = w_l (W a) + b_mult b.
                double pre = w_mult * z[r];
                if (bias != nullptr) pre += b_mult * double(bias[r]);
                // a_l = act(z), and act'(z) for the backward stages.
                const ActivationValue v = evaluate(layer.activation, pre);
                act(r, i) = T(v.value);
                dact(r, i) = T(v.derivative);
            }
        }
        state.act.push_back(std::move(act));
        state.dact.push_back(std::move(dact));
    }

    // f = output_scale a_L, or in matrix-factorization mode the one entry a_L[rows_i, i] per
    // sample.
    const double scale = model.output_scale();
    const Matrix<T>& last = state.act.back();
    if (model.selects_output_row()) {
        state.outputs = Matrix<T>(1, n);
        for (std::int64_t i = 0; i < n; ++i) {
            const auto row = static_cast<std::int64_t>(rows.data[i * rows.ld]);
            state.outputs(0, i) = T(scale * double(last(row, i)));
        }
    } else {
        const std::int64_t k = last.rows();
        state.outputs = Matrix<T>(k, n);
        for (std::int64_t i = 0; i < n; ++i) {
            for (std::int64_t c = 0; c < k; ++c)
                state.outputs(c, i) = T(scale * double(last(c, i)));
        }
    }
}

template void forward<float>(Context&, const Mlp&, const float*, MatrixView<const float>,
                             MatrixView<const float>, ForwardState<float>&);
template void forward<double>(Context&, const Mlp&, const double*, MatrixView<const double>,
                              MatrixView<const double>, ForwardState<double>&);

}  // namespace ngd::reference
