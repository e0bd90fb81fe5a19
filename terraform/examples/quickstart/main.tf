# The root you deploy. Copy this folder out of the repository, next to your clone, and run Terraform
# there (docs/terraform.md#quick-start): the module comes from your fork on GitHub, so this folder
# holds only your settings and, with backend.tf, points at your state.
#
# Every setting of the module is in terraform/modules/hybrid-failover/variables.tf (null means its
# own default); add the ones you change to the module block below.

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Project = "hybrid-failover", ManagedBy = "terraform" }, var.tags)
  }
}

module "hfo" {
  #checkov:skip=CKV_TF_1:Your own fork, on its main branch on purpose: a pushed change of the bootstrap manifests or images reaches the standby with terraform init -upgrade; pin a commit once you want frozen applies
  #checkov:skip=CKV_TF_2:Your own fork, on its main branch on purpose: a pushed change of the bootstrap manifests or images reaches the standby with terraform init -upgrade; pin a tag once you want frozen applies
  # Your fork: `python3 argocd/set_repo_url.py https://github.com/<you>/hybrid-failover.git` sets it
  # here too. After you push a change (bootstrap manifests, images), `terraform init -upgrade` fetches
  # it; pin a tag or a commit (?ref=...) for applies you can repeat.
  source = "git::https://github.com/your-github-user/hybrid-failover.git//terraform/modules/hybrid-failover?ref=main"

  health_url      = var.health_url
  lambda_zip_path = var.lambda_zip_path
  alert_email     = var.alert_email

  # For example:
  # architecture         = "x86_64" # t3.small instead of t4g.small
  # heartbeat_interval_s = 20       # the main idle-cost driver, see `make cost`
}

# A stack applied before the module existed (a copy of the earlier examples/complete, which called
# the four modules itself) keeps its resources: Terraform moves them into the module instead of
# replacing them. Its standby keeps its old user data until you replace it deliberately
# (docs/runbook.md#replace-the-standby-instance).
moved {
  from = module.network
  to   = module.hfo.module.network
}

moved {
  from = module.secrets
  to   = module.hfo.module.secrets
}

moved {
  from = module.standby
  to   = module.hfo.module.standby
}

moved {
  from = module.watchdog
  to   = module.hfo.module.watchdog
}
