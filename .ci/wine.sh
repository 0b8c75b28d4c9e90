#!/usr/bin/env bash
# Runs multiexit's tests as a Windows binary under Debian's wine64.
#
# Go 1.24 and later need bcryptprimitives.dll (ProcessPrng), which wine 8
# lacks: this script builds a shim from .ci/bcryptprimitives.c with mingw and
# puts it in a private wine prefix, made in a temporary directory and removed
# at the end. It installs what is missing (as root, on Debian), so it works on
# a fresh machine and again on the same one.
#
# The whole test binary runs, every test: it must exit 0. A test that cannot
# run under Wine skips, saying why (Wine refuses console control events:
# GenerateConsoleCtrlEvent fails with "Invalid access" without a console,
# "Invalid handle" with one; the sources are not beside the binary). The
# tests listed below must not only pass the run: each must PASS, not skip.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

# The tests that must PASS under Wine (not skip).
TESTS=(
	# the exit stack and the registry codec (in-process; internal/ctl's too)
	TestHandleNamesItsHook TestConcurrentRegisterUnregister TestRegisterAfterDrained TestDrainerOrder
	TestRegistryRoundTrip TestEnvContract TestRegistryErrorsNameTheProblem TestOversizeRegistryIsRefusedAtStart
	TestDefineBindsTypedArguments FuzzDecodeRegistry
	# LIFO hooks and exit codes (scenario processes)
	TestExit TestRunExitCodes TestUnregister TestFailingHooksAreReportedAndTheRestRun
	TestHangingHooksAreAbandoned TestInstallTwice TestRegisterAndExitInsideHooks TestLoggerReportsProgress
	# workers, shared hooks, job-object containment
	TestWindowsCascade TestWindowsWorkerEnvironment TestWindowsJobKillsTreeWhenParentIsKilled
	TestWindowsJobKillsTreeWhenParentExits TestWindowsExternalChild
	# internal/sdnotify: unsupported, and says so
	TestWindows TestScrubEnv TestRelayEnv
)

log() { printf 'wine.sh: %s\n' "$*" >&2; }

# Install what is missing.
find_wine() {
	local c
	for c in wine64 /usr/lib/wine/wine64 wine; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return
		fi
	done
}
find_wineserver() {
	local c
	for c in wineserver /usr/lib/wine/wineserver64 /usr/lib/wine/wineserver; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return
		fi
	done
}
need=()
[[ -n "$(find_wine)" ]] || need+=(wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need+=(gcc-mingw-w64-x86-64)
if ((${#need[@]})); then
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
command -v go >/dev/null || { log "go is not installed"; exit 1; }
WINE=$(find_wine)
WINESERVER=$(find_wineserver)
[[ -n "$WINE" && -n "$WINESERVER" ]] || { log "wine is not usable after the install"; exit 1; }
log "$("$WINE" --version), $(x86_64-w64-mingw32-gcc -dumpversion) mingw, $(go version)"

work=$(mktemp -d "${TMPDIR:-/tmp}/multiexit-wine.XXXXXX")
export WINEPREFIX="$work/prefix" WINEARCH=win64 WINEDEBUG=-all
# No Mono or Gecko install prompts; no display needed.
export WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY
cleanup() {
	# Only this script's own wine prefix: its wineserver and everything it runs.
	"$WINESERVER" -k >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

log "building the ProcessPrng shim and the Windows test binary"
x86_64-w64-mingw32-gcc -O2 -Wall -Wextra -Werror -shared -s -Wl,--no-insert-timestamp \
	-o "$work/bcryptprimitives.dll" .ci/bcryptprimitives.c -ladvapi32
GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go test -c -o "$work/multiexit_test.exe" .
GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go test -c -o "$work/sdnotify_test.exe" ./internal/sdnotify
GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go test -c -o "$work/ctl_test.exe" ./internal/ctl

log "making the wine prefix"
"$WINE" wineboot --init </dev/null >/dev/null 2>&1
"$WINESERVER" -w
cp "$work/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"

log "running every test under wine"
start=$SECONDS
set +e
# -test.timeout bounds the tests; timeout bounds wine itself, should it hang.
(cd "$work" && timeout --kill-after=30 900 "$WINE" ./multiexit_test.exe -test.v -test.count=1 -test.timeout=8m </dev/null 2>&1) |
	tee "$work/out.txt"
rc=${PIPESTATUS[0]}
# The notify protocol's package: on Windows it only says it is unsupported.
(cd "$work" && timeout --kill-after=30 300 "$WINE" ./sdnotify_test.exe -test.v -test.count=1 -test.timeout=2m </dev/null 2>&1) |
	tee -a "$work/out.txt"
((PIPESTATUS[0] == 0)) || rc=1
# The registry codec's package.
(cd "$work" && timeout --kill-after=30 300 "$WINE" ./ctl_test.exe -test.v -test.count=1 -test.timeout=2m </dev/null 2>&1) |
	tee -a "$work/out.txt"
((PIPESTATUS[0] == 0)) || rc=1
set -e
out="$work/out.txt"

missing=()
for t in "${TESTS[@]}"; do
	grep -q -- "^--- PASS: $t " "$out" || missing+=("$t")
done
passed=$(grep -c -- '--- PASS: ' "$out" || true)
failed=$(grep -c -- '--- FAIL: ' "$out" || true)
skipped=$(grep -c -- '--- SKIP: ' "$out" || true)
echo
echo "wine.sh: not exercised under wine (skipped, see the reasons above):"
grep -- '--- SKIP: ' "$out" | sed 's/^ */  /' || echo "  nothing"
echo "wine.sh: the test binary exited with $rc after $((SECONDS - start)) s"
if ((rc != 0 || ${#missing[@]} > 0)); then
	((${#missing[@]} == 0)) || echo "wine.sh: these tests did not pass: ${missing[*]}"
	echo "wine: $passed passed, $((failed > 0 ? failed : 1)) failed, $skipped skipped"
	exit 1
fi
echo "wine: $passed passed, $failed failed, $skipped skipped"
