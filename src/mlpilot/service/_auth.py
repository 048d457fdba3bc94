"""SigV4 request signatures.

With no access keys configured the service accepts any request, signed or not (what AWS
clients pointed at a local endpoint expect). With keys configured, the signature is recomputed
from the request and the key's secret, the way AWS does, and a request that does not match
gets the error an AWS client shows for a wrong secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from calendar import timegm
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

from mlpilot.service._errors import ServiceError

__all__ = ["MAX_SKEW", "verify_signature"]

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
#: How far X-Amz-Date may be from the service's clock, either way: AWS's window. A captured
#: request can be replayed within it (as against AWS); outside it, it is refused.
MAX_SKEW = 5 * 60
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_UNSIGNED = "UNSIGNED-PAYLOAD"


def _invalid(message: str, code: str = "InvalidSignatureException") -> ServiceError:
    return ServiceError(code, message, status=403)


def _stamp(epoch: float) -> str:
    return time.strftime(_AMZ_DATE, time.gmtime(epoch))


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def verify_signature(
    keys: Mapping[str, str],
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
) -> str | None:
    """Check the request's SigV4 signature against ``keys`` (access key id → secret); return
    the access key id. Does nothing (returns None) when ``keys`` is empty. ``now`` (epoch
    seconds) is the clock the signing date is checked against."""
    if not keys:
        return None
    authorization = headers.get("authorization")
    if not authorization:
        raise _invalid("Missing Authentication Token", "MissingAuthenticationTokenException")
    match = _AUTH.match(authorization)
    if not match:
        raise _invalid("The Authorization header is not a valid AWS4-HMAC-SHA256 signature")
    parts = match["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise _invalid(f"Malformed credential scope: {match['credential']}")
    key_id, day, region, service, _ = parts
    secret = keys.get(key_id)
    if secret is None:
        raise _invalid(
            "The security token included in the request is invalid.", "UnrecognizedClientException"
        )
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = timegm(time.strptime(amz_date, _AMZ_DATE))
    except ValueError:
        raise _invalid("The request has no valid X-Amz-Date header") from None
    if not amz_date.startswith(day):
        raise _invalid("The credential scope's date does not match X-Amz-Date")
    now = time.time() if now is None else now
    if signed_at < now - MAX_SKEW:
        # The wording AWS answers with.
        raise _invalid(
            f"Signature expired: {amz_date} is now earlier than {_stamp(now - MAX_SKEW)} "
            f"({_stamp(now)} - 5 min.)"
        )
    if signed_at > now + MAX_SKEW:
        raise _invalid(
            f"Signature not yet current: {amz_date} is still later than "
            f"{_stamp(now + MAX_SKEW)} ({_stamp(now)} + 5 min.)"
        )

    signed = match["signed"].split(";")
    if "host" not in signed:
        raise _invalid("The Host header must be signed")
    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed
    )
    # The signature covers the body through its hash; a client-declared hash is only trusted
    # once it matches the body that arrived.
    payload_hash = hashlib.sha256(body).hexdigest()
    declared = headers.get("x-amz-content-sha256")
    if declared == _UNSIGNED:
        raise _invalid("Unsigned payloads are not accepted: sign the request body")
    if declared is not None and declared != payload_hash:
        raise _invalid(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
    # botocore encodes the (already encoded) path once more, keeping "/" and "~".
    canonical_path = quote(raw_path or "/", safe="/~")
    canonical = "\n".join(
        [method, canonical_path, canonical_query, canonical_headers, ";".join(signed), payload_hash]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _sign(("AWS4" + secret).encode(), day)
    for part in (region, service, "aws4_request"):
        key = _sign(key, part)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        raise _invalid(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return key_id
