#!/usr/bin/env python3
"""presign_check.py URL SECRET: exits 0 when URL's X-Amz-Signature is the
SigV4 query signature (GET, host signed, UNSIGNED-PAYLOAD) of its other
parameters under SECRET. The S3 test server (s3rver) does not verify V4
signatures, so the integration test checks gradeq's presigned URLs with
this independent implementation (Python's hmac/hashlib)."""
import hashlib
import hmac
import sys
import urllib.parse


def main():
    url, secret = sys.argv[1], sys.argv[2]
    u = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    q = dict(pairs)
    sig = q.pop("X-Amz-Signature")
    canon_q = "&".join(
        urllib.parse.quote(k, safe="-_.~") + "=" + urllib.parse.quote(v, safe="-_.~")
        for k, v in sorted(q.items())
    )
    canon = "\n".join(["GET", u.path, canon_q, "host:" + u.netloc, "", "host", "UNSIGNED-PAYLOAD"])
    date, region, service, term = q["X-Amz-Credential"].split("/")[1:]
    sts = "\n".join([
        "AWS4-HMAC-SHA256", q["X-Amz-Date"], "/".join([date, region, service, term]),
        hashlib.sha256(canon.encode()).hexdigest(),
    ])
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, term):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, sig):
        print(f"presign_check: signature {sig}, expected {want}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
