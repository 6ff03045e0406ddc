"""Sets up an Azurite blob server for the files connector's tests.

Usage: azure_setup.py BLOB_ENDPOINT ACCOUNT KEY CONTAINER [BLOB=LOCAL_PATH ...]

BLOB_ENDPOINT is the account's endpoint (http://127.0.0.1:PORT/ACCOUNT). Azurite checks
Shared Key signatures against the account and key it was started with (AZURITE_ACCOUNTS),
so the uploads here are signed with them, as the connector's reads must be. Creates the
container, uploads the blobs, and prints a SAS token for the container (read and list, one
hour).
"""
import datetime
import sys

from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

endpoint, account, key, container, uploads = (
    sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])

service = BlobServiceClient(account_url=endpoint,
                            credential={"account_name": account, "account_key": key})
client = service.create_container(container)
for upload in uploads:
    name, path = upload.split("=", 1)
    with open(path, "rb") as f:
        client.upload_blob(name, f.read())
sas = generate_container_sas(
    account_name=account, container_name=container, account_key=key,
    permission=ContainerSasPermissions(read=True, list=True),
    expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))
print(sas)
