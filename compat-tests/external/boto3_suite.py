"""boto3 against a running Troika: the calls web applications make.

Usage: boto3_suite.py ENDPOINT ACCESS_KEY SECRET_KEY
Prints one line per check and a closing 'N passed, M failed' line.
"""
import hashlib
import io
import os
import sys
import traceback

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, ak, sk = sys.argv[1:4]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=ak,
    aws_secret_access_key=sk,
    region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
)
BUCKET = "boto3-suite"
results = []


def check(fn):
    try:
        fn()
        results.append((fn.__name__, None))
        print(f"ok   {fn.__name__}")
    except Exception:  # noqa: BLE001 - report every failure and go on
        results.append((fn.__name__, traceback.format_exc()))
        print(f"FAIL {fn.__name__}\n{traceback.format_exc()}")


def error_code(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("expected an error")


def create_bucket():
    s3.create_bucket(Bucket=BUCKET)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert BUCKET in names, names


def put_get_small():
    s3.put_object(Bucket=BUCKET, Key="img/a.txt", Body=b"hello", ContentType="text/plain",
                  Metadata={"owner": "web1"})
    got = s3.get_object(Bucket=BUCKET, Key="img/a.txt")
    assert got["Body"].read() == b"hello"
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"owner": "web1"}, got["Metadata"]
    assert got["ETag"] == '"%s"' % hashlib.md5(b"hello").hexdigest()


def put_empty():
    s3.put_object(Bucket=BUCKET, Key="empty", Body=b"")
    assert s3.get_object(Bucket=BUCKET, Key="empty")["Body"].read() == b""
    assert s3.head_object(Bucket=BUCKET, Key="empty")["ContentLength"] == 0


def multipart_via_transfer_manager():
    body = os.urandom(21 * 1024 * 1024)
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(body), BUCKET, "big/blob.bin", Config=cfg)
    head = s3.head_object(Bucket=BUCKET, Key="big/blob.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"].endswith('-5"'), head["ETag"]
    out = io.BytesIO()
    s3.download_fileobj(BUCKET, "big/blob.bin", out, Config=cfg)
    assert out.getvalue() == body


def checksums():
    for algo in ["CRC32", "CRC32C", "SHA1", "SHA256"]:
        key = f"sum/{algo}"
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * 100000, ChecksumAlgorithm=algo)
        got = s3.get_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        assert got["Body"].read() == b"x" * 100000
        assert f"Checksum{algo}" in got, sorted(got)


def list_with_delimiter():
    for k in ["d/1", "d/2", "d/sub/3", "e"]:
        s3.put_object(Bucket=BUCKET, Key=k, Body=k.encode())
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix="d/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["d/1", "d/2"], r.get("Contents")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["d/sub/"]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, PaginationConfig={"PageSize": 2})
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert keys == sorted(keys) and "e" in keys and "d/sub/3" in keys, keys


def ranges():
    s3.put_object(Bucket=BUCKET, Key="r", Body=bytes(range(256)) * 10)
    got = s3.get_object(Bucket=BUCKET, Key="r", Range="bytes=10-19")
    assert got["Body"].read() == bytes(range(10, 20))
    assert error_code(lambda: s3.get_object(Bucket=BUCKET, Key="r", Range="bytes=99999-")) == "InvalidRange"


def errors():
    assert error_code(lambda: s3.get_object(Bucket=BUCKET, Key="nope")) == "NoSuchKey"
    assert error_code(lambda: s3.get_object(Bucket="no-such-bucket", Key="x")) == "NoSuchBucket"
    assert error_code(lambda: s3.put_object(Bucket=BUCKET, Key="a/../b", Body=b"x")) == "InvalidArgument"
    bad = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key="wrong",
                       region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
    assert error_code(lambda: bad.list_buckets()) == "SignatureDoesNotMatch"


def delete_and_cleanup():
    keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in p.get("Contents", [])]
    for k in keys:
        s3.delete_object(Bucket=BUCKET, Key=k)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    s3.delete_bucket(Bucket=BUCKET)


for f in [create_bucket, put_get_small, put_empty, multipart_via_transfer_manager, checksums,
          list_with_delimiter, ranges, errors, delete_and_cleanup]:
    check(f)

failed = sum(1 for _, e in results if e)
print(f"boto3: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
