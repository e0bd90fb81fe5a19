#!/bin/bash
# hybrid-failover standby: the boot loader, the only program in the user data. Run at EVERY boot by
# hfo-bootstrap.service. It fetches the node's configuration from SSM Parameter Store (written by
# Terraform under $HFO_SSM_PATH: the bootstrap script, its settings, K3s's configuration, the Argo CD
# bootstrap manifests and the images to pre-pull), checks it against its SHA256SUMS, and runs the
# bootstrap script it contains. So a `terraform apply` that changes any of them reaches the node at its
# next boot, and never replaces the instance (docs/terraform.md#the-standby-node).
#
# Each file is stored gzip-compressed and base64-encoded, cut into parameters of at most 4096
# characters (the Standard tier's limit, which is free): <path>/<file>/00, <path>/<file>/01, ...
# When SSM cannot be read, or what it holds is incomplete (an apply under way), the configuration of
# the last good boot is used, so K3s still comes up.
set -uo pipefail

NODE_ENV="${HFO_NODE_ENV:-/etc/hfo/node.env}"
STATE_DIR="${HFO_STATE_DIR:-/var/lib/hfo}"

# shellcheck source=/dev/null
. "$NODE_ENV" # AWS_REGION, HFO_SSM_PATH
export AWS_REGION AWS_DEFAULT_REGION="$AWS_REGION"

umask 077
log() { echo "hfo-node-loader: $*"; }

# Fetch every parameter under $HFO_SSM_PATH into directory $1, decoded; fail on anything incomplete.
fetch() {
  local out="$1" listing name value rel file b64
  listing="$out.listing"
  aws ssm get-parameters-by-path --path "$HFO_SSM_PATH" --recursive \
    --query 'Parameters[].[Name,Value]' --output text >"$listing" || return 1
  [ -s "$listing" ] || { log "no parameters under $HFO_SSM_PATH"; return 1; }
  # One line per chunk, "name<TAB>value"; sorted by name, the chunks of a file come in order.
  while IFS=$'\t' read -r name value; do
    rel="${name#"$HFO_SSM_PATH"/}"
    file="${rel%/*}"
    case "$file" in "" | /* | *..*) log "unexpected parameter name $name"; return 1 ;; esac
    mkdir -p "$out/$(dirname "$file")"
    printf '%s' "$value" >>"$out/$file.b64"
  done < <(LC_ALL=C sort "$listing")
  rm -f "$listing"
  while IFS= read -r -d '' b64; do
    base64 -d "$b64" | gunzip >"${b64%.b64}" || { log "cannot decode ${b64#"$out"/}"; return 1; }
    rm -f "$b64"
  done < <(find "$out" -name '*.b64' -print0)
  [ -f "$out/SHA256SUMS" ] || { log "no SHA256SUMS under $HFO_SSM_PATH"; return 1; }
  (cd "$out" && sha256sum --quiet --strict -c SHA256SUMS) || { log "checksums do not match (an apply under way?)"; return 1; }
}

mkdir -p "$STATE_DIR"
new="$STATE_DIR/config.new"
rm -rf "$new" "$new.listing"
mkdir -p "$new"
if fetch "$new"; then
  rm -rf "$STATE_DIR/config.old"
  [ -d "$STATE_DIR/config" ] && mv "$STATE_DIR/config" "$STATE_DIR/config.old"
  mv "$new" "$STATE_DIR/config"
  rm -rf "$STATE_DIR/config.old"
  log "configuration read from $HFO_SSM_PATH ($(wc -l <"$STATE_DIR/config/SHA256SUMS") files)"
else
  rm -rf "$new" "$new.listing"
  if [ ! -f "$STATE_DIR/config/bootstrap.sh" ]; then
    log "FAILED: no configuration from $HFO_SSM_PATH and none from an earlier boot (systemd retries in 30 s)"
    exit 1
  fi
  log "WARNING: using the configuration of the last good boot"
fi

HFO_CONFIG_DIR="$STATE_DIR/config" HFO_STATE_DIR="$STATE_DIR" exec bash "$STATE_DIR/config/bootstrap.sh"
