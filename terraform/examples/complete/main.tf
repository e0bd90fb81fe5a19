# The complete hybrid-failover AWS side: network, secrets, standby node, watchdog.
# Copy this directory, set health_url (and whatever else), then:
#   make lambda-zip && terraform init && terraform apply
# State: see backend.tf.example (S3 with native locking).

provider "aws" {
  region = var.region

  # Only for the test suite's emulator: a real account needs none of these.
  skip_credentials_validation = var.aws_emulator
  skip_metadata_api_check     = var.aws_emulator
  skip_region_validation      = var.aws_emulator
  # The account id is still requested (the emulator answers STS): without it the provider
  # builds ARNs with an empty account field, e.g. the instance ARN the IAM policy is scoped to.
  # An API the emulator lacks must fail fast instead of being retried for minutes.
  max_retries = var.aws_emulator ? 1 : null

  default_tags {
    tags = merge({ Project = "hybrid-failover", ManagedBy = "terraform" }, var.tags)
  }
}

locals {
  repo_root     = "${path.root}/../../.."
  lambda_zip    = coalesce(var.lambda_zip_path, "${local.repo_root}/build/lambda/hfo-watchdog.zip")
  manifests_dir = coalesce(var.bootstrap_manifests_dir, "${local.repo_root}/argocd/bootstrap")
  # fileset() of a missing directory is empty: a plain K3s node, no Argo CD.
  bootstrap_manifests = {
    for f in fileset(local.manifests_dir, "*.yaml") : f => file("${local.manifests_dir}/${f}")
  }
  # The laptop's Tailscale host name is the first label of its Funnel URL.
  primary_hostname = lower(split(".", regex("^https://([^/:]+)", var.health_url)[0])[0])
}

module "network" {
  source = "../../modules/network"

  name              = var.name
  vpc_cidr          = var.vpc_cidr
  availability_zone = var.availability_zone
  inbound_rules     = var.inbound_rules
}

module "secrets" {
  source = "../../modules/secrets"

  name                 = var.name
  discord_alerts       = var.discord_alerts
  recovery_window_days = var.secret_recovery_window_days
  values_version       = var.secret_values_version
  hmac_keyring         = var.hmac_keyring
  tailscale_auth_key   = var.tailscale_auth_key
  discord_webhook_url  = var.discord_webhook_url
}

module "standby" {
  source = "../../modules/standby"

  name                   = var.name
  subnet_id              = module.network.subnet_id
  security_group_id      = module.network.security_group_id
  architecture           = var.architecture
  instance_type          = var.instance_type
  cpu_credits            = var.cpu_credits
  root_volume_size_gib   = var.root_volume_size_gib
  ami_id                 = var.ami_id
  k3s_version            = var.k3s_version
  tailscale_version      = var.tailscale_version
  tailscale_hostname     = var.tailscale_hostname
  primary_hostname       = local.primary_hostname
  tailscale_secret_name  = module.secrets.tailscale_secret_name
  tailscale_secret_arn   = module.secrets.tailscale_secret_arn
  tailscale_ssh          = var.tailscale_ssh
  bootstrap_manifests    = local.bootstrap_manifests
  termination_protection = var.termination_protection
}

module "watchdog" {
  source = "../../modules/watchdog"

  name                           = var.name
  lambda_zip_path                = local.lambda_zip
  lambda_architecture            = var.lambda_architecture
  lambda_memory_mb               = var.lambda_memory_mb
  health_url                     = var.health_url
  instance_id                    = module.standby.instance_id
  instance_arn                   = module.standby.instance_arn
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
  fallback_instance_types        = var.fallback_instance_types
  log_retention_days             = var.log_retention_days
  log_level                      = var.log_level
  tracing                        = var.tracing
  table_deletion_protection      = var.table_deletion_protection
}
