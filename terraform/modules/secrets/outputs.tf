# Names and ARNs only: never a value.

output "hmac_secret_arn" {
  description = "ARN of the HMAC keyring secret."
  value       = aws_secretsmanager_secret.hmac.arn
}

output "hmac_secret_name" {
  description = "Name of the HMAC keyring secret (for `aws secretsmanager put-secret-value --secret-id`)."
  value       = aws_secretsmanager_secret.hmac.name
}

output "tailscale_secret_arn" {
  description = "ARN of the Tailscale auth key secret."
  value       = aws_secretsmanager_secret.tailscale.arn
}

output "tailscale_secret_name" {
  description = "Name of the Tailscale auth key secret."
  value       = aws_secretsmanager_secret.tailscale.name
}

output "discord_secret_arn" {
  description = "ARN of the Discord webhook secret, or null when discord_alerts is false."
  value       = one(aws_secretsmanager_secret.discord[*].arn)
}

output "discord_secret_name" {
  description = "Name of the Discord webhook secret, or null when discord_alerts is false."
  value       = one(aws_secretsmanager_secret.discord[*].name)
}
