"""Secret values never reach status, Events or logs: not whole, and not the password inside a DSN either."""

from __future__ import annotations

from multisite_operator.redact import redact, secret_parts

DSN = "postgres://app:Pa%24%24-w0rd-42@db.internal:5432/app"
S3 = "s3://AKIAEXAMPLE:Key-9b1c-secret@media.example.com/?auth=s3v4&signature=Sig-77aa"


def test_the_password_alone_is_redacted_and_the_host_stays_readable():
    text = ("OperationalError: connection to postgres://app:Pa%24%24-w0rd-42@db.internal:5432/app failed: "
            "password Pa$$-w0rd-42 rejected; storage key Key-9b1c-secret, signature Sig-77aa")
    out = redact(text, [DSN, S3])
    assert "postgres://app:[redacted]@db.internal:5432/app" in out  # where it tried to connect still shows
    for secret in ("Pa%24%24-w0rd-42", "Pa$$-w0rd-42", "Key-9b1c-secret", "Sig-77aa"):
        assert secret not in out


def test_plain_values_are_redacted_whole_and_short_ones_are_left_alone():
    assert redact("token is abcd1234xyz", ["abcd1234xyz"]) == "token is [redacted]"
    assert secret_parts("abc") == set()  # a 3-character value would redact half of every message
    assert redact("mysql://root:hunter2@db/x", []) == "mysql://root:[redacted]@db/x"  # unknown URLs too
