"""boto3 against a running Troika: the calls web applications make.

Usage: boto3_suite.py ENDPOINT ACCESS_KEY SECRET_KEY APP_ACCESS_KEY APP_SECRET_KEY
(ACCESS_KEY may use every bucket; APP_ACCESS_KEY only the buckets it creates.)
Prints one line per check and a closing 'N passed, M failed' line.
Every check asserts an outcome (bytes, status codes, error codes, header
values) as AWS S3 documents it.
"""
import base64
import datetime
import gzip
import hashlib
import http.client
import io
import os
import re
import sys
import time
import traceback
import urllib.error
import urllib.request
import zlib
from urllib.parse import unquote_plus, urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

endpoint, ak, sk, app_ak, app_sk = sys.argv[1:6]
EP = urlsplit(endpoint)
MiB = 1024 * 1024


def client(access_key=None, secret_key=None, **config):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key or ak,
        aws_secret_access_key=secret_key or sk,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}, **config),
    )


s3 = client()
# Presigned URLs: botocore signs them with SigV2 query parameters
# (AWSAccessKeyId, Signature, Expires) unless told otherwise, so an
# application that calls generate_presigned_url as is gets those; SigV4
# (X-Amz-Signature) is what it gets with signature_version="s3v4".
s3v4 = client(signature_version="s3v4")
# A key that is not an administrator's: it sees the buckets it creates.
app = client(app_ak, app_sk)
BUCKET = "boto3-suite"
BUCKET2 = "boto3-suite-2"
results = []


def check(fn):
    try:
        fn()
        results.append((fn.__name__, None))
        print(f"ok   {fn.__name__}")
    except Exception:  # noqa: BLE001 - report every failure and go on
        results.append((fn.__name__, traceback.format_exc()))
        print(f"FAIL {fn.__name__}\n{traceback.format_exc()}")
    sys.stdout.flush()


def client_error(fn):
    try:
        fn()
    except ClientError as e:
        return e
    raise AssertionError("expected an error, the call succeeded")


def error_code(fn):
    return client_error(fn).response["Error"]["Code"]


def expect_error(fn, status, code):
    """The call must fail with this error code (and HTTP status, unless None)."""
    e = client_error(fn)
    got = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
    want = (got[0] if status is None else status, code)
    assert got == want, f"expected error {want}, got {got}: {e}"


def md5q(data):
    return '"%s"' % hashlib.md5(data).hexdigest()


def multipart_etag(parts):
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return '"%s-%d"' % (digest, len(parts))


def xml_code(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def raw(method, path, query="", body=b"", headers=None, sign=True):
    """One HTTP request, SigV4-signed by botocore unless sign=False, sent
    with http.client: (status, headers, body). PATH must be URL-safe ASCII."""
    target = path + ("?" + query if query else "")
    req = AWSRequest(method=method, url=endpoint + target, data=body, headers=dict(headers or {}))
    if sign:
        S3SigV4Auth(Credentials(ak, sk), "s3", "us-east-1").add_auth(req)
    conn = http.client.HTTPConnection(EP.hostname, EP.port, timeout=60)
    try:
        conn.request(method, target, body=body, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def urlopen(url, data=None, method="GET", headers=None):
    """urllib.request as an application would use it: (status, headers, body),
    for error statuses too."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def keys_under(prefix, bucket=BUCKET):
    r = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in r.get("Contents", [])]


# --- buckets, plain objects -------------------------------------------------

def create_bucket():
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=BUCKET2)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert BUCKET in names and BUCKET2 in names, names


def put_get_small():
    s3.put_object(Bucket=BUCKET, Key="img/a.txt", Body=b"hello", ContentType="text/plain",
                  Metadata={"owner": "web1"})
    got = s3.get_object(Bucket=BUCKET, Key="img/a.txt")
    assert got["Body"].read() == b"hello"
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"owner": "web1"}, got["Metadata"]
    assert got["ETag"] == md5q(b"hello")


def put_empty():
    s3.put_object(Bucket=BUCKET, Key="empty", Body=b"")
    assert s3.get_object(Bucket=BUCKET, Key="empty")["Body"].read() == b""
    assert s3.head_object(Bucket=BUCKET, Key="empty")["ContentLength"] == 0


def metadata_round_trip():
    body = gzip.compress(b"<html>hello web</html>" * 100)
    headers = {
        "ContentType": "text/html; charset=utf-8",
        "ContentEncoding": "gzip",
        "ContentDisposition": 'inline; filename="page.html"',
        "CacheControl": "public, max-age=3600",
        "ContentLanguage": "en-GB",
    }
    s3.put_object(Bucket=BUCKET, Key="meta/page.html", Body=body,
                  Metadata={"Owner-Name": "web1", "build": "42"},
                  Expires=datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc), **headers)
    head = s3.head_object(Bucket=BUCKET, Key="meta/page.html")
    got = s3.get_object(Bucket=BUCKET, Key="meta/page.html")
    assert got["Body"].read() == body  # stored as sent, not decoded
    for r in (head, got):
        for name, value in headers.items():
            assert r.get(name) == value, (name, r.get(name))
        # S3 returns user metadata names in lower case.
        assert r["Metadata"] == {"owner-name": "web1", "build": "42"}, r["Metadata"]
        assert r["ResponseMetadata"]["HTTPHeaders"].get("expires") == "Tue, 01 Jan 2030 00:00:00 GMT", \
            r["ResponseMetadata"]["HTTPHeaders"]
        assert r["ContentLength"] == len(body)


def response_header_overrides():
    s3.put_object(Bucket=BUCKET, Key="ovr/report.bin", Body=b"1,2,3\n",
                  ContentType="application/octet-stream")
    got = s3.get_object(
        Bucket=BUCKET, Key="ovr/report.bin",
        ResponseContentType="text/csv",
        ResponseContentDisposition='attachment; filename="report.csv"',
        ResponseCacheControl="no-cache",
        ResponseContentLanguage="de",
        ResponseContentEncoding="identity",
    )
    assert got["Body"].read() == b"1,2,3\n"
    assert got["ContentType"] == "text/csv", got["ContentType"]
    assert got["ContentDisposition"] == 'attachment; filename="report.csv"', got.get("ContentDisposition")
    assert got["CacheControl"] == "no-cache", got.get("CacheControl")
    assert got["ContentLanguage"] == "de", got.get("ContentLanguage")
    assert got["ContentEncoding"] == "identity", got.get("ContentEncoding")
    # Only that response changed: the object keeps its own headers.
    head = s3.head_object(Bucket=BUCKET, Key="ovr/report.bin")
    assert head["ContentType"] == "application/octet-stream", head["ContentType"]
    assert "CacheControl" not in head and "ContentDisposition" not in head, head
    # The usual download link: a presigned URL that names the file.
    url = s3v4.generate_presigned_url("get_object", ExpiresIn=300, Params={
        "Bucket": BUCKET, "Key": "ovr/report.bin",
        "ResponseContentDisposition": 'attachment; filename="r.csv"'})
    status, h, data = urlopen(url)
    assert (status, data) == (200, b"1,2,3\n"), (status, data)
    assert h["Content-Disposition"] == 'attachment; filename="r.csv"', h["Content-Disposition"]


def multipart_via_transfer_manager():
    body = os.urandom(21 * MiB)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
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


# --- presigned URLs -----------------------------------------------------------

def _presigned_put_get(c, tag):
    key = f"presigned/{tag}"
    body = os.urandom(3000)
    # The content type is part of what is signed: the uploader sends the same.
    put_url = c.generate_presigned_url("put_object", ExpiresIn=300, Params={
        "Bucket": BUCKET, "Key": key, "ContentType": "application/x-upload"})
    status, h, data = urlopen(put_url, data=body, method="PUT",
                              headers={"Content-Type": "application/x-upload"})
    assert status == 200, (put_url, status, data)
    assert h["ETag"] == md5q(body), h["ETag"]
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "application/x-upload" and head["ContentLength"] == 3000, head
    get_url = c.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
    status, h, data = urlopen(get_url)
    assert status == 200 and data == body, (status, len(data))
    # The signature covers the key: the same query string for another key is refused.
    status, _, data = urlopen(get_url.replace(f"/{key}?", f"/{key}x?"))
    assert status == 403 and xml_code(data) == "SignatureDoesNotMatch", (status, data)


def presigned_get_put_sigv4():
    url = s3v4.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "k"})
    assert "X-Amz-Signature=" in url, url
    _presigned_put_get(s3v4, "v4")


def presigned_get_put_default_signer():
    # With this botocore and endpoint: SigV2 query parameters.
    _presigned_put_get(s3, "default")


def presigned_expiry():
    s3.put_object(Bucket=BUCKET, Key="presigned/short", Body=b"soon gone")
    urls = {name: c.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "presigned/short"},
                                           ExpiresIn=1)
            for name, c in [("v4", s3v4), ("default", s3)]}
    time.sleep(2)
    for name, url in urls.items():
        status, _, data = urlopen(url)
        assert status == 403 and xml_code(data) == "AccessDenied", (name, status, data)


# --- copy, batch delete -------------------------------------------------------

def copy_object_directives():
    s3.put_object(Bucket=BUCKET, Key="cp/src", Body=b"copy me", ContentType="text/plain",
                  CacheControl="max-age=5", Metadata={"a": "1"})
    src = {"Bucket": BUCKET, "Key": "cp/src"}
    r = s3.copy_object(Bucket=BUCKET, Key="cp/dst", CopySource=src)
    assert r["CopyObjectResult"]["ETag"] == md5q(b"copy me"), r["CopyObjectResult"]
    got = s3.get_object(Bucket=BUCKET, Key="cp/dst")
    assert got["Body"].read() == b"copy me"
    assert (got["ContentType"], got.get("CacheControl"), got["Metadata"]) == \
        ("text/plain", "max-age=5", {"a": "1"}), got
    # COPY (explicit): the request's metadata is ignored, the source's is kept.
    s3.copy_object(Bucket=BUCKET, Key="cp/dst2", CopySource=src, MetadataDirective="COPY",
                   Metadata={"ignored": "yes"})
    assert s3.head_object(Bucket=BUCKET, Key="cp/dst2")["Metadata"] == {"a": "1"}
    # REPLACE: only what the request carries.
    s3.copy_object(Bucket=BUCKET, Key="cp/replaced", CopySource=src, MetadataDirective="REPLACE",
                   ContentType="application/json", Metadata={"b": "2"})
    h = s3.head_object(Bucket=BUCKET, Key="cp/replaced")
    assert (h["ContentType"], h["Metadata"]) == ("application/json", {"b": "2"}), h
    assert "CacheControl" not in h, h
    assert s3.get_object(Bucket=BUCKET, Key="cp/replaced")["Body"].read() == b"copy me"
    # To another bucket, from a key that needs URL encoding in x-amz-copy-source.
    odd = "cp/sp ace+plus&é.txt"
    s3.put_object(Bucket=BUCKET, Key=odd, Body=b"odd key")
    s3.copy_object(Bucket=BUCKET2, Key="from-suite/odd", CopySource={"Bucket": BUCKET, "Key": odd})
    assert s3.get_object(Bucket=BUCKET2, Key="from-suite/odd")["Body"].read() == b"odd key"


def copy_object_onto_itself():
    s3.put_object(Bucket=BUCKET, Key="cp/self", Body=b"same bytes", ContentType="text/plain",
                  Metadata={"v": "1"})
    src = {"Bucket": BUCKET, "Key": "cp/self"}
    # Copying an object onto itself changes nothing, so S3 refuses it...
    expect_error(lambda: s3.copy_object(Bucket=BUCKET, Key="cp/self", CopySource=src), None, "InvalidRequest")
    # ...unless the metadata is replaced: the way to edit metadata in place.
    s3.copy_object(Bucket=BUCKET, Key="cp/self", CopySource=src, MetadataDirective="REPLACE",
                   ContentType="text/markdown", Metadata={"v": "2"})
    got = s3.get_object(Bucket=BUCKET, Key="cp/self")
    assert got["Body"].read() == b"same bytes"
    assert (got["ContentType"], got["Metadata"]) == ("text/markdown", {"v": "2"}), got


def copy_object_errors():
    expect_error(lambda: s3.copy_object(
        Bucket=BUCKET, Key="cp/x", CopySource={"Bucket": BUCKET, "Key": "cp/no-such-source"}), 404, "NoSuchKey")
    expect_error(lambda: s3.copy_object(
        Bucket=BUCKET, Key="cp/x", CopySource={"Bucket": "no-such-bucket-xyz", "Key": "k"}), 404, "NoSuchBucket")
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key="cp/x"), None, "404")


def delete_objects_verbose():
    keys = ["dm/1", "dm/2", "dm/a&b<c>.txt"]
    for k in keys:
        s3.put_object(Bucket=BUCKET, Key=k, Body=b"x")
    r = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys + ["dm/never-existed"]]})
    # A key that did not exist is reported as deleted too.
    assert sorted(d["Key"] for d in r.get("Deleted", [])) == sorted(keys + ["dm/never-existed"]), r
    assert not r.get("Errors"), r["Errors"]
    assert keys_under("dm/") == []


def delete_objects_quiet():
    keys = ["dq/1", "dq/2", "dq/3"]
    for k in keys:
        s3.put_object(Bucket=BUCKET, Key=k, Body=b"x")
    r = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
    # Quiet mode reports errors only.
    assert not r.get("Deleted") and not r.get("Errors"), r
    assert keys_under("dq/") == []


# --- conditional requests ----------------------------------------------------

def conditional_put():
    etag = s3.put_object(Bucket=BUCKET, Key="cond/k", Body=b"v1")["ETag"]
    expect_error(lambda: s3.put_object(Bucket=BUCKET, Key="cond/k", Body=b"v2", IfNoneMatch="*"),
                 412, "PreconditionFailed")
    expect_error(lambda: s3.put_object(Bucket=BUCKET, Key="cond/k", Body=b"v2", IfMatch=md5q(b"other")),
                 412, "PreconditionFailed")
    assert s3.get_object(Bucket=BUCKET, Key="cond/k")["Body"].read() == b"v1"
    s3.put_object(Bucket=BUCKET, Key="cond/k", Body=b"v2", IfMatch=etag)
    assert s3.get_object(Bucket=BUCKET, Key="cond/k")["Body"].read() == b"v2"
    s3.put_object(Bucket=BUCKET, Key="cond/new", Body=b"n", IfNoneMatch="*")
    assert s3.get_object(Bucket=BUCKET, Key="cond/new")["Body"].read() == b"n"


def conditional_get():
    s3.put_object(Bucket=BUCKET, Key="cond/g", Body=b"cached")
    head = s3.head_object(Bucket=BUCKET, Key="cond/g")
    etag, last_modified = head["ETag"], head["LastModified"]
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)

    def get(**kw):
        return s3.get_object(Bucket=BUCKET, Key="cond/g", **kw)

    expect_error(lambda: get(IfNoneMatch=etag), 304, "304")
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key="cond/g", IfNoneMatch=etag), 304, "304")
    assert get(IfNoneMatch=md5q(b"other"))["Body"].read() == b"cached"
    assert get(IfMatch=etag)["Body"].read() == b"cached"
    expect_error(lambda: get(IfMatch=md5q(b"other")), 412, "PreconditionFailed")
    expect_error(lambda: get(IfModifiedSince=last_modified), 304, "304")
    expect_error(lambda: get(IfModifiedSince=future), 304, "304")
    assert get(IfModifiedSince=past)["Body"].read() == b"cached"
    expect_error(lambda: get(IfUnmodifiedSince=past), 412, "PreconditionFailed")
    assert get(IfUnmodifiedSince=future)["Body"].read() == b"cached"
    # AWS's documented precedence: If-Match true wins over If-Unmodified-Since
    # false; If-None-Match false wins over If-Modified-Since true.
    assert get(IfMatch=etag, IfUnmodifiedSince=past)["Body"].read() == b"cached"
    expect_error(lambda: get(IfNoneMatch=etag, IfModifiedSince=past), 304, "304")


# --- listing ---------------------------------------------------------------------

def list_with_delimiter():
    for k in ["d/1", "d/2", "d/sub/3", "e"]:
        s3.put_object(Bucket=BUCKET, Key=k, Body=k.encode())
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix="d/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["d/1", "d/2"], r.get("Contents")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["d/sub/"]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, PaginationConfig={"PageSize": 2})
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert keys == sorted(keys) and "e" in keys and "d/sub/3" in keys, keys


LS_KEYS = [f"ls/{c}" for c in "abcde"]


def list_start_after():
    for k in LS_KEYS:
        s3.put_object(Bucket=BUCKET, Key=k, Body=b"x")
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix="ls/", StartAfter="ls/b")
    assert [o["Key"] for o in r["Contents"]] == ["ls/c", "ls/d", "ls/e"], r.get("Contents")
    assert r["StartAfter"] == "ls/b"
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix="ls/", StartAfter="ls/bb")
    assert [o["Key"] for o in r["Contents"]] == ["ls/c", "ls/d", "ls/e"], r.get("Contents")
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix="ls/", StartAfter="ls/e")
    assert r["KeyCount"] == 0 and "Contents" not in r, r


def list_max_keys_paging():
    pages, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=BUCKET, Prefix="ls/", MaxKeys=2, **kw)
        assert r["MaxKeys"] == 2 and r["KeyCount"] == len(r.get("Contents", [])), r
        pages.append([o["Key"] for o in r.get("Contents", [])])
        if not r["IsTruncated"]:
            assert "NextContinuationToken" not in r, r
            break
        token = r["NextContinuationToken"]
        assert len(pages) < 10, pages
    assert pages == [["ls/a", "ls/b"], ["ls/c", "ls/d"], ["ls/e"]], pages


def list_encoding_type_url():
    odd = "enc/sp ace+plus&amp<lt>é%25.txt"
    for k in [odd, "enc/plain"]:
        s3.put_object(Bucket=BUCKET, Key=k, Body=b"x")
    # botocore asks for encoding-type=url by itself and decodes the answer.
    assert keys_under("enc/") == sorted(["enc/plain", odd]), keys_under("enc/")
    # Asked for explicitly, the keys come back URL-encoded, as sent.
    r = s3.list_objects_v2(Bucket=BUCKET, Prefix="enc/", EncodingType="url")
    assert r.get("EncodingType") == "url", r.get("EncodingType")
    raw_keys = [o["Key"] for o in r["Contents"]]
    for k in raw_keys:
        assert not set(k) & set(" &<>é"), f"not URL-encoded: {k!r}"
    assert sorted(unquote_plus(k) for k in raw_keys) == sorted(["enc/plain", odd]), raw_keys


# --- multipart ----------------------------------------------------------------

MP_KEY = "mpu/three"
MP_PARTS = []


def multipart_list_parts_and_uploads():
    MP_PARTS[:] = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1024)]
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=MP_KEY, ContentType="application/x-three",
                                     Metadata={"parts": "3"})["UploadId"]
    try:
        etags = []
        for n, body in enumerate(MP_PARTS, 1):
            etags.append(s3.upload_part(Bucket=BUCKET, Key=MP_KEY, UploadId=uid, PartNumber=n, Body=body)["ETag"])
        assert etags == [md5q(p) for p in MP_PARTS], etags
        lp = s3.list_parts(Bucket=BUCKET, Key=MP_KEY, UploadId=uid)
        assert (lp["Bucket"], lp["Key"], lp["UploadId"], lp["IsTruncated"]) == (BUCKET, MP_KEY, uid, False), lp
        assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in lp["Parts"]] == \
            [(1, 5 * MiB, etags[0]), (2, 5 * MiB, etags[1]), (3, 1024, etags[2])], lp["Parts"]
        page = s3.list_parts(Bucket=BUCKET, Key=MP_KEY, UploadId=uid, MaxParts=2)
        assert page["IsTruncated"] and page["NextPartNumberMarker"] == 2, page
        assert [p["PartNumber"] for p in page["Parts"]] == [1, 2]
        page = s3.list_parts(Bucket=BUCKET, Key=MP_KEY, UploadId=uid, PartNumberMarker=2)
        assert [p["PartNumber"] for p in page["Parts"]] == [3] and not page["IsTruncated"], page
        ups = s3.list_multipart_uploads(Bucket=BUCKET)
        assert (MP_KEY, uid) in [(u["Key"], u["UploadId"]) for u in ups.get("Uploads", [])], ups
        ups = s3.list_multipart_uploads(Bucket=BUCKET, Prefix="mpu/")
        assert (MP_KEY, uid) in [(u["Key"], u["UploadId"]) for u in ups.get("Uploads", [])], ups
        assert not s3.list_multipart_uploads(Bucket=BUCKET, Prefix="nomatch/").get("Uploads"), "prefix ignored"
        done = s3.complete_multipart_upload(
            Bucket=BUCKET, Key=MP_KEY, UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]})
        assert done["ETag"] == multipart_etag(MP_PARTS), done["ETag"]
        uid_done = uid
        uid = None
    finally:
        if uid:
            s3.abort_multipart_upload(Bucket=BUCKET, Key=MP_KEY, UploadId=uid)
    head = s3.head_object(Bucket=BUCKET, Key=MP_KEY)
    assert head["ContentLength"] == sum(map(len, MP_PARTS))
    assert (head["ContentType"], head["Metadata"]) == ("application/x-three", {"parts": "3"}), head
    ups = s3.list_multipart_uploads(Bucket=BUCKET)
    assert uid_done not in [u["UploadId"] for u in ups.get("Uploads", [])], ups
    expect_error(lambda: s3.list_parts(Bucket=BUCKET, Key=MP_KEY, UploadId=uid_done), 404, "NoSuchUpload")


def get_part_number():
    assert MP_PARTS, "needs multipart_list_parts_and_uploads"
    total = sum(map(len, MP_PARTS))
    got = s3.get_object(Bucket=BUCKET, Key=MP_KEY, PartNumber=2)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206, got["ResponseMetadata"]
    assert (got["ContentLength"], got["PartsCount"]) == (5 * MiB, 3), (got["ContentLength"], got.get("PartsCount"))
    assert got["ContentRange"] == f"bytes {5 * MiB}-{10 * MiB - 1}/{total}", got["ContentRange"]
    assert got["Body"].read() == MP_PARTS[1]
    head = s3.head_object(Bucket=BUCKET, Key=MP_KEY, PartNumber=3)
    assert (head["ContentLength"], head["PartsCount"]) == (1024, 3), head
    expect_error(lambda: s3.get_object(Bucket=BUCKET, Key=MP_KEY, PartNumber=4), None, "InvalidPartNumber")


def upload_part_copy_range():
    src = os.urandom(6 * MiB)
    s3.put_object(Bucket=BUCKET, Key="upc/src", Body=src)
    s3.put_object(Bucket=BUCKET2, Key="upc/small", Body=b"tail end")
    part1 = src[1024:1024 + 5 * MiB]
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key="upc/dst")["UploadId"]
    try:
        r1 = s3.upload_part_copy(Bucket=BUCKET, Key="upc/dst", UploadId=uid, PartNumber=1,
                                 CopySource={"Bucket": BUCKET, "Key": "upc/src"},
                                 CopySourceRange=f"bytes=1024-{1024 + 5 * MiB - 1}")
        r2 = s3.upload_part_copy(Bucket=BUCKET, Key="upc/dst", UploadId=uid, PartNumber=2,
                                 CopySource={"Bucket": BUCKET2, "Key": "upc/small"})
        etags = [r1["CopyPartResult"]["ETag"], r2["CopyPartResult"]["ETag"]]
        lp = s3.list_parts(Bucket=BUCKET, Key="upc/dst", UploadId=uid)
        assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in lp["Parts"]] == \
            [(1, 5 * MiB, etags[0]), (2, 8, etags[1])], lp["Parts"]
        done = s3.complete_multipart_upload(Bucket=BUCKET, Key="upc/dst", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]})
        uid = None
    finally:
        if uid:
            s3.abort_multipart_upload(Bucket=BUCKET, Key="upc/dst", UploadId=uid)
    assert s3.get_object(Bucket=BUCKET, Key="upc/dst")["Body"].read() == part1 + b"tail end"
    # As for UploadPart, a copied part's ETag is the MD5 of its bytes, and the
    # object's is the MD5 of those MD5s.
    assert etags == [md5q(part1), md5q(b"tail end")], (etags, [md5q(part1), md5q(b"tail end")])
    assert done["ETag"] == multipart_etag([part1, b"tail end"]), done["ETag"]


def multipart_errors():
    key = "mpu/errors"
    bogus = "no-such-upload-id"
    expect_error(lambda: s3.upload_part(Bucket=BUCKET, Key=key, UploadId=bogus, PartNumber=1, Body=b"x"),
                 404, "NoSuchUpload")
    expect_error(lambda: s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=bogus), 404, "NoSuchUpload")
    expect_error(lambda: s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=bogus,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": md5q(b"x")}]}), 404, "NoSuchUpload")
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    try:
        e1 = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1, Body=b"a" * 1024)["ETag"]
        e2 = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=2, Body=b"b" * 1024)["ETag"]

        def complete(parts):
            return lambda: s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                                        MultipartUpload={"Parts": parts})

        # A part other than the last under 5 MiB.
        expect_error(complete([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]), 400, "EntityTooSmall")
        expect_error(complete([{"PartNumber": 1, "ETag": md5q(b"not it")}]), 400, "InvalidPart")
        expect_error(complete([{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]), 400, "InvalidPartOrder")
        status, _, body = raw("POST", f"/{BUCKET}/{key}", query=f"uploadId={uid}",
                              body=b"<CompleteMultipartUpload><Part><PartNum", headers={"Content-Type": "application/xml"})
        assert (status, xml_code(body)) == (400, "MalformedXML"), (status, body)
        # None of those ended the upload: it still completes with its last part alone.
        done = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                            MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}]})
        assert done["ETag"] == multipart_etag([b"b" * 1024]), done
        uid = None
    finally:
        if uid:
            s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"b" * 1024
    # Abort: the upload and its parts are gone.
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key + "2")["UploadId"]
    s3.upload_part(Bucket=BUCKET, Key=key + "2", UploadId=uid, PartNumber=1, Body=b"c")
    assert s3.abort_multipart_upload(Bucket=BUCKET, Key=key + "2", UploadId=uid)[
        "ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error(lambda: s3.list_parts(Bucket=BUCKET, Key=key + "2", UploadId=uid), None, "NoSuchUpload")
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key=key + "2"), None, "404")


# --- CORS -------------------------------------------------------------------------

CORS_RULES = [
    {"AllowedOrigins": ["https://app.example.com"], "AllowedMethods": ["GET", "PUT"],
     "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag", "x-amz-meta-owner"], "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["https://*.example.org"], "AllowedMethods": ["GET"]},
]


def preflight(origin, method, req_headers=None):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if req_headers:
        h["Access-Control-Request-Headers"] = req_headers
    return raw("OPTIONS", f"/{BUCKET}/img/a.txt", headers=h, sign=False)


def cors_configuration():
    expect_error(lambda: s3.get_bucket_cors(Bucket=BUCKET), None, "NoSuchCORSConfiguration")
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": CORS_RULES})
    got = s3.get_bucket_cors(Bucket=BUCKET)["CORSRules"]
    for rule in got:
        rule.pop("ID", None)
    assert got == CORS_RULES, got


def cors_preflight_and_response():
    status, h, body = preflight("https://app.example.com", "PUT", "content-type, x-amz-meta-owner")
    assert status == 200, (status, body)
    assert h["Access-Control-Allow-Origin"] == "https://app.example.com", h.items()
    assert "PUT" in (h["Access-Control-Allow-Methods"] or ""), h.items()
    allowed = (h["Access-Control-Allow-Headers"] or "").lower()
    assert "content-type" in allowed and "x-amz-meta-owner" in allowed, h.items()
    assert h["Access-Control-Max-Age"] == "600", h.items()
    # A wildcard origin rule answers with the request's origin.
    status, h, _ = preflight("https://cdn.example.org", "GET")
    assert status == 200 and h["Access-Control-Allow-Origin"] == "https://cdn.example.org", (status, h.items())
    # Not allowed: another origin, or a method its rule does not list.
    for origin, method in [("https://evil.example.com", "GET"), ("https://cdn.example.org", "PUT"),
                           ("https://app.example.com", "DELETE")]:
        status, h, body = preflight(origin, method)
        assert status == 403 and h["Access-Control-Allow-Origin"] is None, (origin, method, status, body)
    # The browser's actual request (a presigned GET) gets the CORS headers too.
    url = s3v4.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "img/a.txt"})
    status, h, data = urlopen(url, headers={"Origin": "https://app.example.com"})
    assert (status, data) == (200, b"hello"), (status, data)
    assert h["Access-Control-Allow-Origin"] == "https://app.example.com", h.items()
    assert "etag" in (h["Access-Control-Expose-Headers"] or "").lower(), h.items()
    status, h, data = urlopen(url, headers={"Origin": "https://evil.example.com"})
    assert status == 200 and h["Access-Control-Allow-Origin"] is None, (status, h.items())


def cors_delete():
    s3.delete_bucket_cors(Bucket=BUCKET)
    expect_error(lambda: s3.get_bucket_cors(Bucket=BUCKET), 404, "NoSuchCORSConfiguration")
    status, h, _ = preflight("https://app.example.com", "GET")
    assert status == 403 and h["Access-Control-Allow-Origin"] is None, (status, h.items())

# --- answers that must not lose or hide data --------------------------------

# Keys differing only in whitespace are different objects, in every XML body.
WS_KEYS = ["ws/a", "ws/a ", "ws/ a", "ws/a\t", "ws/a\n", "ws/a\r\n", " "]


def keys_keep_whitespace_in_delete_objects():
    for k in WS_KEYS:
        s3.put_object(Bucket=BUCKET, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "ws/a "}]})
    assert [d["Key"] for d in r["Deleted"]] == ["ws/a "], r
    assert s3.get_object(Bucket=BUCKET, Key="ws/a")["Body"].read() == b"ws/a"
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key="ws/a "), 404, "404")
    rest = [k for k in WS_KEYS if k not in ("ws/a", "ws/a ")]
    r = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in rest]})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(rest), r
    assert keys_under("ws/") == ["ws/a"], keys_under("ws/")
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key=" "), 404, "404")
    s3.delete_object(Bucket=BUCKET, Key="ws/a")


def keys_keep_whitespace_in_copy_and_multipart():
    for k in ["wc/a", "wc/a "]:
        s3.put_object(Bucket=BUCKET, Key=k, Body=k.encode())
    s3.copy_object(Bucket=BUCKET, Key="wc/copy\t", CopySource={"Bucket": BUCKET, "Key": "wc/a "})
    assert s3.get_object(Bucket=BUCKET, Key="wc/copy\t")["Body"].read() == b"wc/a "
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key="wc/copy"), 404, "404")
    for key in ["wc/m ", "wc/m\r\n"]:
        uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        e = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1, Body=b"m")["ETag"]
        s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"m"
    assert sorted(keys_under("wc/")) == sorted(["wc/a", "wc/a ", "wc/copy\t", "wc/m ", "wc/m\r\n"])
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key="wc/m"), 404, "404")


def list_buckets_sees_new_bucket_at_once():
    # The app key's rights are cached by the gateway; creating a bucket must
    # show in its very next listing.
    for name in ["boto3-app-1", "boto3-app-2"]:
        app.create_bucket(Bucket=name)
        names = [b["Name"] for b in app.list_buckets()["Buckets"]]
        assert name in names, names
    page = app.list_buckets(MaxBuckets=1)
    assert [b["Name"] for b in page["Buckets"]] == ["boto3-app-1"], page
    rest = app.list_buckets(MaxBuckets=1, ContinuationToken=page["ContinuationToken"])
    assert [b["Name"] for b in rest["Buckets"]] == ["boto3-app-2"], rest
    for name in ["boto3-app-1", "boto3-app-2"]:
        app.delete_bucket(Bucket=name)
    assert app.list_buckets()["Buckets"] == []


def missing_bucket_is_no_such_bucket():
    # For a key that is not an administrator's too: 404 for what does not
    # exist, 403 only for a bucket that exists and is someone else's.
    expect_error(lambda: app.head_bucket(Bucket="boto3-never-made"), 404, "404")
    expect_error(lambda: app.get_object(Bucket="boto3-never-made", Key="x"), 404, "NoSuchBucket")
    expect_error(lambda: app.list_objects_v2(Bucket="boto3-never-made"), 404, "NoSuchBucket")
    app.create_bucket(Bucket="boto3-app-own")
    try:
        expect_error(lambda: app.copy_object(Bucket="boto3-app-own", Key="x",
                                             CopySource={"Bucket": "boto3-never-made", "Key": "x"}),
                     404, "NoSuchBucket")
        expect_error(lambda: app.head_bucket(Bucket=BUCKET), 403, "403")
        expect_error(lambda: app.get_object(Bucket=BUCKET, Key="r"), 403, "AccessDenied")
        # Someone else's name: taken, not "already yours" (tools take that for success).
        expect_error(lambda: app.create_bucket(Bucket=BUCKET), 409, "BucketAlreadyExists")
        # One's own again: success, as S3 answers in us-east-1.
        app.create_bucket(Bucket="boto3-app-own")
    finally:
        app.delete_bucket(Bucket="boto3-app-own")


def _b64(digest):
    return base64.b64encode(digest).decode()


def multipart_checksum_verified():
    key = "mpsum/sha256"
    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key, ChecksumAlgorithm="SHA256")["UploadId"]
    sent = []
    for n, body in enumerate(parts, 1):
        r = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n, Body=body,
                           ChecksumAlgorithm="SHA256")
        assert r["ChecksumSHA256"] == _b64(hashlib.sha256(body).digest()), r
        sent.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    listed = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)
    assert [p["ChecksumSHA256"] for p in listed["Parts"]] == [p["ChecksumSHA256"] for p in sent], listed
    wrong = [dict(sent[0], ChecksumSHA256=_b64(hashlib.sha256(b"not it").digest())), sent[1]]
    e = client_error(lambda: s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                                          MultipartUpload={"Parts": wrong}))
    assert e.response["Error"]["Code"] in ("BadDigest", "InvalidPart"), e.response
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, e.response
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key=key), 404, "404")
    done = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                        MultipartUpload={"Parts": sent})
    composite = _b64(hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()) + "-2"
    assert done["ChecksumSHA256"] == composite, done
    head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == composite, head
    assert head.get("ChecksumType") in (None, "COMPOSITE"), head
    # A retried completion (its first answer lost) gets the same answer.
    again = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                         MultipartUpload={"Parts": sent})
    assert (again["ETag"], again["ChecksumSHA256"]) == (done["ETag"], done["ChecksumSHA256"]), again
    got = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert got == b"".join(parts)


def multipart_full_object_crc32():
    key = "mpsum/crc32"
    parts = [os.urandom(5 * MiB), os.urandom(777)]
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key, ChecksumAlgorithm="CRC32",
                                     ChecksumType="FULL_OBJECT")["UploadId"]
    sent = []
    for n, body in enumerate(parts, 1):
        r = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n, Body=body,
                           ChecksumAlgorithm="CRC32")
        sent.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumCRC32": r["ChecksumCRC32"]})
    whole = _b64(zlib.crc32(b"".join(parts)).to_bytes(4, "big"))
    bad = _b64((zlib.crc32(b"".join(parts)) ^ 1).to_bytes(4, "big"))
    expect_error(lambda: s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid, ChecksumCRC32=bad,
                                                      MultipartUpload={"Parts": sent}), 400, "BadDigest")
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key=key), 404, "404")
    done = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid, ChecksumCRC32=whole,
                                        MultipartUpload={"Parts": sent})
    assert done["ChecksumCRC32"] == whole, done
    head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert (head["ChecksumCRC32"], head["ChecksumType"]) == (whole, "FULL_OBJECT"), head


def protections_not_given_are_refused():
    key = "refused/x"
    sse_c = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": "k" * 32}
    for kw in [sse_c, {"ServerSideEncryption": "AES256"},
               {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "some-key"},
               {"ACL": "public-read"}, {"GrantRead": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'},
               {"ObjectLockMode": "GOVERNANCE",
                "ObjectLockRetainUntilDate": datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)}]:
        e = client_error(lambda: s3.put_object(Bucket=BUCKET, Key=key, Body=b"secret", **kw))
        got = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
        assert got == (501, "NotImplemented"), (kw, got, e.response)
        expect_error(lambda: s3.head_object(Bucket=BUCKET, Key=key), 404, "404")
    expect_error(lambda: s3.create_multipart_upload(Bucket=BUCKET, Key=key, **sse_c), 501, "NotImplemented")
    expect_error(lambda: s3.create_multipart_upload(Bucket=BUCKET, Key=key, ACL="public-read"),
                 501, "NotImplemented")
    expect_error(lambda: s3.create_bucket(Bucket="boto3-public", ACL="public-read"), 501, "NotImplemented")
    expect_error(lambda: s3.head_bucket(Bucket="boto3-public"), 404, "404")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"x", ACL="private")
    expect_error(lambda: s3.put_object_acl(Bucket=BUCKET, Key=key, ACL="public-read"), 501, "NotImplemented")
    expect_error(lambda: s3.copy_object(Bucket=BUCKET, Key=key + "2", CopySource={"Bucket": BUCKET, "Key": key},
                                        ServerSideEncryption="AES256"), 501, "NotImplemented")
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key=key + "2"), 404, "404")
    s3.delete_object(Bucket=BUCKET, Key=key)


def headers_once_ignored_are_checked():
    key = "owned/x"
    # x-amz-expected-bucket-owner: the owner is the key that created the bucket.
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"x", ExpectedBucketOwner=ak)
    expect_error(lambda: s3.put_object(Bucket=BUCKET, Key=key + "2", Body=b"x", ExpectedBucketOwner="111122223333"),
                 403, "AccessDenied")
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key=key + "2"), 404, "404")
    expect_error(lambda: s3.get_object(Bucket=BUCKET, Key=key, ExpectedBucketOwner="111122223333"),
                 403, "AccessDenied")
    expect_error(lambda: s3.copy_object(Bucket=BUCKET, Key=key + "3", CopySource={"Bucket": BUCKET, "Key": key},
                                        ExpectedSourceBucketOwner="111122223333"), 403, "AccessDenied")
    assert s3.get_bucket_acl(Bucket=BUCKET, ExpectedBucketOwner=ak)["Owner"]["ID"] == ak
    # x-amz-tagging: refused until tags are kept.
    expect_error(lambda: s3.put_object(Bucket=BUCKET, Key=key + "4", Body=b"x", Tagging="team=web"),
                 501, "NotImplemented")
    expect_error(lambda: s3.create_multipart_upload(Bucket=BUCKET, Key=key + "4", Tagging="team=web"),
                 501, "NotImplemented")
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key=key + "4"), 404, "404")
    # Storage classes other than STANDARD are refused, not relabelled.
    expect_error(lambda: s3.put_object(Bucket=BUCKET, Key=key + "5", Body=b"x", StorageClass="GLACIER"),
                 400, "InvalidStorageClass")
    s3.delete_object(Bucket=BUCKET, Key=key)


# --- errors ---------------------------------------------------------------------

def ranges():
    s3.put_object(Bucket=BUCKET, Key="r", Body=bytes(range(256)) * 10)
    got = s3.get_object(Bucket=BUCKET, Key="r", Range="bytes=10-19")
    assert got["Body"].read() == bytes(range(10, 20))
    assert got["ContentRange"] == "bytes 10-19/2560", got["ContentRange"]
    got = s3.get_object(Bucket=BUCKET, Key="r", Range="bytes=-5")
    assert got["Body"].read() == (bytes(range(256)) * 10)[-5:]
    expect_error(lambda: s3.get_object(Bucket=BUCKET, Key="r", Range="bytes=99999-"), 416, "InvalidRange")


def errors():
    expect_error(lambda: s3.get_object(Bucket=BUCKET, Key="nope"), 404, "NoSuchKey")
    expect_error(lambda: s3.get_object(Bucket="no-such-bucket", Key="x"), 404, "NoSuchBucket")
    expect_error(lambda: s3.put_object(Bucket=BUCKET, Key="a/../b", Body=b"x"), None, "InvalidArgument")
    bad = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key="wrong",
                       region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
    expect_error(lambda: bad.list_buckets(), None, "SignatureDoesNotMatch")
    unknown = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="AKIANOSUCHKEY0000000",
                           aws_secret_access_key=sk, region_name="us-east-1",
                           config=Config(s3={"addressing_style": "path"}))
    expect_error(lambda: unknown.list_buckets(), 403, "InvalidAccessKeyId")


def access_denied_anonymous():
    status, _, body = raw("GET", f"/{BUCKET}/img/a.txt", sign=False)
    assert (status, xml_code(body)) == (403, "AccessDenied"), (status, body)
    status, _, body = raw("PUT", f"/{BUCKET}/anon.txt", body=b"x", sign=False)
    assert (status, xml_code(body)) == (403, "AccessDenied"), (status, body)
    expect_error(lambda: s3.head_object(Bucket=BUCKET, Key="anon.txt"), None, "404")


def _empty_bucket(bucket):
    try:
        for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    except ClientError:
        pass  # uploads left by a failed check stay; the bucket delete will say so
    keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in p.get("Contents", [])]
    for k in keys:
        s3.delete_object(Bucket=bucket, Key=k)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def delete_and_cleanup():
    for bucket in (BUCKET, BUCKET2):
        _empty_bucket(bucket)
        s3.delete_bucket(Bucket=bucket)
        expect_error(lambda: s3.head_bucket(Bucket=bucket), None, "404")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert BUCKET not in names and BUCKET2 not in names, names


for f in [create_bucket, put_get_small, put_empty, metadata_round_trip, response_header_overrides,
          multipart_via_transfer_manager, checksums,
          presigned_get_put_sigv4, presigned_get_put_default_signer, presigned_expiry,
          copy_object_directives, copy_object_onto_itself, copy_object_errors,
          delete_objects_verbose, delete_objects_quiet,
          conditional_put, conditional_get,
          list_with_delimiter, list_start_after, list_max_keys_paging, list_encoding_type_url,
          multipart_list_parts_and_uploads, get_part_number, upload_part_copy_range, multipart_errors,
          cors_configuration, cors_preflight_and_response, cors_delete,
          keys_keep_whitespace_in_delete_objects, keys_keep_whitespace_in_copy_and_multipart,
          list_buckets_sees_new_bucket_at_once, missing_bucket_is_no_such_bucket,
          multipart_checksum_verified, multipart_full_object_crc32, protections_not_given_are_refused,
          headers_once_ignored_are_checked,
          ranges, errors, access_denied_anonymous, delete_and_cleanup]:
    check(f)

failed = sum(1 for _, e in results if e)
print(f"boto3: {len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
