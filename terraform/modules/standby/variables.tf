variable "name" {
  description = "Prefix for every resource name and Name tag."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 characters: a lowercase letter, then lowercase letters, digits or '-'."
  }
}

variable "subnet_id" {
  description = "Public subnet of the standby (network module output)."
  type        = string
  nullable    = false
}

variable "security_group_id" {
  description = "Security group of the standby (network module output)."
  type        = string
  nullable    = false
}

variable "architecture" {
  description = "CPU architecture of the standby: arm64 (Graviton, about 20 % cheaper per hour) or x86_64."
  type        = string
  default     = "arm64"
  nullable    = false

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "instance_type" {
  description = <<-EOT
    Instance type. Null: t4g.small (arm64) or t3.small (x86_64), both 2 vCPU and 2 GiB: the
    K3s server minimum, enough for K3s with Traefik and ServiceLB disabled, Argo CD and one
    small bot. Take a *.medium (4 GiB) for heavier workloads. Must offer at least 2 GiB and
    support var.architecture (checked against EC2's own description of the type).
  EOT
  type        = string
  default     = null

  validation {
    condition     = var.instance_type == null || can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", coalesce(var.instance_type, "x")))
    error_message = "instance_type must look like an EC2 instance type, e.g. t4g.small."
  }
}

variable "cpu_credits" {
  description = "Credit mode of burstable (T) types: unlimited (default: a fresh node boots K3s and pulls images at full speed; a burst above baseline costs at most 0.04 USD per vCPU-hour) or standard (never billed beyond the hourly price, but a new instance starts without credits and boots at its 20 % baseline)."
  type        = string
  default     = "unlimited"
  nullable    = false

  validation {
    condition     = contains(["standard", "unlimited"], var.cpu_credits)
    error_message = "cpu_credits must be standard or unlimited."
  }
}

variable "ami_id" {
  description = "Pin the AMI. Null: the newest Amazon Linux 2023 AMI for var.architecture (found once; later AMI releases do not replace the instance, see docs/terraform.md)."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", coalesce(var.ami_id, "x")))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "root_volume_size_gib" {
  description = "Size of the encrypted gp3 root volume in GiB. It is the standby's main idle cost (gp3 is billed per GiB-month while stopped). 10 GiB holds Amazon Linux (about 2 GiB), K3s, Argo CD and a small bot image with room for the kubelet's image garbage collector."
  type        = number
  default     = 10
  nullable    = false

  validation {
    condition     = var.root_volume_size_gib >= 8 && var.root_volume_size_gib <= 1024 && floor(var.root_volume_size_gib) == var.root_volume_size_gib
    error_message = "root_volume_size_gib must be a whole number from 8 (the Amazon Linux 2023 AMI's snapshot size) to 1024."
  }
}

variable "k3s_version" {
  description = "K3s release installed on the standby (pinned: the install script and binary of exactly this tag)."
  type        = string
  default     = "v1.33.1+k3s1"
  nullable    = false

  validation {
    condition     = can(regex("^v1\\.[0-9]+\\.[0-9]+\\+k3s[0-9]+$", var.k3s_version))
    error_message = "k3s_version must be a K3s release tag such as v1.33.1+k3s1."
  }
}

variable "k3s_config" {
  description = "Extra keys merged over the K3s configuration written to /etc/rancher/k3s/config.yaml (K3s's own option names, e.g. { \"disable\" = [\"traefik\"] })."
  type        = any
  default     = {}
  nullable    = false
}

variable "tailscale_version" {
  description = "Tailscale package version installed on the standby (from Tailscale's signed Amazon Linux 2023 repository)."
  type        = string
  default     = "1.84.0"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.tailscale_version))
    error_message = "tailscale_version must be a version such as 1.84.0."
  }
}

variable "tailscale_hostname" {
  description = "The standby's name on the tailnet and its K3s node name. Must differ from the laptop's."
  type        = string
  default     = "hfo-standby"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.tailscale_hostname))
    error_message = "tailscale_hostname must be a DNS label: 1-63 lowercase letters, digits or '-', not starting or ending with '-'."
  }
}

variable "tailscale_ssh" {
  description = "Turn on Tailscale SSH on the standby (access governed by your tailnet policy; the way docs/walkthrough.md loads the sealing key). SSM Session Manager works either way."
  type        = bool
  default     = true
  nullable    = false
}

variable "primary_hostname" {
  description = "The laptop's Tailscale host name (the first label of its Funnel URL), checked to differ from tailscale_hostname. Null: not checked."
  type        = string
  default     = null
}

variable "tailscale_secret_name" {
  description = "Name of the Tailscale auth key secret, as the node's boot script asks Secrets Manager for it (a name is known at plan time, so the user data and its size check are too)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9/_+=.@-]{1,512}$", var.tailscale_secret_name))
    error_message = "tailscale_secret_name must be a Secrets Manager secret name (letters, digits and /_+=.@-)."
  }
}

variable "tailscale_secret_arn" {
  description = "ARN of the Tailscale auth key secret: the only secret the node can read, and only while it is not yet on the tailnet. (The site agent's keyring and heartbeat URL reach the standby from Git, sealed: docs/kubernetes.md.)"
  type        = string
  nullable    = false
}

variable "bootstrap_manifests" {
  description = "K3s auto-deploy manifests (file name => YAML) dropped into /var/lib/rancher/k3s/server/manifests: Argo CD and the standby's root Application. Stored gzip-compressed in the user data, which must stay under EC2's 16 KiB limit."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k in keys(var.bootstrap_manifests) : can(regex("^[a-z0-9][a-z0-9._-]*\\.ya?ml$", k))])
    error_message = "bootstrap_manifests keys must be plain file names ending in .yaml or .yml (lowercase letters, digits, '.', '_', '-')."
  }
}

variable "termination_protection" {
  description = "Turn on EC2 termination protection (then `terraform destroy` fails until you turn it off)."
  type        = bool
  default     = false
  nullable    = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
  nullable    = false
}
