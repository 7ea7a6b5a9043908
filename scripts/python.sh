# The Python package's build and tests (sourced by scripts/test, not run): a virtual environment
# kept between runs, the package built from python/ with pip (scikit-build-core, incremental in
# build-python/skbuild), then pytest over python/tests. Uses ngd_log and ngd_run from common.sh.
#
# Environment: NGD_PYTHON=0 skips this step; NGD_PYTHON_VENV (default build-python/venv) and
# NGD_PYTHON_BUILD_DIR (default build-python/skbuild);
# NGD_PYTHON_CUDA=ON|OFF (default OFF: the tests' build skips the CUDA backend to save build time;
# a user's `pip install ./python` builds it wherever nvcc is found); NGD_PYTHON_TORCH (default 1)
# installs PyTorch (about 3 GB of wheels) so that the PyTorch tests run, 0 leaves it out and they
# skip; NGD_PYTHON_EXAMPLES (default 1) installs what python/examples need (scikit-learn,
# matplotlib, tqdm), so that the examples' tests run.

# Debian's venv and headers, when the python3 on PATH is Debian's and lacks them.
ngd_python_prerequisites() {
    if python3 -c 'import ensurepip, sysconfig, os, sys; h = sysconfig.get_paths()["include"]; sys.exit(0 if os.path.exists(os.path.join(h, "Python.h")) else 1)' 2>/dev/null; then
        return 0
    fi
    ngd_log "python3 lacks venv or its headers: installing python3-venv python3-dev"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    ngd_run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    ngd_run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends python3-venv python3-dev
}

# Creates (once) and fills the virtual environment; prints nothing but pip's complaints.
ngd_python_venv() {
    local venv=$1
    if [ ! -x "$venv/bin/python" ]; then
        ngd_python_prerequisites
        ngd_run python3 -m venv "$venv"
    fi
    local pkgs=(scikit-build-core nanobind numpy pytest "jax[cpu]")
    [ "${NGD_PYTHON_TORCH:-1}" = 1 ] && pkgs+=(torch)
    [ "${NGD_PYTHON_EXAMPLES:-1}" = 1 ] && pkgs+=(scikit-learn matplotlib tqdm)
    ngd_run "$venv/bin/python" -m pip install -q --disable-pip-version-check "${pkgs[@]}"
}

# Builds and installs the package, then runs pytest; returns pytest's exit code.
ngd_python_test() {
    local start=$SECONDS
    local venv=${NGD_PYTHON_VENV:-build-python/venv}
    ngd_python_venv "$venv" || return 1
    local cuda=${NGD_PYTHON_CUDA:-OFF}
    local cuda_args=(-Ccmake.define.NGD_WITH_CUDA="$cuda")
    if [ "$cuda" = ON ]; then
        command -v nvcc >/dev/null 2>&1 || export PATH="/usr/local/cuda/bin:$PATH"
        cuda_args+=(-Ccmake.define.CMAKE_CUDA_COMPILER="$(command -v nvcc)")
    fi
    ngd_run "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        --no-build-isolation ./python -Cbuild-dir="$(realpath -m "${NGD_PYTHON_BUILD_DIR:-build-python/skbuild}")" \
        -Cbuild.tool-args=-j"${NGD_JOBS:-$(nproc)}" "${cuda_args[@]}" || return 1
    ngd_log "Python package built in $((SECONDS - start)) s (CUDA $cuda); running pytest"
    local rc=0
    ngd_run "$venv/bin/python" -m pytest -p no:cacheprovider -q -rs python/tests || rc=$?
    ngd_log "pytest exit code $rc; Python step $((SECONDS - start)) s"
    return "$rc"
}
