#!/bin/bash
# hybrid-failover standby bootstrap. Runs at EVERY boot (systemd unit hfo-bootstrap.service)
# and is idempotent: each step checks what is already there. A step that fails is reported
# and the others still run, so the bot's K3s comes up even when, say, Tailscale cannot.
#
# K3s then applies the Argo CD bootstrap manifests cloud-init dropped in its manifests
# directory, and Argo CD brings up the site (agent, bot) from Git, sealed secrets included.
#
# The one secret the node reads, the Tailscale auth key, comes from AWS Secrets Manager with
# the instance role, only while the node is not on the tailnet yet; it goes to a file on a
# tmpfs with mode 0600, removed after use: never on a command line, never in a log.
set -uo pipefail

ENV_FILE="${HFO_BOOTSTRAP_ENV:-/etc/hfo/bootstrap.env}"
RUN_DIR="${HFO_RUN_DIR:-/run/hfo}"
K3S_MANIFESTS="${HFO_K3S_MANIFESTS:-/var/lib/rancher/k3s/server/manifests}"
API_WAIT_S="${HFO_API_WAIT_S:-300}"

# shellcheck source=/dev/null
. "$ENV_FILE"
export AWS_REGION

umask 077
mkdir -p "$RUN_DIR"
failed=0

log() { echo "hfo-bootstrap: $*"; }
fail() { log "FAILED: $*"; failed=1; }

# Fetch one secret's value into a file (mode 0600 thanks to umask). Never prints it.
fetch_secret() {
  aws secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text >"$2"
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
    local key="$RUN_DIR/tailscale-authkey"
    fetch_secret "$HFO_TS_SECRET" "$key" || { rm -f "$key"; return 1; }
    tailscale up --auth-key="file:$key" --hostname="$HFO_TS_HOSTNAME" --ssh="$HFO_TS_SSH"
    local rc=$?
    rm -f "$key"
    [ $rc -eq 0 ] || return 1
  fi
  # Keep the settings Terraform asked for, also on a node that joined earlier.
  tailscale set --hostname="$HFO_TS_HOSTNAME" --ssh="$HFO_TS_SSH"
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

step_tailscale || fail "tailscale"
step_k3s || fail "k3s"

if [ "$failed" -ne 0 ]; then
  log "finished with failures (systemd retries in 30 s)"
  exit 1
fi
log "done"
