"""Stand-in for botocore: only the exceptions the boto3 stand-in raises."""
