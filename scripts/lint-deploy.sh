#!/usr/bin/env bash
# make lint-deploy: every offline check of the deployment files, with the real tools.
#   hadolint        Dockerfile
#   compose schema  docker-compose.yml against the Compose Specification's JSON schema
#   nginx -t        deploy/nginx/redfile.conf.template, rendered by envsubst as the nginx image does
#   helm            lint --strict and template, for every helm/redfile/ci/*-values.yaml
#   kubernetes      every rendered object and every k8s/ object against the schemas of
#                   Kubernetes 1.30 and of the newest release kubernetes-validate bundles,
#                   plus policy (scripts/validate_k8s.py)
#   kustomize       kubectl kustomize builds k8s/base and k8s/overlays/production
#   drift           k8s/base/redfile.yaml is the chart rendered with k8s/chart-values.yaml
#   shell           sh -n / bash -n of every deployment script
# Runs every check, then exits non-zero if any failed.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.tools/bin"
PY="$ROOT/.venv/bin/python"
VENV_BIN="$ROOT/.venv/bin"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
K8S_VERSIONS=(--kubernetes-version 1.30 --kubernetes-version latest)

scripts/install-deploy-tools.sh || { echo "lint-deploy: could not install helm and kubectl" >&2; exit 1; }
scripts/install-system-tools.sh || { echo "lint-deploy: could not install nginx" >&2; exit 1; }
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

failed=()
check() {
  local name=$1
  shift
  local start=$SECONDS
  if "$@" >"$OUT/log" 2>&1; then
    printf 'ok    %-66s %3ss\n' "$name" "$((SECONDS - start))"
  else
    printf 'FAIL  %-66s %3ss\n' "$name" "$((SECONDS - start))"
    sed 's/^/      /' "$OUT/log"
    failed+=("$name")
  fi
}

render_and_validate() {
  local values=$1 rendered="$OUT/$(basename "$1" .yaml).rendered.yaml"
  "$BIN/helm" template redfile helm/redfile -f "$values" >"$rendered" &&
    "$PY" scripts/validate_k8s.py "${K8S_VERSIONS[@]}" "$rendered"
}

kustomize_and_validate() {
  local dir=$1 built="$OUT/kustomize-$(echo "$1" | tr / -).yaml"
  "$BIN/kubectl" kustomize "$dir" >"$built" && "$PY" scripts/validate_k8s.py "${K8S_VERSIONS[@]}" "$built"
}

nginx_config_test() {
  local dir="$OUT/nginx" names='${REDFILE_LISTEN} ${REDFILE_AUTH_UPSTREAM} ${REDFILE_FILES_UPSTREAM} ${REDFILE_ADMIN_UPSTREAM}'
  mkdir -p "$dir/temp"
  REDFILE_LISTEN=8080 REDFILE_AUTH_UPSTREAM=127.0.0.1:8001 REDFILE_FILES_UPSTREAM=127.0.0.1:8002 \
    REDFILE_ADMIN_UPSTREAM=127.0.0.1:8003 envsubst "$names" <deploy/nginx/redfile.conf.template >"$dir/redfile.conf"
  if grep -n '${' "$dir/redfile.conf"; then
    echo "a \${...} name is left: add it to the compose environment and to this check" >&2
    return 1
  fi
  printf 'pid %s/nginx.pid;\nevents {}\nhttp {\n  client_body_temp_path %s/temp/b;\n  proxy_temp_path %s/temp/p;\n  include %s/redfile.conf;\n}\n' \
    "$dir" "$dir" "$dir" "$dir" >"$dir/nginx.conf"
  "$NGINX" -t -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
}

shell_syntax() {
  local f
  for f in helm/redfile/files/redis/*.sh deploy/docker/redfile-serve; do sh -n "$f" || return 1; done
  for f in scripts/*.sh; do bash -n "$f" || return 1; done
}

check "hadolint Dockerfile" "$VENV_BIN/hadolint" --failure-threshold style Dockerfile
check "compose-spec schema: docker-compose.yml" "$VENV_BIN/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
check "nginx -t: deploy/nginx/redfile.conf.template" nginx_config_test
check "values.schema.json is a valid JSON schema" "$VENV_BIN/check-jsonschema" --check-metaschema helm/redfile/values.schema.json
for values in helm/redfile/ci/*-values.yaml; do
  check "helm lint --strict -f $values" "$BIN/helm" lint --strict helm/redfile -f "$values"
  check "helm template + k8s schemas/policy: $(basename "$values")" render_and_validate "$values"
done
check "k8s/base is the chart's defaults (render-k8s --check)" env HELM="$BIN/helm" scripts/render-k8s.sh --check
check "kubectl kustomize + k8s schemas/policy: k8s/base" kustomize_and_validate k8s/base
check "kubectl kustomize + k8s schemas/policy: k8s/overlays/production" kustomize_and_validate k8s/overlays/production
check "shell syntax of the deployment scripts" shell_syntax

if ((${#failed[@]})); then
  echo "lint-deploy: ${#failed[@]} check(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "lint-deploy: all checks passed"
