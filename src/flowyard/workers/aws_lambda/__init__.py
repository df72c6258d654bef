"""The AWS Lambda worker type (``--type lambda``) and the handler its function runs."""

from flowyard.errors import LambdaError
from flowyard.workers.aws_lambda.variables import LambdaVariables
from flowyard.workers.aws_lambda.worker import LambdaInfrastructure, LambdaWorker

__all__ = ["LambdaError", "LambdaInfrastructure", "LambdaVariables", "LambdaWorker"]
