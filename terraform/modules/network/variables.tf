variable "name" {
  description = "Prefix for every resource name and Name tag."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 characters: a lowercase letter, then lowercase letters, digits or '-'."
  }
}

variable "vpc_cidr" {
  description = <<-EOT
    CIDR block of the standby's VPC: a private (RFC 1918) IPv4 range from /16 to /28. The default,
    10.200.0.0/24, stays clear of K3s's default pod and service networks (10.42.0.0/16,
    10.43.0.0/16) and of the tailnet's 100.64.0.0/10; the standby module refuses any overlap.
  EOT
  type        = string
  default     = "10.200.0.0/24"
  nullable    = false

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && can(regex("^[0-9.]+/([0-9]+)$", var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 28
    error_message = "vpc_cidr must be an IPv4 CIDR block with a prefix length from /16 to /28 (AWS's VPC limits), e.g. 10.200.0.0/24."
  }
}

variable "subnet_cidr" {
  description = "CIDR block of the single public subnet, inside vpc_cidr. Null: the first /26 of the VPC (59 usable addresses, plenty for one instance)."
  type        = string
  default     = null

  validation {
    condition     = var.subnet_cidr == null || can(cidrhost(var.subnet_cidr, 0))
    error_message = "subnet_cidr must be an IPv4 CIDR block such as 10.200.0.0/26, or null."
  }
}

variable "availability_zone" {
  description = "Availability zone of the subnet (and so of the instance). Null: AWS picks one."
  type        = string
  default     = null
}

variable "inbound_rules" {
  description = <<-EOT
    Inbound rules of the standby's security group. Empty by default, and it should stay so:
    Tailscale needs no inbound port (it connects out) and shell access goes through SSM Session
    Manager. Each rule: protocol (tcp/udp), from_port, to_port, cidr (IPv4) and a description.
  EOT
  type = list(object({
    description = string
    protocol    = string
    from_port   = number
    to_port     = number
    cidr        = string
  }))
  default  = []
  nullable = false

  validation {
    condition = alltrue([
      for r in var.inbound_rules :
      can(cidrhost(r.cidr, 0)) && contains(["tcp", "udp"], r.protocol) &&
      r.from_port >= 0 && r.to_port <= 65535 && r.from_port <= r.to_port && length(trimspace(r.description)) > 0
    ])
    error_message = "Each inbound rule needs a valid IPv4 CIDR, protocol tcp or udp, 0 <= from_port <= to_port <= 65535 and a non-empty description."
  }

  validation {
    condition     = alltrue([for r in var.inbound_rules : !endswith(r.cidr, "/0")])
    error_message = "An inbound rule open to the whole internet (/0) is refused: the standby needs no inbound port. Use a narrow CIDR."
  }
}

variable "egress_rules" {
  description = <<-EOT
    Outbound rules. The defaults allow what the standby needs and nothing else: HTTPS (package
    repositories, K3s and container registries, Tailscale control and DERP relays, Discord, AWS
    APIs), HTTP (some package mirrors), and UDP above 1023 (Tailscale direct connections and
    STUN). DNS and NTP go to the VPC's own resolver and time service, which security groups do
    not filter.
  EOT
  type = list(object({
    description = string
    protocol    = string
    from_port   = number
    to_port     = number
    cidr        = string
  }))
  default = [
    { description = "HTTPS", protocol = "tcp", from_port = 443, to_port = 443, cidr = "0.0.0.0/0" },
    { description = "HTTP (package mirrors)", protocol = "tcp", from_port = 80, to_port = 80, cidr = "0.0.0.0/0" },
    { description = "Tailscale direct connections and STUN", protocol = "udp", from_port = 1024, to_port = 65535, cidr = "0.0.0.0/0" },
  ]
  nullable = false

  validation {
    condition = alltrue([
      for r in var.egress_rules :
      can(cidrhost(r.cidr, 0)) && contains(["tcp", "udp"], r.protocol) &&
      r.from_port >= 0 && r.to_port <= 65535 && r.from_port <= r.to_port && length(trimspace(r.description)) > 0
    ])
    error_message = "Each egress rule needs a valid IPv4 CIDR, protocol tcp or udp, 0 <= from_port <= to_port <= 65535 and a non-empty description."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
  nullable    = false
}
