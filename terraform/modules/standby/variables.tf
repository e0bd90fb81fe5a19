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
  description = "Size of the encrypted gp3 root volume in GiB. It is the standby's main idle cost (gp3 is billed per GiB-month while stopped: 0.08 USD a GiB in us-east-1). 8 GiB, the Amazon Linux 2023 AMI's snapshot and so the smallest EC2 accepts, holds Amazon Linux, K3s, Argo CD, sealed-secrets and the bot's images with about 1.7 GiB left before the kubelet's image garbage collector starts (docs/cost.md#the-root-volume). EBS volumes cannot shrink: a standby created with 10 GiB keeps it by setting 10 here."
  type        = number
  default     = 8
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
  description = "Extra keys merged over the K3s configuration written to /etc/rancher/k3s/config.yaml (K3s's own option names, e.g. { \"disable\" = [\"traefik\"] }). The node name and the networks have variables of their own (tailscale_hostname, cluster_cidr, service_cidr), checked at plan time."
  type        = any
  default     = {}
  nullable    = false

  validation {
    condition     = length(setintersection(keys(var.k3s_config), ["node-name", "cluster-cidr", "service-cidr", "cluster-dns"])) == 0
    error_message = "k3s_config must not set node-name, cluster-cidr, service-cidr or cluster-dns: use the variables tailscale_hostname, cluster_cidr and service_cidr, which are checked against the VPC and the tailnet (cluster-dns follows service_cidr)."
  }
}

variable "cluster_cidr" {
  description = "K3s's pod network (its cluster-cidr), written to the node's K3s configuration. A private (RFC 1918) range from /12 to /24 (each node takes a /24) that overlaps neither the VPC nor the service network nor the tailnet. It cannot change once the node's cluster has started (K3s documentation): a new value needs a new standby."
  type        = string
  default     = "10.42.0.0/16"
  nullable    = false

  validation {
    condition = can(cidrhost(var.cluster_cidr, 0)) && can(regex("^[0-9.]+/[0-9]+$", var.cluster_cidr)) && try(
      tonumber(split("/", var.cluster_cidr)[1]) >= 12 && tonumber(split("/", var.cluster_cidr)[1]) <= 24 && anytrue([
        for p in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] :
        tonumber(split("/", var.cluster_cidr)[1]) >= tonumber(split("/", p)[1]) &&
        cidrhost(format("%s/%s", cidrhost(var.cluster_cidr, 0), split("/", p)[1]), 0) == cidrhost(p, 0)
      ]),
    false)
    error_message = "cluster_cidr must be a private (RFC 1918) IPv4 block from /12 to /24, e.g. 10.42.0.0/16: the NetworkPolicies in k8s/ treat private ranges as the cluster's own, and 100.64.0.0/10 is the tailnet's."
  }
}

variable "service_cidr" {
  description = "K3s's service network (its service-cidr; CoreDNS gets its tenth address, cluster-dns), written to the node's K3s configuration. A private (RFC 1918) range from /12 to /24 that overlaps neither the VPC nor the pod network nor the tailnet. It cannot change once the node's cluster has started."
  type        = string
  default     = "10.43.0.0/16"
  nullable    = false

  validation {
    condition = can(cidrhost(var.service_cidr, 0)) && can(regex("^[0-9.]+/[0-9]+$", var.service_cidr)) && try(
      tonumber(split("/", var.service_cidr)[1]) >= 12 && tonumber(split("/", var.service_cidr)[1]) <= 24 && anytrue([
        for p in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] :
        tonumber(split("/", var.service_cidr)[1]) >= tonumber(split("/", p)[1]) &&
        cidrhost(format("%s/%s", cidrhost(var.service_cidr, 0), split("/", p)[1]), 0) == cidrhost(p, 0)
      ]),
    false)
    error_message = "service_cidr must be a private (RFC 1918) IPv4 block from /12 to /24, e.g. 10.43.0.0/16: the NetworkPolicies in k8s/ let the site agent reach the Kubernetes API's service address only in private ranges, and 100.64.0.0/10 is the tailnet's."
  }
}

variable "host_cidrs" {
  description = "The node's own networks, by name (the network module's VPC and subnet), checked not to overlap cluster_cidr, service_cidr or the tailnet's 100.64.0.0/10."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for c in values(var.host_cidrs) : can(cidrhost(c, 0)) && can(regex("^[0-9.]+/[0-9]+$", c))])
    error_message = "host_cidrs values must be IPv4 CIDR blocks."
  }
}

variable "image_platforms" {
  description = "The platforms the workload images are built for (docker's names; `make images` builds linux/amd64 and linux/arm64). The standby's own (linux/arm64 for Graviton, linux/amd64 otherwise) must be one of them, or every pod fails with \"exec format error\"."
  type        = list(string)
  default     = ["linux/amd64", "linux/arm64"]
  nullable    = false

  validation {
    condition     = length(var.image_platforms) > 0 && alltrue([for p in var.image_platforms : contains(["linux/amd64", "linux/arm64"], p)])
    error_message = "image_platforms must list linux/amd64 and/or linux/arm64."
  }
}

variable "workload_images" {
  description = "Images the node pulls at every boot, before Argo CD syncs (it then also pulls whatever the synced workloads of namespace hfo name): a failover must never wait for a registry."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for i in var.workload_images : can(regex("^[A-Za-z0-9][A-Za-z0-9._/:@-]*$", i))])
    error_message = "workload_images must be image references such as ghcr.io/alice/hfo-bot:0.1.0."
  }
}

variable "ebs_kms_key_arn" {
  description = "A customer managed KMS key for the root volume (an account whose EBS default key is a customer managed one needs it set). The watchdog's tick role then gets kms:CreateGrant on it, which StartInstances needs. Null: EBS's default key for the account."
  type        = string
  default     = null

  validation {
    condition     = var.ebs_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", coalesce(var.ebs_kms_key_arn, "-")))
    error_message = "ebs_kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), not an alias: IAM scopes kms:CreateGrant by key ARN."
  }
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
  description = "Name of the SSM SecureString parameter holding the Tailscale auth key, as the node's boot script asks Parameter Store for it (/<name>/tailscale-auth-key)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^/[A-Za-z0-9/_.-]+$", var.tailscale_secret_name)) && length(var.tailscale_secret_name) <= 1011
    error_message = "tailscale_secret_name must be an SSM parameter name with a leading / (letters, digits and /_.-)."
  }
}

variable "tailscale_secret_arn" {
  description = "ARN of the Tailscale auth key parameter: the only secret the node can read, which the node deletes and recreates holding a note once it is on the tailnet. (The site agent's keyring and heartbeat URL reach the standby from Git, sealed: docs/kubernetes.md.)"
  type        = string
  nullable    = false
}

variable "bootstrap_manifests" {
  description = "K3s auto-deploy manifests (file name => YAML) written to /var/lib/rancher/k3s/server/manifests at every boot: Argo CD and the standby's root Application. Stored in SSM Parameter Store: an edit reaches the node at its next boot without replacing it."
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
