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
