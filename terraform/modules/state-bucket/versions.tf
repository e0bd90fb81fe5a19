terraform {
  # 1.11: write-only arguments (secret values that never reach the state); 1.10: ephemeral
  # variables and S3 native state locking; 1.9: validations that refer to other variables.
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Tested with 5.100.0, the last 5.x release. 6.0 changed resource schemas (and added
      # aws_lambda_permission.invoked_via_function_url, see docs/terraform.md).
      version = ">= 5.100.0, < 6.0.0"
    }
  }
}
