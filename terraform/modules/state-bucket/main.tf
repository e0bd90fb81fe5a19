# The bucket of the bots' state (docs/state-handoff.md): epoch-prefixed snapshots under
# state/<workload>/epochs/ and one manifest per workload, written by the lease holder with
# conditional requests. Versioned (an overwritten or deleted object stays recoverable for
# retention_days; a replaced snapshot, superseded_retention_days), encrypted, private (public
# access blocked, ACLs disabled), TLS only, and a bucket policy that refuses a manifest or snapshot
# PUT without its conditional header, so no credential or presigned URL can be used for an
# unconditional overwrite.

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Access logging needs a second bucket and its storage; the writers are the two sites, whose uploads the agents log with their epoch
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles the cost of a standby meant to cost under 1 USD a month; versioning keeps overwritten state
  #checkov:skip=CKV_AWS_145:SSE-S3 by default (no KMS fee); set kms_key_arn for SSE-KMS with a customer managed key
  #checkov:skip=CKV2_AWS_62:No consumer of object events: the lease holder's agent knows every write it makes
  bucket_prefix = "${var.name}-state-"
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "DenyWithoutTLS"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # The fencing's conditional writes (docs/state-handoff.md#fencing): a manifest PUT carries
  # If-Match or If-None-Match (both absent: denied), a snapshot PUT carries If-None-Match.
  statement {
    sid       = "DenyUnconditionalManifestWrites"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this.arn}/state/*/manifest.json"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:if-match"
      values   = ["true"]
    }

    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }
  }

  statement {
    sid       = "DenySnapshotOverwrites"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this.arn}/state/*/epochs/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.this.json

  # The public access block first: S3 refuses policies it would block while it is being set.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.retention_days
    }

    expiration {
      expired_object_delete_marker = true
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # Replaced snapshots, once no manifest names them: the writer tags the snapshot its manifest
  # write replaced (docs/state-handoff.md#bucket). Untagged objects never expire here, so the
  # current snapshot of a bot whose state did not change for months is kept. Their own, shorter
  # retention: the expiry only makes a snapshot noncurrent in this versioned bucket, so the rule
  # also removes a tagged noncurrent version after superseded_retention_days (where two rules
  # expire the same version, S3 honours the shorter), else it would stay retention_days more.
  rule {
    id     = "expire-superseded-snapshots"
    status = "Enabled"

    # By tag alone: the bucket holds nothing but state. (An `and` with a prefix would also send
    # ObjectSizeGreaterThan = 0, which moto does not echo back, so the apply never settles there.)
    filter {
      tag {
        key   = "hfo-state"
        value = "superseded"
      }
    }

    expiration {
      days = var.superseded_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.superseded_retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}
