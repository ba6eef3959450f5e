# libnfs's nfs-cp, nfs-ls and nfs-cat (Debian's libnfs-utils) steps against
# the server's NFS export. Sourced by run.sh, which defines step, the
# helpers, $work, $nfs_port and the test files. Bucket: nfs.

# nfs_url PATH: the URL of PATH under the export "/" (the first component is
# the bucket); NFS and MOUNT share one port, so no portmapper is needed.
nfs_url() { echo "nfs://127.0.0.1/$1?nfsport=$nfs_port&mountport=$nfs_port&version=3"; }

nfs_setup() {
  aws_ s3 mb s3://nfs
  head -c $((1024 * 1024 * 1024)) /dev/urandom >"$work/gib"
}

# A 1 GiB file in over NFS and out again, byte-compared; and out over S3.
nfs_cp_1gib_in_and_out() {
  nfs-cp "$work/gib" "$(nfs_url nfs/gib.bin)"
  nfs-cp "$(nfs_url nfs/gib.bin)" "$work/gib.nfs"
  cmp "$work/gib" "$work/gib.nfs"
  aws_ s3 cp s3://nfs/gib.bin "$work/gib.s3" --only-show-errors
  cmp "$work/gib" "$work/gib.s3"
  rm -f "$work/gib.nfs" "$work/gib.s3"
}

# Written over S3, listed and read over NFS at once.
nfs_ls_and_cat_see_s3_objects() {
  aws_ s3 cp "$work/small" s3://nfs/site/img/a.jpg --only-show-errors
  local out
  out=$(nfs-ls "$(nfs_url nfs/site/img)")
  contains "$out" "a.jpg" "nfs-ls"
  contains "$out" " 4096 " "nfs-ls size column"
  nfs-cat "$(nfs_url nfs/site/img/a.jpg)" >"$work/a.cat"
  cmp "$work/small" "$work/a.cat"
  out=$(nfs-ls "$(nfs_url nfs)")
  contains "$out" "site" "nfs-ls of the bucket"
}

# A missing file is an error, not an empty read.
nfs_cat_missing_fails() {
  fails_with "." nfs-cat "$(nfs_url nfs/no/such/file)"
}

run_libnfs_steps() {
  step "libnfs: setup" nfs_setup
  step "libnfs: nfs-cp 1 GiB in and out (and out over S3)" nfs_cp_1gib_in_and_out
  step "libnfs: nfs-ls and nfs-cat see S3 objects" nfs_ls_and_cat_see_s3_objects
  step "libnfs: nfs-cat of a missing file fails" nfs_cat_missing_fails
}
