output "heartbeat_url" {
  description = "The heartbeat endpoint (Lambda Function URL) both sites' agents POST to."
  value       = aws_lambda_function_url.heartbeat.function_url
}

output "function_names" {
  description = "The two functions: tick and heartbeat."
  value       = { for k, fn in aws_lambda_function.fn : k => fn.function_name }
}

output "table_name" {
  description = "The DynamoDB state table (HFO_TABLE_NAME)."
  value       = aws_dynamodb_table.state.name
}

output "alert_topic_arn" {
  description = "The SNS topic alarms and the watchdog publish alerts to."
  value       = aws_sns_topic.alerts.arn
}

output "schedule_name" {
  description = "The EventBridge Scheduler schedule that runs the tick."
  value       = aws_scheduler_schedule.tick.name
}

output "log_group_names" {
  description = "Log groups of the two functions."
  value       = { for k, lg in aws_cloudwatch_log_group.fn : k => lg.name }
}

output "alarm_names" {
  description = "The CloudWatch alarms."
  value = concat(
    [aws_cloudwatch_metric_alarm.tick.alarm_name, aws_cloudwatch_metric_alarm.heartbeat_errors.alarm_name],
    aws_cloudwatch_metric_alarm.standby_runtime[*].alarm_name,
  )
}

output "role_names" {
  description = "IAM roles of the two functions."
  value       = { for k, r in aws_iam_role.fn : k => r.name }
}

output "function_arns" {
  description = "ARNs of the two functions."
  value       = { for k, fn in aws_lambda_function.fn : k => fn.arn }
}

output "reserved_concurrency" {
  description = "Reserved concurrency of each function (-1: none). The account's unreserved concurrency must stay at or above Lambda's minimum (10 on a new account)."
  value       = { for k, fn in local.functions : k => fn.concurrency }
}

output "state_access_role_arn" {
  description = "ARN of the role the heartbeat handler assumes to hand the lease holder its state credentials; null unless state_bucket_name is set."
  value       = one(aws_iam_role.state_access[*].arn)
}
