# Everything a user needs next. No secret value is ever an output: only names and ARNs.

output "heartbeat_url" {
  description = "Both sites' agents POST their heartbeats here (HFO_HEARTBEAT_URL in k8s/base/kustomization.yaml)."
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

output "hmac_secret_name" {
  description = "The Secrets Manager secret holding the shared HMAC keyring (its name, never its value)."
  value       = module.secrets.hmac_secret_name
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
  description = "How to reach the standby's Argo CD UI while it runs (it has no inbound port: Tailscale SSH or SSM Session Manager)."
  value       = <<-EOT
    The standby runs only during a failover (or while you bootstrap it). Argo CD serves plain HTTP on
    port 80 inside the cluster (server.insecure); reach it through a tunnel, either
      Tailscale SSH:  ssh -L 8080:localhost:8080 <user>@${module.standby.tailscale_hostname} \
                        sudo k3s kubectl -n argocd port-forward svc/argocd-server 8080:80
      or SSM:         aws ssm start-session --region ${var.region} --target ${module.standby.instance_id}
                        (then: sudo k3s kubectl -n argocd port-forward svc/argocd-server 8080:80)
                      and in a second terminal:
                      aws ssm start-session --region ${var.region} --target ${module.standby.instance_id} \
                        --document-name AWS-StartPortForwardingSession \
                        --parameters '{"portNumber":["8080"],"localPortNumber":["8080"]}'
    then open http://localhost:8080 (user admin; password:
      sudo k3s kubectl -n argocd get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' | base64 -d)
  EOT
}

output "next_steps" {
  description = "What to do after the first apply (docs/walkthrough.md, steps 6 and 7)."
  value       = <<-EOT
    1. Put the secret values (skip this if Terraform wrote them, secret_values_version > 0). From files,
       never literals, which would stay in your shell history:
         aws secretsmanager put-secret-value --region ${var.region} --secret-id ${module.secrets.hmac_secret_name} --secret-string file://hmac-keyring.txt
         aws secretsmanager put-secret-value --region ${var.region} --secret-id ${module.secrets.tailscale_secret_name} --secret-string file://tailscale-authkey.txt%{if module.secrets.discord_secret_name != null}
         aws secretsmanager put-secret-value --region ${var.region} --secret-id ${module.secrets.discord_secret_name} --secret-string file://discord-webhook.txt%{endif}
    2. Both sites' agents: HFO_HEARTBEAT_URL=${module.watchdog.heartbeat_url} in k8s/base/kustomization.yaml,
       and the same HMAC keyring sealed into k8s/base/secrets/sealedsecret-site.yaml; commit and push.
    3. Bootstrap the standby once (load the sealing key): pause the watchdog (hfo mode), then
         aws ec2 start-instances --region ${var.region} --instance-ids ${module.standby.instance_id}
       follow docs/walkthrough.md step 7, stop the instance, set the watchdog back to auto.
    4. Watch the watchdog: aws logs tail /aws/lambda/${module.watchdog.function_names.tick} --follow --region ${var.region}
  EOT
}
