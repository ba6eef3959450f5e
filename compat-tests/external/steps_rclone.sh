# rclone (Debian's package) steps. Sourced by run.sh, which defines step,
# the helpers, $work and the test files. The remote "troika:" is configured
# from the environment only; bucket: rclone.

# Without AWS_CA_BUNDLE: rclone 1.60 fails on it ("unable to load custom CA
# bundle, HTTPClient's transport unsupported type"), and this is plain HTTP.
rclone_() {
  env -u AWS_CA_BUNDLE \
  RCLONE_CONFIG=$work/rclone.conf \
  RCLONE_CONFIG_TROIKA_TYPE=s3 \
  RCLONE_CONFIG_TROIKA_PROVIDER=Other \
  RCLONE_CONFIG_TROIKA_ENDPOINT=$endpoint \
  RCLONE_CONFIG_TROIKA_REGION=us-east-1 \
  RCLONE_CONFIG_TROIKA_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID \
  RCLONE_CONFIG_TROIKA_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
  RCLONE_CONFIG_TROIKA_FORCE_PATH_STYLE=true \
    rclone --retries 1 --low-level-retries 2 --contimeout 10s --timeout 60s "$@"
}

# A local tree: small files (one with a space and '+' in its name, one
# empty) and one 12 MiB file, which --s3-upload-cutoff 8M --s3-chunk-size 5M
# sends as a 3-part multipart upload.
rclone_tree() {
  rm -rf "$work/rc-src" && cp -r "$work/tree" "$work/rc-src"
  cp "$work/mid" "$work/rc-src/mid.bin"
  touch "$work/rclone.conf"
}

rc_mkdir() {
  rclone_ mkdir troika:rclone
  grep -qx 'rclone/' <<<"$(rclone_ lsf troika:)" || fail "bucket rclone/ not in: $(rclone_ lsf troika:)"
}

rc_sync() {
  rclone_ sync -v --s3-upload-cutoff 8M --s3-chunk-size 5M "$work/rc-src" troika:rclone/tree
  local etag want got
  etag=$(aws_ s3api head-object --bucket rclone --key tree/mid.bin --query ETag --output text)
  case "$etag" in *'-3"') ;; *) fail "tree/mid.bin should be a 3-part upload; ETag $etag" ;; esac
  want=$(cd "$work/rc-src" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
  got=$(rclone_ lsf -R --files-only troika:rclone/tree | LC_ALL=C sort)
  eq "$got" "$want" "remote listing"
}

rc_check() {
  local out
  out=$(rclone_ check "$work/rc-src" troika:rclone/tree 2>&1)
  echo "$out"
  contains "$out" "0 differences found"
  contains "$out" "7 matching files"
  # Every file was compared by MD5, the multipart one too (rclone keeps its
  # MD5 in the object's user metadata).
  lacks "$out" "hashes could not be checked"
}

rc_copy_down() {
  rm -rf "$work/rc-back"
  rclone_ copy troika:rclone/tree "$work/rc-back"
  # rclone does not create empty directories, and the tree has none.
  diff -r "$work/rc-src" "$work/rc-back"
}

rc_delete_purge() {
  rclone_ delete -v troika:rclone/tree --include '*.txt'
  eq "$(rclone_ lsf -R --files-only troika:rclone | LC_ALL=C sort)" "tree/a/b/blob.bin
tree/mid.bin" "files left after delete --include *.txt"
  rclone_ purge troika:rclone
  lacks "$(rclone_ lsf troika:)" "rclone/" "buckets after purge"
  fails_with '404|Not Found|NoSuchBucket' aws_ s3api head-bucket --bucket rclone
}

run_rclone_steps() {
  rclone_tree
  step "rclone mkdir" rc_mkdir
  step "rclone sync (multipart upload of 12 MiB)" rc_sync
  step "rclone check (MD5, 0 differences)" rc_check
  step "rclone copy (download) + diff -r" rc_copy_down
  step "rclone delete, purge" rc_delete_purge
}
