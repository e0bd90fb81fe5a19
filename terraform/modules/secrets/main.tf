# The three secrets of the project, as SSM Parameter Store SecureString parameters of the Standard
# tier: free at rest (Secrets Manager charges 0.40 USD a secret a month, docs/cost.md), encrypted
# with the AWS managed key aws/ssm (no monthly fee either). Their values never pass through
# Terraform's state: Terraform writes them only through write-only arguments (`value_wo`, never
# stored in the state or the plan), either a placeholder that says where the value comes from
# (values_version = 0: the user puts the value with the AWS CLI, which Terraform never reads back)
# or the ephemeral variables' values (values_version > 0). Only names and ARNs leave this module.
#
# Fixed names (/<name>/...), known at plan time: the standby's configuration refers to its key by
# name. They sit outside the standby's configuration path (/<name>/standby), which the node reads
# by path (modules/standby).

locals {
  write_values = var.values_version > 0
  # Starts with "placeholder": the functions refuse it (hfo_watchdog.notify), `hfo doctor` flags it,
  # and it is no Tailscale key (tskey-...), so nothing ever uses it as a secret.
  placeholder = "placeholder: put the value with `aws ssm put-parameter --overwrite --type SecureString` (docs/terraform.md#secrets-putting-the-values-in)"
}

resource "aws_ssm_parameter" "hmac" {
  #checkov:skip=CKV_AWS_337:Encrypted with the AWS managed key aws/ssm; a customer managed key would add 1 USD a month to a standby meant to cost under 1 USD (docs/cost.md)
  name             = "/${var.name}/hmac-keyring"
  description      = "hybrid-failover: HMAC keyring shared by the watchdog and both sites (docs/protocol.md)"
  type             = "SecureString"
  tier             = "Standard"
  value_wo         = local.write_values ? var.hmac_keyring : local.placeholder
  value_wo_version = var.values_version
  tags             = var.tags

  lifecycle {
    precondition {
      condition     = !local.write_values || var.hmac_keyring != null
      error_message = "values_version > 0 makes Terraform write every secret value, and hmac_keyring is not set: pass it as an ephemeral variable (TF_VAR_hmac_keyring), or keep values_version = 0 and put the values with the AWS CLI."
    }
  }
}

resource "aws_ssm_parameter" "tailscale" {
  #checkov:skip=CKV_AWS_337:Encrypted with the AWS managed key aws/ssm; a customer managed key would add 1 USD a month
  name             = "/${var.name}/tailscale-auth-key"
  description      = "hybrid-failover: Tailscale auth key the standby node joins the tailnet with"
  type             = "SecureString"
  tier             = "Standard"
  value_wo         = local.write_values ? var.tailscale_auth_key : local.placeholder
  value_wo_version = var.values_version
  tags             = var.tags

  lifecycle {
    precondition {
      condition     = !local.write_values || var.tailscale_auth_key != null
      error_message = "values_version > 0 makes Terraform write every secret value, and tailscale_auth_key is not set: pass it as an ephemeral variable (TF_VAR_tailscale_auth_key), or keep values_version = 0 and put the values with the AWS CLI."
    }
  }
}

resource "aws_ssm_parameter" "discord" {
  #checkov:skip=CKV_AWS_337:Encrypted with the AWS managed key aws/ssm; a customer managed key would add 1 USD a month
  count            = var.discord_alerts ? 1 : 0
  name             = "/${var.name}/discord-webhook"
  description      = "hybrid-failover: Discord webhook URL for alerts"
  type             = "SecureString"
  tier             = "Standard"
  value_wo         = local.write_values ? var.discord_webhook_url : local.placeholder
  value_wo_version = var.values_version
  tags             = var.tags

  lifecycle {
    precondition {
      condition     = !local.write_values || var.discord_webhook_url != null
      error_message = "values_version > 0 makes Terraform write every secret value, and discord_webhook_url is not set: pass it as an ephemeral variable (TF_VAR_discord_webhook_url) (or set discord_alerts = false), or keep values_version = 0 and put the values with the AWS CLI."
    }
  }
}
