"""Cloud providers, infrastructure, secrets managers, databases as a service."""

from . import ALNUM, B64, UPPER_ALNUM, Kind, rand, token

KINDS = [
    Kind("aws-access-key", "credential", lambda r: token("AKIA", rand(r, UPPER_ALNUM, 16)), ("aws_access_key_id",), "AWS IAM docs: access key ids"),
    Kind("aws-secret-access-key", "credential", lambda r: token("", rand(r, B64, 40)), ("aws_secret_access_key",), "AWS IAM docs"),
]
