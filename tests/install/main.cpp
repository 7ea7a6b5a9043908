// Links against the installed ngd and takes one damped NGD step on the reference backend; exits non-zero
// if the loss does not decrease or the library's error types do not cross the shared-library boundary.
#include <cmath>
#include <cstdio>

#include <ngd/ngd.hpp>

int main() {
    ngd::Context ctx = ngd::Context::reference();
    const ngd::Mlp model = ngd::two_layer_relu(3, 4096);
    ngd::Matrix<double> theta = model.init<double>(1);
    ngd::Matrix<double> x(3, 4), y(1, 4);
    for (int i = 0; i < 4; ++i) {
        const double t = 0.7 * i;
        x(0, i) = std::cos(t) / std::sqrt(2.0);
        x(1, i) = std::sin(t) / std::sqrt(2.0);
        x(2, i) = 1 / std::sqrt(2.0);
        y(0, i) = i % 2 ? 1.0 : -1.0;
    }
    ngd::Batch<double> batch{x.view(), y.view(), {}};
    ngd::NaturalGradient<double> ngd_opt({/*learning_rate=*/1.0, /*damping=*/1e-8});
    const ngd::StepReport r = ngd_opt.step(ctx, model, theta.view(), batch, ngd::Loss::squared);
    std::printf("ngd %s: loss %.3e -> %.3e\n", ngd::version_string, r.loss_before, r.loss_after);
    try {
        ngd::NaturalGradient<double>({1.0, -1.0});
        return 1;
    } catch (const ngd::InvalidArgument& e) {
        std::printf("caught InvalidArgument: %s\n", e.what());
    }
    return r.loss_after < 0.1 * r.loss_before ? 0 : 1;
}
