output "vpc_id" {
  description = "The standby VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "The VPC's CIDR block (the standby module checks it against K3s's pod and service networks and the tailnet)."
  value       = var.vpc_cidr
}

output "subnet_cidr" {
  description = "The public subnet's CIDR block."
  value       = local.subnet_cidr
}

output "subnet_id" {
  description = "The public subnet the standby instance lives in."
  value       = aws_subnet.public.id
}

output "security_group_id" {
  description = "The standby instance's security group (no inbound rule unless inbound_rules says so)."
  value       = aws_security_group.standby.id
}

output "availability_zone" {
  description = "The subnet's availability zone."
  value       = aws_subnet.public.availability_zone
}
