"""Stand-in for boto3.dynamodb."""
