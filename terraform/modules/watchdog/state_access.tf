# State handoff (docs/state-handoff.md#credentials): the role whose short-lived credentials the
# heartbeat handler hands the lease holder, created only when state_bucket_name is set. Only the
# heartbeat function's role may assume it; it may only read and write the bucket's state/ objects
# (and list the bucket, so that a missing manifest reads as 404, not 403), and tag snapshots (the
# writer tags the one its manifest write replaced hfo-state=superseded). Each set the handler
# hands out is narrowed further by a session policy to the holder's own epoch prefix
# (hfo_watchdog.state_access.session_policy): the effective rights are the intersection.

locals {
  state_enabled    = var.state_access_enabled
  state_bucket_arn = var.state_bucket_name == null ? null : "arn:${local.partition}:s3:::${var.state_bucket_name}"
}

data "aws_iam_policy_document" "state_access_trust" {
  count = local.state_enabled ? 1 : 0

  statement {
    sid     = "TheHeartbeatHandlerOnly"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.fn["heartbeat"].arn]
    }
  }
}

resource "aws_iam_role" "state_access" {
  count                = local.state_enabled ? 1 : 0
  name_prefix          = "${var.name}-state-"
  description          = "hybrid-failover: state credentials of the lease holder (assumed by the heartbeat handler)"
  assume_role_policy   = data.aws_iam_policy_document.state_access_trust[0].json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "state_access" {
  count = local.state_enabled ? 1 : 0

  statement {
    sid       = "ReadAndWriteStateObjects"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.state_bucket_arn}/state/*"]
  }

  statement {
    # After an accepted manifest write the writer tags the snapshot it replaced
    # hfo-state=superseded, so the state bucket's lifecycle expires it (docs/state-handoff.md#bucket).
    # Snapshots only, never a manifest.
    sid       = "TagSupersededSnapshots"
    actions   = ["s3:PutObjectTagging"]
    resources = ["${local.state_bucket_arn}/state/*/epochs/*"]
  }

  statement {
    # Without it S3 answers a GET of a key that does not exist with 403, and the first claim of a
    # workload (no manifest yet) could not tell "absent" from "refused".
    sid       = "ListTheStateBucket"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
  }
}

resource "aws_iam_role_policy" "state_access" {
  count  = local.state_enabled ? 1 : 0
  name   = "state-objects"
  role   = aws_iam_role.state_access[0].id
  policy = data.aws_iam_policy_document.state_access[0].json
}

data "aws_iam_policy_document" "heartbeat_assumes_state_access" {
  count = local.state_enabled ? 1 : 0

  statement {
    sid       = "AssumeTheStateAccessRoleOnly"
    actions   = ["sts:AssumeRole"]
    resources = [aws_iam_role.state_access[0].arn]
  }
}

resource "aws_iam_role_policy" "heartbeat_state_access" {
  count  = local.state_enabled ? 1 : 0
  name   = "heartbeat-state-credentials"
  role   = aws_iam_role.fn["heartbeat"].id
  policy = data.aws_iam_policy_document.heartbeat_assumes_state_access[0].json
}
