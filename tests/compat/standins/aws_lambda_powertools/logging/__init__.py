"""Stand-in for aws_lambda_powertools.logging."""
