# The watchdog: two Lambda functions from one package (tick, on a schedule; heartbeat, behind
# a public Function URL), the state table, the alert topic, log groups, alarms, and one IAM
# role per function holding only what that function does.

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  functions = {
    tick      = { handler = "hfo_watchdog.handlers.tick", timeout = var.tick_timeout_s, concurrency = var.tick_reserved_concurrency }
    heartbeat = { handler = "hfo_watchdog.handlers.heartbeat", timeout = var.heartbeat_timeout_s, concurrency = var.heartbeat_reserved_concurrency }
  }
  function_names = { for k, _ in local.functions : k => "${var.name}-${k}" }

  # docs/configuration.md. Both handlers get the same environment. Secrets appear only as
  # ARNs; optional settings that are off are left out (empty means off).
  environment = merge(
    {
      HFO_TABLE_NAME               = aws_dynamodb_table.state.name
      HFO_INSTANCE_ID              = var.instance_id
      HFO_HEALTH_URL               = var.health_url
      HFO_HMAC_SECRET_ARN          = var.hmac_secret_arn
      HFO_SNS_TOPIC_ARN            = aws_sns_topic.alerts.arn
      HFO_TICK_INTERVAL_S          = tostring(var.tick_interval_minutes * 60)
      HFO_PROBE_CONNECT_TIMEOUT_S  = tostring(var.probe_connect_timeout_s)
      HFO_PROBE_READ_TIMEOUT_S     = tostring(var.probe_read_timeout_s)
      HFO_PROBE_MAX_BODY_BYTES     = tostring(var.probe_max_body_bytes)
      HFO_MAX_SKEW_S               = tostring(var.max_skew_s)
      HFO_DOWN_PROBES              = tostring(var.down_probes)
      HFO_DOWN_HEARTBEAT_S         = tostring(var.down_heartbeat_s)
      HFO_RECOVERY_PROBES          = tostring(var.recovery_probes)
      HFO_RECOVERY_STEADY_S        = tostring(var.recovery_steady_s)
      HFO_HEARTBEAT_INTERVAL_S     = tostring(var.heartbeat_interval_s)
      HFO_LEASE_TTL_S              = tostring(var.lease_ttl_s)
      HFO_STOP_GRACE_S             = tostring(var.stop_grace_s)
      HFO_START_COOLDOWN_S         = tostring(var.start_cooldown_s)
      HFO_MIN_STATE_S              = tostring(var.min_state_s)
      HFO_STANDBY_MAX_RUNTIME_S    = tostring(var.standby_max_runtime_s)
      HFO_HISTORY_DAYS             = tostring(var.history_days)
      HFO_AWS_MAX_ATTEMPTS         = tostring(var.aws_max_attempts)
      HFO_TRACING                  = var.tracing ? "true" : "false"
      POWERTOOLS_SERVICE_NAME      = "hfo-watchdog"
      POWERTOOLS_METRICS_NAMESPACE = var.metrics_namespace
      POWERTOOLS_METRICS_DISABLED  = var.custom_metrics ? "false" : "true"
      POWERTOOLS_LOG_LEVEL         = var.log_level
    },
    # Fast failover: pre-warm, renewal over the probe path, the pace asked during a lease move.
    {
      HFO_PREWARM_SILENCE_S             = tostring(var.prewarm_silence_s)
      HFO_PREWARM_HOLD_S                = tostring(var.prewarm_hold_s)
      HFO_PREWARM_MAX_PER_HOUR          = tostring(var.prewarm_max_per_hour)
      HFO_PROBE_LEASE_TTL_S             = tostring(var.probe_lease_ttl_s)
      HFO_PROBE_RENEW_AFTER_S           = tostring(var.probe_renew_after_s)
      HFO_HANDOVER_HEARTBEAT_INTERVAL_S = tostring(var.handover_heartbeat_interval_s)
    },
    var.discord_secret_arn == null ? {} : { HFO_DISCORD_WEBHOOK_SECRET_ARN = var.discord_secret_arn },
    length(var.fallback_instance_types) == 0 ? {} : { HFO_FALLBACK_INSTANCE_TYPES = join(",", var.fallback_instance_types) },
    # State handoff (state_access.tf): both or neither, as the watchdog requires.
    var.state_bucket_name == null ? {} : { HFO_STATE_BUCKET = var.state_bucket_name, HFO_STATE_ROLE_ARN = aws_iam_role.state_access[0].arn, HFO_STATE_CREDENTIALS_TTL_S = tostring(var.state_credentials_ttl_s) },
  )
}

# The cross-field rules of renewal over the probe path (docs/configuration.md), checked at plan as
# the watchdog checks them at cold start. Here rather than in the variables' validations: a
# validation that refers to other variables is skipped when one of those is invalid, so a bad
# tick_interval_minutes would hide probe_lease_ttl_s's own range error.
resource "terraform_data" "settings_rules" {
  lifecycle {
    precondition {
      condition     = var.probe_lease_ttl_s == 0 || var.probe_lease_ttl_s > var.tick_interval_minutes * 60 + var.probe_connect_timeout_s + var.probe_read_timeout_s
      error_message = "probe_lease_ttl_s must be 0 (no renewal over the probe path) or above tick_interval_minutes * 60 + probe_connect_timeout_s + probe_read_timeout_s (${var.tick_interval_minutes * 60 + var.probe_connect_timeout_s + var.probe_read_timeout_s}), got ${var.probe_lease_ttl_s}: one renewal must last until the next tick's. Raise it when you raise tick_interval_minutes."
    }

    precondition {
      condition     = var.probe_lease_ttl_s == 0 || var.probe_renew_after_s == 0 || var.probe_renew_after_s >= var.heartbeat_interval_s
      error_message = "probe_renew_after_s must be 0 (renew at every passing probe) or at least heartbeat_interval_s (${var.heartbeat_interval_s}) while probe_lease_ttl_s is not 0, got ${var.probe_renew_after_s}: a heartbeat is not late before one interval."
    }
  }
}

# ---------------------------------------------------------------------------------------
# State

resource "aws_dynamodb_table" "state" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS owned key at no cost; a customer managed key adds 1 USD a month plus requests, for a table holding a lease and counters
  name                        = "${var.name}-state"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.table_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = var.table_point_in_time_recovery
  }

  tags = var.tags
}

# ---------------------------------------------------------------------------------------
# Alerts

resource "aws_sns_topic" "alerts" {
  #checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key (alias/aws/sns), and a customer managed key costs 1 USD a month; alerts carry no secret
  name = "${var.name}-alerts"
  tags = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alert_email == null ? 0 : 1
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = var.alert_email
}

# ---------------------------------------------------------------------------------------
# Functions

resource "aws_cloudwatch_log_group" "fn" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest by default; a customer managed key would cost 1 USD a month and the logs hold no secret
  #checkov:skip=CKV_AWS_338:Retention is a cost choice (log_retention_days, default 14); a year of heartbeat logs would cost more than the standby itself
  for_each          = local.function_names
  name              = "/aws/lambda/${each.value}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_lambda_function" "fn" {
  #checkov:skip=CKV_AWS_117:The watchdog probes the laptop over the internet; inside a VPC it would need a NAT gateway (about 32 USD a month)
  #checkov:skip=CKV_AWS_116:Scheduled ticks are not retried on purpose (the next tick comes within a minute) and heartbeats are synchronous; a dead-letter queue would only collect stale events
  #checkov:skip=CKV_AWS_173:The environment holds no secret (secrets are referenced by ARN), so the default encryption at rest is enough
  #checkov:skip=CKV_AWS_272:The package is built reproducibly and pinned by source_code_hash; code signing needs an AWS Signer profile and signed uploads
  #checkov:skip=CKV_AWS_50:X-Ray tracing is opt-in (var.tracing): it lengthens cold starts and costs beyond the free tier
  #checkov:skip=CKV_AWS_115:Concurrency is reserved by variable (none by default): new accounts, whose quota is 10, cannot reserve any
  for_each = local.functions

  function_name    = local.function_names[each.key]
  description      = "hybrid-failover watchdog: ${each.key} handler"
  role             = aws_iam_role.fn[each.key].arn
  runtime          = "python3.12"
  architectures    = [var.lambda_architecture]
  handler          = each.value.handler
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  memory_size      = var.lambda_memory_mb
  timeout          = each.value.timeout

  # -1: no reservation.
  reserved_concurrent_executions = each.value.concurrency

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = var.tracing ? "Active" : "PassThrough"
  }

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.fn, aws_iam_role_policy.fn]
}

# The heartbeat handler's public endpoint. Authorization NONE on purpose: every request must
# carry an HMAC-SHA256 signature made with the shared keyring (docs/protocol.md), which the
# handler checks before it reads anything else. IAM auth would need AWS credentials on the
# laptop and on the standby.
resource "aws_lambda_function_url" "heartbeat" {
  #checkov:skip=CKV_AWS_258:Public by design: the handler authenticates every request by its HMAC signature before reading it (docs/protocol.md); IAM auth would need AWS credentials on the laptop
  function_name      = aws_lambda_function.fn["heartbeat"].function_name
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"
}

# The provider adds the lambda:InvokeFunctionUrl statement itself when it creates a URL with
# authorization NONE (statement FunctionURLAllowPublicAccess). Since October 2025 a new
# Function URL also needs lambda:InvokeFunction. Provider 6.x can limit that statement to URL
# calls (invoked_via_function_url); 5.x cannot, so this one lets any authenticated AWS
# principal invoke the function directly, which grants nothing the public URL does not: the
# same handler, the same signature check (docs/terraform.md).
resource "aws_lambda_permission" "heartbeat_url_invoke" {
  #checkov:skip=CKV_AWS_301:Required next to InvokeFunctionUrl for public Function URLs; every request is authenticated by HMAC in the handler
  statement_id  = "FunctionUrlInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn["heartbeat"].function_name
  principal     = "*"
}

# ---------------------------------------------------------------------------------------
# Schedule: one tick per interval, never retried (a late tick is worse than the next one).

data "aws_iam_policy_document" "assume_scheduler" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name_prefix        = "${var.name}-scheduler-"
  description        = "hybrid-failover: lets EventBridge Scheduler invoke the tick function, nothing else"
  assume_role_policy = data.aws_iam_policy_document.assume_scheduler.json
  tags               = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeTick"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.fn["tick"].arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "invoke-tick"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "tick" {
  #checkov:skip=CKV_AWS_297:The schedule holds only a constant input; a customer managed key would add 1 USD a month
  name                         = "${var.name}-tick"
  description                  = "hybrid-failover: run the watchdog tick"
  schedule_expression          = "rate(${var.tick_interval_minutes} ${var.tick_interval_minutes == 1 ? "minute" : "minutes"})"
  schedule_expression_timezone = "UTC"
  state                        = "ENABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.fn["tick"].arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ source = "hfo.scheduler" })

    retry_policy {
      maximum_retry_attempts       = 0
      maximum_event_age_in_seconds = var.schedule_max_event_age_s
    }
  }
}

# ---------------------------------------------------------------------------------------
# Alarms (all notify the alert topic)

# The heartbeat function crashed, timed out or ran out of memory 3 times or more in 5 minutes.
# (A heartbeat it refuses, or one it answers 503 because the table is unreachable, is a handled
# answer, not an error; the tick reports a heartbeat path that stays broken while the laptop's
# probe passes as `degraded:heartbeat`.)
resource "aws_cloudwatch_metric_alarm" "heartbeat_errors" {
  alarm_name          = "${local.function_names.heartbeat}-errors"
  alarm_description   = "hybrid-failover: the heartbeat handler failed 3 or more times in 5 minutes (see its log group)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = local.function_names.heartbeat }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 3
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
  tags                = var.tags

  depends_on = [aws_lambda_function.fn]
}

# One alarm for both ways the watchdog stops watching: the tick fails, or it does not run at all
# (the schedule is disabled or broken, the function cannot start or is throttled). Lambda sends
# the Errors metric for every invocation, 0 or 1, so a period with no datapoint is a period
# without a tick: missing data counts as breaching. Two periods out of two, as the separate
# silence alarm had, so a metric that arrives late does not page anyone; a tick failing at every
# run alarms within two periods. One alarm instead of two saves 0.10 USD a month (issue 13).
resource "aws_cloudwatch_metric_alarm" "tick" {
  alarm_name          = "${local.function_names.tick}-failing"
  alarm_description   = "hybrid-failover: the watchdog tick failed 3 or more times, or did not run, in each of two periods; nothing is watching the laptop."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = local.function_names.tick }
  statistic           = "Sum"
  period              = max(300, var.tick_interval_minutes * 60)
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  threshold           = 3
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
  tags                = var.tags

  depends_on = [aws_lambda_function.fn]
}

moved {
  from = aws_cloudwatch_metric_alarm.errors["heartbeat"]
  to   = aws_cloudwatch_metric_alarm.heartbeat_errors
}

moved {
  from = aws_cloudwatch_metric_alarm.errors["tick"]
  to   = aws_cloudwatch_metric_alarm.tick
}

# The standby has run longer than standby_max_runtime_s, seen from EC2's own free 5-minute
# metrics: every period in the window holds a datapoint only if the instance ran throughout.
# Independent of the watchdog, so it still fires when the watchdog is what is broken. It
# notifies only: stopping the instance here could take the bot down during a long outage.
# Opt-in (standby_runtime_alarm): the watchdog raises the same alert at every tick, and the tick
# alarm above fires when the watchdog itself is broken; each alarm is 0.10 USD a month.
locals {
  runtime_period  = var.standby_max_runtime_s >= 3600 ? 3600 : 300
  runtime_periods = min(ceil(var.standby_max_runtime_s / local.runtime_period), 168)
}

resource "aws_cloudwatch_metric_alarm" "standby_runtime" {
  count               = var.standby_runtime_alarm ? 1 : 0
  alarm_name          = "${var.name}-standby-running-too-long"
  alarm_description   = "hybrid-failover: the standby instance has been running for more than ${var.standby_max_runtime_s} s (it costs per hour). Check the laptop, or pin the mode (docs)."
  namespace           = "AWS/EC2"
  metric_name         = "CPUUtilization"
  dimensions          = { InstanceId = var.instance_id }
  statistic           = "SampleCount"
  period              = local.runtime_period
  evaluation_periods  = local.runtime_periods
  datapoints_to_alarm = local.runtime_periods
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
  tags                = var.tags
}
