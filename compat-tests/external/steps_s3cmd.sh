# s3cmd (Debian's package) steps. Sourced by run.sh, which defines step,
# the helpers, $work and the test files. Bucket: s3c.

s3cmd_() { s3cmd -c "$work/s3cfg" --no-progress "$@"; }

s3cmd_setup() {
  # host_bucket without %(bucket)s: path-style requests. bucket_location is
  # the SigV4 region (s3cmd's default, "US", would be signed as is).
  cat >"$work/s3cfg" <<EOF
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = 127.0.0.1:$port
host_bucket = 127.0.0.1:$port
use_https = False
signature_v2 = False
bucket_location = us-east-1
socket_timeout = 60
EOF
  rm -rf "$work/s3c-tree" && cp -r "$work/tree" "$work/s3c-tree"
}

s3c_mb() {
  s3cmd_ mb s3://s3c
  contains "$(s3cmd_ ls)" "s3://s3c" "s3cmd ls"
}

s3c_put() {
  s3cmd_ put "$work/small" s3://s3c/small.bin
  # 12 MiB in 5 MiB chunks: a 3-part multipart upload.
  s3cmd_ put --multipart-chunk-size-mb=5 "$work/mid" s3://s3c/mid.bin
  local etag
  etag=$(aws_ s3api head-object --bucket s3c --key mid.bin --query ETag --output text)
  eq "$etag" "$(mp_etag <(head -c 5242880 "$work/mid") <(tail -c +5242881 "$work/mid" | head -c 5242880) \
    <(tail -c +10485761 "$work/mid"))" "ETag of the 3-part upload"
  eq "$(aws_ s3api head-object --bucket s3c --key small.bin --query ETag --output text)" "\"$(md5 "$work/small")\""
}

s3c_get() {
  rm -f "$work/s3c-small.back" "$work/s3c-mid.back"
  s3cmd_ get s3://s3c/small.bin "$work/s3c-small.back"
  s3cmd_ get s3://s3c/mid.bin "$work/s3c-mid.back"
  cmp "$work/small" "$work/s3c-small.back"
  cmp "$work/mid" "$work/s3c-mid.back"
}

s3c_ls() {
  local out
  out=$(s3cmd_ ls s3://s3c)
  echo "$out"
  # "DATE TIME SIZE s3://bucket/key", one line per object.
  eq "$(awk '{print $3, $4}' <<<"$out" | LC_ALL=C sort)" "12582912 s3://s3c/mid.bin
4096 s3://s3c/small.bin" "size and name of each object"
}

s3c_info() {
  local out
  out=$(s3cmd_ info s3://s3c/mid.bin)
  echo "$out"
  contains "$out" "File size: 12582912"
  # s3cmd keeps the file's MD5 in x-amz-meta-s3cmd-attrs: metadata round trip.
  contains "$out" "MD5 sum:   $(md5 "$work/mid")"
}

s3c_sync() {
  rm -rf "$work/s3c-tree.back"
  s3cmd_ sync "$work/s3c-tree/" s3://s3c/tree/
  local out
  out=$(s3cmd_ ls --recursive s3://s3c/tree/)
  echo "$out"
  eq "$(wc -l <<<"$out")" 6 "objects under tree/"
  contains "$out" "s3://s3c/tree/sp ace/x+y=z.txt"
  mkdir "$work/s3c-tree.back"
  s3cmd_ sync s3://s3c/tree/ "$work/s3c-tree.back/"
  diff -r "$work/s3c-tree" "$work/s3c-tree.back"
}

s3c_del_rb() {
  s3cmd_ del s3://s3c/small.bin
  lacks "$(s3cmd_ ls s3://s3c)" "s3://s3c/small.bin" "listing after del"
  fails_with '404|Not Found|NoSuchKey' aws_ s3api head-object --bucket s3c --key small.bin
  s3cmd_ del --recursive --force s3://s3c
  eq "$(s3cmd_ ls --recursive s3://s3c)" "" "listing after del --recursive"
  s3cmd_ rb s3://s3c
  lacks "$(s3cmd_ ls)" "s3://s3c" "bucket list after rb"
}

run_s3cmd_steps() {
  s3cmd_setup
  step "s3cmd mb" s3c_mb
  step "s3cmd put (small, and 3-part multipart)" s3c_put
  step "s3cmd get, bytes match" s3c_get
  step "s3cmd ls" s3c_ls
  step "s3cmd info" s3c_info
  step "s3cmd sync (up, down, diff -r)" s3c_sync
  step "s3cmd del, rb" s3c_del_rb
}
