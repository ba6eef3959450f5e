# aws CLI (awscli from PyPI) steps. Sourced by run.sh, which defines
# step, the helpers (eq, contains, fails_with, aws_, ...), $work and the
# test files. Buckets: cli, cli-other.

cli_mb() {
  aws_ s3 mb s3://cli
  aws_ s3 mb s3://cli-other
  local names
  names=$(aws_ s3api list-buckets --query 'Buckets[].Name' --output text)
  contains "$names" cli-other "bucket list"
  grep -qw cli <<<"$(tr '\t' '\n' <<<"$names")" || fail "bucket cli not listed: $names"
}

cli_cp_multipart() {
  aws_ s3 cp --no-progress "$work/big" s3://cli/big.bin
  # 64 MiB + 7 B in the CLI's 8 MiB parts: 9 parts.
  local etag
  etag=$(aws_ s3api head-object --bucket cli --key big.bin --query ETag --output text)
  case "$etag" in *'-9"') ;; *) fail "multipart ETag should end in -9: $etag" ;; esac
}

cli_cp_download() {
  aws_ s3 cp --no-progress s3://cli/big.bin "$work/big.back"
  cmp "$work/big" "$work/big.back"
  aws_ s3 cp --no-progress "$work/small" s3://cli/small.bin
  aws_ s3 cp --no-progress s3://cli/small.bin "$work/small.back"
  cmp "$work/small" "$work/small.back"
}

cli_sync() {
  local t=$work/cli-tree out
  rm -rf "$t" "$t.down" && cp -r "$work/tree" "$t"
  aws_ s3 sync --no-progress "$t" s3://cli/tree
  # Nothing changed: nothing to transfer.
  out=$(aws_ s3 sync --no-progress "$t" s3://cli/tree)
  eq "$out" "" "second sync with nothing changed"
  echo "one, changed" >"$t/a/1.txt"
  out=$(aws_ s3 sync --no-progress "$t" s3://cli/tree)
  echo "$out"
  eq "$(grep -c 'upload:' <<<"$out")" 1 "uploads after changing one file"
  contains "$out" "s3://cli/tree/a/1.txt"
  rm "$t/top.txt"
  out=$(aws_ s3 sync --no-progress --delete "$t" s3://cli/tree)
  echo "$out"
  eq "$(grep -c 'delete:' <<<"$out")" 1 "deletes after removing one file"
  contains "$out" "s3://cli/tree/top.txt"
  aws_ s3 sync --no-progress s3://cli/tree "$t.down"
  diff -r "$t" "$t.down"
}

cli_ls_recursive() {
  local out
  out=$(aws_ s3 ls --recursive s3://cli/tree/)
  echo "$out"
  contains "$out" "tree/a/b/2.txt"
  contains "$out" "tree/sp ace/x+y=z.txt"
  eq "$(wc -l <<<"$out")" 5 "objects under tree/"
}

cli_put_head() {
  aws_ s3api put-object --bucket cli --key api/obj --body "$work/small" \
    --content-type text/x-troika --cache-control max-age=60 --metadata color=blue,shape=square
  local got
  got=$(aws_ s3api head-object --bucket cli --key api/obj \
    --query '[ETag,ContentLength,ContentType,CacheControl,Metadata.color,Metadata.shape]' --output text)
  eq "$got" "\"$(md5 "$work/small")\"	4096	text/x-troika	max-age=60	blue	square" "head-object"
}

cli_copy_same_bucket() {
  local r got
  r=$(aws_ s3api copy-object --bucket cli --key api/copy --copy-source cli/api/obj \
    --query CopyObjectResult.ETag --output text)
  eq "$r" "\"$(md5 "$work/small")\"" "CopyObjectResult.ETag"
  aws_ s3api get-object --bucket cli --key api/copy "$work/copy.out" >/dev/null
  cmp "$work/small" "$work/copy.out"
  # The default directive is COPY: the source's headers and metadata come along.
  got=$(aws_ s3api head-object --bucket cli --key api/copy \
    --query '[ContentType,CacheControl,Metadata.color,Metadata.shape]' --output text)
  eq "$got" "text/x-troika	max-age=60	blue	square" "copied headers"
}

cli_copy_other_bucket() {
  aws_ s3api copy-object --bucket cli-other --key from-cli/obj --copy-source cli/api/obj >/dev/null
  aws_ s3api get-object --bucket cli-other --key from-cli/obj "$work/copy2.out" >/dev/null
  cmp "$work/small" "$work/copy2.out"
  eq "$(aws_ s3api head-object --bucket cli-other --key from-cli/obj --query Metadata.color --output text)" blue
}

cli_copy_replace() {
  aws_ s3api copy-object --bucket cli --key api/replaced --copy-source cli/api/obj \
    --metadata-directive REPLACE --content-type application/x-new --metadata flavour=mint >/dev/null
  local got
  got=$(aws_ s3api head-object --bucket cli --key api/replaced --output json)
  echo "$got"
  python3 - "$got" <<'EOF'
import json, sys
h = json.loads(sys.argv[1])
assert h["ContentType"] == "application/x-new", h
assert h["Metadata"] == {"flavour": "mint"}, h["Metadata"]  # the source's color/shape are gone
assert "CacheControl" not in h, h  # REPLACE keeps none of the source's headers
EOF
  aws_ s3api get-object --bucket cli --key api/replaced "$work/replaced.out" >/dev/null
  cmp "$work/small" "$work/replaced.out"
}

cli_delete_objects() {
  local k got
  for k in del/1 del/2 del/3; do aws_ s3api put-object --bucket cli --key "$k" --body "$work/small" >/dev/null; done
  got=$(aws_ s3api delete-objects --bucket cli \
    --delete '{"Objects":[{"Key":"del/1"},{"Key":"del/2"},{"Key":"del/3"}]}' \
    --query '[join(`,`, sort(Deleted[].Key)), length(Errors || `[]`)]' --output text)
  eq "$got" "del/1,del/2,del/3	0" "Deleted keys, error count"
  eq "$(aws_ s3api list-objects-v2 --bucket cli --prefix del/ --query 'length(Contents || `[]`)' --output text)" 0 "keys left"
}

cli_delete_objects_quiet() {
  local k got
  for k in q/1 q/2 q/3; do aws_ s3api put-object --bucket cli --key "$k" --body "$work/small" >/dev/null; done
  got=$(aws_ s3api delete-objects --bucket cli --output json \
    --delete '{"Objects":[{"Key":"q/1"},{"Key":"q/2"},{"Key":"q/3"}],"Quiet":true}')
  echo "delete-objects said: [$got]"
  # Quiet: only errors are reported, and there are none.
  python3 -c 'import json,sys; d=json.loads(sys.argv[1] or "{}"); assert not d.get("Deleted") and not d.get("Errors"), d' "$got"
  eq "$(aws_ s3api list-objects-v2 --bucket cli --prefix q/ --query 'length(Contents || `[]`)' --output text)" 0 "keys left"
}

cli_multipart_api() {
  local uid e1 e2 got
  uid=$(aws_ s3api create-multipart-upload --bucket cli --key mp/obj --content-type application/x-mp \
    --query UploadId --output text)
  { [ -n "$uid" ] && [ "$uid" != None ]; } || fail "no UploadId: [$uid]"
  e1=$(aws_ s3api upload-part --bucket cli --key mp/obj --upload-id "$uid" --part-number 1 \
    --body "$work/part5m" --query ETag --output text)
  e2=$(aws_ s3api upload-part --bucket cli --key mp/obj --upload-id "$uid" --part-number 2 \
    --body "$work/tail" --query ETag --output text)
  eq "$e1" "\"$(md5 "$work/part5m")\"" "part 1 ETag"
  eq "$e2" "\"$(md5 "$work/tail")\"" "part 2 ETag"
  got=$(aws_ s3api list-parts --bucket cli --key mp/obj --upload-id "$uid" \
    --query 'Parts[].[PartNumber,Size,ETag]' --output text)
  eq "$got" "1	5242880	$e1
2	3073	$e2" "list-parts"
  got=$(aws_ s3api list-multipart-uploads --bucket cli --query 'Uploads[].[Key,UploadId]' --output text)
  contains "$got" "mp/obj	$uid" "list-multipart-uploads"
  got=$(aws_ s3api complete-multipart-upload --bucket cli --key mp/obj --upload-id "$uid" \
    --multipart-upload "{\"Parts\":[{\"PartNumber\":1,\"ETag\":$e1},{\"PartNumber\":2,\"ETag\":$e2}]}" \
    --query ETag --output text)
  eq "$got" "$(mp_etag "$work/part5m" "$work/tail")" "completed ETag"
  aws_ s3api get-object --bucket cli --key mp/obj "$work/mp.out" >/dev/null
  cat "$work/part5m" "$work/tail" | cmp - "$work/mp.out"
  eq "$(aws_ s3api head-object --bucket cli --key mp/obj --query ContentType --output text)" application/x-mp
  got=$(aws_ s3api list-multipart-uploads --bucket cli --query 'Uploads[].UploadId' --output text)
  lacks "$got" "$uid" "uploads after complete"
}

cli_get_part_number() {
  local got
  got=$(aws_ s3api get-object --bucket cli --key mp/obj --part-number 2 "$work/part2.out" \
    --query '[ContentLength,PartsCount,ContentRange]' --output text)
  eq "$got" "3073	2	bytes 5242880-5245952/5245953" "ContentLength, PartsCount, ContentRange"
  cmp "$work/tail" "$work/part2.out"
}

cli_upload_part_copy() {
  local uid c1 c2 final
  aws_ s3api put-object --bucket cli --key upc/src --body "$work/src6m" >/dev/null
  aws_ s3api put-object --bucket cli --key upc/small --body "$work/small" >/dev/null
  head -c 5242880 "$work/src6m" >"$work/upc.p1"
  uid=$(aws_ s3api create-multipart-upload --bucket cli --key upc/dst --query UploadId --output text)
  c1=$(aws_ s3api upload-part-copy --bucket cli --key upc/dst --upload-id "$uid" --part-number 1 \
    --copy-source cli/upc/src --copy-source-range bytes=0-5242879 --query CopyPartResult.ETag --output text)
  c2=$(aws_ s3api upload-part-copy --bucket cli --key upc/dst --upload-id "$uid" --part-number 2 \
    --copy-source cli/upc/small --query CopyPartResult.ETag --output text)
  final=$(aws_ s3api complete-multipart-upload --bucket cli --key upc/dst --upload-id "$uid" \
    --multipart-upload "{\"Parts\":[{\"PartNumber\":1,\"ETag\":$c1},{\"PartNumber\":2,\"ETag\":$c2}]}" \
    --query ETag --output text)
  aws_ s3api get-object --bucket cli --key upc/dst "$work/upc.out" >/dev/null
  cat "$work/upc.p1" "$work/small" | cmp - "$work/upc.out"
  # As for upload-part, a copied part's ETag is the MD5 of its bytes.
  eq "$c1" "\"$(md5 "$work/upc.p1")\"" "part 1 (range copy) ETag"
  eq "$c2" "\"$(md5 "$work/small")\"" "part 2 (whole copy) ETag"
  eq "$final" "$(mp_etag "$work/upc.p1" "$work/small")" "completed ETag"
}

cli_get_range() {
  local got
  got=$(aws_ s3api get-object --bucket cli --key small.bin --range bytes=100-199 "$work/range.out" \
    --query '[ContentLength,ContentRange]' --output text)
  eq "$got" "100	bytes 100-199/4096" "ContentLength, ContentRange"
  tail -c +101 "$work/small" | head -c 100 | cmp - "$work/range.out"
  fails_with 'InvalidRange|416' aws_ s3api get-object --bucket cli --key small.bin --range bytes=5000-6000 "$work/range2.out"
}

cli_cors() {
  aws_ s3api put-bucket-cors --bucket cli --cors-configuration '{"CORSRules":[{
    "AllowedOrigins":["https://app.example.com"],"AllowedMethods":["GET","PUT"],
    "AllowedHeaders":["*"],"ExposeHeaders":["ETag"],"MaxAgeSeconds":600}]}'
  local got
  got=$(aws_ s3api get-bucket-cors --bucket cli --query \
    'CORSRules[0].[join(`,`,AllowedOrigins),join(`,`,AllowedMethods),join(`,`,AllowedHeaders),join(`,`,ExposeHeaders),MaxAgeSeconds]' \
    --output text)
  eq "$got" "https://app.example.com	GET,PUT	*	ETag	600" "get-bucket-cors"
  aws_ s3api delete-bucket-cors --bucket cli
  fails_with 'NoSuchCORSConfiguration' aws_ s3api get-bucket-cors --bucket cli
}

# presign_check QUERY_MARK [ENV=VALUE...]: `aws s3 presign` a GET (its query
# must contain QUERY_MARK), curl it, compare the bytes.
presign_check() {
  local mark=$1 url; shift
  url=$(env "$@" aws --endpoint-url "$endpoint" s3 presign s3://cli/small.bin --expires-in 300)
  echo "$url"
  contains "$url" "$mark" "presigned URL"
  curl -sS -o "$work/presigned.out" -w 'HTTP %{http_code}\n' "$url"
  cmp "$work/small" "$work/presigned.out" || { head -c 1000 "$work/presigned.out"; echo; false; }
  # The signature covers the key: the same query string for another key is refused.
  eq "$(http_code "${url/small.bin/big.bin}")" 403 "status for a URL signed for another key"
}

cli_presign_v4() {
  printf '[default]\ns3 =\n    signature_version = s3v4\n' >"$work/aws-config-s3v4"
  presign_check "X-Amz-Signature=" AWS_CONFIG_FILE="$work/aws-config-s3v4"
}

# What the CLI makes without configuration (this version, this endpoint):
# SigV2 query parameters (AWSAccessKeyId, Expires, Signature).
cli_presign_default() {
  presign_check "Signature="
}

cli_conditional() {
  local etag
  etag=$(aws_ s3api head-object --bucket cli --key small.bin --query ETag --output text)
  fails_with '304|Not Modified' aws_ s3api head-object --bucket cli --key small.bin --if-none-match "$etag"
  eq "$(aws_ s3api head-object --bucket cli --key small.bin --if-match "$etag" --query ETag --output text)" "$etag"
  eq "$(aws_ s3api head-object --bucket cli --key small.bin --if-none-match '"0123"' --query ContentLength --output text)" 4096
  fails_with '412|Precondition' aws_ s3api head-object --bucket cli --key small.bin --if-match '"0123"'
}

cli_rm_rb() {
  local id key
  # Uploads an earlier failing step left open (if the server can list them).
  { aws_ s3api list-multipart-uploads --bucket cli --query 'Uploads[].[Key,UploadId]' --output text 2>/dev/null || true; } |
    while IFS=$'\t' read -r key id; do
      if [ -n "$id" ] && [ "$key" != None ]; then
        aws_ s3api abort-multipart-upload --bucket cli --key "$key" --upload-id "$id" || true
      fi
    done
  aws_ s3 rm --recursive s3://cli
  aws_ s3 rm --recursive s3://cli-other
  eq "$(aws_ s3api list-objects-v2 --bucket cli --query 'length(Contents || `[]`)' --output text)" 0 "keys left in cli"
  aws_ s3 rb s3://cli
  aws_ s3 rb s3://cli-other
  fails_with '404|Not Found|NoSuchBucket' aws_ s3api head-bucket --bucket cli
}

run_aws_cli_steps() {
  step "aws s3 mb" cli_mb
  step "aws s3 cp (multipart upload, 64 MiB)" cli_cp_multipart
  step "aws s3 cp (download) bytes match" cli_cp_download
  step "aws s3 sync (up, one change, --delete, down, diff -r)" cli_sync
  step "aws s3 ls --recursive" cli_ls_recursive
  step "aws s3api put-object/head-object" cli_put_head
  step "aws s3api copy-object (same bucket)" cli_copy_same_bucket
  step "aws s3api copy-object (other bucket)" cli_copy_other_bucket
  step "aws s3api copy-object --metadata-directive REPLACE" cli_copy_replace
  step "aws s3api delete-objects" cli_delete_objects
  step "aws s3api delete-objects (Quiet)" cli_delete_objects_quiet
  step "aws s3api multipart (create/upload-part/list-parts/list-multipart-uploads/complete)" cli_multipart_api
  step "aws s3api get-object --part-number" cli_get_part_number
  step "aws s3api upload-part-copy" cli_upload_part_copy
  step "aws s3api get-object --range" cli_get_range
  step "aws s3api put/get/delete-bucket-cors" cli_cors
  step "aws s3 presign (s3.signature_version = s3v4) + curl" cli_presign_v4
  step "aws s3 presign (the CLI's default signature) + curl" cli_presign_default
  step "aws s3api head-object --if-none-match/--if-match" cli_conditional
  step "aws s3 rm --recursive, rb" cli_rm_rb
}
