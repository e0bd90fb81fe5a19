# The standby site: one EC2 instance, created, prepared by cloud-init on its first boot and
# then left stopped. From then on only the watchdog starts and stops it; Terraform ignores its
# run state (aws_ec2_instance_state below) and the instance type (the watchdog may change it
# when EC2 has no capacity for the preferred type).

data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  default_instance_type = { arm64 = "t4g.small", x86_64 = "t3.small" }
  instance_type         = coalesce(var.instance_type, local.default_instance_type[var.architecture])

  # EC2 rejects user data of 16 KiB or more (raw bytes, before base64).
  user_data_limit_bytes = 16384
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
# Instance role: SSM Session Manager (shell access without any inbound port) and read access
# to exactly one secret, the Tailscale auth key. The site agent's keyring and heartbeat URL reach
# the standby from Git, sealed, like on the laptop (docs/kubernetes.md).

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
    sid       = "ReadTailscaleAuthKey"
    actions   = ["secretsmanager:GetSecretValue"]
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
# cloud-init. Everything that must happen at boot is in one idempotent script run by a
# systemd unit at EVERY boot, not in cloud-init's once-per-instance runcmd: Terraform stops
# the instance seconds after creating it, so the first boot is usually cut short, and the
# first complete boot may well be the first failover.

locals {
  k3s_config = merge(
    {
      "node-name"             = var.tailscale_hostname
      "write-kubeconfig-mode" = "0600"
      "tls-san"               = [var.tailscale_hostname]
      # 2 GiB of memory: drop what a single-node standby without inbound traffic never uses.
      "disable"            = ["traefik", "servicelb"]
      "secrets-encryption" = true
    },
    var.k3s_config,
  )

  # Not secret: names, ARNs and versions. Values are single-quoted for the shell; every one of
  # them is validated above to hold no quote.
  bootstrap_env = {
    AWS_REGION        = data.aws_region.current.name
    HFO_K3S_VERSION   = var.k3s_version
    HFO_TAILSCALE_VER = var.tailscale_version
    HFO_TS_HOSTNAME   = var.tailscale_hostname
    HFO_TS_SECRET     = var.tailscale_secret_name
    HFO_TS_SSH        = var.tailscale_ssh ? "true" : "false"
  }

  cloud_config = {
    write_files = concat(
      [
        {
          path        = "/etc/rancher/k3s/config.yaml"
          permissions = "0600"
          content     = yamlencode(local.k3s_config)
        },
        {
          path        = "/etc/hfo/bootstrap.env"
          permissions = "0600"
          content     = join("", [for k in sort(keys(local.bootstrap_env)) : "${k}='${local.bootstrap_env[k]}'\n"])
        },
        {
          path        = "/usr/local/sbin/hfo-bootstrap"
          permissions = "0700"
          content     = file("${path.module}/templates/hfo-bootstrap.sh")
        },
        {
          path        = "/etc/systemd/system/hfo-bootstrap.service"
          permissions = "0644"
          content     = file("${path.module}/templates/hfo-bootstrap.service")
        },
      ],
      [
        for name in sort(keys(var.bootstrap_manifests)) : {
          path        = "/var/lib/rancher/k3s/server/manifests/${name}"
          permissions = "0600"
          encoding    = "gz+b64"
          content     = base64gzip(var.bootstrap_manifests[name])
        }
      ],
    )
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
  # cloud-init reads user data at first boot only: a changed configuration needs a fresh
  # instance (which Terraform again leaves stopped).
  user_data_replace_on_change = true

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
    delete_on_termination = true
    tags                  = merge(var.tags, { Name = "${var.name}-standby-root" })
  }

  tags = merge(var.tags, { Name = "${var.name}-standby", "hfo:role" = "standby" })

  lifecycle {
    # A new Amazon Linux release must not replace the standby behind the user's back, and the
    # watchdog may switch instance types on insufficient capacity: Terraform must not undo it.
    ignore_changes = [ami, instance_type]

    precondition {
      condition     = local.user_data_bytes < local.user_data_limit_bytes
      error_message = "The rendered user data is ${local.user_data_bytes} bytes; EC2 allows less than ${local.user_data_limit_bytes}. Shrink bootstrap_manifests (install Argo CD with a K3s HelmChart resource rather than its full manifest)."
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
