# One role per function, each holding only what its handler does (docs/watchdog.md, "What the
# function needs from AWS"). Written with aws_iam_policy_document; every resource is an ARN of
# this stack, except the EC2 describe call, which AWS does not allow to be scoped to a resource.
# Query (history) is the `hfo` CLI's, run with the operator's own credentials.

locals {
  table_arns = [aws_dynamodb_table.state.arn]
  log_streams = {
    for k, lg in aws_cloudwatch_log_group.fn : k => "${lg.arn}:log-stream:*"
  }
  # Both handlers may alert (the heartbeat handler when it completes a handback), so both read
  # the keyring and the Discord webhook.
  secret_arns = compact([var.hmac_secret_arn, var.discord_secret_arn == null ? "" : var.discord_secret_arn])
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

# What both handlers need: the state table, describe the standby, alert (the heartbeat
# handler alerts when it completes a handback), read the keyring and the webhook, and trace
# when tracing is on.
data "aws_iam_policy_document" "shared" {
  statement {
    # The tick's conditional control writes with their history items, and the fence they set on
    # the site item of a site they take the lease from (an Update inside the transaction); the
    # heartbeat handler's site item (a conditional PutItem), its reads for the lease answer and
    # the handover it may complete (docs/state.md).
    sid = "StateTable"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",         # the fence, inside TransactWriteItems
      "dynamodb:ConditionCheckItem", # inside TransactWriteItems, which has no IAM action of its own
    ]
    resources = local.table_arns
  }

  statement {
    # EC2's Describe* actions support no resource-level permissions: AWS requires "*".
    sid       = "DescribeNeedsWildcard"
    actions   = ["ec2:DescribeInstances"]
    resources = ["*"]
  }

  statement {
    sid       = "Alerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  statement {
    # SecureString parameters under the AWS managed key aws/ssm: Parameter Store decrypts on the
    # caller's behalf, so no kms: action is needed.
    sid       = "Secrets"
    actions   = ["ssm:GetParameter"]
    resources = local.secret_arns
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

data "aws_iam_policy_document" "tick" {
  source_policy_documents = [data.aws_iam_policy_document.shared.json]

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [local.log_streams.tick]
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

  dynamic "statement" {
    for_each = var.ebs_kms_key_arn == null ? [] : [var.ebs_kms_key_arn]
    content {
      # Starting an instance whose volume is encrypted with a customer managed key: EC2 creates a
      # grant on the key in the caller's name, so the caller needs kms:CreateGrant (AWS re:Post,
      # "kms-iam-ec2-permission"); only for grants an AWS service creates.
      sid       = "GrantEc2TheStandbyVolumeKey"
      actions   = ["kms:CreateGrant"]
      resources = [statement.value]
      condition {
        test     = "Bool"
        variable = "kms:GrantIsForAWSResource"
        values   = ["true"]
      }
    }
  }
}

data "aws_iam_policy_document" "heartbeat" {
  source_policy_documents = [data.aws_iam_policy_document.shared.json]

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [local.log_streams.heartbeat]
  }

  statement {
    # Completing a handback: the standby acknowledged it stopped its workload, so the handler
    # stops the instance at once instead of a tick later. It never starts or modifies it.
    sid       = "StopTheStandbyOnly"
    actions   = ["ec2:StopInstances"]
    resources = [var.instance_arn]
  }
}

resource "aws_iam_role_policy" "fn" {
  for_each = local.function_names
  name     = "${each.key}-handler"
  role     = aws_iam_role.fn[each.key].id
  policy   = each.key == "tick" ? data.aws_iam_policy_document.tick.json : data.aws_iam_policy_document.heartbeat.json
}
