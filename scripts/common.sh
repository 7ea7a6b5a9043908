# Shared set-up for scripts/test and scripts/demo (sourced, not run): installs the Debian packages the
# build needs when any is missing, then configures and builds ngd with CMake. CUDA is switched on when
# nvcc is on PATH or at /usr/local/cuda/bin/nvcc. Every command is printed before it runs.
#
# Environment: NGD_BUILD_DIR (default build), NGD_JOBS (default nproc), NGD_WITH_CUDA (ON|OFF,
# overrides detection), NGD_CMAKE_ARGS (extra configure arguments, split on spaces, e.g.
# "-DCMAKE_CUDA_ARCHITECTURES=90").

NGD_PACKAGES=(cmake g++ make libgtest-dev libgmock-dev libbenchmark-dev python3 libopenblas-openmp-dev
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

# Sets NGD_CUDA to ON or OFF; puts /usr/local/cuda/bin on PATH when nvcc is only there. An
# NGD_WITH_CUDA=ON|OFF in the environment wins over detection.
ngd_detect_cuda() {
    if [ -n "${NGD_WITH_CUDA:-}" ]; then
        case "$NGD_WITH_CUDA" in
            ON | OFF) NGD_CUDA=$NGD_WITH_CUDA ;;
            *)
                ngd_log "NGD_WITH_CUDA must be ON or OFF, got '$NGD_WITH_CUDA'"
                return 1
                ;;
        esac
        if [ "$NGD_CUDA" = ON ] && ! command -v nvcc >/dev/null 2>&1; then
            export PATH="/usr/local/cuda/bin:$PATH"
        fi
        ngd_log "CUDA backend: $NGD_CUDA (NGD_WITH_CUDA from the environment)"
        return 0
    fi
    if command -v nvcc >/dev/null 2>&1; then
        NGD_CUDA=ON
    elif [ -x /usr/local/cuda/bin/nvcc ]; then
        export PATH="/usr/local/cuda/bin:$PATH"
        NGD_CUDA=ON
    else
        NGD_CUDA=OFF
    fi
    if [ "$NGD_CUDA" = ON ]; then
        ngd_log "CUDA backend: ON ($(command -v nvcc))"
    else
        ngd_log "CUDA backend: OFF (no nvcc on PATH or at /usr/local/cuda/bin)"
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

# Everything a script needs before its own work: packages, CUDA detection.
ngd_setup() {
    ngd_install_packages
    ngd_detect_cuda
}
