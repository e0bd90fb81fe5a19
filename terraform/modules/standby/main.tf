# The standby site: one EC2 instance, created and then left stopped. From then on only the
# watchdog starts and stops it; Terraform ignores its run state (aws_ec2_instance_state below), its
# instance type (the watchdog may change it when EC2 has no capacity for the preferred type) and its
# user data.
#
# Everything the node does at boot comes from SSM Parameter Store (aws_ssm_parameter.node), read at
# EVERY boot by a small loader, the only program in the user data. A change of the bootstrap
# manifests, the K3s settings, the images or the boot script is an in-place update of parameters,
# applied at the node's next boot: it never replaces the instance (and so never loses its loaded
# sealing key or its Tailscale identity). Replacing it is an explicit step (docs/runbook.md).

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  default_instance_type = { arm64 = "t4g.small", x86_64 = "t3.small" }
  instance_type         = coalesce(var.instance_type, local.default_instance_type[var.architecture])
  # The container platform the node runs (docker's names): images must be built for it.
  platform = { arm64 = "linux/arm64", x86_64 = "linux/amd64" }[var.architecture]

  # EC2 rejects user data of 16 KiB or more (raw bytes, before base64).
  user_data_limit_bytes = 16384

  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  ssm_path   = "/${var.name}/standby"
}

# ---------------------------------------------------------------------------------------
# Networks that must not overlap: the VPC and its subnet (the node's own address), K3s's pod and
# service networks, and the tailnet (Tailscale's CGNAT range). A pod network that covers the
# node's subnet takes the subnet router's address for its bridge, and the node loses its way to
# CoreDNS, the Argo CD install and the internet. Each block as [first address, number of
# addresses]: Terraform has no CIDR-overlap function.

locals {
  tailnet_cidr = "100.64.0.0/10"
  networks = merge(var.host_cidrs, {
    "pod network (cluster_cidr)"     = var.cluster_cidr
    "service network (service_cidr)" = var.service_cidr
    "tailnet"                        = local.tailnet_cidr
  })
  network_ranges = {
    for k, c in local.networks : k => [
      sum([for i, octet in split(".", cidrhost(c, 0)) : tonumber(octet) * pow(256, 3 - i)]),
      pow(2, 32 - tonumber(split("/", c)[1])),
    ]
  }
  network_names = sort(keys(local.networks))
  # Every overlapping pair, except the VPC and its own subnet (given together in host_cidrs).
  network_overlaps = flatten([
    for i, a in local.network_names : [
      for j, b in local.network_names :
      "${a} ${local.networks[a]} and ${b} ${local.networks[b]}"
      if i < j && !(contains(keys(var.host_cidrs), a) && contains(keys(var.host_cidrs), b)) &&
      local.network_ranges[a][0] < local.network_ranges[b][0] + local.network_ranges[b][1] &&
      local.network_ranges[b][0] < local.network_ranges[a][0] + local.network_ranges[a][1]
    ]
  ])
}

data "aws_ami" "al2023" {
  most_recent = true
  owners      = ["amazon"]

  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-kernel-6.1-${var.architecture}"]
  }

  filter {
    name   = "architecture"
    values = [var.architecture]
  }

  filter {
    name   = "root-device-type"
    values = ["ebs"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

data "aws_ec2_instance_type" "this" {
  instance_type = local.instance_type
}

# ---------------------------------------------------------------------------------------
# Instance role: SSM Session Manager (shell access without any inbound port), its own
# configuration parameters, and the Tailscale auth key until it has joined the tailnet. The site
# agent's keyring and heartbeat URL reach the standby from Git, sealed, like on the laptop
# (docs/kubernetes.md).

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name_prefix        = "${var.name}-standby-"
  description        = "hybrid-failover standby node: SSM core and the Tailscale auth key"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  role       = aws_iam_role.node.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "node" {
  statement {
    # GetParametersByPath is authorized against the path asked for, not the parameters returned
    # (AWS Systems Manager user guide, "How Parameter Store authorizes parameter retrieval"): this
    # path holds the node's configuration and nothing else, never a secret.
    sid       = "ReadItsConfiguration"
    actions   = ["ssm:GetParametersByPath"]
    resources = ["arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${local.ssm_path}"]
  }

  statement {
    # SSM keeps a parameter's earlier versions readable by a version selector (name:1), and IAM
    # cannot limit GetParameter to the newest one. So once on the tailnet the node deletes the
    # parameter (every version with it) and creates it again holding a note, with its tags (so
    # Terraform sees the same parameter): the key is out of its reach for good
    # (docs/security.md#tailscale-auth-key-of-the-standby). Decryption uses
    # the AWS managed key aws/ssm, which Parameter Store may use on behalf of any principal of
    # the account allowed to call it: no kms: action is needed.
    sid = "ReadThenReplaceTheTailscaleAuthKey"
    actions = [
      "ssm:GetParameter", "ssm:DeleteParameter", "ssm:PutParameter", "ssm:ListTagsForResource", "ssm:AddTagsToResource",
    ]
    resources = [var.tailscale_secret_arn]
  }
}

resource "aws_iam_role_policy" "node" {
  name   = "standby-node"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.node.json
}

resource "aws_iam_instance_profile" "node" {
  name_prefix = "${var.name}-standby-"
  role        = aws_iam_role.node.name
  tags        = var.tags
}

# ---------------------------------------------------------------------------------------
# The node's configuration, in SSM Parameter Store: String parameters of the Standard tier (free,
# at most 4096 characters each). Each file is gzip-compressed, base64-encoded and cut into as many
# parameters as it needs (<path>/<file>/00, /01, ...); SHA256SUMS lets the loader refuse a
# configuration caught half-written by an apply. Nothing here is secret: the boot script, K3s's
# options, names and versions, Argo CD's bootstrap manifests and image names, all from Git.

locals {
  k3s_config = merge(
    {
      "node-name"             = var.tailscale_hostname
      "write-kubeconfig-mode" = "0600"
      "tls-san"               = [var.tailscale_hostname]
      # 2 GiB of memory: drop what a single-node standby without inbound traffic never uses.
      "disable"            = ["traefik", "servicelb"]
      "secrets-encryption" = true
      # Set explicitly, from Terraform, so they are the ones the overlap check above saw. CoreDNS
      # takes the tenth address of the service network, as K3s does for its own default.
      "cluster-cidr" = var.cluster_cidr
      "service-cidr" = var.service_cidr
      "cluster-dns"  = cidrhost(var.service_cidr, 10)
    },
    var.k3s_config,
  )

  # Not secret: names and versions. Values are single-quoted for the shell; every one of them is
  # validated to hold no quote.
  bootstrap_env = {
    AWS_REGION        = local.region
    HFO_K3S_VERSION   = var.k3s_version
    HFO_TAILSCALE_VER = var.tailscale_version
    HFO_TS_HOSTNAME   = var.tailscale_hostname
    HFO_TS_SECRET     = var.tailscale_secret_name
    HFO_TS_SSH        = var.tailscale_ssh ? "true" : "false"
  }

  node_files = merge(
    {
      "bootstrap.sh"    = file("${path.module}/templates/bootstrap.sh")
      "bootstrap.env"   = join("", [for k in sort(keys(local.bootstrap_env)) : "${k}='${local.bootstrap_env[k]}'\n"])
      "k3s-config.yaml" = yamlencode(local.k3s_config)
      "images"          = join("", [for image in var.workload_images : "${image}\n"])
    },
    { for name, body in var.bootstrap_manifests : "manifests/${name}" => body },
  )
  node_files_with_sums = merge(local.node_files, {
    "SHA256SUMS" = join("", [for k in sort(keys(local.node_files)) : "${sha256(local.node_files[k])}  ${k}\n"])
  })
  parameter_chars = 4096
  node_parameters = merge([
    for file, body in local.node_files_with_sums : {
      for i in range(ceil(length(base64gzip(body)) / local.parameter_chars)) :
      "${file}/${format("%02d", i)}" => substr(base64gzip(body), i * local.parameter_chars, local.parameter_chars)
    }
  ]...)
}

resource "aws_ssm_parameter" "node" {
  #checkov:skip=CKV2_AWS_34:Holds no secret (the boot script, K3s options, names, versions, Argo CD manifests and image names, all from Git); a SecureString would only add a KMS dependency to the boot
  for_each    = local.node_parameters
  name        = "${local.ssm_path}/${each.key}"
  description = "hybrid-failover standby: read at every boot (gzip, base64, in parts of 4096 characters)"
  type        = "String"
  tier        = "Standard"
  data_type   = "text"
  value       = each.value
  tags        = var.tags
}

# ---------------------------------------------------------------------------------------
# The user data: cloud-init writes the loader and its systemd unit, which runs it at EVERY boot
# (not cloud-init's once-per-instance runcmd: Terraform stops the instance seconds after creating
# it, so the first boot is usually cut short, and the first complete boot may well be the first
# failover). It names only the region and the parameter path, so it does not change when the
# configuration does.

locals {
  cloud_config = {
    write_files = [
      {
        path        = "/etc/hfo/node.env"
        permissions = "0600"
        content     = "AWS_REGION='${local.region}'\nHFO_SSM_PATH='${local.ssm_path}'\n"
      },
      {
        path        = "/usr/local/sbin/hfo-bootstrap"
        permissions = "0700"
        content     = file("${path.module}/templates/hfo-node-loader.sh")
      },
      {
        path        = "/etc/systemd/system/hfo-bootstrap.service"
        permissions = "0644"
        content     = file("${path.module}/templates/hfo-bootstrap.service")
      },
    ]
    runcmd = [
      ["systemctl", "daemon-reload"],
      ["systemctl", "enable", "--now", "--no-block", "hfo-bootstrap.service"],
    ]
  }

  user_data = "#cloud-config\n${yamlencode(local.cloud_config)}"

  # Exact byte count (Terraform's length() counts characters): from the base64 form, minus
  # its padding.
  user_data_b64   = base64encode(local.user_data)
  user_data_bytes = length(local.user_data_b64) * 3 / 4 - length(regexall("=", substr(local.user_data_b64, -2, 2)))
}

# What the loader in the user data depends on. The user data itself is ignored after creation (a
# newer loader in a later release must not replace a working standby), but a node whose parameter
# path or region changed could not find its configuration: that, and only that, replaces it.
resource "terraform_data" "loader_target" {
  input = { region = local.region, ssm_path = local.ssm_path }
}

resource "aws_instance" "this" {
  ami                     = coalesce(var.ami_id, data.aws_ami.al2023.id)
  instance_type           = local.instance_type
  subnet_id               = var.subnet_id
  vpc_security_group_ids  = [var.security_group_id]
  iam_instance_profile    = aws_iam_instance_profile.node.name
  ebs_optimized           = true
  monitoring              = false
  disable_api_termination = var.termination_protection
  # instance_initiated_shutdown_behavior is left at EC2's default, "stop" (a shutdown from
  # inside the node stops it, never terminates it). Setting it explicitly makes the provider
  # call ModifyInstanceAttribute, which moto mishandles (docs/terraform.md, emulator gaps).
  user_data = local.user_data

  #checkov:skip=CKV_AWS_126:Detailed monitoring costs per metric for an instance that is stopped almost all the time; basic 5-minute metrics feed the runtime alarm
  #checkov:skip=CKV_AWS_88:The node needs a public IPv4 address (from its subnet) to reach the internet without a NAT gateway (about 32 USD a month); its security group accepts no inbound connection and the address is released while stopped

  credit_specification {
    cpu_credits = var.cpu_credits
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1          # pods (one hop further) cannot borrow the node's role
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gib
    encrypted             = true
    kms_key_id            = var.ebs_kms_key_arn
    delete_on_termination = true
    tags                  = merge(var.tags, { Name = "${var.name}-standby-root" })
  }

  tags = merge(var.tags, { Name = "${var.name}-standby", "hfo:role" = "standby" })

  # The node reads its configuration at its first boot, which starts right here.
  depends_on = [aws_ssm_parameter.node, aws_iam_role_policy.node]

  lifecycle {
    # A new Amazon Linux release or a newer loader must not replace the standby behind the user's
    # back, and the watchdog may switch instance types on insufficient capacity: Terraform must
    # not undo it.
    ignore_changes       = [ami, instance_type, user_data]
    replace_triggered_by = [terraform_data.loader_target]

    precondition {
      condition     = length(local.network_overlaps) == 0
      error_message = "These networks overlap: ${join("; ", local.network_overlaps)}. Pick ranges that do not (the defaults: VPC 10.200.0.0/24, pods 10.42.0.0/16, services 10.43.0.0/16; the tailnet is 100.64.0.0/10): a pod network over the node's own subnet cuts it off from CoreDNS and the internet."
    }

    precondition {
      condition     = contains(var.image_platforms, local.platform)
      error_message = "The standby is ${var.architecture} (${local.instance_type}), so its images must be built for ${local.platform}, but image_platforms is [${join(", ", var.image_platforms)}]: build both images for ${local.platform} too (`make images` builds linux/amd64 and linux/arm64) and add it, or choose architecture = ${var.architecture == "arm64" ? "x86_64" : "arm64"}."
    }

    precondition {
      condition     = local.user_data_bytes < local.user_data_limit_bytes
      error_message = "The rendered user data is ${local.user_data_bytes} bytes; EC2 allows less than ${local.user_data_limit_bytes}."
    }

    precondition {
      condition     = contains(data.aws_ec2_instance_type.this.supported_architectures, var.architecture)
      error_message = "Instance type ${local.instance_type} does not support architecture ${var.architecture}."
    }

    precondition {
      condition     = data.aws_ec2_instance_type.this.memory_size >= 2048
      error_message = "Instance type ${local.instance_type} has ${data.aws_ec2_instance_type.this.memory_size} MiB of memory; K3s's server minimum is 2 GiB (2048 MiB)."
    }

    precondition {
      condition     = var.primary_hostname == null || lower(coalesce(var.primary_hostname, "-")) != var.tailscale_hostname
      error_message = "tailscale_hostname (${var.tailscale_hostname}) must differ from the laptop's Tailscale host name: two nodes with one name get renamed by Tailscale and the Funnel URL would stop pointing at the laptop."
    }
  }
}

# Created running (cloud-init starts the preparation), then stopped: the standby costs only
# its volume while idle. ignore_changes: once created, the run state belongs to the watchdog.
resource "aws_ec2_instance_state" "this" {
  instance_id = aws_instance.this.id
  state       = "stopped"

  lifecycle {
    ignore_changes = [state]
  }
}
