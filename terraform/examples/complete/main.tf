# The repository's own root: every setting of the module, with the module read from this checkout
# (a relative path). The test suite and `make demo` apply it to the AWS emulator.
#
# NOT the root to deploy: a relative module path works only inside the repository. Deploy
# terraform/examples/quickstart, copied to a folder of its own (docs/terraform.md#quick-start).

provider "aws" {
  region = var.region

  # Only for the test suite's emulator: a real account needs none of these.
  skip_credentials_validation = var.aws_emulator
  skip_metadata_api_check     = var.aws_emulator
  skip_region_validation      = var.aws_emulator
  # The account id is still requested (the emulator answers STS): without it the provider
  # builds ARNs with an empty account field, e.g. the instance ARN the IAM policy is scoped to.
  # An API the emulator lacks must fail fast instead of being retried for minutes, but a request
  # on a keep-alive connection the emulator has just closed ("use of closed network connection")
  # must be tried again: with a single attempt it failed whole applies under load.
  max_retries = var.aws_emulator ? 3 : null

  default_tags {
    tags = merge({ Project = "hybrid-failover", ManagedBy = "terraform" }, var.tags)
  }
}

module "hfo" {
  source = "../../modules/hybrid-failover"

  name                            = var.name
  health_url                      = var.health_url
  alert_email                     = var.alert_email
  lambda_zip_path                 = var.lambda_zip_path
  repository_root                 = var.repository_root
  bootstrap_manifests_dir         = var.bootstrap_manifests_dir
  workload_images                 = var.workload_images
  image_platforms                 = var.image_platforms
  discord_alerts                  = var.discord_alerts
  secret_values_version           = var.secret_values_version
  hmac_keyring                    = var.hmac_keyring
  tailscale_auth_key              = var.tailscale_auth_key
  discord_webhook_url             = var.discord_webhook_url
  vpc_cidr                        = var.vpc_cidr
  subnet_cidr                     = var.subnet_cidr
  cluster_cidr                    = var.cluster_cidr
  service_cidr                    = var.service_cidr
  availability_zone               = var.availability_zone
  inbound_rules                   = var.inbound_rules
  architecture                    = var.architecture
  instance_type                   = var.instance_type
  cpu_credits                     = var.cpu_credits
  root_volume_size_gib            = var.root_volume_size_gib
  ebs_kms_key_arn                 = var.ebs_kms_key_arn
  k3s_config                      = var.k3s_config
  ami_id                          = var.ami_id
  k3s_version                     = var.k3s_version
  tailscale_version               = var.tailscale_version
  tailscale_hostname              = var.tailscale_hostname
  tailscale_ssh                   = var.tailscale_ssh
  termination_protection          = var.termination_protection
  lambda_architecture             = var.lambda_architecture
  lambda_memory_mb                = var.lambda_memory_mb
  tick_interval_minutes           = var.tick_interval_minutes
  tick_reserved_concurrency       = var.tick_reserved_concurrency
  heartbeat_reserved_concurrency  = var.heartbeat_reserved_concurrency
  heartbeat_interval_s            = var.heartbeat_interval_s
  lease_ttl_s                     = var.lease_ttl_s
  down_probes                     = var.down_probes
  down_heartbeat_s                = var.down_heartbeat_s
  recovery_probes                 = var.recovery_probes
  recovery_steady_s               = var.recovery_steady_s
  stop_grace_s                    = var.stop_grace_s
  start_cooldown_s                = var.start_cooldown_s
  min_state_s                     = var.min_state_s
  standby_max_runtime_s           = var.standby_max_runtime_s
  prewarm_silence_s               = var.prewarm_silence_s
  prewarm_hold_s                  = var.prewarm_hold_s
  prewarm_max_per_hour            = var.prewarm_max_per_hour
  probe_lease_ttl_s               = var.probe_lease_ttl_s
  probe_renew_after_s             = var.probe_renew_after_s
  handover_heartbeat_interval_s   = var.handover_heartbeat_interval_s
  probe_connect_timeout_s         = var.probe_connect_timeout_s
  probe_read_timeout_s            = var.probe_read_timeout_s
  max_skew_s                      = var.max_skew_s
  history_days                    = var.history_days
  aws_max_attempts                = var.aws_max_attempts
  heartbeat_timeout_s             = var.heartbeat_timeout_s
  metrics_namespace               = var.metrics_namespace
  probe_max_body_bytes            = var.probe_max_body_bytes
  schedule_max_event_age_s        = var.schedule_max_event_age_s
  tick_timeout_s                  = var.tick_timeout_s
  fallback_instance_types         = var.fallback_instance_types
  log_retention_days              = var.log_retention_days
  log_level                       = var.log_level
  tracing                         = var.tracing
  custom_metrics                  = var.custom_metrics
  standby_runtime_alarm           = var.standby_runtime_alarm
  table_deletion_protection       = var.table_deletion_protection
  state_bucket_enabled            = var.state_bucket_enabled
  state_credentials_ttl_s         = var.state_credentials_ttl_s
  state_retention_days            = var.state_retention_days
  state_superseded_retention_days = var.state_superseded_retention_days
}

# A stack applied before the module existed (a copy of the earlier examples/complete, which called
# the four modules itself) keeps its resources: Terraform moves them into the module instead of
# replacing them. Its standby keeps its old user data until you replace it deliberately
# (docs/runbook.md#replace-the-standby-instance).
moved {
  from = module.network
  to   = module.hfo.module.network
}

moved {
  from = module.secrets
  to   = module.hfo.module.secrets
}

moved {
  from = module.standby
  to   = module.hfo.module.standby
}

moved {
  from = module.watchdog
  to   = module.hfo.module.watchdog
}
