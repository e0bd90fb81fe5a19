output "instance_id" {
  description = "The standby instance (HFO_INSTANCE_ID)."
  value       = aws_instance.this.id
  # Hand it out only once the instance has been stopped, so nothing downstream (the watchdog)
  # sees it before Terraform is done with it.
  depends_on = [aws_ec2_instance_state.this]
}

output "instance_arn" {
  description = "ARN of the standby instance (the watchdog's EC2 permissions are scoped to it)."
  value       = aws_instance.this.arn
}

output "instance_type" {
  description = "The instance type Terraform launched (the watchdog may change it on insufficient capacity)."
  value       = local.instance_type
}

output "ami_id" {
  description = "The AMI the instance was launched from."
  value       = aws_instance.this.ami
}

output "role_name" {
  description = "The node's IAM role."
  value       = aws_iam_role.node.name
}

output "tailscale_hostname" {
  description = "The standby's name on the tailnet and its K3s node name."
  value       = var.tailscale_hostname
}

output "user_data_bytes" {
  description = "Size of the rendered user data (EC2's limit: 16384 bytes)."
  value       = local.user_data_bytes
}

output "architecture" {
  description = "The standby's CPU architecture (arm64 or x86_64)."
  value       = var.architecture
}

output "platform" {
  description = "The container platform the standby runs (linux/arm64 or linux/amd64): the images must be built for it."
  value       = local.platform
}

output "networks" {
  description = "The networks checked not to overlap at plan time: the node's VPC and subnet, K3s's pod and service networks and CoreDNS's address, the tailnet."
  value = {
    host         = var.host_cidrs
    cluster_cidr = var.cluster_cidr
    service_cidr = var.service_cidr
    cluster_dns  = cidrhost(var.service_cidr, 10)
    tailnet      = local.tailnet_cidr
  }
}

output "parameter_path" {
  description = "The SSM Parameter Store path the node reads its configuration from at every boot (gzip + base64, in parts of 4096 characters)."
  value       = local.ssm_path
}

output "parameter_files" {
  description = "The files of the node's configuration (bootstrap.sh, bootstrap.env, k3s-config.yaml, images, manifests/*, SHA256SUMS) and their SHA-256, as the node checks them."
  value       = { for k, v in local.node_files_with_sums : k => sha256(v) }
}

output "workload_images" {
  description = "The images the node pulls at every boot before Argo CD syncs."
  value       = var.workload_images
}

output "ebs_kms_key_arn" {
  description = "The customer managed KMS key of the root volume, or null (EBS's default key for the account)."
  value       = var.ebs_kms_key_arn
}
