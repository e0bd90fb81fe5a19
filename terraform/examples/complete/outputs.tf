# The module's outputs, unchanged (docs/terraform.md#variables-and-outputs). No secret value is ever an output.

output "heartbeat_url" {
  description = "Both sites' agents POST their heartbeats here (HFO_HEARTBEAT_URL in k8s/base/kustomization.yaml)."
  value       = module.hfo.heartbeat_url
}

output "instance_id" {
  description = "The standby instance (stopped; the watchdog starts it on failover)."
  value       = module.hfo.instance_id
}

output "table_name" {
  description = "The watchdog's state table (for the `hfo` CLI: HFO_TABLE_NAME)."
  value       = module.hfo.table_name
}

output "alert_topic_arn" {
  description = "SNS topic of the alerts."
  value       = module.hfo.alert_topic_arn
}

output "secret_names" {
  description = "The secrets to fill (names only, never values)."
  value       = module.hfo.secret_names
}

output "hmac_secret_name" {
  description = "The SSM SecureString parameter holding the shared HMAC keyring (its name, never its value)."
  value       = module.hfo.hmac_secret_name
}

output "function_names" {
  description = "The watchdog's functions."
  value       = module.hfo.function_names
}

output "standby" {
  description = "The standby as deployed: what `hfo doctor` and the docs' checks read (no secret)."
  value       = module.hfo.standby
}

output "watchdog" {
  description = "The watchdog as deployed: region, schedule, functions and their reserved concurrency, alarms (no secret)."
  value       = module.hfo.watchdog
}

output "user_data_bytes" {
  description = "Size of the standby's user data (EC2 limit 16384)."
  value       = module.hfo.user_data_bytes
}

output "argocd_ui" {
  description = "How to reach the standby's Argo CD UI while it runs (it has no inbound port: Tailscale SSH or SSM Session Manager)."
  value       = module.hfo.argocd_ui
}

output "state_bucket_name" {
  description = "Name of the bots' state bucket (docs/state-handoff.md); null unless state_bucket_enabled."
  value       = module.hfo.state_bucket_name
}

output "state_access_role_arn" {
  description = "ARN of the role the watchdog assumes to hand the lease holder its state credentials (docs/state-handoff.md#credentials); null unless state_bucket_enabled."
  value       = module.hfo.state_access_role_arn
}

output "next_steps" {
  description = "What to do after the first apply (docs/walkthrough.md, steps 6 and 7)."
  value       = module.hfo.next_steps
}
