#!/usr/bin/env bash
# What a new user meets first, checked by ctest (scripts_check) and so by CI: the scripts' behaviour
# that needs no network or root (NGD_WITH_CUDA=ON without nvcc says what is missing; a ctest filter
# that selects nothing fails), the README's commands (its ctest filter selects real tests, the
# install section configures without the tests and gives a complete consumer CMakeLists.txt), what
# the README says up front, and the demo's summary line at eta = 1.
#   tests/scripts_check.sh SOURCE_DIR BUILD_DIR [ZHANG_CONVERGENCE]
set -uo pipefail
src=$1
build=$2
demo=${3:-}
cd "$src"
failures=0

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    failures=$((failures + 1))
}
pass() { printf 'ok: %s\n' "$*"; }

for script in scripts/common.sh scripts/test scripts/demo scripts/reproduce .ci/run; do
    bash -n "$script" || fail "$script does not parse"
done

# 1. NGD_WITH_CUDA=ON without any nvcc: a message naming nvcc and the way out, and a failure. PATH
# keeps every directory but those that hold an nvcc.
path_without_nvcc=
IFS=: read -r -a dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
    [ -x "$dir/nvcc" ] || path_without_nvcc+="${path_without_nvcc:+:}$dir"
done
out=$(PATH=$path_without_nvcc CUDA_HOME=/nonexistent NGD_WITH_CUDA=ON \
    bash -c 'set -euo pipefail; source scripts/common.sh; ngd_detect_cuda; echo "NGD_CUDA=$NGD_CUDA"' \
    2>&1)
rc=$?
if [ "$rc" -ne 0 ] && grep -q 'nvcc' <<<"$out" && grep -q 'NGD_WITH_CUDA=OFF' <<<"$out" &&
    grep -q 'CUDA toolkit' <<<"$out"; then
    pass "NGD_WITH_CUDA=ON without nvcc fails and says what is missing"
else
    fail "NGD_WITH_CUDA=ON without nvcc: exit $rc, output: $out"
fi
out=$(env -u NGD_WITH_CUDA PATH="$path_without_nvcc" CUDA_HOME=/nonexistent \
    bash -c 'set -euo pipefail; source scripts/common.sh; ngd_detect_cuda; echo "NGD_CUDA=$NGD_CUDA"' \
    2>&1) && grep -q 'NGD_CUDA=OFF' <<<"$out" && grep -q 'CUDA toolkit' <<<"$out" &&
    pass "without nvcc the detection falls back to OFF and says why" ||
    fail "detection without nvcc: $out"

# 2. A ctest filter that selects no test is an error in scripts/test, not a pass with 0 tests.
out=$(bash -c 'source scripts/common.sh; ngd_ctest "$1" -R ThisPatternMatchesNoTest' _ "$build" \
    2>&1)
rc=$?
[ "$rc" -ne 0 ] && pass "a filter that selects nothing fails (exit $rc)" ||
    fail "ngd_ctest with an empty selection exited 0: $out"
grep -q 'ngd_ctest ' scripts/test || fail "scripts/test does not run ctest through ngd_ctest"

# 3. Every 'scripts/test -- -R PATTERN' in the README selects at least one test.
mapfile -t patterns < <(grep -o 'scripts/test -- -R [^` ]*' README.md | awk '{print $4}')
[ "${#patterns[@]}" -gt 0 ] || fail "README shows no 'scripts/test -- -R' example"
for pattern in "${patterns[@]}"; do
    count=$(ctest --test-dir "$build" -N -R "$pattern" | sed -n 's/^Total Tests: //p')
    [ "${count:-0}" -gt 0 ] && pass "README filter -R $pattern selects $count tests" ||
        fail "README filter -R $pattern selects no test"
done

# 4. The install section: configure without the tests, a complete consumer CMakeLists.txt, and
# -j"$(nproc)" rather than a bare -j (which means unlimited jobs).
section=$(sed -n '/^### Linking the installed package/,/^## /p' README.md)
grep -q -- '-DNGD_BUILD_TESTS=OFF' <<<"$section" || fail "install section: no -DNGD_BUILD_TESTS=OFF"
grep -q 'cmake_minimum_required(VERSION' <<<"$section" || fail "consumer: no cmake_minimum_required"
grep -q '^project(' <<<"$section" || fail "consumer: no project()"
grep -q 'find_package(ngd' <<<"$section" || fail "consumer: no find_package(ngd)"
grep -q 'ngd::ngd' <<<"$section" || fail "consumer: does not link ngd::ngd"
if grep -Eq -- '-j( |$)' <<<"$section"; then fail "install section: a bare -j"; fi
grep -q -- '-j"$(nproc)"' <<<"$section" || fail "install section: no -j\"\$(nproc)\""
pass "install section checked"

# 5. What the README says before the first command.
quick=$(sed -n '/^## Quick start/,/^    scripts\/demo/p' README.md)
for needle in 'sudo' 'root' '100 MB' 'scripts/reproduce' '12 minutes' 'docs/img' 'nvcc' 'PATH' \
    'demo'; do
    grep -q -- "$needle" <<<"$quick" || fail "Quick start does not mention '$needle' up front"
done
pass "Quick start preamble checked"

# 6. No package the scripts do not use: python3 only when scripts/test or scripts/demo runs Python.
packages=$(bash -c 'source scripts/common.sh; printf "%s\n" "${NGD_PACKAGES[@]}"')
if grep -qx 'python3' <<<"$packages" && ! grep -q 'python' scripts/test scripts/demo; then
    fail "python3 is in NGD_PACKAGES but neither scripts/test nor scripts/demo uses it"
else
    pass "package list checked"
fi

# 7. The demo's summary compares with (1 - eta)^2 only where that is not 0.
if [ -n "$demo" ] && [ -x "$demo" ]; then
    args=(--n 8 --d 4 --widths 64 --steps 2 --backend reference --methods ngd)
    out=$("$demo" "${args[@]}" --lr 1 2>&1)
    if grep -q '(1 - eta)^2' <<<"$out"; then
        fail "demo at eta = 1 prints (1 - eta)^2: $(grep '(1 - eta)' <<<"$out")"
    fi
    grep -q 'geometric-mean ratio' <<<"$out" || fail "demo at eta = 1: no summary ratio"
    out=$("$demo" "${args[@]}" --lr 0.5 2>&1)
    grep -q '(1 - eta)^2 = 2.500e-01' <<<"$out" || fail "demo at eta = 0.5: no (1 - eta)^2 line"
    pass "demo summary checked"
fi

if [ "$failures" -gt 0 ]; then
    printf '%d check(s) failed\n' "$failures" >&2
    exit 1
fi
echo "all script checks passed"
