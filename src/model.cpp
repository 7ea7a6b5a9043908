// Mlp: layer geometry, parameter offsets, the presets of the two seed papers, and a deterministic
// initialisation (splitmix64 + Box-Muller, so the same seed gives the same theta on every
// platform).
#include "ngd/model.hpp"

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "check.hpp"
#include "ngd/error.hpp"

namespace ngd {

const char* to_string(Activation a) {
    switch (a) {
        case Activation::identity:
            return "identity";
        case Activation::relu:
            return "relu";
        case Activation::tanh:
            return "tanh";
        case Activation::softplus:
            return "softplus";
        case Activation::gelu:
            return "gelu";
    }
    return "unknown";
}

Mlp::Mlp(std::int64_t n_inputs, std::vector<Layer> layers, Parameterization parameterization,
         double output_scale)
    : n_inputs_(n_inputs),
      layers_(std::move(layers)),
      parameterization_(parameterization),
      output_scale_(output_scale) {
    const char* fn = "ngd::Mlp::Mlp";
    if (n_inputs_ < 1) {
        throw InvalidArgument(
            detail::message(fn, "n_inputs", "must be >= 1, got " + std::to_string(n_inputs_)));
    }
    if (layers_.empty()) throw InvalidArgument(detail::message(fn, "layers", "must not be empty"));
    if (!std::isfinite(output_scale_) || output_scale_ <= 0) {
        throw InvalidArgument(detail::message(
            fn, "output_scale", "must be finite and > 0, got " + detail::number(output_scale_)));
    }
    std::int64_t offset = 0;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
        const Layer& layer = layers_[l];
        if (layer.n_out < 1) {
            throw InvalidArgument(
                detail::message(fn, "layers[" + std::to_string(l) + "].n_out",
                                "must be >= 1, got " + std::to_string(layer.n_out)));
        }
        if (!std::isfinite(layer.init_scale)) {
            throw InvalidArgument(detail::message(
                fn, "layers[" + std::to_string(l) + "].init_scale", "must be finite"));
        }
        offsets_.push_back(offset);
        offset +=
            layer.n_out * fan_in(static_cast<std::int64_t>(l)) + (layer.bias ? layer.n_out : 0);
    }
    n_params_ = offset;
}

Mlp& Mlp::select_output_row(bool on) {
    select_output_row_ = on;
    return *this;
}

std::int64_t Mlp::n_outputs() const { return select_output_row_ ? 1 : n_last(); }

std::int64_t Mlp::fan_in(std::int64_t l) const {
    return l == 0 ? n_inputs_ : layers_.at(l - 1).n_out;
}

std::int64_t Mlp::n_trainable_params() const {
    std::int64_t total = 0;
    for (std::int64_t l = 0; l < n_layers(); ++l) {
        const Layer& layer = layers_[l];
        if (layer.trainable) total += layer.n_out * fan_in(l) + (layer.bias ? layer.n_out : 0);
    }
    return total;
}

std::int64_t Mlp::bias_offset(std::int64_t l) const {
    const Layer& layer = layers_.at(l);
    return layer.bias ? offsets_.at(l) + layer.n_out * fan_in(l) : -1;
}

double Mlp::weight_multiplier(std::int64_t l) const {
    return parameterization_ == Parameterization::ntk ? 1.0 / std::sqrt(double(fan_in(l))) : 1.0;
}

std::string Mlp::describe() const {
    std::ostringstream s;
    s << n_inputs_;
    for (const Layer& layer : layers_) {
        s << "-" << layer.n_out << "(" << to_string(layer.activation)
          << (layer.bias ? "" : ",nobias") << (layer.trainable ? "" : ",frozen") << ")";
    }
    s << (parameterization_ == Parameterization::ntk ? ", ntk" : ", standard");
    if (output_scale_ != 1.0) s << ", output scale " << output_scale_;
    if (select_output_row_) s << ", selects output row";
    s << ", " << n_params_ << " params";
    return s.str();
}

namespace {

// splitmix64: a tiny, well-mixed generator whose output is fixed by the standard of integer
// arithmetic, so initialisations are reproducible across compilers and standard libraries.
struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    // Uniform in (0, 1), never 0 (53 random bits).
    double uniform() { return (double(next() >> 11) + 0.5) * 0x1.0p-53; }
    double normal() {
        const double u1 = uniform(), u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
};

}  // namespace

template <class T>
Matrix<T> Mlp::init(std::uint64_t seed) const {
    Matrix<T> theta(n_params_, 1, MemorySpace::host);
    for (std::int64_t l = 0; l < n_layers(); ++l) {
        const Layer& layer = layers_[l];
        // Each layer draws from its own stream, so changing one layer leaves the others' values.
        SplitMix64 rng{seed * 0x100000001B3ull + std::uint64_t(l) * 0x9E3779B97F4A7C15ull + 1};
        const double scale = layer.init_scale >= 0 ? layer.init_scale
                                                   : (parameterization_ == Parameterization::ntk
                                                          ? 1.0
                                                          : 1.0 / std::sqrt(double(fan_in(l))));
        const std::int64_t n_weights = layer.n_out * fan_in(l);
        T* w = theta.data() + offsets_[l];
        for (std::int64_t i = 0; i < n_weights; ++i) {
            switch (layer.init) {
                case Init::gaussian:
                    w[i] = T(scale * rng.normal());
                    break;
                case Init::sign:
                    w[i] = T((rng.next() >> 63) ? scale : -scale);
                    break;
                case Init::zero:
                    w[i] = T(0);
                    break;
            }
        }
        // Biases start at zero (Matrix host memory is zero-initialised).
    }
    return theta;
}

template Matrix<float> Mlp::init<float>(std::uint64_t) const;
template Matrix<double> Mlp::init<double>(std::uint64_t) const;

namespace {

// The presets check their own arguments, so that an error names the preset and its argument rather
// than the Mlp constructor's.
void check_count(const char* fn, const char* arg, std::int64_t value) {
    if (value < 1) {
        throw InvalidArgument(
            detail::message(fn, arg, "must be >= 1, got " + std::to_string(value)));
    }
}

void check_scale(const char* fn, const char* arg, double value) {
    if (!std::isfinite(value)) {
        throw InvalidArgument(detail::message(
            fn, arg, "must be finite (negative: the default), got " + detail::number(value)));
    }
}

}  // namespace

Mlp two_layer_relu(std::int64_t d, std::int64_t m, double init_std) {
    const char* fn = "ngd::two_layer_relu";
    check_count(fn, "d", d);
    check_count(fn, "m", m);
    check_scale(fn, "init_std", init_std);
    Layer hidden{m, Activation::relu, /*bias=*/false, /*trainable=*/true, Init::gaussian, init_std};
    Layer output{1, Activation::identity, /*bias=*/false, /*trainable=*/false, Init::sign, 1.0};
    return Mlp(d, {hidden, output}, Parameterization::standard, 1.0 / std::sqrt(double(m)));
}

Mlp deep_linear(std::int64_t d, std::int64_t width, std::int64_t depth, std::int64_t n_out,
                double init_scale) {
    const char* fn = "ngd::deep_linear";
    check_count(fn, "d", d);
    check_count(fn, "depth", depth);
    if (depth > 1) check_count(fn, "width", width);  // depth 1 has no hidden layer
    check_count(fn, "n_out", n_out);
    check_scale(fn, "init_scale", init_scale);
    std::vector<Layer> layers;
    for (std::int64_t l = 0; l < depth; ++l) {
        layers.push_back(Layer{l + 1 == depth ? n_out : width, Activation::identity, false, true,
                               Init::gaussian, init_scale});
    }
    return Mlp(d, std::move(layers));
}

Mlp matrix_factorization(std::int64_t d, std::int64_t depth, double init_scale) {
    const char* fn = "ngd::matrix_factorization";
    check_count(fn, "d", d);
    check_count(fn, "depth", depth);
    check_scale(fn, "init_scale", init_scale);
    std::vector<Layer> layers(
        depth, Layer{d, Activation::identity, false, true, Init::gaussian, init_scale});
    Mlp model(d, std::move(layers));
    model.select_output_row(true);
    return model;
}

}  // namespace ngd
