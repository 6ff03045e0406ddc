"""Sets up the moto S3 server for the files connector's tests.

Usage: s3_setup.py ENDPOINT BUCKET [KEY=LOCAL_PATH ...]

The server runs with IAM checks on after its first four requests (INITIAL_NO_AUTH_ACTION_COUNT=4),
which this script spends creating a user, its access key and an s3:* policy. Everything after
that, including the uploads here and the connector's reads, must be signed with that key.
Prints the access key id and the secret on one line.
"""
import json
import sys

import boto3

endpoint, bucket, uploads = sys.argv[1], sys.argv[2], sys.argv[3:]


def client(service, key="setup", secret="setup"):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret)


iam = client("iam")
iam.create_user(UserName="plugboard")
key = iam.create_access_key(UserName="plugboard")["AccessKey"]
policy = iam.create_policy(PolicyName="s3-all", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}))
iam.attach_user_policy(UserName="plugboard", PolicyArn=policy["Policy"]["Arn"])

s3 = client("s3", key["AccessKeyId"], key["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
for upload in uploads:
    name, path = upload.split("=", 1)
    with open(path, "rb") as f:
        s3.put_object(Bucket=bucket, Key=name, Body=f.read())
print(key["AccessKeyId"], key["SecretAccessKey"])
