variable "name" {
  description = "Prefix of the bucket's name (the provider appends a unique suffix: bucket names are global)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 characters: a lowercase letter, then lowercase letters, digits or '-'."
  }
}

variable "retention_days" {
  description = "Days an overwritten or deleted object version (a manifest, a snapshot deleted by hand) is kept as a noncurrent version before S3 removes it. The snapshot a manifest names is never expired."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 3650 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number of days from 1 to 3650."
  }
}

variable "superseded_retention_days" {
  description = "Days a snapshot tagged hfo-state=superseded (one a newer upload replaced) is kept after its upload, and then as a noncurrent version: at most twice this, whole days from 1 to retention_days. Shorter than retention_days because a replaced snapshot is only history, and every upload leaves one (docs/cost.md)."
  type        = number
  default     = 7
  nullable    = false

  validation {
    condition     = var.superseded_retention_days >= 1 && var.superseded_retention_days <= var.retention_days && floor(var.superseded_retention_days) == var.superseded_retention_days
    error_message = "superseded_retention_days must be a whole number of days from 1 to retention_days (a replaced snapshot is not kept longer than an overwritten object)."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key to encrypt with (SSE-KMS, with an S3 bucket key). Null (default): SSE-S3, S3-managed keys at no cost."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key or alias ARN (arn:aws:kms:<region>:<account>:key/...), or null for S3-managed keys."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket with its objects and versions (the state of every bot). Default false."
  type        = bool
  default     = false
  nullable    = false
}

variable "tags" {
  description = "Tags for the bucket."
  type        = map(string)
  default     = {}
  nullable    = false
}
