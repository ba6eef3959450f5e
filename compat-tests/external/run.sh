#!/usr/bin/env bash
# Real S3 and NFS clients from outside Rust (aws CLI, rclone, s3cmd, boto3,
# libnfs's nfs-cp/nfs-ls/nfs-cat) against `troika server`.
# Usage: compat-tests/external/run.sh [path/to/troika]
# Needs: python3 with awscli and boto3 installed, rclone, s3cmd, libnfs-utils, curl, cmp,
# diff, timeout (.ci/run installs them).
# Prints one "ok"/"FAIL" line per step (a failing step's log follows its
# line) and a closing "external clients: N passed, M failed" line.
# STEP_TIMEOUT (seconds, default 120) bounds each step and SUITE_TIMEOUT
# (default 900) all of them; CLIENTS (default "aws rclone s3cmd boto3 libnfs") picks
# which clients' steps run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../target/debug/troika}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nfs_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
endpoint=http://127.0.0.1:$port
"$bin" server --data "$work/data" --s3-listen "127.0.0.1:$port" --nfs-listen "127.0.0.1:$nfs_port" >"$work/server.log" 2>&1 &
server=$!
cleanup() { kill -9 "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  curl -sf "$endpoint/ready" >/dev/null && [ -s "$work/data/cluster.json" ] && break
  sleep 0.1
done
curl -sf "$endpoint/ready" >/dev/null || { cat "$work/server.log"; echo "server did not become ready"; exit 1; }

AWS_ACCESS_KEY_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_key"])' "$work/data/cluster.json")
AWS_SECRET_ACCESS_KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret_key"])' "$work/data/cluster.json")
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
# A second key, not an administrator's: it may use only the buckets it creates.
meta=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["meta_endpoint"])' "$work/data/cluster.json")
app_key=$("$bin" admin --meta "${meta#http://}" --secret-file "$work/data/cluster.secret" key create --name app)
APP_ACCESS_KEY=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["access_key"])' "$app_key")
APP_SECRET_KEY=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["secret_key"])' "$app_key")
export AWS_DEFAULT_REGION=us-east-1
# No ~/.aws of whoever runs this; few retries, so a failure shows at once.
export AWS_CONFIG_FILE=$work/aws-config AWS_SHARED_CREDENTIALS_FILE=$work/aws-credentials
export AWS_RETRY_MODE=standard AWS_MAX_ATTEMPTS=2 AWS_PAGER=""
export here work port endpoint nfs_port APP_ACCESS_KEY APP_SECRET_KEY
: "${STEP_TIMEOUT:=120}" "${SUITE_TIMEOUT:=900}" "${CLIENTS:=aws rclone s3cmd boto3 libnfs}"

passed=0; failed=0
deadline=$((SECONDS + SUITE_TIMEOUT))
# step NAME COMMAND...: runs COMMAND (a function below or a program) in a
# fresh bash with -euo pipefail, bounded by STEP_TIMEOUT and what is left of
# SUITE_TIMEOUT; prints one line, and the step's output when it failed.
step() {
  local name=$1; shift
  local budget=$((deadline - SECONDS)) rc=0
  [ "$budget" -lt "$STEP_TIMEOUT" ] || budget=$STEP_TIMEOUT
  echo "+ $*" >"$work/step.log"
  if ! kill -0 "$server" 2>/dev/null; then
    echo "(not run: the server has exited)" >>"$work/step.log"; rc=1
  elif [ "$budget" -le 0 ]; then
    echo "(not run: the suite's ${SUITE_TIMEOUT}s are up)" >>"$work/step.log"; rc=1
  else
    timeout -k 5 "$budget" bash -c 'set -euo pipefail; "$@"' step "$@" >>"$work/step.log" 2>&1 || rc=$?
    [ "$rc" -ne 124 ] || echo "(timed out after ${budget}s)" >>"$work/step.log"
  fi
  if [ "$rc" -eq 0 ]; then
    passed=$((passed+1)); echo "ok   $name"
  else
    failed=$((failed+1)); echo "FAIL $name"; sed 's/^/    /' "$work/step.log"
  fi
}

# The boto3 suite prints its own ok/FAIL line per check: each counts as a step.
run_boto3_steps() {
  local log=$work/boto3.log rc=0 ok bad budget=$((deadline - SECONDS))
  if ! kill -0 "$server" 2>/dev/null || [ "$budget" -le 0 ]; then
    failed=$((failed+1)); echo "FAIL boto3 suite (not run: server exited or time is up)"; return
  fi
  timeout -k 5 "$budget" python3 -u "$here/boto3_suite.py" \
    "$endpoint" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$APP_ACCESS_KEY" "$APP_SECRET_KEY" \
    >"$log" 2>&1 || rc=$?
  ok=$(grep -c '^ok   ' "$log" || true)
  bad=$(grep -c '^FAIL ' "$log" || true)
  sed -e '/^boto3: [0-9]* passed, [0-9]* failed$/d' -e 's/^\(ok  \|FAIL\) /\1 boto3 /;t' -e 's/^/    /' "$log"
  passed=$((passed + ok)); failed=$((failed + bad))
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
    failed=$((failed+1)); echo "FAIL boto3 suite (exit status $rc)"
  fi
}

# --- helpers for the step functions -----------------------------------------
fail() { echo "assertion failed: $*" >&2; return 1; }
# eq ACTUAL EXPECTED [WHAT]
eq() { [ "$1" = "$2" ] || fail "${3:-value}: expected [$2], got [$1]"; }
# contains HAYSTACK NEEDLE [WHAT]
contains() { case "$1" in *"$2"*) ;; *) fail "${3:-output} should contain [$2]; it is [$1]" ;; esac; }
lacks() { case "$1" in *"$2"*) fail "${3:-output} should not contain [$2]; it is [$1]" ;; *) ;; esac; }
# fails_with REGEX COMMAND...: COMMAND must exit non-zero, its output matching REGEX.
fails_with() {
  local re=$1 out; shift
  if out=$("$@" 2>&1); then
    echo "$out"; fail "expected '$*' to fail with /$re/, it succeeded"
  fi
  echo "$out"
  grep -qE -- "$re" <<<"$out" || fail "'$*' failed, but not with /$re/"
}
md5() { md5sum "$1" | cut -d' ' -f1; }
# multipart ETag of FILES... (one part each): "md5(md5(p1)..md5(pN))-N", quoted.
mp_etag() {
  python3 -c 'import hashlib,sys
ds=[hashlib.md5(open(p,"rb").read()).digest() for p in sys.argv[1:]]
print("\"%s-%d\"" % (hashlib.md5(b"".join(ds)).hexdigest(), len(ds)))' "$@"
}
aws_() { aws --endpoint-url "$endpoint" "$@"; }
# http_code CURL_ARGS...: the status code of one request.
http_code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# --- test data (kept small: the suite should take a couple of minutes) -----
head -c $((64 * 1024 * 1024 + 7)) /dev/urandom >"$work/big"   # aws s3 cp: 9 parts of 8 MiB
head -c $((5 * 1024 * 1024)) /dev/urandom >"$work/part5m"      # exactly one minimum part
head -c $((6 * 1024 * 1024)) /dev/urandom >"$work/src6m"       # upload-part-copy source
head -c $((12 * 1024 * 1024)) /dev/urandom >"$work/mid"        # 3 parts of 5 MiB (rclone, s3cmd)
head -c 4096 /dev/urandom >"$work/small"
head -c 3073 /dev/urandom >"$work/tail"                        # a last part
mkdir -p "$work/tree/a/b" "$work/tree/sp ace"
echo one >"$work/tree/a/1.txt"
echo two >"$work/tree/a/b/2.txt"
echo top >"$work/tree/top.txt"
echo plus >"$work/tree/sp ace/x+y=z.txt"
: >"$work/tree/empty.txt"
head -c 2000 /dev/urandom >"$work/tree/a/b/blob.bin"

source "$here/steps_aws_cli.sh"
source "$here/steps_rclone.sh"
source "$here/steps_s3cmd.sh"
source "$here/steps_libnfs.sh"
# Every function above is run by `step` in a child bash.
export -f $(compgen -A function)

for client in $CLIENTS; do
  case $client in
    aws) run_aws_cli_steps ;;
    rclone) run_rclone_steps ;;
    s3cmd) run_s3cmd_steps ;;
    boto3) run_boto3_steps ;;
    libnfs) run_libnfs_steps ;;
    *) echo "unknown client in CLIENTS: $client"; exit 2 ;;
  esac
done

[ "$failed" -eq 0 ] || { echo "--- server log (tail) ---"; tail -50 "$work/server.log"; }
echo "external clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
