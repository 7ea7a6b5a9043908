// Model specifications: a multilayer perceptron described layer by layer, and the presets of the
// two seed papers. A spec holds structure only; parameters live in one contiguous vector theta.
//
// Parameter order in theta: layer 1, 2, ..., L; within a layer first W_l (n_out x n_in,
// column-major: entry (r, c) at weight_offset(l) + r + c * n_out), then b_l (n_out entries) if the
// layer has a bias. Frozen (non-trainable) layers keep their entries in theta; their Jacobian
// columns are zero, so the Gram ignores them and every step leaves them unchanged.
//
// Forward pass: a_0 = x, z_l = w_l * W_l a_{l-1} + b_mult * b_l, a_l = act_l(z_l), f =
// output_scale*a_L, with w_l = 1 and b_mult = 1 (standard) or w_l = 1/sqrt(n_in), b_mult = 1 (NTK
// parameterization).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ngd/export.hpp"
#include "ngd/matrix.hpp"

namespace ngd {

/// relu'(0) = 0; softplus(z) = log(1 + e^z); gelu is the exact z Phi(z) (Phi the normal CDF), not
/// the tanh approximation.
enum class Activation { identity, relu, tanh, softplus, gelu };
enum class Parameterization { standard, ntk };
/// gaussian: N(0, scale^2); sign: +-scale with equal probability; zero: all zeros.
enum class Init { gaussian, sign, zero };

NGD_API const char* to_string(Activation a);

struct Layer {
    std::int64_t n_out = 1;
    Activation activation = Activation::relu;
    bool bias = true;
    bool trainable = true;
    Init init = Init::gaussian;
    /// Scale of the initial weights; negative means the default: 1/sqrt(n_in) for the standard
    /// parameterization, 1 for NTK. Biases start at zero.
    double init_scale = -1.0;
};

class NGD_API Mlp {
  public:
    Mlp() = default;
    /// Throws InvalidArgument for n_inputs < 1, no layers, a layer with n_out < 1 or a
    /// non-finite or non-positive output scale.
    Mlp(std::int64_t n_inputs, std::vector<Layer> layers,
        Parameterization parameterization = Parameterization::standard, double output_scale = 1.0);

    /// Matrix-factorization mode: the network's last layer has d outputs, the model has one, and
    /// each sample names which row of the last layer is its output (Batch::output_rows).
    Mlp& select_output_row(bool on = true);
    bool selects_output_row() const { return select_output_row_; }

    std::int64_t n_inputs() const { return n_inputs_; }
    /// k: the model's outputs per sample (1 in matrix-factorization mode).
    std::int64_t n_outputs() const;
    /// Width of the network's last layer (d_L).
    std::int64_t n_last() const { return layers_.back().n_out; }
    std::int64_t n_layers() const { return static_cast<std::int64_t>(layers_.size()); }
    const Layer& layer(std::int64_t l) const { return layers_.at(l); }  ///< 0-based
    std::int64_t fan_in(std::int64_t l) const;                          ///< n_in of layer l
    std::int64_t n_params() const { return n_params_; }
    std::int64_t n_trainable_params() const;
    std::int64_t weight_offset(std::int64_t l) const { return offsets_.at(l); }
    std::int64_t bias_offset(std::int64_t l) const;  ///< -1 without a bias
    double weight_multiplier(std::int64_t l) const;
    double bias_multiplier(std::int64_t) const { return 1.0; }
    double output_scale() const { return output_scale_; }
    Parameterization parameterization() const { return parameterization_; }
    /// A one-line description: "784-1024(relu)-10(identity), standard, 814090 params".
    std::string describe() const;

    /// Parameters drawn from each layer's Init with a fixed seed (same on every platform), in host
    /// memory.
    template <class T>
    Matrix<T> init(std::uint64_t seed) const;

  private:
    std::int64_t n_inputs_ = 0;
    std::vector<Layer> layers_;
    Parameterization parameterization_ = Parameterization::standard;
    double output_scale_ = 1.0;
    bool select_output_row_ = false;
    std::vector<std::int64_t> offsets_;
    std::int64_t n_params_ = 0;
};

/// Zhang et al.: f(x) = m^{-1/2} sum_r a_r relu(w_r . x), w_r ~ N(0, init_std^2 I), a_r = +-1
/// fixed; only W (m x d) is trained. Parameters: W (m*d), then a (m, frozen).
NGD_API Mlp two_layer_relu(std::int64_t d, std::int64_t m, double init_std = 1.0);
/// w = W_depth ... W_1 x: identity activations, no biases, widths d -> width -> ... -> n_out.
/// Depth 1 is the linear model d -> n_out. Weights N(0, init_scale^2), default 1/sqrt(fan_in).
NGD_API Mlp deep_linear(std::int64_t d, std::int64_t width, std::int64_t depth,
                        std::int64_t n_out = 1, double init_scale = -1.0);
/// Deep matrix factorization W = W_depth ... W_1 (all d x d): a sample is an observed entry (i, j),
/// input e_j (one-hot), output row i (Batch::output_rows), so f = (W e_j)_i. Weights N(0,
/// init_scale^2).
NGD_API Mlp matrix_factorization(std::int64_t d, std::int64_t depth, double init_scale = 0.1);

}  // namespace ngd
