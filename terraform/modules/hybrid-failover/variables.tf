# Every setting of the module; null means the module's own default (terraform/modules/*/variables.tf,
# where each is described and validated).

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "hfo"
}

variable "health_url" {
  description = "The laptop's health endpoint through Tailscale Funnel: https://hfo-laptop.<tailnet>.ts.net/healthz (the machine name of k8s/overlays/laptop/funnel-ingress.yaml)."
  type        = string
}

variable "alert_email" {
  description = "E-mail address for alerts (confirm the subscription mail AWS sends). Null: none."
  type        = string
  default     = null
}

variable "lambda_zip_path" {
  description = "The package built by `make lambda-zip`. Null: build/lambda/hfo-watchdog.zip in repository_root (which a git:: module source does not hold: set it then). Missing, it fails the plan."
  type        = string
  default     = null
}

variable "repository_root" {
  description = "The checkout the Argo CD bootstrap manifests and the workload images are read from. Null: the repository this module comes from (a local checkout, or Terraform's copy of the Git repository)."
  type        = string
  default     = null
}

variable "bootstrap_manifests_dir" {
  description = "Directory whose *.yaml files become K3s auto-deploy manifests on the standby (Argo CD and its root Application). Null: argocd/bootstrap in repository_root. Empty or missing, or still pointing at the placeholder repository, it fails the plan."
  type        = string
  default     = null
}

variable "workload_images" {
  description = "Images the standby pre-pulls at every boot. Null: the images of k8s/base/kustomization.yaml in repository_root."
  type        = list(string)
  default     = null
}

variable "image_platforms" {
  description = "Platforms the workload images are built for (default linux/amd64 and linux/arm64, what `make images` builds); the standby's must be one of them."
  type        = list(string)
  default     = null
}

# --- secrets -----------------------------------------------------------------------------

variable "discord_alerts" {
  description = "Create the Discord webhook secret and send alerts to Discord (0.40 USD a month for the secret)."
  type        = bool
  default     = null
}

variable "secret_values_version" {
  description = "0: put secret values yourself with the AWS CLI. N > 0: Terraform writes the three ephemeral values below (never stored in state); bump N to write new ones."
  type        = number
  default     = null
}

variable "hmac_keyring" {
  description = "Ephemeral. The shared HMAC secret or keyring JSON; used only when secret_values_version > 0."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "tailscale_auth_key" {
  description = "Ephemeral. The standby's Tailscale auth key; used only when secret_values_version > 0."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "discord_webhook_url" {
  description = "Ephemeral. The Discord webhook URL; used only when secret_values_version > 0."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

# --- network -----------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the standby's VPC (default 10.200.0.0/24; private, clear of the pod and service networks and of the tailnet's 100.64.0.0/10)."
  type        = string
  default     = null
}

variable "subnet_cidr" {
  description = "CIDR block of the standby's subnet, inside vpc_cidr. Null: the VPC's first /26."
  type        = string
  default     = null
}

variable "cluster_cidr" {
  description = "K3s's pod network on the standby (default 10.42.0.0/16). Fixed once the node's cluster has started."
  type        = string
  default     = null
}

variable "service_cidr" {
  description = "K3s's service network on the standby (default 10.43.0.0/16; CoreDNS takes its tenth address). Fixed once the node's cluster has started."
  type        = string
  default     = null
}

variable "availability_zone" {
  description = "Availability zone of the standby. Null: AWS picks."
  type        = string
  default     = null
}

variable "inbound_rules" {
  description = "Inbound rules of the standby's security group (none by default; see the network module)."
  type = list(object({
    description = string
    protocol    = string
    from_port   = number
    to_port     = number
    cidr        = string
  }))
  default = null
}

# --- standby -----------------------------------------------------------------------------

variable "architecture" {
  description = "arm64 or x86_64."
  type        = string
  default     = null
}

variable "instance_type" {
  description = "Standby instance type. Null: t4g.small (arm64) or t3.small (x86_64)."
  type        = string
  default     = null
}

variable "cpu_credits" {
  description = "standard or unlimited (burstable types)."
  type        = string
  default     = null
}

variable "root_volume_size_gib" {
  description = "Root volume size in GiB (the main idle cost)."
  type        = number
  default     = null
}

variable "ebs_kms_key_arn" {
  description = "Customer managed KMS key for the standby's root volume (needed when the account's EBS default key is one); the tick role gets kms:CreateGrant on it. Null: EBS's default key."
  type        = string
  default     = null
}

variable "k3s_config" {
  description = "Extra K3s options for the standby (merged over the module's)."
  type        = any
  default     = null
}

variable "ami_id" {
  description = "Pin the AMI. Null: newest Amazon Linux 2023."
  type        = string
  default     = null
}

variable "k3s_version" {
  description = "K3s release of the standby."
  type        = string
  default     = null
}

variable "tailscale_version" {
  description = "Tailscale version of the standby."
  type        = string
  default     = null
}

variable "tailscale_hostname" {
  description = "The standby's tailnet name (must differ from the laptop's)."
  type        = string
  default     = null
}

variable "tailscale_ssh" {
  description = "Tailscale SSH on the standby (default on)."
  type        = bool
  default     = null
}

variable "termination_protection" {
  description = "EC2 termination protection on the standby."
  type        = bool
  default     = null
}

# --- watchdog ----------------------------------------------------------------------------

variable "lambda_architecture" {
  description = "arm64 or x86_64 for both functions."
  type        = string
  default     = null
}

variable "lambda_memory_mb" {
  description = "Memory of both functions."
  type        = number
  default     = null
}

variable "tick_interval_minutes" {
  description = "Minutes between ticks (1-60)."
  type        = number
  default     = null
}

variable "tick_reserved_concurrency" {
  description = "Reserved concurrency of the tick (default -1: none, which any account accepts; see docs/security.md for the trade-off)."
  type        = number
  default     = null
}

variable "heartbeat_reserved_concurrency" {
  description = "Reserved concurrency of the heartbeat function (default none)."
  type        = number
  default     = null
}

variable "heartbeat_interval_s" {
  description = "Seconds between heartbeats of each agent."
  type        = number
  default     = null
}

variable "lease_ttl_s" {
  description = "Lease lifetime at the agent."
  type        = number
  default     = null
}

variable "down_probes" {
  description = "Failed probes in a row before the probe signal says down."
  type        = number
  default     = null
}

variable "down_heartbeat_s" {
  description = "Heartbeat silence before the heartbeat signal says down."
  type        = number
  default     = null
}

variable "recovery_probes" {
  description = "Good probes in a row before the laptop counts as back."
  type        = number
  default     = null
}

variable "recovery_steady_s" {
  description = "Seconds of steady heartbeats before handback."
  type        = number
  default     = null
}

variable "stop_grace_s" {
  description = "Time an agent may take to stop its workload."
  type        = number
  default     = null
}

variable "start_cooldown_s" {
  description = "At most one EC2 start per this many seconds."
  type        = number
  default     = null
}

variable "min_state_s" {
  description = "Minimum time in a phase before a non-emergency transition."
  type        = number
  default     = null
}

variable "standby_max_runtime_s" {
  description = "Alert when the standby has run longer than this."
  type        = number
  default     = null
}

variable "prewarm_silence_s" {
  description = "Heartbeat silence that, with a failed probe, starts the standby without the lease (pre-warm)."
  type        = number
  default     = null
}

variable "prewarm_hold_s" {
  description = "A pre-warmed standby that was not needed stops this long after its start."
  type        = number
  default     = null
}

variable "prewarm_max_per_hour" {
  description = "Pre-warm starts in any hour; 0 turns pre-warm off."
  type        = number
  default     = null
}

variable "probe_lease_ttl_s" {
  description = "How long one lease renewal over the probe path lets the primary hold the lease; 0 turns it off."
  type        = number
  default     = null
}

variable "probe_renew_after_s" {
  description = "Renew over the probe path only once the primary's last heartbeat is this old."
  type        = number
  default     = null
}

variable "handover_heartbeat_interval_s" {
  description = "Heartbeat interval asked of a site while a lease move waits on it."
  type        = number
  default     = null
}

variable "fallback_instance_types" {
  description = "Instance types tried in order on insufficient capacity."
  type        = list(string)
  default     = null
}

variable "log_retention_days" {
  description = "Retention of the functions' logs."
  type        = number
  default     = null
}

variable "log_level" {
  description = "Log level of both functions."
  type        = string
  default     = null
}

variable "tracing" {
  description = "X-Ray tracing on both functions."
  type        = bool
  default     = null
}

variable "custom_metrics" {
  description = "Publish the watchdog's three custom metrics (0.30 USD a month each beyond the free tier). Default off."
  type        = bool
  default     = null
}

variable "standby_runtime_alarm" {
  description = "CloudWatch alarm on a standby running longer than standby_max_runtime_s (0.10 USD a month beyond the free tier); the watchdog alerts on it itself. Default off."
  type        = bool
  default     = null
}

variable "table_deletion_protection" {
  description = "Deletion protection on the state table (default on; `terraform destroy` fails until it is off)."
  type        = bool
  default     = null
}

variable "state_bucket_enabled" {
  description = "Create the S3 bucket of the bots' state (modules/state-bucket, docs/state-handoff.md) and the role whose short-lived, epoch-scoped credentials the watchdog hands the lease holder (HFO_STATE_BUCKET, HFO_STATE_ROLE_ARN). Default off: turn it on with the sites' HFO_STATE_ENABLED."
  type        = bool
  default     = false
  nullable    = false
}

variable "state_retention_days" {
  description = "Days the state bucket keeps an overwritten or deleted object version (modules/state-bucket retention_days, 1-3650); null: its default (30). Used only with state_bucket_enabled."
  type        = number
  default     = null
}

variable "state_superseded_retention_days" {
  description = "Days the state bucket keeps a replaced snapshot (tagged hfo-state=superseded) after its upload, and as long again as a noncurrent version (modules/state-bucket superseded_retention_days, 1 to state_retention_days); null: its default (7). Used only with state_bucket_enabled."
  type        = number
  default     = null
}

variable "state_credentials_ttl_s" {
  description = "Lifetime of the lease holder's state credentials, 900-3600 s (HFO_STATE_CREDENTIALS_TTL_S); null: the watchdog module's default (900). Used only with state_bucket_enabled."
  type        = number
  default     = null
}

variable "probe_connect_timeout_s" {
  description = "Probe TCP+TLS connect timeout (HFO_PROBE_CONNECT_TIMEOUT_S); null: the watchdog module's default."
  type        = number
  default     = null
}

variable "probe_read_timeout_s" {
  description = "Probe read timeout (HFO_PROBE_READ_TIMEOUT_S); null: the watchdog module's default."
  type        = number
  default     = null
}

variable "max_skew_s" {
  description = "Accepted clock difference for health documents and heartbeats (HFO_MAX_SKEW_S); null: the watchdog module's default."
  type        = number
  default     = null
}

variable "history_days" {
  description = "How long transition history is kept (HFO_HISTORY_DAYS); null: the watchdog module's default."
  type        = number
  default     = null
}

variable "aws_max_attempts" {
  description = "botocore standard-mode retry attempts (HFO_AWS_MAX_ATTEMPTS); null: the watchdog module's default."
  type        = number
  default     = null
}

variable "heartbeat_timeout_s" {
  description = "Timeout of the heartbeat function in seconds; null: the watchdog module's default."
  type        = number
  default     = null
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the watchdog's custom metrics (POWERTOOLS_METRICS_NAMESPACE); null: the watchdog module's default."
  type        = string
  default     = null
}

variable "probe_max_body_bytes" {
  description = "Probe answer body cap (HFO_PROBE_MAX_BODY_BYTES); null: the watchdog module's default."
  type        = number
  default     = null
}

variable "schedule_max_event_age_s" {
  description = "A tick the scheduler could not deliver within this many seconds is dropped; null: the watchdog module's default."
  type        = number
  default     = null
}


variable "tick_timeout_s" {
  description = "Timeout of the tick function in seconds; null: the watchdog module's default."
  type        = number
  default     = null
}
