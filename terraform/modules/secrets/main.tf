# The three secrets of the project. Their values never pass through Terraform's state: either
# the user puts them with the AWS CLI, or Terraform writes them through write-only arguments
# from ephemeral variables (values_version > 0). Only names and ARNs leave this module.
#
# Fixed names (<name>/...), known at plan time: the standby's user data refers to its secret by
# name, so the user data, and its 16 KiB check, are known at plan time too. The price: after a
# destroy, the same names are blocked until the recovery window ends (or restore the secrets).

locals {
  write_values = var.values_version > 0
}

resource "aws_secretsmanager_secret" "hmac" {
  #checkov:skip=CKV_AWS_149:Encrypted with the AWS managed key aws/secretsmanager; a customer managed key would add 1 USD a month to a standby that costs a few
  #checkov:skip=CKV2_AWS_57:The keyring is rotated by hand across both sites (docs/protocol.md); a rotation Lambda cannot reach the laptop's cluster
  name                    = "${var.name}/hmac-keyring"
  description             = "hybrid-failover: HMAC keyring shared by the watchdog and both sites (docs/protocol.md)"
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret" "tailscale" {
  #checkov:skip=CKV_AWS_149:Encrypted with the AWS managed key aws/secretsmanager; a customer managed key would add 1 USD a month
  #checkov:skip=CKV2_AWS_57:Tailscale auth keys are issued in the Tailscale admin console; AWS cannot rotate them
  name                    = "${var.name}/tailscale-auth-key"
  description             = "hybrid-failover: Tailscale auth key the standby node joins the tailnet with"
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret" "discord" {
  #checkov:skip=CKV_AWS_149:Encrypted with the AWS managed key aws/secretsmanager; a customer managed key would add 1 USD a month
  #checkov:skip=CKV2_AWS_57:Discord webhook URLs are issued in Discord; AWS cannot rotate them
  count                   = var.discord_alerts ? 1 : 0
  name                    = "${var.name}/discord-webhook"
  description             = "hybrid-failover: Discord webhook URL for alerts"
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "hmac" {
  count                    = local.write_values ? 1 : 0
  secret_id                = aws_secretsmanager_secret.hmac.id
  secret_string_wo         = var.hmac_keyring
  secret_string_wo_version = var.values_version

  lifecycle {
    precondition {
      condition     = var.hmac_keyring != null
      error_message = "values_version > 0 makes Terraform write every secret value, and hmac_keyring is not set: pass it as an ephemeral variable (TF_VAR_hmac_keyring), or keep values_version = 0 and put the values with the AWS CLI."
    }
  }
}

resource "aws_secretsmanager_secret_version" "tailscale" {
  count                    = local.write_values ? 1 : 0
  secret_id                = aws_secretsmanager_secret.tailscale.id
  secret_string_wo         = var.tailscale_auth_key
  secret_string_wo_version = var.values_version

  lifecycle {
    precondition {
      condition     = var.tailscale_auth_key != null
      error_message = "values_version > 0 makes Terraform write every secret value, and tailscale_auth_key is not set: pass it as an ephemeral variable (TF_VAR_tailscale_auth_key), or keep values_version = 0 and put the values with the AWS CLI."
    }
  }
}

resource "aws_secretsmanager_secret_version" "discord" {
  count                    = local.write_values && var.discord_alerts ? 1 : 0
  secret_id                = aws_secretsmanager_secret.discord[0].id
  secret_string_wo         = var.discord_webhook_url
  secret_string_wo_version = var.values_version

  lifecycle {
    precondition {
      condition     = var.discord_webhook_url != null
      error_message = "values_version > 0 makes Terraform write every secret value, and discord_webhook_url is not set: pass it as an ephemeral variable (TF_VAR_discord_webhook_url) (or set discord_alerts = false), or keep values_version = 0 and put the values with the AWS CLI."
    }
  }
}
