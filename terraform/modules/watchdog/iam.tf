# One role per function, each holding only what its handler does. Written with
# aws_iam_policy_document; every resource is an ARN of this stack, except the EC2 describe
# calls, which AWS does not allow to be scoped to a resource.

locals {
  table_arns = [aws_dynamodb_table.state.arn]
  log_streams = {
    for k, lg in aws_cloudwatch_log_group.fn : k => "${lg.arn}:log-stream:*"
  }
  tick_secret_arns = compact([var.hmac_secret_arn, var.discord_secret_arn == null ? "" : var.discord_secret_arn])
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "fn" {
  for_each           = local.function_names
  name_prefix        = "${each.value}-"
  description        = "hybrid-failover watchdog ${each.key} handler"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

data "aws_iam_policy_document" "tick" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [local.log_streams.tick]
  }

  statement {
    sid = "StateTable"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:Query",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:ConditionCheckItem",
    ]
    resources = local.table_arns
  }

  statement {
    sid = "StartStopModifyTheStandbyOnly"
    actions = [
      "ec2:StartInstances",
      "ec2:StopInstances",
      "ec2:ModifyInstanceAttribute",
    ]
    resources = [var.instance_arn]
  }

  statement {
    # EC2's Describe* actions support no resource-level permissions: AWS requires "*".
    sid       = "DescribeNeedsWildcard"
    actions   = ["ec2:DescribeInstances", "ec2:DescribeInstanceStatus"]
    resources = ["*"]
  }

  statement {
    sid       = "Alerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  statement {
    sid       = "Secrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.tick_secret_arns
  }

  dynamic "statement" {
    for_each = var.tracing ? [1] : []
    content {
      # X-Ray's write actions support no resource-level permissions.
      sid       = "Tracing"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }
}

data "aws_iam_policy_document" "heartbeat" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [local.log_streams.heartbeat]
  }

  statement {
    # Its site's item (conditional on sent_at), the control item it reads for the lease
    # answer, and the handover it may complete (docs/state.md).
    sid = "StateTable"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:Query",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:ConditionCheckItem",
    ]
    resources = local.table_arns
  }

  statement {
    sid       = "Keyring"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.hmac_secret_arn]
  }

  dynamic "statement" {
    for_each = var.tracing ? [1] : []
    content {
      sid       = "Tracing"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "fn" {
  for_each = local.function_names
  name     = "${each.key}-handler"
  role     = aws_iam_role.fn[each.key].id
  policy   = each.key == "tick" ? data.aws_iam_policy_document.tick.json : data.aws_iam_policy_document.heartbeat.json
}
