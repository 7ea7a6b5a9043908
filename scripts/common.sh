# Shared set-up for scripts/test and scripts/demo (sourced, not run): installs the Debian packages the
# build needs when any is missing, then configures and builds ngd with CMake. CUDA is switched on when
# nvcc is on PATH or at $CUDA_HOME/bin/nvcc (default /usr/local/cuda). Every command is printed
# before it runs.
#
# Environment: NGD_BUILD_DIR (default build), NGD_JOBS (default nproc), NGD_WITH_CUDA (ON|OFF,
# overrides detection), NGD_CMAKE_ARGS (extra configure arguments, split on spaces, e.g.
# "-DCMAKE_CUDA_ARCHITECTURES=90"), CUDA_HOME (where the CUDA toolkit is, if not on PATH).

# What the C++ build and its tests need; scripts that need more (scripts/reproduce: matplotlib) add
# to the list before ngd_setup.
NGD_PACKAGES=(cmake g++ make libgtest-dev libgmock-dev libbenchmark-dev libopenblas-openmp-dev
    liblapack-dev)

ngd_log() { printf '[ngd] %s\n' "$*" >&2; }

# Prints the command, then runs it.
ngd_run() {
    printf '+ %s\n' "$*" >&2
    "$@"
}


ngd_missing_packages() {
    local pkg
    for pkg in "${NGD_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$pkg"
        fi
    done
}

ngd_install_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        ngd_log "not a Debian system: make sure these are installed: ${NGD_PACKAGES[*]}"
        return 0
    fi
    local missing
    mapfile -t missing < <(ngd_missing_packages)
    if [ "${#missing[@]}" -eq 0 ]; then
        ngd_log "Debian packages present: ${NGD_PACKAGES[*]}"
        return 0
    fi
    ngd_log "installing missing Debian packages: ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            ngd_log "not root and no sudo: install ${missing[*]} and run again"
            return 1
        fi
        sudo=(sudo)
    fi
    ngd_run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    ngd_run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
}

# Succeeds when nvcc is on PATH, after putting $CUDA_HOME/bin (default /usr/local/cuda/bin) on PATH
# if nvcc is only there.
ngd_find_nvcc() {
    command -v nvcc >/dev/null 2>&1 && return 0
    local bin="${CUDA_HOME:-/usr/local/cuda}/bin"
    [ -x "$bin/nvcc" ] || return 1
    export PATH="$bin:$PATH"
}

# Sets NGD_CUDA to ON or OFF. An NGD_WITH_CUDA=ON|OFF in the environment wins over detection; ON
# without a CUDA compiler fails with a message that says what is missing and how to get it.
ngd_detect_cuda() {
    if [ -n "${NGD_WITH_CUDA:-}" ]; then
        case "$NGD_WITH_CUDA" in
            ON | OFF) NGD_CUDA=$NGD_WITH_CUDA ;;
            *)
                ngd_log "NGD_WITH_CUDA must be ON or OFF, got '$NGD_WITH_CUDA'"
                return 1
                ;;
        esac
        if [ "$NGD_CUDA" = ON ] && ! ngd_find_nvcc; then
            ngd_log "NGD_WITH_CUDA=ON, but there is no CUDA compiler: nvcc is neither on PATH nor" \
                "at ${CUDA_HOME:-/usr/local/cuda}/bin/nvcc."
            ngd_log "Install the CUDA toolkit (NVIDIA's packages for Debian, see" \
                "https://developer.nvidia.com/cuda-downloads, or Debian's nvidia-cuda-toolkit)" \
                "and put its bin/ on PATH or set CUDA_HOME; or build without the GPU backend:" \
                "NGD_WITH_CUDA=OFF."
            return 1
        fi
        ngd_log "CUDA backend: $NGD_CUDA (NGD_WITH_CUDA from the environment)"
        return 0
    fi
    if ngd_find_nvcc; then
        NGD_CUDA=ON
        ngd_log "CUDA backend: ON ($(command -v nvcc))"
    else
        NGD_CUDA=OFF
        ngd_log "CUDA backend: OFF (no nvcc on PATH or at ${CUDA_HOME:-/usr/local/cuda}/bin; the" \
            "CUDA toolkit must be installed for the GPU backend to be built)"
    fi
}

# ngd_configure BUILD_DIR [cmake args...]: Release build with CUDA per ngd_detect_cuda; later
# arguments override earlier ones, so a caller may pass -DNGD_WITH_CUDA=OFF.
ngd_configure() {
    local dir=$1
    shift
    local cuda_args=(-DNGD_WITH_CUDA="$NGD_CUDA")
    if [ "$NGD_CUDA" = ON ]; then
        cuda_args+=(-DCMAKE_CUDA_COMPILER="$(command -v nvcc)")
    fi
    local extra=()
    if [ -n "${NGD_CMAKE_ARGS:-}" ]; then
        read -r -a extra <<<"$NGD_CMAKE_ARGS"
    fi
    ngd_run cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "${cuda_args[@]}" "$@" "${extra[@]}"
}

# ngd_build BUILD_DIR [targets...]: all targets when none is named.
ngd_build() {
    local dir=$1
    shift
    local targets=()
    local t
    for t in "$@"; do targets+=(--target "$t"); done
    ngd_run cmake --build "$dir" -j"${NGD_JOBS:-$(nproc)}" "${targets[@]}"
}

# ngd_ctest BUILD_DIR [ctest args...]: the tests, failing when a filter (-R, -L, ...) selects none
# (a misspelt or wrongly cased -R would otherwise pass with 0 tests run).
ngd_ctest() {
    local dir=$1
    shift
    ngd_run ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 "$@"
}

# Everything a script needs before its own work: packages, CUDA detection.
ngd_setup() {
    ngd_install_packages
    ngd_detect_cuda
}
