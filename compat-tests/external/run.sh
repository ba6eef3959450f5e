#!/usr/bin/env bash
# Real S3 clients from outside Rust (aws CLI, boto3) against `troika server`.
# Usage: compat-tests/external/run.sh [path/to/troika]
# Needs: python3 with awscli and boto3 installed, curl, cmp.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/debug/troika}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
endpoint=http://127.0.0.1:$port
"$bin" server --data "$work/data" --s3-listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
cleanup() { kill -9 "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  curl -sf "$endpoint/ready" >/dev/null && [ -s "$work/data/cluster.json" ] && break
  sleep 0.1
done
curl -sf "$endpoint/ready" >/dev/null || { cat "$work/server.log"; echo "server did not become ready"; exit 1; }

export AWS_ACCESS_KEY_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_key"])' "$work/data/cluster.json")
export AWS_SECRET_ACCESS_KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret_key"])' "$work/data/cluster.json")
export AWS_DEFAULT_REGION=us-east-1

passed=0; failed=0
step() { # name, command...
  local name=$1; shift
  echo "+ $*" >"$work/step.log"
  if "$@" >>"$work/step.log" 2>&1; then
    passed=$((passed+1)); echo "ok   $name"
  else
    failed=$((failed+1)); echo "FAIL $name"; cat "$work/step.log"
  fi
}
aws_() { aws --endpoint-url "$endpoint" "$@"; }

head -c $((64 * 1024 * 1024 + 7)) /dev/urandom >"$work/big"
mkdir -p "$work/tree/a/b" && echo one >"$work/tree/a/1.txt" && echo two >"$work/tree/a/b/2.txt"
step "aws s3 mb" aws_ s3 mb s3://cli
step "aws s3 cp (multipart upload, 64 MiB)" aws_ s3 cp "$work/big" s3://cli/big.bin
step "aws s3 cp (download)" aws_ s3 cp s3://cli/big.bin "$work/big.back"
step "downloaded bytes match" cmp "$work/big" "$work/big.back"
step "aws s3 sync" aws_ s3 sync "$work/tree" s3://cli/tree
step "aws s3 ls --recursive" bash -c "aws --endpoint-url $endpoint s3 ls --recursive s3://cli/tree | grep -q 'tree/a/b/2.txt'"
step "aws s3api head-object" aws_ s3api head-object --bucket cli --key big.bin
step "aws s3 rm --recursive" aws_ s3 rm --recursive s3://cli
step "aws s3 rb" aws_ s3 rb s3://cli
step "boto3 suite" python3 "$here/boto3_suite.py" "$endpoint" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
[ "$failed" -eq 0 ] || { echo "--- server log (tail) ---"; tail -50 "$work/server.log"; }
echo "external clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
