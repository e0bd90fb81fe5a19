# The standby's network: one VPC with one public subnet. The instance gets a public IPv4
# address only while it runs (no Elastic IP, which is billed while the instance is stopped),
# reaches the internet through the internet gateway (no NAT gateway: about 32 USD a month),
# and accepts no inbound connection unless var.inbound_rules says so.

locals {
  subnet_cidr = coalesce(var.subnet_cidr, cidrsubnet(var.vpc_cidr, max(0, 26 - tonumber(split("/", var.vpc_cidr)[1])), 0))

  # Each block as [first address, number of addresses] (Terraform has no CIDR containment
  # function): 10.200.0.0/24 is [180879360, 256].
  private_ranges = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
  ranges = {
    for c in concat(local.private_ranges, [var.vpc_cidr, local.subnet_cidr]) : c => [
      sum([for i, octet in split(".", cidrhost(c, 0)) : tonumber(octet) * pow(256, 3 - i)]),
      pow(2, 32 - tonumber(split("/", c)[1])),
    ]
  }
  vpc_is_private = anytrue([
    for p in local.private_ranges :
    local.ranges[var.vpc_cidr][0] >= local.ranges[p][0] && local.ranges[var.vpc_cidr][0] + local.ranges[var.vpc_cidr][1] <= local.ranges[p][0] + local.ranges[p][1]
  ])
  subnet_in_vpc = (
    local.ranges[local.subnet_cidr][0] >= local.ranges[var.vpc_cidr][0] &&
    local.ranges[local.subnet_cidr][0] + local.ranges[local.subnet_cidr][1] <= local.ranges[var.vpc_cidr][0] + local.ranges[var.vpc_cidr][1]
  )
}

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:Flow logs would cost ingestion and storage for a VPC that accepts no inbound traffic; add them if you need an audit trail
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    precondition {
      condition     = local.vpc_is_private
      error_message = "vpc_cidr (${var.vpc_cidr}) must be a private (RFC 1918) range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16: the NetworkPolicies in k8s/ reach the node's Kubernetes API only there, and a range in 100.64.0.0/10 would collide with the tailnet."
    }
  }
}

# Take over the VPC's default security group and leave it without any rule, so nothing that
# lands in it by mistake is reachable or can reach out.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = var.name })
}

resource "aws_subnet" "public" {
  #checkov:skip=CKV_AWS_130:The subnet holds only the standby, which needs a public IPv4 address to reach the internet without a NAT gateway (about 32 USD a month); its security group accepts no inbound connection, and the address is released while the instance is stopped
  vpc_id            = aws_vpc.this.id
  cidr_block        = local.subnet_cidr
  availability_zone = var.availability_zone
  # The standby's public IPv4 address comes from here (auto-assigned: a new one at each start,
  # released at each stop; no Elastic IP, which would be billed while the instance is stopped).
  map_public_ip_on_launch = true

  tags = merge(var.tags, { Name = "${var.name}-public" })

  lifecycle {
    precondition {
      condition     = local.subnet_in_vpc
      error_message = "subnet_cidr (${local.subnet_cidr}) must lie inside vpc_cidr (${var.vpc_cidr})."
    }
  }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-public" })
}

resource "aws_route" "internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_security_group" "standby" {
  #checkov:skip=CKV2_AWS_5:Attached to the standby instance by the standby module (a cross-module reference the check cannot follow)
  name        = "${var.name}-standby"
  description = "hybrid-failover standby: no inbound by default, egress limited to what the node needs"
  vpc_id      = aws_vpc.this.id

  dynamic "ingress" {
    for_each = var.inbound_rules
    content {
      description = ingress.value.description
      protocol    = ingress.value.protocol
      from_port   = ingress.value.from_port
      to_port     = ingress.value.to_port
      cidr_blocks = [ingress.value.cidr]
    }
  }

  dynamic "egress" {
    for_each = var.egress_rules
    content {
      description = egress.value.description
      protocol    = egress.value.protocol
      from_port   = egress.value.from_port
      to_port     = egress.value.to_port
      cidr_blocks = [egress.value.cidr]
    }
  }

  tags = merge(var.tags, { Name = "${var.name}-standby" })
}
