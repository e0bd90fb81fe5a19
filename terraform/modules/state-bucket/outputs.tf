output "bucket_name" {
  description = "Name of the state bucket (the sites' state store, docs/state-handoff.md)."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the state bucket, for IAM policies scoped to it."
  value       = aws_s3_bucket.this.arn
}

output "state_prefix_arn" {
  description = "ARN pattern of every workload's state objects (state/*), for least-privilege IAM."
  value       = "${aws_s3_bucket.this.arn}/state/*"
}
