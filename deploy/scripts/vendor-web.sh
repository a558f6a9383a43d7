#!/usr/bin/env bash
# Refresh the web console's vendored front-end files from the npm registry, at the
# pinned versions below. Run by hand when upgrading; the files are committed, so
# `make run` and `make test` need neither npm nor a network, and no CDN is used.
set -Eeuo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
HTMX_VERSION=2.0.11
HTMX_SSE_VERSION=2.2.4
dest=$REPO_ROOT/services/web/static/vendor
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
cd "$work"
npm pack --silent "htmx.org@$HTMX_VERSION" "htmx-ext-sse@$HTMX_SSE_VERSION" >/dev/null
mkdir -p htmx sse "$dest"
tar xzf "htmx.org-$HTMX_VERSION.tgz" -C htmx --strip-components=1
tar xzf "htmx-ext-sse-$HTMX_SSE_VERSION.tgz" -C sse --strip-components=1
cp htmx/dist/htmx.min.js "$dest/htmx.min.js"
cp htmx/LICENSE "$dest/htmx.LICENSE"
cp sse/sse.js "$dest/htmx-ext-sse.js"
{
  echo "# Vendored by deploy/scripts/vendor-web.sh from the npm registry (sha256 of each file)."
  echo "htmx.org $HTMX_VERSION"
  echo "htmx-ext-sse $HTMX_SSE_VERSION"
  (cd "$dest" && sha256sum htmx.min.js htmx-ext-sse.js htmx.LICENSE)
} >"$dest/VERSIONS"
echo "vendored htmx.org $HTMX_VERSION and htmx-ext-sse $HTMX_SSE_VERSION into ${dest#"$REPO_ROOT"/}"
