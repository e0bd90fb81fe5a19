#!/bin/bash
# hybrid-failover standby bootstrap. Run at EVERY boot by the loader (hfo-node-loader.sh), from the
# configuration it fetched from SSM Parameter Store into $HFO_CONFIG_DIR. Idempotent: each step checks
# what is already there. A step that fails is reported and the others still run, so the bot's K3s
# comes up even when, say, Tailscale cannot; the unit then fails and systemd retries it.
#
#   k3s-config  /etc/rancher/k3s/config.yaml from Terraform (pod and service CIDRs included); the
#               network settings are never changed on a cluster that already started
#   manifests   the Argo CD bootstrap manifests into K3s's auto-deploy directory; K3s applies a file
#               when it changes on disk, so an edit reaches the cluster at this boot
#   tailscale   joins the tailnet once, with the auth key from SSM Parameter Store (SecureString), then
#               deletes that parameter and recreates it with a note, so the node can never read it again (docs/security.md#tailscale-auth-key-of-the-standby)
#   k3s         the pinned K3s, and waits for its API
#   prepull     pulls the workload images (Terraform's list, then what the synced workloads name), so
#               a failover never waits for a registry
#
# No secret is ever on a command line or in a log: the auth key goes to a mode-0600 file on a tmpfs.
set -uo pipefail

CONFIG_DIR="${HFO_CONFIG_DIR:-/var/lib/hfo/config}"
STATE_DIR="${HFO_STATE_DIR:-/var/lib/hfo}"
RUN_DIR="${HFO_RUN_DIR:-/run/hfo}"
K3S_CONFIG="${HFO_K3S_CONFIG:-/etc/rancher/k3s/config.yaml}"
K3S_DB="${HFO_K3S_DB:-/var/lib/rancher/k3s/server/db}"
K3S_MANIFESTS="${HFO_K3S_MANIFESTS:-/var/lib/rancher/k3s/server/manifests}"
API_WAIT_S="${HFO_API_WAIT_S:-300}"
PREPULL_WAIT_S="${HFO_PREPULL_WAIT_S:-600}"

# shellcheck source=/dev/null
. "$CONFIG_DIR/bootstrap.env"
export AWS_REGION AWS_DEFAULT_REGION="$AWS_REGION"

umask 077
mkdir -p "$RUN_DIR" "$STATE_DIR"
failed=0
k3s_config_changed=0

log() { echo "hfo-bootstrap: $*"; }
fail() { log "FAILED: $*"; failed=1; }

# The settings K3s cannot change once the cluster has started (docs.k3s.io: set before the first start).
network_keys() { grep -E '^"?(cluster-cidr|service-cidr|cluster-dns)"?:' "$1" 2>/dev/null | sort; }

step_k3s_config() {
  local wanted="$CONFIG_DIR/k3s-config.yaml"
  if [ -f "$K3S_CONFIG" ] && cmp -s "$wanted" "$K3S_CONFIG"; then
    return 0
  fi
  if [ -f "$K3S_CONFIG" ] && [ -d "$K3S_DB" ] && [ "$(network_keys "$wanted")" != "$(network_keys "$K3S_CONFIG")" ]; then
    log "the pod or service network changed, which K3s cannot apply to a cluster that already started:"
    log "keeping $K3S_CONFIG as it is; replace the standby to use the new CIDRs (docs/runbook.md#replace-the-standby-instance)"
    return 1
  fi
  mkdir -p "$(dirname "$K3S_CONFIG")"
  install -m 0600 "$wanted" "$K3S_CONFIG.new" && mv "$K3S_CONFIG.new" "$K3S_CONFIG" || return 1
  k3s_config_changed=1
  log "k3s configuration written"
}

# Write each manifest only when it differs (K3s re-applies a file whose modification time changes),
# and remove the ones this script wrote at an earlier boot that Terraform no longer lists. K3s keeps
# the objects of a removed file (docs.k3s.io, auto-deploying manifests).
step_manifests() {
  local list="$STATE_DIR/manifests.list" name src dest wrote=0 removed=0
  mkdir -p "$K3S_MANIFESTS"
  : >"$list.new"
  if [ -d "$CONFIG_DIR/manifests" ]; then
    for src in "$CONFIG_DIR"/manifests/*; do
      [ -f "$src" ] || continue
      name="$(basename "$src")"
      dest="$K3S_MANIFESTS/$name"
      echo "$name" >>"$list.new"
      if ! cmp -s "$src" "$dest"; then
        install -m 0600 "$src" "$dest.hfo-new" && mv "$dest.hfo-new" "$dest" || return 1
        wrote=$((wrote + 1))
      fi
    done
  fi
  if [ -f "$list" ]; then
    while IFS= read -r name; do
      if [ -n "$name" ] && ! grep -qxF "$name" "$list.new"; then
        rm -f "$K3S_MANIFESTS/$name"
        removed=$((removed + 1))
      fi
    done <"$list"
  fi
  mv "$list.new" "$list"
  log "bootstrap manifests: $(wc -l <"$list") listed, $wrote written, $removed removed"
}

# Once on the tailnet, the stored auth key is destroyed. SSM keeps a parameter's earlier versions
# readable by a version selector (name:1) and IAM cannot limit a read to the newest one, so an
# overwrite would leave the key within the node's reach: the node deletes the parameter (every
# version goes with it) and recreates it at once holding a note, with the same name, type,
# description and tags (Terraform writes only the value, write-only, so it sees no change). The version it
# leaves is remembered; later boots read the version number only, never the value, and a new key
# put later (for a new standby, a new version) is consumed at the next boot.
parameter_version() {
  aws ssm get-parameter --name "$HFO_TS_SECRET" --query Parameter.Version --output text
}

consume_tailscale_key() {
  local current done_file="$STATE_DIR/tailscale-key-consumed"
  current="$(parameter_version)" || return 1
  if [ -f "$done_file" ] && [ "$current" = "$(cat "$done_file")" ]; then
    return 0
  fi
  local tags="$RUN_DIR/tailscale-key-tags.json" with_tags=()
  aws ssm list-tags-for-resource --resource-type Parameter --resource-id "$HFO_TS_SECRET" \
    --query TagList --output json >"$tags" || return 1
  [ "$(tr -d '[:space:]' <"$tags")" = "[]" ] || with_tags=(--tags "file://$tags")
  aws ssm delete-parameter --name "$HFO_TS_SECRET" || return 1
  aws ssm put-parameter --name "$HFO_TS_SECRET" --type SecureString --tier Standard "${with_tags[@]}" \
    --description "hybrid-failover: Tailscale auth key the standby node joins the tailnet with" \
    --value "consumed: $HFO_TS_HOSTNAME joined the tailnet at $(date -u +%Y-%m-%dT%H:%M:%SZ); put a new auth key only to join a new standby" \
    --query Version --output text >"$done_file.new" || return 1
  rm -f "$tags"
  mv "$done_file.new" "$done_file"
  log "tailscale: the stored auth key is deleted; the node can no longer read it"
}

step_tailscale() {
  if ! command -v tailscale >/dev/null 2>&1 || [ "$(tailscale version 2>/dev/null | head -n1)" != "$HFO_TAILSCALE_VER" ]; then
    log "installing tailscale $HFO_TAILSCALE_VER"
    curl -fsSL --retry 5 https://pkgs.tailscale.com/stable/amazon-linux/2023/tailscale.repo \
      -o /etc/yum.repos.d/tailscale.repo || return 1
    dnf install -y -q "tailscale-$HFO_TAILSCALE_VER" || return 1
  fi
  systemctl enable --now tailscaled || return 1
  if tailscale status >/dev/null 2>&1; then
    log "tailscale: already on the tailnet"
  else
    local key="$RUN_DIR/tailscale-authkey" rc
    aws ssm get-parameter --name "$HFO_TS_SECRET" --with-decryption \
      --query Parameter.Value --output text >"$key" || { rm -f "$key"; return 1; }
    if [ "$(head -c 6 "$key")" != "tskey-" ]; then
      rm -f "$key"
      log "the parameter $HFO_TS_SECRET holds no auth key (it was consumed by an earlier join, or never set):"
      log "put a new one-off auth key (docs/security.md#tailscale-auth-key-of-the-standby)"
      return 1
    fi
    tailscale up --auth-key="file:$key" --hostname="$HFO_TS_HOSTNAME" --ssh="$HFO_TS_SSH"
    rc=$?
    rm -f "$key"
    [ $rc -eq 0 ] || return 1
  fi
  # Keep the settings Terraform asked for, also on a node that joined earlier.
  tailscale set --hostname="$HFO_TS_HOSTNAME" --ssh="$HFO_TS_SSH" || return 1
  consume_tailscale_key
}

step_k3s() {
  local have
  have="$(k3s --version 2>/dev/null | head -n1 | awk '{print $3}')"
  if [ "$have" != "$HFO_K3S_VERSION" ]; then
    log "installing k3s $HFO_K3S_VERSION (found: ${have:-none})"
    # The install script of exactly this release; it verifies the binary's sha256 against the
    # release's checksum file. Options come from /etc/rancher/k3s/config.yaml, not flags.
    local tag="${HFO_K3S_VERSION//+/%2B}"
    curl -fsSL --retry 5 "https://raw.githubusercontent.com/k3s-io/k3s/$tag/install.sh" \
      -o "$RUN_DIR/k3s-install.sh" || return 1
    INSTALL_K3S_VERSION="$HFO_K3S_VERSION" INSTALL_K3S_SKIP_SELINUX_RPM=true \
      sh "$RUN_DIR/k3s-install.sh" || return 1
  elif [ "$k3s_config_changed" -eq 1 ] && systemctl is-active --quiet k3s; then
    # K3s started at boot, before this script wrote its new configuration.
    systemctl restart k3s || return 1
  fi
  systemctl enable --now k3s || return 1
  local waited=0
  until k3s kubectl get --raw=/readyz >/dev/null 2>&1; do
    if [ "$waited" -ge "$API_WAIT_S" ]; then
      log "k3s API not ready after ${API_WAIT_S}s"
      return 1
    fi
    sleep 5
    waited=$((waited + 5))
  done
  log "k3s ready ($(ls "$K3S_MANIFESTS" 2>/dev/null | wc -l) auto-deploy manifests)"
}

# The images the workloads in namespace hfo name, once Argo CD has synced them (the bot's StatefulSet
# is at 0 replicas on the standby, so nothing else would pull its image before a failover).
workload_images() {
  k3s kubectl -n hfo get statefulsets,deployments -o \
    jsonpath='{range .items[*]}{range .spec.template.spec.initContainers[*]}{.image}{"\n"}{end}{range .spec.template.spec.containers[*]}{.image}{"\n"}{end}{end}' \
    2>/dev/null | sed '/^$/d' | sort -u
}

step_prepull() {
  local image pulled="$RUN_DIR/pulled" live waited=0 bad=0
  : >"$pulled"
  while IFS= read -r image; do
    [ -n "$image" ] || continue
    if k3s crictl pull "$image" >/dev/null; then
      echo "$image" >>"$pulled"
    else
      log "cannot pull $image"
      bad=1
    fi
  done <"$CONFIG_DIR/images"
  until live="$(workload_images)" && k3s kubectl -n hfo get statefulset bot >/dev/null 2>&1 && [ -n "$live" ]; do
    if [ "$waited" -ge "$PREPULL_WAIT_S" ]; then
      log "WARNING: the workloads of namespace hfo did not appear within ${PREPULL_WAIT_S}s (Argo CD not synced?); pulled Terraform's list only"
      return $bad
    fi
    sleep 10
    waited=$((waited + 10))
  done
  while IFS= read -r image; do
    grep -qxF "$image" "$pulled" && continue
    if k3s crictl pull "$image" >/dev/null; then
      echo "$image" >>"$pulled"
    else
      log "cannot pull $image"
      bad=1
    fi
  done <<<"$live"
  log "images pulled: $(wc -l <"$pulled")"
  return $bad
}

step_k3s_config || fail "k3s-config"
step_manifests || fail "manifests"
step_tailscale || fail "tailscale"
if step_k3s; then
  step_prepull || fail "prepull"
else
  fail "k3s"
fi

if [ "$failed" -ne 0 ]; then
  log "finished with failures (systemd retries in 30 s)"
  exit 1
fi
log "done"
