// The whole public API of ngd: exact damped natural-gradient steps through the Jacobian Gram
// matrix.
#pragma once

#include "ngd/context.hpp"
#include "ngd/error.hpp"
#include "ngd/export.hpp"
#include "ngd/loss.hpp"
#include "ngd/matrix.hpp"
#include "ngd/model.hpp"
#include "ngd/optimizer.hpp"
#include "ngd/stages.hpp"
#include "ngd/version.hpp"
