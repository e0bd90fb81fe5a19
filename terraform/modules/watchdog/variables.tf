# Watchdog settings mirror docs/configuration.md: same defaults, same ranges, same cross-field
# rules, so a bad value fails at `terraform plan` instead of at the Lambda's cold start.

variable "name" {
  description = "Prefix for every resource name."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 characters: a lowercase letter, then lowercase letters, digits or '-'."
  }
}

# --- package and runtime -----------------------------------------------------------------

variable "lambda_zip_path" {
  description = "Path of the Lambda package built by `make lambda-zip` (lambda/build.py: reproducible, so an unchanged source tree never redeploys)."
  type        = string
  nullable    = false

  validation {
    condition     = endswith(var.lambda_zip_path, ".zip") && fileexists(var.lambda_zip_path)
    error_message = "lambda_zip_path (${var.lambda_zip_path}) is not an existing .zip file: run `make lambda-zip` in your checkout of the repository and point lambda_zip_path at the build/lambda/hfo-watchdog.zip it writes."
  }
}

variable "lambda_architecture" {
  description = "Lambda architecture. arm64 costs 20 % less per GB-second; the package is pure Python and runs on both."
  type        = string
  default     = "arm64"
  nullable    = false

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_memory_mb" {
  description = "Memory of both functions in MB (CPU scales with it). 256 keeps the Powertools cold start short; every heartbeat and tick is billed for it."
  type        = number
  default     = 256
  nullable    = false

  validation {
    condition     = var.lambda_memory_mb >= 128 && var.lambda_memory_mb <= 10240 && floor(var.lambda_memory_mb) == var.lambda_memory_mb
    error_message = "lambda_memory_mb must be a whole number from 128 to 10240 (Lambda's limits)."
  }
}

variable "tick_timeout_s" {
  description = "Timeout of the tick function in seconds; shorter than the tick interval (ticks never overlap) and longer than a probe's connect plus read timeouts."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.tick_timeout_s >= 5 && var.tick_timeout_s < var.tick_interval_minutes * 60 && var.tick_timeout_s > var.probe_connect_timeout_s + var.probe_read_timeout_s
    error_message = "tick_timeout_s must be at least 5, below the tick interval (tick_interval_minutes * 60) and above probe_connect_timeout_s + probe_read_timeout_s."
  }
}

variable "heartbeat_timeout_s" {
  description = "Timeout of the heartbeat function in seconds."
  type        = number
  default     = 10
  nullable    = false

  validation {
    condition     = var.heartbeat_timeout_s >= 3 && var.heartbeat_timeout_s <= 60
    error_message = "heartbeat_timeout_s must be from 3 to 60 seconds."
  }
}

variable "tick_reserved_concurrency" {
  description = <<-EOT
    Reserved concurrency of the tick function. -1 (default): no reservation, which every account
    accepts. A reservation keeps a slot for the tick when a flood of the public heartbeat URL uses up
    the account's concurrency, but Lambda refuses any reservation that would leave less than its
    minimum unreserved (10 on a new account, whose whole quota is 10; 100 on the usual 1000): ask
    for a quota increase first (docs/security.md#cost-attacks-on-the-function-url). Two ticks at once
    are harmless either way: the state table's conditional writes let only one of them act.
  EOT
  type        = number
  default     = -1
  nullable    = false

  validation {
    condition     = var.tick_reserved_concurrency == -1 || (var.tick_reserved_concurrency >= 1 && var.tick_reserved_concurrency <= 1000 && floor(var.tick_reserved_concurrency) == var.tick_reserved_concurrency)
    error_message = "tick_reserved_concurrency must be -1 (no reservation) or a whole number from 1 to 1000; 0 would stop the watchdog."
  }
}

variable "heartbeat_reserved_concurrency" {
  description = "Reserved concurrency of the heartbeat function. -1 (default): no reservation. A cap bounds what a flood of requests on the public URL can cost, but a cap too low throttles real heartbeats, and Lambda refuses it on an account whose quota leaves no room (a new account's quota is 10)."
  type        = number
  default     = -1
  nullable    = false

  validation {
    condition     = var.heartbeat_reserved_concurrency == -1 || (var.heartbeat_reserved_concurrency >= 2 && var.heartbeat_reserved_concurrency <= 1000 && floor(var.heartbeat_reserved_concurrency) == var.heartbeat_reserved_concurrency)
    error_message = "heartbeat_reserved_concurrency must be -1 (no reservation) or a whole number from 2 to 1000 (two sites heartbeat at once)."
  }
}

variable "tick_interval_minutes" {
  description = "How often EventBridge Scheduler runs the tick (HFO_TICK_INTERVAL_S = this * 60). The scheduler's smallest rate is 1 minute."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = var.tick_interval_minutes >= 1 && var.tick_interval_minutes <= 60 && floor(var.tick_interval_minutes) == var.tick_interval_minutes
    error_message = "tick_interval_minutes must be a whole number from 1 (EventBridge Scheduler's smallest rate) to 60 (HFO_TICK_INTERVAL_S <= 3600)."
  }
}

variable "schedule_max_event_age_s" {
  description = "A tick the scheduler could not deliver within this many seconds is dropped (it would be stale; the next one comes anyway). 60 is the scheduler's minimum."
  type        = number
  default     = 60
  nullable    = false

  validation {
    condition     = var.schedule_max_event_age_s >= 60 && var.schedule_max_event_age_s <= var.tick_interval_minutes * 60
    error_message = "schedule_max_event_age_s must be from 60 (the scheduler's minimum) to the tick interval in seconds."
  }
}

# --- what the watchdog watches and acts on ---------------------------------------------

variable "health_url" {
  description = "The primary's health endpoint through Tailscale Funnel (HFO_HEALTH_URL), e.g. https://laptop.tailnet-name.ts.net/healthz."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\\s?#]*)?$", var.health_url))
    error_message = "health_url must be an https:// URL with a host name and an optional path, without query or fragment (the watchdog adds ?nonce=)."
  }
}

variable "instance_id" {
  description = "The standby instance (HFO_INSTANCE_ID)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^i-([0-9a-f]{8}|[0-9a-f]{17})$", var.instance_id))
    error_message = "instance_id must be i- followed by 8 or 17 hexadecimal digits."
  }
}

variable "instance_arn" {
  description = "ARN of the standby instance: the only instance the watchdog may start, stop or modify."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ec2:[a-z0-9-]+:[0-9]{12}:instance/i-[0-9a-f]+$", var.instance_arn))
    error_message = "instance_arn must be an EC2 instance ARN."
  }
}

variable "hmac_secret_arn" {
  description = "ARN of the HMAC keyring SSM SecureString parameter (HFO_HMAC_SECRET_ARN)."
  type        = string
  nullable    = false
}

variable "discord_secret_arn" {
  description = "ARN of the Discord webhook SSM SecureString parameter (HFO_DISCORD_WEBHOOK_SECRET_ARN); null turns Discord alerts off."
  type        = string
  default     = null
}

variable "ebs_kms_key_arn" {
  description = "The customer managed KMS key of the standby's root volume, if any: StartInstances needs kms:CreateGrant on it, which the tick role then gets (only for grants EC2 creates, kms:GrantIsForAWSResource). Null: none."
  type        = string
  default     = null

  validation {
    condition     = var.ebs_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", coalesce(var.ebs_kms_key_arn, "-")))
    error_message = "ebs_kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "alert_email" {
  description = "E-mail address subscribed to the alert topic (AWS sends a confirmation mail first). Null: no subscription."
  type        = string
  default     = null

  validation {
    condition     = var.alert_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", coalesce(var.alert_email, "-")))
    error_message = "alert_email must be an e-mail address such as ops@example.com, or null."
  }
}

# --- decision thresholds (docs/configuration.md) ----------------------------------------

variable "probe_connect_timeout_s" {
  description = "HFO_PROBE_CONNECT_TIMEOUT_S: probe TCP+TLS connect timeout."
  type        = number
  default     = 3
  nullable    = false
  validation {
    condition     = var.probe_connect_timeout_s >= 0.1 && var.probe_connect_timeout_s <= 30
    error_message = "probe_connect_timeout_s must be from 0.1 to 30 seconds."
  }
}

variable "probe_read_timeout_s" {
  description = "HFO_PROBE_READ_TIMEOUT_S: probe read timeout."
  type        = number
  default     = 5
  nullable    = false
  validation {
    condition     = var.probe_read_timeout_s >= 0.1 && var.probe_read_timeout_s <= 30
    error_message = "probe_read_timeout_s must be from 0.1 to 30 seconds."
  }
  validation {
    condition     = var.probe_connect_timeout_s + var.probe_read_timeout_s < var.tick_interval_minutes * 60
    error_message = "probe_connect_timeout_s + probe_read_timeout_s must be below the tick interval (tick_interval_minutes * 60)."
  }
}

variable "probe_max_body_bytes" {
  description = "HFO_PROBE_MAX_BODY_BYTES: probe answer body cap."
  type        = number
  default     = 65536
  nullable    = false
  validation {
    condition     = var.probe_max_body_bytes >= 256 && var.probe_max_body_bytes <= 1048576 && floor(var.probe_max_body_bytes) == var.probe_max_body_bytes
    error_message = "probe_max_body_bytes must be a whole number from 256 to 1048576."
  }
}

variable "max_skew_s" {
  description = "HFO_MAX_SKEW_S: accepted clock difference for health documents and heartbeats."
  type        = number
  default     = 30
  nullable    = false
  validation {
    condition     = var.max_skew_s >= 1 && var.max_skew_s <= 300
    error_message = "max_skew_s must be from 1 to 300 seconds."
  }
}

variable "down_probes" {
  description = "HFO_DOWN_PROBES: failed probes in a row before the probe signal says down."
  type        = number
  default     = 2
  nullable    = false
  validation {
    condition     = var.down_probes >= 1 && var.down_probes <= 60 && floor(var.down_probes) == var.down_probes
    error_message = "down_probes must be a whole number from 1 to 60."
  }
}

variable "down_heartbeat_s" {
  description = "HFO_DOWN_HEARTBEAT_S: heartbeat silence before the heartbeat signal says down."
  type        = number
  default     = 75
  nullable    = false
  validation {
    condition     = var.down_heartbeat_s >= 10 && var.down_heartbeat_s <= 3600
    error_message = "down_heartbeat_s must be from 10 to 3600 seconds."
  }
  validation {
    condition     = var.lease_ttl_s + var.stop_grace_s + var.heartbeat_interval_s < var.down_heartbeat_s
    error_message = "lease_ttl_s + stop_grace_s + heartbeat_interval_s must be below down_heartbeat_s: a primary cut off from AWS must have stopped its bot before the standby can get the lease."
  }
}

variable "recovery_probes" {
  description = "HFO_RECOVERY_PROBES: good probes in a row before the primary counts as back."
  type        = number
  default     = 3
  nullable    = false
  validation {
    condition     = var.recovery_probes >= 1 && var.recovery_probes <= 60 && floor(var.recovery_probes) == var.recovery_probes
    error_message = "recovery_probes must be a whole number from 1 to 60."
  }
}

variable "recovery_steady_s" {
  description = "HFO_RECOVERY_STEADY_S: the primary's heartbeats must have been steady this long before handback. Ten minutes by default: the standby keeps the bot through a flaky laptop's relapses (docs/benchmarks.md)."
  type        = number
  default     = 600
  nullable    = false
  validation {
    condition     = var.recovery_steady_s >= 0 && var.recovery_steady_s <= 86400
    error_message = "recovery_steady_s must be from 0 to 86400 seconds."
  }
}

variable "heartbeat_interval_s" {
  description = "HFO_HEARTBEAT_INTERVAL_S: heartbeat interval told to the agents. The main driver of the idle cost (Lambda requests, DynamoDB writes, log lines): see `make cost`."
  type        = number
  default     = 10
  nullable    = false
  validation {
    condition     = var.heartbeat_interval_s >= 1 && var.heartbeat_interval_s <= 300
    error_message = "heartbeat_interval_s must be from 1 to 300 seconds."
  }
  validation {
    condition     = var.heartbeat_interval_s * 3 <= var.lease_ttl_s
    error_message = "heartbeat_interval_s * 3 must be at most lease_ttl_s, so that one lost heartbeat does not fence a site."
  }
}

variable "lease_ttl_s" {
  description = "HFO_LEASE_TTL_S: lease lifetime at the agent (self-fencing)."
  type        = number
  default     = 30
  nullable    = false
  validation {
    condition     = var.lease_ttl_s >= 5 && var.lease_ttl_s <= 3600
    error_message = "lease_ttl_s must be from 5 to 3600 seconds."
  }
}

variable "stop_grace_s" {
  description = "HFO_STOP_GRACE_S: time an agent may take to stop its workload."
  type        = number
  default     = 30
  nullable    = false
  validation {
    condition     = var.stop_grace_s >= 0 && var.stop_grace_s <= 600
    error_message = "stop_grace_s must be from 0 to 600 seconds."
  }
}

variable "start_cooldown_s" {
  description = "HFO_START_COOLDOWN_S: at most one EC2 start per this many seconds."
  type        = number
  default     = 900
  nullable    = false
  validation {
    condition     = var.start_cooldown_s >= 0 && var.start_cooldown_s <= 86400
    error_message = "start_cooldown_s must be from 0 to 86400 seconds."
  }
}

variable "min_state_s" {
  description = "HFO_MIN_STATE_S: minimum time in a phase before a non-emergency transition."
  type        = number
  default     = 120
  nullable    = false
  validation {
    condition     = var.min_state_s >= 0 && var.min_state_s <= 86400
    error_message = "min_state_s must be from 0 to 86400 seconds."
  }
}

variable "standby_max_runtime_s" {
  description = "HFO_STANDBY_MAX_RUNTIME_S: alert when the standby has run longer than this. Also drives the CloudWatch alarm on the instance's own metrics, which fires even if the watchdog is broken."
  type        = number
  default     = 86400
  nullable    = false
  validation {
    condition     = var.standby_max_runtime_s >= 600 && var.standby_max_runtime_s <= 2592000
    error_message = "standby_max_runtime_s must be from 600 to 2592000 seconds (10 minutes to 30 days)."
  }
}

# --- fast failover (docs/state-machine.md#pre-warm, #renewal-on-the-probe-path) -----------

variable "prewarm_silence_s" {
  description = "HFO_PREWARM_SILENCE_S: heartbeat silence that, with a failed probe in the same tick, starts the standby without the lease (pre-warm). The watchdog waits at least 1.5 heartbeat intervals whatever this says."
  type        = number
  default     = 15
  nullable    = false
  validation {
    condition     = var.prewarm_silence_s >= 1 && var.prewarm_silence_s <= 3600 && floor(var.prewarm_silence_s) == var.prewarm_silence_s
    error_message = "prewarm_silence_s must be a whole number from 1 to 3600 seconds."
  }
}

variable "prewarm_hold_s" {
  description = "HFO_PREWARM_HOLD_S: a pre-warmed standby that was not needed stops this long after its start."
  type        = number
  default     = 600
  nullable    = false
  validation {
    condition     = var.prewarm_hold_s >= 10 && var.prewarm_hold_s <= 86400 && floor(var.prewarm_hold_s) == var.prewarm_hold_s
    error_message = "prewarm_hold_s must be a whole number from 10 to 86400 seconds."
  }
}

variable "prewarm_max_per_hour" {
  description = "HFO_PREWARM_MAX_PER_HOUR: pre-warm starts in any hour (a budget of their own, apart from start_cooldown_s); 0 turns pre-warm off. Each start that was not needed costs up to prewarm_hold_s of standby time."
  type        = number
  default     = 3
  nullable    = false
  validation {
    condition     = var.prewarm_max_per_hour >= 0 && var.prewarm_max_per_hour <= 12 && floor(var.prewarm_max_per_hour) == var.prewarm_max_per_hour
    error_message = "prewarm_max_per_hour must be a whole number from 0 (pre-warm off) to 12."
  }
}

variable "probe_lease_ttl_s" {
  description = "HFO_PROBE_LEASE_TTL_S: how long one lease renewal over the probe path lets the primary hold the lease; 0 turns renewal over the probe path off. Otherwise above the tick interval plus the probe's timeouts, so that one renewal lasts until the next tick's."
  type        = number
  default     = 90
  nullable    = false
  validation {
    condition     = var.probe_lease_ttl_s >= 0 && var.probe_lease_ttl_s <= 3600 && floor(var.probe_lease_ttl_s) == var.probe_lease_ttl_s
    error_message = "probe_lease_ttl_s must be a whole number from 0 (no renewal over the probe path) to 3600 seconds."
  }
}

variable "probe_renew_after_s" {
  description = "HFO_PROBE_RENEW_AFTER_S: renew the lease over the probe path only once the primary's last heartbeat is this old (0: at every good probe)."
  type        = number
  default     = 0
  nullable    = false
  validation {
    condition     = var.probe_renew_after_s >= 0 && var.probe_renew_after_s <= 3600 && floor(var.probe_renew_after_s) == var.probe_renew_after_s
    error_message = "probe_renew_after_s must be a whole number from 0 to 3600 seconds."
  }
}

variable "handover_heartbeat_interval_s" {
  description = "HFO_HANDOVER_HEARTBEAT_INTERVAL_S: heartbeat interval asked of a site while a lease move waits on it (warm or failing-over standby, handover). The watchdog never asks for more than heartbeat_interval_s."
  type        = number
  default     = 2
  nullable    = false
  validation {
    condition     = var.handover_heartbeat_interval_s >= 1 && var.handover_heartbeat_interval_s <= 300 && floor(var.handover_heartbeat_interval_s) == var.handover_heartbeat_interval_s
    error_message = "handover_heartbeat_interval_s must be a whole number from 1 to 300 seconds."
  }
}

variable "fallback_instance_types" {
  description = "HFO_FALLBACK_INSTANCE_TYPES: instance types tried in order when EC2 has no capacity for the standby's own type (same architecture, at least 2 GiB)."
  type        = list(string)
  default     = []
  nullable    = false
  validation {
    condition     = alltrue([for t in var.fallback_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "fallback_instance_types must be instance types such as t4g.medium."
  }
}

variable "history_days" {
  description = "HFO_HISTORY_DAYS: how long transition history is kept (DynamoDB TTL)."
  type        = number
  default     = 30
  nullable    = false
  validation {
    condition     = var.history_days >= 1 && var.history_days <= 365 && floor(var.history_days) == var.history_days
    error_message = "history_days must be a whole number from 1 to 365."
  }
}

variable "aws_max_attempts" {
  description = "HFO_AWS_MAX_ATTEMPTS: botocore standard-mode retry attempts."
  type        = number
  default     = 3
  nullable    = false
  validation {
    condition     = var.aws_max_attempts >= 1 && var.aws_max_attempts <= 10 && floor(var.aws_max_attempts) == var.aws_max_attempts
    error_message = "aws_max_attempts must be a whole number from 1 to 10."
  }
}

variable "tracing" {
  description = "HFO_TRACING and X-Ray active tracing on both functions (about 350 ms more cold start, and X-Ray charges beyond its free tier)."
  type        = bool
  default     = false
  nullable    = false
}

variable "custom_metrics" {
  description = "Publish the watchdog's three custom metrics (ProbeFailed, StandbyRunning, ActionFailed; docs/watchdog.md) as CloudWatch Embedded Metric Format. Off by default: each custom metric costs 0.30 USD a month beyond the free tier (`make cost` shows it). The alarms use only metrics AWS publishes for free."
  type        = bool
  default     = false
  nullable    = false
}

variable "standby_runtime_alarm" {
  description = "A CloudWatch alarm (0.10 USD a month beyond the free tier) when the standby has run longer than standby_max_runtime_s, from EC2's own metrics. Off by default: the watchdog alerts on that itself at every tick (HFO_STANDBY_MAX_RUNTIME_S), and the tick's own alarm fires when the watchdog is what is broken."
  type        = bool
  default     = false
  nullable    = false
}

variable "log_level" {
  description = "POWERTOOLS_LOG_LEVEL of both functions."
  type        = string
  default     = "INFO"
  nullable    = false
  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "metrics_namespace" {
  description = "POWERTOOLS_METRICS_NAMESPACE: CloudWatch namespace of the watchdog's custom metrics."
  type        = string
  default     = "HybridFailover"
  nullable    = false
  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 characters of letters, digits and . _ / # : - and must not start with AWS/."
  }
}

# --- storage, logs, alarms -------------------------------------------------------------

variable "log_retention_days" {
  description = "Retention of both functions' log groups, in days (a value CloudWatch Logs accepts)."
  type        = number
  default     = 14
  nullable    = false
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' values: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "table_deletion_protection" {
  description = "DynamoDB deletion protection on the state table. On by default: losing the table resets the lease epoch, and agents ignore lease answers with an epoch lower than the highest they have seen."
  type        = bool
  default     = true
  nullable    = false
}

variable "table_point_in_time_recovery" {
  description = "DynamoDB point-in-time recovery (35 days of restores). On by default: the table holds a few kilobytes, so it costs a fraction of a cent a month."
  type        = bool
  default     = true
  nullable    = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "state_bucket_name" {
  description = "Name of the bots' state bucket (modules/state-bucket). Set: the heartbeat handler hands the lease holder short-lived credentials for it (HFO_STATE_BUCKET, HFO_STATE_ROLE_ARN; docs/state-handoff.md#credentials) and this module creates the role they come from. Null (default): state handoff off."
  type        = string
  default     = null

  validation {
    condition     = var.state_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket_name))
    error_message = "state_bucket_name must be an S3 bucket name (3-63 of a-z 0-9 . -, a letter or digit at both ends), or null."
  }

  validation {
    condition     = var.state_access_enabled == (var.state_bucket_name != null)
    error_message = "state_bucket_name must be set exactly when state_access_enabled is true."
  }
}

variable "state_access_enabled" {
  description = "Create the state credentials' role (state_access.tf). True exactly when state_bucket_name is set: a name known only after apply (a bucket_prefix) cannot decide how many resources to create at plan time."
  type        = bool
  default     = false
  nullable    = false
}

variable "state_credentials_ttl_s" {
  description = "HFO_STATE_CREDENTIALS_TTL_S: lifetime of the state credentials the lease holder gets (STS AssumeRole's DurationSeconds). Fencing never relies on it; it bounds what a leaked set can do."
  type        = number
  default     = 900
  nullable    = false

  validation {
    condition     = var.state_credentials_ttl_s >= 900 && var.state_credentials_ttl_s <= 3600 && floor(var.state_credentials_ttl_s) == var.state_credentials_ttl_s
    error_message = "state_credentials_ttl_s must be a whole number of seconds from 900 (STS's minimum) to 3600 (the role's maximum session)."
  }
}
