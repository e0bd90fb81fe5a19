# Everything a user needs next, and what a check of the live deployment reads. No secret value is
# ever an output: only names and ARNs.

locals {
  region = data.aws_region.current.name
}

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
  description = "The SSM SecureString parameter holding the shared HMAC keyring (its name, never its value)."
  value       = module.secrets.hmac_secret_name
}

output "function_names" {
  description = "The watchdog's functions."
  value       = module.watchdog.function_names
}

output "standby" {
  description = "The standby as deployed: what `hfo doctor` and the docs' checks read (no secret)."
  value = {
    instance_id        = module.standby.instance_id
    instance_arn       = module.standby.instance_arn
    instance_type      = module.standby.instance_type
    architecture       = module.standby.architecture
    platform           = module.standby.platform
    image_platforms    = var.image_platforms == null ? ["linux/amd64", "linux/arm64"] : var.image_platforms
    workload_images    = module.standby.workload_images
    networks           = module.standby.networks
    parameter_path     = module.standby.parameter_path
    parameter_files    = module.standby.parameter_files
    tailscale_hostname = module.standby.tailscale_hostname
    ebs_kms_key_arn    = module.standby.ebs_kms_key_arn
    role_name          = module.standby.role_name
  }
}

output "watchdog" {
  description = "The watchdog as deployed: region, schedule, functions and their reserved concurrency, alarms (no secret)."
  value = {
    region               = local.region
    health_url           = var.health_url
    schedule_name        = module.watchdog.schedule_name
    function_names       = module.watchdog.function_names
    function_arns        = module.watchdog.function_arns
    reserved_concurrency = module.watchdog.reserved_concurrency
    alarm_names          = module.watchdog.alarm_names
    log_group_names      = module.watchdog.log_group_names
    table_name           = module.watchdog.table_name
    alert_topic_arn      = module.watchdog.alert_topic_arn
  }
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
      or SSM:         aws ssm start-session --region ${local.region} --target ${module.standby.instance_id}
                        (then: sudo k3s kubectl -n argocd port-forward svc/argocd-server 8080:80)
                      and in a second terminal:
                      aws ssm start-session --region ${local.region} --target ${module.standby.instance_id} \
                        --document-name AWS-StartPortForwardingSession \
                        --parameters '{"portNumber":["8080"],"localPortNumber":["8080"]}'
    then open http://localhost:8080 (user admin; password:
      sudo k3s kubectl -n argocd get secret argocd-initial-admin-secret -o jsonpath='{.data.password}' | base64 -d)
  EOT
}

output "state_bucket_name" {
  description = "Name of the bots' state bucket (docs/state-handoff.md); null unless state_bucket_enabled."
  value       = var.state_bucket_enabled ? module.state_bucket[0].bucket_name : null
}

output "state_access_role_arn" {
  description = "ARN of the role the watchdog assumes to hand the lease holder its state credentials (docs/state-handoff.md#credentials); null unless state_bucket_enabled."
  value       = module.watchdog.state_access_role_arn
}

output "next_steps" {
  description = "What to do after the first apply (docs/walkthrough.md, steps 6 and 7)."
  value       = <<-EOT
    1. Put the secret values (skip this if Terraform wrote them, secret_values_version > 0). From files,
       never literals, which would stay in your shell history:
         aws ssm put-parameter --overwrite --type SecureString --region ${local.region} --name ${module.secrets.hmac_secret_name} --value file://hmac-keyring.txt
         aws ssm put-parameter --overwrite --type SecureString --region ${local.region} --name ${module.secrets.tailscale_secret_name} --value file://tailscale-authkey.txt%{if module.secrets.discord_secret_name != null}
         aws ssm put-parameter --overwrite --type SecureString --region ${local.region} --name ${module.secrets.discord_secret_name} --value file://discord-webhook.txt%{endif}
    2. Both sites' agents: HFO_HEARTBEAT_URL=${module.watchdog.heartbeat_url} in k8s/base/kustomization.yaml,
       and the same HMAC keyring sealed into k8s/base/secrets/sealedsecret-site.yaml; commit and push.
    3. Bootstrap the standby once (load the sealing key): hfo pause, then
         aws ec2 start-instances --region ${local.region} --instance-ids ${module.standby.instance_id}
       follow docs/walkthrough.md step 8, stop the instance, hfo resume.
    4. Watch the watchdog: aws logs tail /aws/lambda/${module.watchdog.function_names.tick} --follow --region ${local.region}
  EOT
}
