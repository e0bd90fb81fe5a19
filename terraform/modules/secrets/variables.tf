variable "name" {
  description = "Prefix of the secret names."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 characters: a lowercase letter, then lowercase letters, digits or '-'."
  }
}

variable "discord_alerts" {
  description = "Create the parameter for a Discord webhook URL (alerts to a Discord channel). SecureString parameters of the Standard tier cost nothing at rest."
  type        = bool
  default     = true
  nullable    = false
}

variable "values_version" {
  description = <<-EOT
    0 (default): Terraform creates the parameters with a placeholder and never sees their values;
    put them with `aws ssm put-parameter --overwrite` (docs/terraform.md). N > 0: Terraform writes the
    values of hmac_keyring, tailscale_auth_key and discord_webhook_url through write-only
    arguments (never stored in the state or the plan); bump N to write new values.
  EOT
  type        = number
  default     = 0
  nullable    = false

  validation {
    condition     = var.values_version >= 0 && floor(var.values_version) == var.values_version
    error_message = "values_version must be a whole number >= 0."
  }
}

variable "hmac_keyring" {
  description = "Shared HMAC secret or keyring JSON (docs/protocol.md), written only when values_version > 0. Ephemeral: never stored."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = var.hmac_keyring == null || try(length(var.hmac_keyring) >= 32, false)
    error_message = "hmac_keyring must be at least 32 characters (a plain secret) or a keyring JSON document (docs/protocol.md)."
  }
}

variable "tailscale_auth_key" {
  description = "Tailscale auth key for the standby node (tskey-auth-...), written only when values_version > 0. Ephemeral: never stored."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = var.tailscale_auth_key == null || startswith(coalesce(var.tailscale_auth_key, "-"), "tskey-")
    error_message = "tailscale_auth_key must be a Tailscale auth key, which starts with 'tskey-'."
  }
}

variable "discord_webhook_url" {
  description = "Discord webhook URL for alerts, written only when values_version > 0 and discord_alerts is true. Ephemeral: never stored."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true

  validation {
    condition     = var.discord_webhook_url == null || can(regex("^https://((ptb|canary)\\.)?discord(app)?\\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]+$", coalesce(var.discord_webhook_url, "-")))
    error_message = "discord_webhook_url must look like https://discord.com/api/webhooks/<id>/<token>."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
  nullable    = false
}
