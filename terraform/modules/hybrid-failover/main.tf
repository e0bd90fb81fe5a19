# The whole hybrid-failover AWS side in one module: network, secrets, the standby node and the
# watchdog, wired together. Your root calls it (terraform/examples/quickstart, copied out of the
# repository); it reads three things from the repository it comes from: the Argo CD bootstrap
# manifests (argocd/bootstrap), the workload images (k8s/base/kustomization.yaml) and, by
# default, the Lambda package `make lambda-zip` builds. The provider is configured by the root.

data "aws_region" "current" {}

locals {
  # The repository this module was read from: a local checkout, or Terraform's copy of the Git
  # repository under .terraform/modules/ (a git:: source fetches the whole repository). Relative
  # to the root, so the state does not depend on where the root lives.
  repository_root = coalesce(var.repository_root, "${path.module}/../../..")
  lambda_zip      = coalesce(var.lambda_zip_path, "${local.repository_root}/build/lambda/hfo-watchdog.zip")
  manifests_dir   = coalesce(var.bootstrap_manifests_dir, "${local.repository_root}/argocd/bootstrap")
  bootstrap_manifests = {
    for f in fileset(local.manifests_dir, "*.yaml") : f => file("${local.manifests_dir}/${f}")
  }

  # The images the standby pre-pulls at boot: the `images:` of k8s/base/kustomization.yaml,
  # rendered as kustomize renders them (newName, then :newTag, then @digest).
  kustomization_file = "${local.repository_root}/k8s/base/kustomization.yaml"
  kustomize_images   = fileexists(local.kustomization_file) ? try(yamldecode(file(local.kustomization_file)).images, []) : []
  derived_images = [
    for i in local.kustomize_images : join("", [
      try(i.newName, i.name),
      try(i.newTag, null) == null ? "" : ":${i.newTag}",
      try(i.digest, null) == null ? "" : "@${i.digest}",
    ])
  ]
  workload_images = var.workload_images == null ? local.derived_images : var.workload_images

  # The fork's owner in the files users must edit before deploying (docs/walkthrough.md step 2).
  placeholder_owner      = "your-github-user"
  placeholder_manifests  = sort([for f, body in local.bootstrap_manifests : f if strcontains(body, local.placeholder_owner)])
  placeholder_images     = [for i in local.workload_images : i if strcontains(i, local.placeholder_owner)]
  fallback_instance_type = var.fallback_instance_types == null ? [] : var.fallback_instance_types

  # The laptop's Tailscale host name is the first label of its Funnel URL.
  primary_hostname = lower(split(".", regex("^https://([^/:]+)", var.health_url)[0])[0])
}

# What the standby's fallback types must offer, like its own type: the architecture and 2 GiB.
data "aws_ec2_instance_type" "fallback" {
  for_each      = toset(local.fallback_instance_type)
  instance_type = each.value
}

# Checks of the inputs read from the repository, at plan time (every value they read is known
# then). A failed check names the file and what to do: nothing is left empty silently. (Not a
# depends_on of the modules: that would defer their data sources, and so their own plan-time
# checks, to apply time.)
resource "terraform_data" "preflight" {
  lifecycle {
    precondition {
      condition     = length(local.bootstrap_manifests) > 0
      error_message = "No bootstrap manifests (*.yaml) in ${local.manifests_dir}: the standby would be a plain K3s node without Argo CD. Point bootstrap_manifests_dir at argocd/bootstrap of your checkout (the default is the repository this module comes from)."
    }

    precondition {
      condition     = length(local.placeholder_manifests) == 0
      error_message = "The bootstrap manifests ${join(", ", local.placeholder_manifests)} in ${local.manifests_dir} still point Argo CD at the placeholder repository (${local.placeholder_owner}): run `python3 argocd/set_repo_url.py https://github.com/<you>/hybrid-failover.git` in your checkout, commit and push (with a git:: module source, then `terraform init -upgrade`)."
    }

    precondition {
      condition     = length(local.workload_images) > 0
      error_message = "No workload images: ${local.kustomization_file} was not found or lists no images. Set workload_images, or use the module from a checkout of the repository."
    }

    precondition {
      condition     = length(local.placeholder_images) == 0
      error_message = "The images ${join(", ", local.placeholder_images)} still name the placeholder owner ${local.placeholder_owner}: set your registry in k8s/base/kustomization.yaml (docs/walkthrough.md step 2), build and push with `make images`, commit and push."
    }

    precondition {
      condition = alltrue([
        for t, d in data.aws_ec2_instance_type.fallback :
        contains(d.supported_architectures, coalesce(var.architecture, "arm64")) && d.memory_size >= 2048
      ])
      error_message = "Every fallback_instance_types entry must support the standby's architecture (${coalesce(var.architecture, "arm64")}) and offer at least 2048 MiB, as the standby's own type does; the watchdog switches to them when EC2 has no capacity."
    }
  }
}

module "network" {
  source = "../network"

  name              = var.name
  vpc_cidr          = var.vpc_cidr
  subnet_cidr       = var.subnet_cidr
  availability_zone = var.availability_zone
  inbound_rules     = var.inbound_rules
}

module "secrets" {
  source = "../secrets"

  name                = var.name
  discord_alerts      = var.discord_alerts
  values_version      = var.secret_values_version
  hmac_keyring        = var.hmac_keyring
  tailscale_auth_key  = var.tailscale_auth_key
  discord_webhook_url = var.discord_webhook_url
}

# The bots' state (docs/state-handoff.md), off until the sites use it.
module "state_bucket" {
  source = "../state-bucket"
  count  = var.state_bucket_enabled ? 1 : 0

  name                      = var.name
  retention_days            = var.state_retention_days
  superseded_retention_days = var.state_superseded_retention_days
}

module "standby" {
  source = "../standby"

  name                   = var.name
  subnet_id              = module.network.subnet_id
  security_group_id      = module.network.security_group_id
  host_cidrs             = { "VPC (vpc_cidr)" = module.network.vpc_cidr, "subnet (subnet_cidr)" = module.network.subnet_cidr }
  cluster_cidr           = var.cluster_cidr
  service_cidr           = var.service_cidr
  architecture           = var.architecture
  instance_type          = var.instance_type
  cpu_credits            = var.cpu_credits
  root_volume_size_gib   = var.root_volume_size_gib
  ebs_kms_key_arn        = var.ebs_kms_key_arn
  ami_id                 = var.ami_id
  k3s_version            = var.k3s_version
  k3s_config             = var.k3s_config
  tailscale_version      = var.tailscale_version
  tailscale_hostname     = var.tailscale_hostname
  primary_hostname       = local.primary_hostname
  tailscale_secret_name  = module.secrets.tailscale_secret_name
  tailscale_secret_arn   = module.secrets.tailscale_secret_arn
  tailscale_ssh          = var.tailscale_ssh
  bootstrap_manifests    = local.bootstrap_manifests
  workload_images        = local.workload_images
  image_platforms        = var.image_platforms
  termination_protection = var.termination_protection
}

module "watchdog" {
  source = "../watchdog"

  name                           = var.name
  lambda_zip_path                = local.lambda_zip
  lambda_architecture            = var.lambda_architecture
  lambda_memory_mb               = var.lambda_memory_mb
  health_url                     = var.health_url
  instance_id                    = module.standby.instance_id
  instance_arn                   = module.standby.instance_arn
  ebs_kms_key_arn                = var.ebs_kms_key_arn
  hmac_secret_arn                = module.secrets.hmac_secret_arn
  discord_secret_arn             = module.secrets.discord_secret_arn
  alert_email                    = var.alert_email
  tick_interval_minutes          = var.tick_interval_minutes
  tick_reserved_concurrency      = var.tick_reserved_concurrency
  heartbeat_reserved_concurrency = var.heartbeat_reserved_concurrency
  heartbeat_interval_s           = var.heartbeat_interval_s
  lease_ttl_s                    = var.lease_ttl_s
  down_probes                    = var.down_probes
  down_heartbeat_s               = var.down_heartbeat_s
  recovery_probes                = var.recovery_probes
  recovery_steady_s              = var.recovery_steady_s
  stop_grace_s                   = var.stop_grace_s
  start_cooldown_s               = var.start_cooldown_s
  min_state_s                    = var.min_state_s
  standby_max_runtime_s          = var.standby_max_runtime_s
  prewarm_silence_s              = var.prewarm_silence_s
  prewarm_hold_s                 = var.prewarm_hold_s
  prewarm_max_per_hour           = var.prewarm_max_per_hour
  probe_lease_ttl_s              = var.probe_lease_ttl_s
  probe_renew_after_s            = var.probe_renew_after_s
  handover_heartbeat_interval_s  = var.handover_heartbeat_interval_s
  probe_connect_timeout_s        = var.probe_connect_timeout_s
  probe_read_timeout_s           = var.probe_read_timeout_s
  max_skew_s                     = var.max_skew_s
  history_days                   = var.history_days
  aws_max_attempts               = var.aws_max_attempts
  heartbeat_timeout_s            = var.heartbeat_timeout_s
  metrics_namespace              = var.metrics_namespace
  probe_max_body_bytes           = var.probe_max_body_bytes
  schedule_max_event_age_s       = var.schedule_max_event_age_s
  tick_timeout_s                 = var.tick_timeout_s
  fallback_instance_types        = var.fallback_instance_types
  log_retention_days             = var.log_retention_days
  log_level                      = var.log_level
  tracing                        = var.tracing
  custom_metrics                 = var.custom_metrics
  standby_runtime_alarm          = var.standby_runtime_alarm
  table_deletion_protection      = var.table_deletion_protection
  state_access_enabled           = var.state_bucket_enabled
  state_bucket_name              = var.state_bucket_enabled ? module.state_bucket[0].bucket_name : null
  state_credentials_ttl_s        = var.state_credentials_ttl_s
}
