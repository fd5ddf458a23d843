#!/usr/bin/env bash
# Builds the pinned Helm CLI from the Go module proxy into <repo>/.local/bin.
#
# Helm's own release binaries are not reachable from CI, but its Go module is, so the
# CLI is compiled once and cached. Re-running is cheap: an existing binary of the
# pinned version is kept. Prints the path of the binary on stdout.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.21.4}"
# The Kubernetes minor of the client-go that HELM_VERSION is built with (v0.36 for
# v3.21.4): `helm template` assumes this cluster version unless told otherwise.
HELM_KUBE_MINOR="${HELM_KUBE_MINOR:-36}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin_dir="${repo_root}/.local/bin"
helm="${bin_dir}/helm"

if [[ -x "${helm}" ]] \
    && [[ "$("${helm}" version --short 2>/dev/null)" =~ ^${HELM_VERSION}(\+|$) ]]; then
    echo "${helm}"
    exit 0
fi

# The Go toolchain's default place, for shells whose PATH does not include it.
PATH="${PATH}:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
    echo "install-helm.sh: the Go toolchain is needed to build helm" >&2
    exit 1
fi

mkdir -p "${bin_dir}"
# The versions are stamped in by -ldflags, as Helm's own Makefile does. Without them
# `helm version` reports a dev build (and the cache check above never matches), and
# `helm template` assumes Kubernetes 1.20.
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for package in pkg/chartutil pkg/lint/rules; do
    ldflags+=" -X helm.sh/helm/v3/${package}.k8sVersionMajor=1"
    ldflags+=" -X helm.sh/helm/v3/${package}.k8sVersionMinor=${HELM_KUBE_MINOR}"
done
GOBIN="${bin_dir}" CGO_ENABLED=0 go install -ldflags "${ldflags}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
echo "${helm}"
