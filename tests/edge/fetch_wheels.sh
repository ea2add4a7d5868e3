#!/usr/bin/env bash
# Fetch the wheels the edge harness installs into Pyodide, from PyPI, into tests/edge/.wheels/.
# The platform tag comes from the installed npm `pyodide` (pyodide-lock.json: abi_version), so
# the compiled wheel (pydantic-core) always matches the Pyodide the harness loads.
#   PYTHON=python3 tests/edge/fetch_wheels.sh        (needs `npm ci` in tests/edge first)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-python3}"
lock="$here/node_modules/pyodide/pyodide-lock.json"
if [[ -f "$lock" ]]; then
  read -r abi pyver < <("$py" -c 'import json,sys; i=json.load(open(sys.argv[1]))["info"]; print(i["abi_version"], ".".join(i["python"].split(".")[:2]))' "$lock")
else
  abi="2026_0"; pyver="3.14"
fi
platform="pyemscripten_${abi}_wasm32"
abi_tag="cp${pyver/./}"
dest="$here/.wheels"
echo "fetching Pyodide wheels for $platform / python $pyver into $dest" >&2
fetch() {  # fetch REQUIREMENTS DEST
  mkdir -p "$2"
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --platform "$platform" --python-version "$pyver" \
    --implementation cp --abi "$abi_tag" --abi none \
    -r "$1" -d "$2"
  ls -1 "$2"/*.whl >&2
}
fetch "$here/pyodide-requirements.txt" "$dest"
# pytest & co. go only into the contract-suite isolate, never into a Worker's bundle.
fetch "$here/pyodide-test-requirements.txt" "$here/.wheels-test"
