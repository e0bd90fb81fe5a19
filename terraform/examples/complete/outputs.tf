# Everything a user needs next. No secret value is ever an output: only names and ARNs.

output "heartbeat_url" {
  description = "Give this to both sites' agents (HFO_HEARTBEAT_URL); the standby reads it itself."
  value       = module.watchdog.heartbeat_url
}

output "instance_id" {
  description = "The standby instance (stopped; the watchdog starts it on failover)."
  value       = module.standby.instance_id
}

output "table_name" {
  description = "The watchdog's state table (for the `hfo` CLI: HFO_TABLE_NAME)."
  value       = module.watchdog.table_name
}

output "alert_topic_arn" {
  description = "SNS topic of the alerts."
  value       = module.watchdog.alert_topic_arn
}

output "secret_names" {
  description = "The secrets to fill (names only, never values)."
  value = {
    hmac_keyring       = module.secrets.hmac_secret_name
    tailscale_auth_key = module.secrets.tailscale_secret_name
    discord_webhook    = module.secrets.discord_secret_name
  }
}

output "function_names" {
  description = "The watchdog's functions."
  value       = module.watchdog.function_names
}

output "user_data_bytes" {
  description = "Size of the standby's user data (EC2 limit 16384)."
  value       = module.standby.user_data_bytes
}

output "argocd_ui" {
  description = "How to reach the standby's Argo CD UI while it runs (no inbound port: through SSM Session Manager)."
  value       = <<-EOT
    The standby runs only during a failover (or after you start it). Then:
      1. aws ssm start-session --region ${var.region} --target ${module.standby.instance_id}
         sudo k3s kubectl -n argocd port-forward svc/argocd-server 8080:443
      2. in a second terminal:
         aws ssm start-session --region ${var.region} --target ${module.standby.instance_id} \
           --document-name AWS-StartPortForwardingSession \
           --parameters '{"portNumber":["8080"],"localPortNumber":["8080"]}'
      3. open https://localhost:8080 (user admin; password:
         sudo k3s kubectl -n argocd get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' | base64 -d)
    Over the tailnet, https://${module.standby.tailscale_hostname} works the same way once you expose argocd-server there.
  EOT
}

output "next_steps" {
  description = "What to do after the first apply."
  value       = <<-EOT
    1. Put the secret values (skip those Terraform wrote with secret_values_version > 0):
         aws secretsmanager put-secret-value --region ${var.region} --secret-id ${module.secrets.hmac_secret_name} --secret-string file://hmac-keyring.txt
         aws secretsmanager put-secret-value --region ${var.region} --secret-id ${module.secrets.tailscale_secret_name} --secret-string file://tailscale-authkey.txt%{if module.secrets.discord_secret_name != null}
         aws secretsmanager put-secret-value --region ${var.region} --secret-id ${module.secrets.discord_secret_name} --secret-string file://discord-webhook.txt%{endif}
       (files, not literals: a literal would stay in your shell history)
    2. Give the laptop's site agent the same HMAC keyring and HFO_HEARTBEAT_URL=${module.watchdog.heartbeat_url}
    3. Optional warm-up: start ${module.standby.instance_id} once so it installs K3s, Tailscale and Argo CD
       before the first real failover, then stop it.
    4. Watch the watchdog: aws logs tail /aws/lambda/${module.watchdog.function_names.tick} --follow --region ${var.region}
  EOT
}
