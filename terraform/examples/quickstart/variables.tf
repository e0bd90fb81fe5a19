variable "region" {
  description = "AWS region of the whole stack."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region code such as us-east-1 or eu-west-3."
  }
}

variable "tags" {
  description = "Tags added to every resource (on top of Project and ManagedBy)."
  type        = map(string)
  default     = {}
}

variable "health_url" {
  description = "The laptop's health endpoint through Tailscale Funnel: https://hfo-laptop.<tailnet>.ts.net/healthz."
  type        = string
}

variable "lambda_zip_path" {
  description = "The package `make lambda-zip` built in your clone: build/lambda/hfo-watchdog.zip there (a Git module source does not hold it)."
  type        = string
}

variable "alert_email" {
  description = "E-mail address for alerts (confirm the subscription mail AWS sends). Null: none."
  type        = string
  default     = null
}
