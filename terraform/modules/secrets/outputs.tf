# Names and ARNs only: never a value.

output "hmac_secret_arn" {
  description = "ARN of the HMAC keyring parameter (SSM SecureString)."
  value       = aws_ssm_parameter.hmac.arn
}

output "hmac_secret_name" {
  description = "Name of the HMAC keyring parameter (for `aws ssm put-parameter --overwrite --type SecureString --name`)."
  value       = aws_ssm_parameter.hmac.name
}

output "tailscale_secret_arn" {
  description = "ARN of the Tailscale auth key parameter."
  value       = aws_ssm_parameter.tailscale.arn
}

output "tailscale_secret_name" {
  description = "Name of the Tailscale auth key parameter."
  value       = aws_ssm_parameter.tailscale.name
}

output "discord_secret_arn" {
  description = "ARN of the Discord webhook parameter, or null when discord_alerts is false."
  value       = one(aws_ssm_parameter.discord[*].arn)
}

output "discord_secret_name" {
  description = "Name of the Discord webhook parameter, or null when discord_alerts is false."
  value       = one(aws_ssm_parameter.discord[*].name)
}
